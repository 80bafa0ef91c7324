//! The run environment, the per-test context and how the runtime is driven.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::host::{self, CgroupLayout, MountInfo};

/// How long one runtime command may take before the suite kills it.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the suite waits for something a container should do soon.
pub const WAIT: Duration = Duration::from_secs(10);

/// What every test of one run shares.
pub struct Env {
    pub runtime: PathBuf,
    pub runtime_args: Vec<String>,
    /// "runc", "crun", "vzrun"...: picks the expectation list.
    pub runtime_name: String,
    pub run_dir: PathBuf,
    pub base_rootfs: PathBuf,
    /// The helper on the host, for hooks that run in the runtime namespace.
    pub host_helper: PathBuf,
    /// Parent of every container cgroup of this run, e.g. "/oci-tests-4242".
    pub cgroup_parent: String,
    pub layout: CgroupLayout,
    pub keep: bool,
    counter: AtomicU32,
}

impl Env {
    pub fn new(
        runtime: PathBuf,
        runtime_args: Vec<String>,
        runtime_name: String,
        helper: &Path,
        busybox: &Path,
        keep: bool,
    ) -> Result<Self> {
        for (what, p) in [("helper", helper), ("busybox", busybox)] {
            if !host::is_static_elf(p)? {
                bail!(
                    "the {what} {} is dynamically linked; the test root has no libc, so it must be static",
                    p.display()
                );
            }
        }
        let base = std::env::var_os("TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        let run_dir = tempfile::Builder::new()
            .prefix("oci-tests-")
            .tempdir_in(&base)
            .context("creating the run directory")?
            .keep();
        // Containers with user namespaces run as unprivileged host ids and
        // still need to reach their bundle.
        std::fs::set_permissions(&run_dir, std::fs::Permissions::from_mode(0o755))?;
        let host_helper = run_dir.join("oci-helper");
        std::fs::copy(helper, &host_helper).context("copying the helper")?;
        let base_rootfs = run_dir.join("rootfs-base");
        crate::rootfs::build(&base_rootfs, busybox, &host_helper)?;
        Ok(Env {
            runtime,
            runtime_args,
            runtime_name,
            run_dir,
            base_rootfs,
            host_helper,
            cgroup_parent: format!("/oci-tests-{}", std::process::id()),
            layout: CgroupLayout::detect()?,
            keep,
            counter: AtomicU32::new(0),
        })
    }

    pub fn next_id(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        format!("ot{}-{n}", std::process::id())
    }
}

/// Result of one runtime invocation.
#[derive(Debug, Clone)]
pub struct Out {
    pub cmdline: String,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Out {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Errors unless the command exited 0.
    pub fn ok(self) -> Result<Out> {
        if !self.success() {
            bail!(
                "`{}` failed ({}): {}",
                self.cmdline,
                self.describe_exit(),
                self.stderr.trim()
            );
        }
        Ok(self)
    }

    /// Errors unless the command failed the way runc fails: exit status 1
    /// and a message on stderr. Returns the output.
    pub fn runc_error(self) -> Result<Out> {
        self.runc_error_status(1)
    }

    /// Like `runc_error` for `exec`, which runc ends with 255 when it cannot
    /// run the process (1..254 belong to the process itself).
    pub fn runc_exec_error(self) -> Result<Out> {
        self.runc_error_status(255)
    }

    fn runc_error_status(self, want: i32) -> Result<Out> {
        if self.success() {
            bail!("`{}` succeeded but should have failed", self.cmdline);
        }
        if self.code != Some(want) {
            bail!(
                "`{}` failed with {} instead of exit status {want} (runc's): {}",
                self.cmdline,
                self.describe_exit(),
                self.stderr.trim()
            );
        }
        if self.stderr.trim().is_empty() {
            bail!(
                "`{}` failed without an error message on stderr",
                self.cmdline
            );
        }
        Ok(self)
    }

    pub fn describe_exit(&self) -> String {
        match (self.code, self.signal) {
            (Some(c), _) => format!("exit status {c}"),
            (None, Some(s)) => format!("killed by signal {s}"),
            _ => "unknown status".into(),
        }
    }
}

/// A bundle: directory, rootfs, the shared `out` directory (mounted at
/// /out in the container) and the config the test edits before create.
pub struct Bundle {
    pub id: String,
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub out: PathBuf,
    pub spec: Value,
}

impl Bundle {
    pub fn write_config(&self) -> Result<()> {
        let data = serde_json::to_vec_pretty(&self.spec)?;
        std::fs::write(self.dir.join("config.json"), data).context("writing config.json")
    }

    pub fn cgroup_path(&self) -> String {
        self.spec["linux"]["cgroupsPath"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Sets process.args.
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.spec["process"]["args"] = json!(args);
        self
    }

    /// The process reports to /out/<name>.json, then waits to be killed.
    pub fn report_args(&mut self, name: &str, probes: &[&str]) -> &mut Self {
        let out = format!("/out/{name}.json");
        let mut a = vec!["/oci-helper", "report", "--out", out.as_str()];
        a.extend_from_slice(probes);
        a.push("--hold");
        self.args(&a)
    }

    pub fn namespaces(&self) -> Vec<String> {
        self.spec["linux"]["namespaces"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|n| n["type"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn remove_namespace(&mut self, kind: &str) -> &mut Self {
        if let Some(a) = self.spec["linux"]["namespaces"].as_array_mut() {
            a.retain(|n| n["type"] != kind);
        }
        self
    }

    pub fn set_namespace_path(&mut self, kind: &str, path: &str) -> &mut Self {
        self.remove_namespace(kind);
        if let Some(a) = self.spec["linux"]["namespaces"].as_array_mut() {
            a.push(json!({"type": kind, "path": path}));
        }
        self
    }

    pub fn remove_mount(&mut self, destination: &str) -> &mut Self {
        if let Some(a) = self.spec["mounts"].as_array_mut() {
            a.retain(|m| m["destination"] != destination);
        }
        self
    }

    pub fn add_mount(&mut self, m: Value) -> &mut Self {
        if let Some(a) = self.spec["mounts"].as_array_mut() {
            a.push(m);
        }
        self
    }

    pub fn out_file(&self, name: &str) -> PathBuf {
        self.out.join(name)
    }
}

/// What the helper reported from inside a container.
#[derive(Debug, Clone)]
pub struct Report(pub Value);

impl Report {
    pub fn parse(text: &str) -> Result<Report> {
        let v: Value = serde_json::from_str(text.trim())
            .with_context(|| format!("helper report is not JSON: {:?}", short(text)))?;
        Ok(Report(v))
    }

    /// A line of /proc/self/status, e.g. "Uid" -> "0\t0\t0\t0".
    pub fn status(&self, key: &str) -> Result<String> {
        self.0["status"][key]
            .as_str()
            .map(String::from)
            .with_context(|| format!("report has no /proc/self/status field {key}"))
    }

    /// Whitespace-separated fields of a status line.
    pub fn status_fields(&self, key: &str) -> Result<Vec<String>> {
        Ok(self
            .status(key)?
            .split_whitespace()
            .map(String::from)
            .collect())
    }

    pub fn cap_set(&self, key: &str) -> Result<u64> {
        let v = self.status(key)?;
        u64::from_str_radix(&v, 16).with_context(|| format!("bad {key} value {v:?}"))
    }

    pub fn str(&self, key: &str) -> Result<String> {
        self.0[key].as_str().map(String::from).with_context(|| {
            format!(
                "report field {key} missing or not a string: {}",
                self.0[key]
            )
        })
    }

    pub fn mounts(&self) -> Result<Vec<MountInfo>> {
        Ok(host::parse_mountinfo(&self.str("mountinfo")?))
    }

    pub fn mount_at(&self, point: &str) -> Result<MountInfo> {
        self.mounts()?
            .into_iter()
            .rev() // the last mount on a path is the visible one
            .find(|m| m.mount_point == point)
            .with_context(|| format!("nothing is mounted at {point} in the container"))
    }

    /// Content of a file asked for with `--read`, or the errno name.
    pub fn read(&self, path: &str) -> Result<std::result::Result<String, String>> {
        let v = &self.0["read"][path];
        if let Some(s) = v.as_str() {
            return Ok(Ok(s.to_string()));
        }
        if let Some(e) = v["error"].as_str() {
            return Ok(Err(e.to_string()));
        }
        bail!("report has no --read result for {path}")
    }

    pub fn read_ok(&self, path: &str) -> Result<String> {
        match self.read(path)? {
            Ok(s) => Ok(s),
            Err(e) => bail!("reading {path} in the container failed: {e}"),
        }
    }

    /// "ok" or the errno name of a `--write` / `--open` probe.
    pub fn probe(&self, kind: &str, path: &str) -> Result<String> {
        self.0[kind][path]
            .as_str()
            .map(String::from)
            .with_context(|| format!("report has no --{kind} result for {path}"))
    }

    pub fn stat(&self, path: &str) -> Result<&Value> {
        let v = &self.0["stat"][path];
        if v.is_null() {
            bail!("report has no --stat result for {path}");
        }
        if let Some(e) = v["error"].as_str() {
            bail!("stat {path} in the container failed: {e}");
        }
        Ok(v)
    }

    pub fn rlimit(&self, name: &str) -> Result<(i64, i64)> {
        let v = &self.0["rlimits"][name];
        match (v[0].as_i64(), v[1].as_i64()) {
            (Some(s), Some(h)) => Ok((s, h)),
            _ => bail!("report has no rlimit {name}"),
        }
    }

    pub fn ns(&self, kind: &str) -> Result<String> {
        self.0["namespaces"][kind]
            .as_str()
            .map(String::from)
            .with_context(|| format!("report has no {kind} namespace"))
    }

    pub fn env(&self) -> Vec<String> {
        self.0["env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub fn short(s: &str) -> String {
    let s = s.trim();
    if s.len() > 300 {
        let mut end = 300;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    } else {
        s.to_string()
    }
}

/// Polls `f` until it returns Some or `timeout` passes.
pub fn wait_for<T>(
    timeout: Duration,
    mut f: impl FnMut() -> Result<Option<T>>,
) -> Result<Option<T>> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        if let Some(v) = f()? {
            return Ok(Some(v));
        }
        if start.elapsed() > timeout {
            return Ok(None);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// One runtime invocation being prepared.
pub struct Cmd<'a> {
    ctx: &'a Ctx,
    global: Vec<String>,
    args: Vec<String>,
    stdin: Option<Vec<u8>>,
    extra_fds: Vec<OwnedFd>,
    timeout: Duration,
    with_root: bool,
    cwd: Option<PathBuf>,
    envs: Vec<(String, String)>,
}

impl<'a> Cmd<'a> {
    /// Working directory of the runtime (default: the test directory).
    pub fn cwd(mut self, dir: &Path) -> Self {
        self.cwd = Some(dir.to_path_buf());
        self
    }
    /// An extra environment variable for the runtime process.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.to_string(), value.to_string()));
        self
    }
    pub fn global(mut self, args: &[&str]) -> Self {
        self.global.extend(args.iter().map(|s| s.to_string()));
        self
    }
    pub fn stdin(mut self, data: &[u8]) -> Self {
        self.stdin = Some(data.to_vec());
        self
    }
    /// Descriptors given to the runtime as fds 3, 4, ... (for --preserve-fds).
    pub fn extra_fds(mut self, fds: Vec<OwnedFd>) -> Self {
        self.extra_fds = fds;
        self
    }
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }
    /// Leaves out the suite's `--root` (to test the runtime's own handling).
    pub fn without_root(mut self) -> Self {
        self.with_root = false;
        self
    }

    fn build(&mut self, seq: u32) -> Result<(Command, String, PathBuf, PathBuf)> {
        let env = &self.ctx.env;
        let mut cmd = Command::new(&env.runtime);
        let mut full: Vec<String> = env.runtime_args.clone();
        if self.with_root {
            full.push("--root".into());
            full.push(self.ctx.state_root.display().to_string());
        }
        full.extend(self.global.iter().cloned());
        full.extend(self.args.iter().cloned());
        cmd.args(&full);
        let logs = self.ctx.dir.join("logs");
        std::fs::create_dir_all(&logs)?;
        let verb = self.args.first().cloned().unwrap_or_default();
        let out_path = logs.join(format!("{seq:03}-{verb}.out"));
        let err_path = logs.join(format!("{seq:03}-{verb}.err"));
        // Files, not pipes: a detached container inherits these and would
        // keep a pipe open long after the runtime returned.
        cmd.stdout(File::create(&out_path)?);
        cmd.stderr(File::create(&err_path)?);
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.current_dir(self.cwd.as_deref().unwrap_or(&self.ctx.dir));
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        if !self.extra_fds.is_empty() {
            let raw: Vec<i32> = self.extra_fds.iter().map(|f| f.as_raw_fd()).collect();
            // SAFETY: between fork and exec only async-signal-safe calls
            // (dup2, fcntl) run, on descriptors this process owns.
            unsafe {
                cmd.pre_exec(move || {
                    // Move the sources out of the way first so dup2 onto
                    // 3, 4, ... cannot clobber a source still to be copied.
                    let mut tmp = Vec::with_capacity(raw.len());
                    for &fd in &raw {
                        let t = libc::fcntl(fd, libc::F_DUPFD, 100);
                        if t < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        tmp.push(t);
                    }
                    for (i, &t) in tmp.iter().enumerate() {
                        if libc::dup2(t, 3 + i as i32) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        libc::close(t);
                    }
                    Ok(())
                });
            }
        }
        let line = format!("{} {}", env.runtime.display(), full.join(" "));
        Ok((cmd, line, out_path, err_path))
    }

    /// Runs the command to completion (or kills it at the timeout).
    pub fn run(mut self) -> Result<Out> {
        let seq = self.ctx.seq.fetch_add(1, Ordering::SeqCst);
        let (mut cmd, line, out_path, err_path) = self.build(seq)?;
        let start = Instant::now();
        let mut child = cmd.spawn().with_context(|| format!("cannot run {line}"))?;
        drop(std::mem::take(&mut self.extra_fds));
        if let Some(data) = self.stdin.take() {
            let mut si = child.stdin.take().context("no stdin pipe")?;
            // A runtime that never reads stdin must not hang the test.
            std::thread::spawn(move || {
                let _ = si.write_all(&data);
            });
        }
        let status = loop {
            if let Some(st) = child.try_wait()? {
                break st;
            }
            if start.elapsed() > self.timeout {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "`{line}` did not finish within {:?}; killed it",
                    self.timeout
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let elapsed = start.elapsed();
        Ok(Out {
            cmdline: line,
            code: status.code(),
            signal: status.signal(),
            stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
            stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
            elapsed,
        })
    }

    /// Starts the command and returns at once; the caller owns the child.
    /// stdout goes to the returned path.
    pub fn spawn(mut self) -> Result<(Child, PathBuf, PathBuf)> {
        let seq = self.ctx.seq.fetch_add(1, Ordering::SeqCst);
        let (mut cmd, line, out_path, err_path) = self.build(seq)?;
        let child = cmd.spawn().with_context(|| format!("cannot run {line}"))?;
        Ok((child, out_path, err_path))
    }
}

/// One test's world: its directory, runtime state root, containers and
/// whatever it must undo.
pub struct Ctx {
    pub env: Arc<Env>,
    pub name: String,
    pub dir: PathBuf,
    /// The runtime's `--root` for this test.
    pub state_root: PathBuf,
    seq: AtomicU32,
    containers: Vec<String>,
    cgroups: Vec<String>,
    rootfs_list: Vec<PathBuf>,
    children: Vec<Child>,
    host_mounts: Vec<PathBuf>,
}

impl Ctx {
    pub fn new(env: Arc<Env>, name: &str) -> Result<Ctx> {
        let dir = env.run_dir.join("t").join(name);
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        let state_root = dir.join("state");
        Ok(Ctx {
            env,
            name: name.to_string(),
            dir,
            state_root,
            seq: AtomicU32::new(0),
            containers: Vec::new(),
            cgroups: Vec::new(),
            rootfs_list: Vec::new(),
            children: Vec::new(),
            host_mounts: Vec::new(),
        })
    }

    pub fn cmd(&self, args: &[&str]) -> Cmd<'_> {
        Cmd {
            ctx: self,
            global: Vec::new(),
            args: args.iter().map(|s| s.to_string()).collect(),
            stdin: None,
            extra_fds: Vec::new(),
            timeout: COMMAND_TIMEOUT,
            with_root: true,
            cwd: None,
            envs: Vec::new(),
        }
    }

    /// Runs a runtime command and returns its output whatever the status.
    pub fn rt(&self, args: &[&str]) -> Result<Out> {
        self.cmd(args).run()
    }

    /// A fresh bundle with its own rootfs copy, a unique id and cgroup.
    pub fn bundle(&mut self) -> Result<Bundle> {
        let id = self.env.next_id();
        let dir = self.dir.join(&id);
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        let rootfs = dir.join("rootfs");
        crate::rootfs::copy(&self.env.base_rootfs, &rootfs)?;
        let out = dir.join("out");
        std::fs::create_dir_all(&out)?;
        // Anyone inside (user namespaces, non-root users) may write reports.
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777))?;
        let cgroup = format!("{}/{id}", self.env.cgroup_parent);
        let spec = crate::spec::base_spec(&out, &cgroup);
        self.track(&id, &cgroup, &rootfs);
        Ok(Bundle {
            id,
            dir,
            rootfs,
            out,
            spec,
        })
    }

    /// Registers a container for teardown (before it is created, so a
    /// failed or killed create is cleaned too).
    pub fn track(&mut self, id: &str, cgroup: &str, rootfs: &Path) {
        if !self.containers.iter().any(|c| c == id) {
            self.containers.push(id.to_string());
        }
        if !cgroup.is_empty() && !self.cgroups.iter().any(|c| c == cgroup) {
            self.cgroups.push(cgroup.to_string());
        }
        self.rootfs_list.push(rootfs.to_path_buf());
    }

    pub fn track_child(&mut self, child: Child) {
        self.children.push(child);
    }

    pub fn track_host_mount(&mut self, p: &Path) {
        self.host_mounts.push(p.to_path_buf());
    }

    /// `create` with the bundle's config; errors if it fails.
    pub fn create(&self, b: &Bundle) -> Result<Out> {
        self.create_with(b, &[])
    }

    pub fn create_with(&self, b: &Bundle, extra: &[&str]) -> Result<Out> {
        b.write_config()?;
        let bundle = b.dir.display().to_string();
        let mut args = vec!["create", "--bundle", bundle.as_str()];
        args.extend_from_slice(extra);
        args.push(&b.id);
        self.rt(&args)?.ok()
    }

    pub fn start(&self, id: &str) -> Result<Out> {
        self.rt(&["start", id])?.ok()
    }

    /// create + start.
    pub fn launch(&self, b: &Bundle) -> Result<()> {
        self.create(b)?;
        self.start(&b.id)?;
        Ok(())
    }

    pub fn state(&self, id: &str) -> Result<Value> {
        let out = self.rt(&["state", id])?.ok()?;
        serde_json::from_str(&out.stdout)
            .with_context(|| format!("`state {id}` printed no JSON: {:?}", short(&out.stdout)))
    }

    pub fn status(&self, id: &str) -> Result<String> {
        let st = self.state(id)?;
        st["status"]
            .as_str()
            .map(String::from)
            .with_context(|| format!("state of {id} has no status: {st}"))
    }

    pub fn pid(&self, id: &str) -> Result<i32> {
        let st = self.state(id)?;
        st["pid"]
            .as_i64()
            .map(|p| p as i32)
            .filter(|p| *p > 0)
            .with_context(|| format!("state of {id} has no pid: {st}"))
    }

    pub fn wait_status(&self, id: &str, want: &str) -> Result<()> {
        let mut last = String::new();
        let got = wait_for(WAIT, || {
            last = self.status(id)?;
            Ok((last == want).then_some(()))
        })?;
        if got.is_none() {
            bail!("container {id} stayed {last:?}, expected {want:?}");
        }
        Ok(())
    }

    /// Waits for /out/<name>.json of a bundle and parses it.
    pub fn wait_report(&self, b: &Bundle, name: &str) -> Result<Report> {
        let path = b.out.join(format!("{name}.json"));
        let text = wait_for(WAIT, || Ok(std::fs::read_to_string(&path).ok()))?;
        match text {
            Some(t) => Report::parse(&t),
            None => {
                let status = self.status(&b.id).unwrap_or_else(|e| format!("{e:#}"));
                bail!(
                    "the container never wrote {} (its status: {status})",
                    path.display()
                )
            }
        }
    }

    /// create + start a bundle whose process reports, and return the report.
    pub fn launch_report(&self, b: &Bundle) -> Result<Report> {
        self.launch(b)?;
        self.wait_report(b, "report")
    }

    /// Waits until a file in the bundle's out dir exists, returns its text.
    pub fn wait_out_file(
        &self,
        b: &Bundle,
        name: &str,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let path = b.out.join(name);
        let got = wait_for(WAIT, || {
            Ok(std::fs::read_to_string(&path).ok().filter(|t| pred(t)))
        })?;
        got.with_context(|| format!("{} never showed what was expected", path.display()))
    }

    /// Force-deletes every container, stops helpers, unmounts what the
    /// test mounted, and proves nothing of the test is left on the host.
    pub fn teardown(mut self) -> Vec<String> {
        let mut problems = Vec::new();
        for id in self.containers.clone() {
            match self.rt(&["delete", "--force", &id]) {
                Ok(_) => {}
                Err(e) => problems.push(format!("teardown: delete --force {id}: {e:#}")),
            }
        }
        for mut c in self.children.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
        for m in self.host_mounts.iter().rev() {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
        // What the runtime left behind is a finding, then cleaned.
        let leaked = wait_for(Duration::from_secs(2), || {
            let mut all = Vec::new();
            for cg in &self.cgroups {
                all.extend(host::processes_referencing(
                    &self.dir,
                    &self.rootfs_list,
                    cg,
                ));
            }
            if self.cgroups.is_empty() {
                all.extend(host::processes_referencing(
                    &self.dir,
                    &self.rootfs_list,
                    "",
                ));
            }
            all.sort_unstable();
            all.dedup();
            Ok(if all.is_empty() { Some(all) } else { None })
        })
        .ok()
        .flatten();
        if leaked.is_none() {
            let mut all = Vec::new();
            for cg in &self.cgroups {
                all.extend(host::processes_referencing(
                    &self.dir,
                    &self.rootfs_list,
                    cg,
                ));
            }
            all.sort_unstable();
            all.dedup();
            let desc: Vec<String> = all
                .iter()
                .map(|p| {
                    let cmd = std::fs::read(format!("/proc/{p}/cmdline"))
                        .map(|b| {
                            String::from_utf8_lossy(&b)
                                .replace('\0', " ")
                                .trim()
                                .to_string()
                        })
                        .unwrap_or_default();
                    format!("{p} ({cmd})")
                })
                .collect();
            if !desc.is_empty() {
                problems.push(format!(
                    "processes left after delete --force: {}",
                    desc.join(", ")
                ));
            }
            for p in all {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        for cg in &self.cgroups {
            let dirs = self.env.layout.existing_dirs(cg);
            if !dirs.is_empty() {
                problems.push(format!(
                    "cgroup left after delete --force: {}",
                    dirs.iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                self.env.layout.remove_tree(cg);
            }
        }
        if let Ok(mounts) = host::host_mounts() {
            let mut left: Vec<&MountInfo> = mounts
                .iter()
                .filter(|m| Path::new(&m.mount_point).starts_with(&self.dir))
                .collect();
            if !left.is_empty() {
                problems.push(format!(
                    "host mounts left under the test directory: {}",
                    left.iter()
                        .map(|m| m.mount_point.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                left.reverse();
                for m in left {
                    let _ = nix::mount::umount2(
                        m.mount_point.as_str(),
                        nix::mount::MntFlags::MNT_DETACH,
                    );
                }
            }
        }
        // State directories the runtime kept for deleted containers.
        for id in &self.containers {
            let p = self.state_root.join(id);
            if p.exists() {
                problems.push(format!(
                    "runtime state left after delete --force: {}",
                    p.display()
                ));
            }
        }
        if !self.env.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        problems
    }
}

/// Namespace inodes of the suite itself (the host's).
pub fn host_namespaces() -> BTreeMap<String, String> {
    host::namespaces_of("self")
}
