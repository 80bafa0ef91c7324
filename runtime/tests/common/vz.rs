//! A private OpenVZ installation for vzctl/vzlist integration tests: vz.conf in a
//! temporary VZCTL_ETC, a busybox OS template packed by vzbuild, private/root/lock/run
//! directories; every container it created is stopped and destroyed on drop, and whatever
//! stayed mounted below it is unmounted. (The same harness as tests/vzctl.rs, shareable.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const VZCTL: &str = env!("CARGO_BIN_EXE_vzctl");
pub const VZLIST: &str = env!("CARGO_BIN_EXE_vzlist");
pub const TEMPLATE: &str = "busybox-test-x86_64";

/// A busybox root with an inittab (init, a sleeping service) and os-release, packed into
/// `dir` as a vzbuild template; `extra` may add files to the root before packing.
pub fn make_template(dir: &Path, name: &str, extra: impl FnOnce(&Path)) -> PathBuf {
    let bundle = dir.join("bundle");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-busybox-bundle.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = bundle.join("rootfs");
    std::fs::create_dir_all(root.join("sbin")).unwrap();
    for applet in ["init", "reboot", "poweroff", "halt"] {
        std::os::unix::fs::symlink("../bin/busybox", root.join("sbin").join(applet)).unwrap();
    }
    std::fs::create_dir_all(root.join("var/log")).unwrap();
    std::fs::create_dir_all(root.join("run")).unwrap();
    std::fs::write(
        root.join("etc/inittab"),
        "::sysinit:/bin/sh -c 'echo booted >> /var/log/boots'\n::respawn:/bin/sleep 1000000\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/os-release"), "ID=busybox\nVERSION_ID=1\n").unwrap();
    std::fs::write(root.join("etc/hostname"), "template\n").unwrap();
    extra(&root);
    let archive = dir.join(format!("{name}.oci.tar"));
    vzbuild::pack(
        &root,
        &vzbuild::Output::File(archive.clone()),
        &vzbuild::PackOptions {
            name: Some(name.into()),
            version: Some("1.0".into()),
            progress: Some(false),
            ..Default::default()
        },
    )
    .unwrap();
    std::fs::remove_dir_all(&bundle).unwrap();
    archive
}

pub struct Vz {
    pub dir: tempfile::TempDir,
    /// Where VE_PRIVATE and VE_ROOT live (the VZ file system).
    pub vz_root: PathBuf,
    pub ctids: std::cell::RefCell<Vec<String>>,
}

impl Vz {
    /// A VZ installation whose private and root areas are under `vz_root` (None: in its
    /// own temporary directory), with the given templates (name, archive) in its cache and
    /// extra vz.conf lines.
    pub fn new(vz_root: Option<&Path>, templates: &[(&str, &Path)], vz_conf: &str) -> Vz {
        let dir = tempfile::Builder::new()
            .prefix("vzctl-it-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let vz_root = vz_root
            .map(Path::to_path_buf)
            .unwrap_or_else(|| d.to_path_buf());
        std::fs::create_dir_all(d.join("etc/conf")).unwrap();
        std::fs::write(
            d.join("etc/vz.conf"),
            format!(
                "VE_ROOT={1}/root/$VEID\nVE_PRIVATE={1}/private/$VEID\nTEMPLATE={0}/template\nLOCKDIR={0}/lock\nVZRUN_ROOT={0}/run\nSTOP_TIMEOUT=20\n{vz_conf}",
                d.display(),
                vz_root.display()
            ),
        )
        .unwrap();
        for (name, archive) in templates {
            let cache = d.join("template/cache").join(name);
            std::fs::create_dir_all(&cache).unwrap();
            std::fs::copy(archive, cache.join("1.0.oci.tar")).unwrap();
        }
        Vz {
            dir,
            vz_root,
            ctids: Default::default(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn private(&self, ctid: &str) -> PathBuf {
        self.vz_root.join("private").join(ctid)
    }

    pub fn root(&self, ctid: &str) -> PathBuf {
        self.vz_root.join("root").join(ctid)
    }

    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        c.env("VZCTL_ETC", self.path("etc"))
            .args(args)
            .stdin(Stdio::null());
        c
    }

    pub fn vzctl(&self, args: &[&str]) -> Output {
        if args.first() == Some(&"create") {
            if let Some(ctid) = args.get(1) {
                self.ctids.borrow_mut().push(ctid.to_string());
            }
        }
        super::output_via_files(self.command(VZCTL, args))
    }

    /// Runs vzctl and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.vzctl(args);
        assert!(
            out.status.success(),
            "vzctl {args:?} failed ({:?}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn code(&self, args: &[&str]) -> i32 {
        self.vzctl(args).status.code().unwrap_or(-1)
    }

    /// Runs vzctl expecting exit `code` with `words` in its error message.
    pub fn refused(&self, args: &[&str], code: i32, words: &str) -> String {
        let out = self.vzctl(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(code),
            "vzctl {args:?}: wanted exit {code}, stderr: {err}"
        );
        assert!(
            err.contains(words),
            "vzctl {args:?}: no {words:?} in: {err}"
        );
        err
    }

    /// A shell command in the container: (exit code, stdout+stderr).
    pub fn sh(&self, ctid: &str, script: &str) -> (i32, String) {
        let out = self.vzctl(&["exec2", ctid, script]);
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    pub fn vzlist(&self, args: &[&str]) -> String {
        let out = super::output_via_files(self.command(VZLIST, args));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn vzlist_json(&self, ctid: &str) -> serde_json::Value {
        let text = self.vzlist(&["-j", ctid]);
        let rows: serde_json::Value = serde_json::from_str(&text).unwrap();
        rows[0].clone()
    }

    pub fn status(&self, ctid: &str) -> String {
        self.ok(&["status", ctid]).trim().to_string()
    }
}

impl Drop for Vz {
    fn drop(&mut self) {
        for ctid in self.ctids.borrow().iter() {
            let _ = self.vzctl(&["stop", "--fast", ctid]);
            let _ = self.vzctl(&["destroy", ctid]);
        }
        // Whatever a failed test left: unmount roots so the directories can go.
        for base in [self.dir.path(), self.vz_root.as_path()] {
            for m in vzrun::mountinfo::mount_points().iter().rev() {
                if m.starts_with(base) && m != base {
                    let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
                }
            }
        }
    }
}

pub fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
