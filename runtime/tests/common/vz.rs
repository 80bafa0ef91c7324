//! A private VZ installation for vzctl tests: vz.conf in a temporary VZCTL_ETC, a template
//! cache with a busybox OS template (busybox init as PID 1), and cleanup of every container,
//! mount and file on drop.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{output_via_files, VZRUN};

pub const VZCTL: &str = env!("CARGO_BIN_EXE_vzctl");
pub const VZLIST: &str = env!("CARGO_BIN_EXE_vzlist");
pub const TEMPLATE: &str = "busybox-test-x86_64";

/// A busybox root with an inittab, packed into `dir` (each VZ installation packs its own,
/// so nothing outlives the test).
pub fn template_archive(dir: &Path) -> PathBuf {
    make_template(dir, TEMPLATE, |_| {})
}

/// A busybox root with an inittab (init, a sleeping service) and os-release, packed into
/// `dir` as the vzbuild template NAME:1.0; `extra` may add files to the root before packing.
pub fn make_template(dir: &Path, name: &str, extra: impl FnOnce(&Path)) -> PathBuf {
    let bundle = dir.join(format!("{name}-bundle"));
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
        "::sysinit:/bin/sh -c 'echo booted >> /var/log/boots'\n::respawn:/bin/sleep 1000000\n::shutdown:/bin/echo going down\n",
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

/// A private VZ installation: etc/vz.conf, template cache, private/root/lock/run dirs.
pub struct Vz {
    pub dir: tempfile::TempDir,
    /// Where VE_PRIVATE and VE_ROOT live (the VZ file system).
    pub vz_root: PathBuf,
    pub ctids: std::cell::RefCell<Vec<String>>,
}

impl Vz {
    pub fn new() -> Vz {
        Vz::with_conf("")
    }

    /// `extra` lines are appended to vz.conf (they win over the defaults above them).
    pub fn with_conf(extra: &str) -> Vz {
        let vz = Vz::custom(None, &[], extra);
        let archive = template_archive(vz.dir.path());
        let cache = vz.path("template/cache").join(TEMPLATE);
        std::fs::create_dir_all(&cache).unwrap();
        std::fs::rename(&archive, cache.join("1.0.oci.tar")).unwrap();
        vz
    }

    /// A VZ installation whose private and root areas are under `vz_root` (None: in its
    /// own temporary directory), with the given templates (name, archive) in its cache as
    /// NAME:1.0, and `vz_conf` appended to vz.conf.
    pub fn custom(vz_root: Option<&Path>, templates: &[(&str, &Path)], vz_conf: &str) -> Vz {
        let dir = tempfile::Builder::new()
            .prefix("vzctl-it-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let vz_root = vz_root.map_or_else(|| d.to_path_buf(), Path::to_path_buf);
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

    /// Puts another OS template archive into this installation's cache as NAME:1.
    pub fn add_template(&self, name: &str, archive: &Path) {
        let dir = self.path("template/cache").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(archive, dir.join("1.oci.tar")).unwrap();
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
        if let Some(ctid) = args.get(1) {
            if args[0] == "create" {
                self.ctids.borrow_mut().push(ctid.to_string());
            }
        }
        output_via_files(self.command(VZCTL, args))
    }

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

    /// Runs vzctl expecting failure: (exit code, stderr).
    pub fn fails(&self, args: &[&str]) -> (i32, String) {
        let out = self.vzctl(args);
        assert!(!out.status.success(), "vzctl {args:?} should have failed");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
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

    /// Runs another of the project's tools (vzsplit, vzmemcheck) in this installation.
    pub fn tool(&self, program: &str, args: &[&str]) -> Output {
        output_via_files(self.command(program, args))
    }

    /// `vzctl create CTID --ostemplate TEMPLATE EXTRA...`, asserting success.
    pub fn create(&self, ctid: &str, extra: &[&str]) {
        let mut args = vec!["create", ctid, "--ostemplate", TEMPLATE];
        args.extend_from_slice(extra);
        self.ok(&args);
    }

    /// The container's config file.
    pub fn conf(&self, ctid: &str) -> String {
        std::fs::read_to_string(self.path(&format!("etc/conf/{ctid}.conf"))).unwrap()
    }

    pub fn vzlist(&self, args: &[&str]) -> String {
        let out = output_via_files(self.command(VZLIST, args));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// vzlist -j's object for one container.
    pub fn vzlist_json(&self, ctid: &str) -> serde_json::Value {
        let rows: serde_json::Value = serde_json::from_str(&self.vzlist(&["-j", ctid])).unwrap();
        rows[0].clone()
    }

    pub fn status(&self, ctid: &str) -> String {
        self.ok(&["status", ctid]).trim().to_string()
    }

    pub fn create_and_start(&self, ctid: &str) {
        self.ok(&[
            "create",
            ctid,
            "--ostemplate",
            TEMPLATE,
            "--hostname",
            &format!("ct{ctid}"),
        ]);
        self.ok(&["start", ctid]);
    }

    /// Init's pid on the host (from the runtime state of the CT container).
    pub fn init_pid(&self, ctid: &str) -> Option<i64> {
        let out = Command::new(VZRUN)
            .arg("--root")
            .arg(self.path("run"))
            .args(["state", ctid])
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v["pid"].as_i64().filter(|p| *p > 0)
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
        std::thread::sleep(Duration::from_millis(50));
    }
}
