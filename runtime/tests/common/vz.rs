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
    let bundle = dir.join("template-bundle");
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
    let archive = dir.join("busybox.oci.tar");
    vzbuild::pack(
        &root,
        &vzbuild::Output::File(archive.clone()),
        &vzbuild::PackOptions {
            name: Some(TEMPLATE.into()),
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
    pub ctids: std::cell::RefCell<Vec<String>>,
}

impl Vz {
    pub fn new() -> Vz {
        Vz::with_conf("")
    }

    /// `extra` lines are appended to vz.conf (they win over the defaults above them).
    pub fn with_conf(extra: &str) -> Vz {
        let dir = tempfile::Builder::new()
            .prefix("vzctl-it-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("etc/conf")).unwrap();
        std::fs::write(
            d.join("etc/vz.conf"),
            format!(
                "VE_ROOT={0}/root/$VEID\nVE_PRIVATE={0}/private/$VEID\nTEMPLATE={0}/template\nLOCKDIR={0}/lock\nVZRUN_ROOT={0}/run\nSTOP_TIMEOUT=20\n{extra}",
                d.display()
            ),
        )
        .unwrap();
        let cache = d.join("template/cache").join(TEMPLATE);
        std::fs::create_dir_all(&cache).unwrap();
        let archive = template_archive(d);
        std::fs::rename(&archive, cache.join("1.0.oci.tar")).unwrap();
        Vz {
            dir,
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
        // Whatever a failed test left: unmount roots so the temp dir can go.
        for m in vzrun::mountinfo::mount_points().iter().rev() {
            if m.starts_with(self.dir.path()) {
                let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
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
