//! Helpers for vzrun's integration tests: real containers, as root, each in its own
//! temporary runtime root and cgroup, removed even when the test fails.

#![allow(dead_code)]

pub mod vz;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const VZRUN: &str = env!("CARGO_BIN_EXE_vzrun");

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// True (and a note on stderr) when the tests cannot run here.
pub fn skip() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: vzrun integration tests need root");
        return true;
    }
    false
}

/// A private runtime root plus a busybox bundle; force-deletes every container on drop.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub ids: std::cell::RefCell<Vec<String>>,
}

impl Env {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("vzrun-it-")
            .tempdir()
            .unwrap();
        let root = dir.path().join("state");
        Env {
            dir,
            root,
            ids: Default::default(),
        }
    }

    /// A fresh unique container id (registered for cleanup).
    pub fn id(&self, name: &str) -> String {
        let id = format!(
            "{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        self.ids.borrow_mut().push(id.clone());
        id
    }

    /// A bundle running `args`; `edit` may change the config.json value.
    pub fn bundle(
        &self,
        name: &str,
        args: &[&str],
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> PathBuf {
        let path = self.dir.path().join(name);
        let mut cmd_args = vec![path.to_str().unwrap().to_string()];
        cmd_args.extend(args.iter().map(|a| a.to_string()));
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-busybox-bundle.sh");
        let out = Command::new("bash")
            .arg(script)
            .args(&cmd_args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "make bundle: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let config_path = path.join("config.json");
        let mut config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
        config["linux"]["cgroupsPath"] = format!("/vzrun-it/{name}-{}", std::process::id()).into();
        edit(&mut config);
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        path
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(VZRUN);
        c.arg("--root").arg(&self.root).args(args);
        c.stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        output_via_files(self.cmd(args))
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "vzrun {args:?} failed ({:?}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn status(&self, id: &str) -> String {
        let out = self.ok(&["state", id]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["status"].as_str().unwrap().to_string()
    }

    pub fn wait_status(&self, id: &str, want: &str) {
        for _ in 0..200 {
            if self.status(id) == want {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("{id} never became {want} (is {})", self.status(id));
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self.run(&["delete", "--force", id]);
        }
        // The tests' parent cgroup, in every hierarchy (comounts such as net_cls,net_prio
        // included) and at the root of a pure v2 host; only an empty one goes.
        let root = Path::new("/sys/fs/cgroup");
        let _ = std::fs::remove_dir(root.join("vzrun-it"));
        for hierarchy in std::fs::read_dir(root).into_iter().flatten().flatten() {
            let _ = std::fs::remove_dir(hierarchy.path().join("vzrun-it"));
        }
    }
}

/// Runs to completion. Output goes through files, not pipes: a container created by
/// the command inherits its stdio and would hold a pipe open for its whole life.
pub fn output_via_files(mut command: Command) -> Output {
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let status = command
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .status()
        .unwrap();
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek};
        let mut buf = Vec::new();
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        f.read_to_end(&mut buf).unwrap();
        buf
    };
    Output {
        status,
        stdout: read(out),
        stderr: read(err),
    }
}

/// Every cgroup directory named like `pattern` under /sys/fs/cgroup (leak checks).
pub fn cgroups_named(pattern: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return found;
    };
    for h in hierarchies.flatten() {
        walk(&h.path(), pattern, 0, &mut found);
    }
    found
}

fn walk(dir: &Path, pattern: &str, depth: usize, found: &mut Vec<PathBuf>) {
    if depth > 3 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            if e.file_name().to_string_lossy().contains(pattern) {
                found.push(e.path());
            }
            walk(&e.path(), pattern, depth + 1, found);
        }
    }
}
