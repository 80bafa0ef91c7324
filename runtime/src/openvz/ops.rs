//! vzctl's operations. The `vzctl` binary parses arguments and prints; these decide.

use std::time::{Duration, Instant};

use super::config::ConfigFile;
use super::ct::{Ct, CtStatus};
use super::ctid::{validate_name, Ctid};
use super::disk::{self, DiskRequest};
use super::env::VzEnv;
use super::error::{ExitCode, VzError, VzResult};
use super::init::{self, StopMethod};
use super::lock::CtLock;
use super::{private, rootfs, supervisor};
use crate::container::{delete, exec, kill};
use crate::state::Status;

// ---------------------------------------------------------------- create / destroy

#[derive(Debug, Default, Clone)]
pub struct CreateOptions {
    /// NAME[:VERSION] of a vzbuild template in the template cache.
    pub ostemplate: Option<String>,
    /// A sample config (`ve-<SAMPLE>.conf-sample`).
    pub config: Option<String>,
    pub hostname: Option<String>,
    pub name: Option<String>,
    pub private: Option<std::path::PathBuf>,
    pub root: Option<std::path::PathBuf>,
    /// VE_LAYOUT of the new container (simfs or ploop; default: the sample's, vz.conf's).
    pub layout: Option<String>,
    /// --diskspace, --diskinodes, ... (over the sample's values).
    pub disk: DiskRequest,
}

pub fn create(env: &VzEnv, ctid: Ctid, opts: &CreateOptions) -> VzResult<()> {
    let _lock = CtLock::acquire(env, ctid, false)?;
    let conf_path = env.conf_path(ctid);
    if conf_path.exists() {
        return Err(VzError::new(
            ExitCode::PrivateExists,
            format!(
                "Container {ctid} already exists ({} is there)",
                conf_path.display()
            ),
        ));
    }
    let ostemplate = opts
        .ostemplate
        .clone()
        .or_else(|| env.get("DEF_OSTEMPLATE"))
        .ok_or_else(|| {
            VzError::new(
                ExitCode::NoOsTemplate,
                "OS template is not specified (--ostemplate)",
            )
        })?;
    if let Some(name) = &opts.name {
        validate_name(name)?;
        if env.names_dir().join(name).symlink_metadata().is_ok() {
            return Err(VzError::new(
                ExitCode::InvalidValue,
                format!("Name {name} is already used by another container"),
            ));
        }
    }
    // The config starts from the sample (vz.conf's CONFIGFILE unless --config).
    let mut conf = match opts.config.clone().or_else(|| env.get("CONFIGFILE")) {
        Some(sample) => {
            let path = env.sample_path(&sample);
            ConfigFile::load(&path).map_err(|e| {
                VzError::new(ExitCode::NoCtConfig, format!("sample config {sample}: {e}"))
            })?
        }
        None => ConfigFile::default(),
    };
    let private_dir = opts
        .private
        .clone()
        .unwrap_or_else(|| env.default_private(ctid));
    let root_dir = opts.root.clone().unwrap_or_else(|| env.default_root(ctid));
    if private_dir.exists() {
        return Err(VzError::new(
            ExitCode::PrivateExists,
            format!("Private area {} already exists", private_dir.display()),
        ));
    }
    let cache = vzbuild::TemplateCache::new(env.template_cache());
    let template = cache.resolve(&ostemplate).map_err(|e| match e.kind() {
        vzbuild::ErrorKind::NotFound => VzError::new(
            ExitCode::TemplateNotFound,
            format!(
                "OS template {ostemplate} not found in {}: {e}",
                env.template_cache().display()
            ),
        ),
        _ => VzError::new(
            ExitCode::CreatePrivateFailed,
            format!("OS template {ostemplate}: {e}"),
        ),
    })?;
    conf.set(
        "OSTEMPLATE",
        &format!("{}:{}", template.name, template.version),
    );
    conf.set("VE_ROOT", &root_dir.display().to_string());
    conf.set("VE_PRIVATE", &private_dir.display().to_string());
    if let Some(h) = &opts.hostname {
        conf.set("HOSTNAME", h);
    }
    if let Some(n) = &opts.name {
        conf.set("NAME", n);
    }
    disk::prepare_create(
        env,
        ctid,
        &mut conf,
        opts.layout.as_deref(),
        &opts.disk,
        &private_dir,
    )?;
    // The config first: a create that dies half-way leaves a container `vzctl destroy`
    // removes (loop devices included).
    let saved = (|| -> VzResult<()> {
        std::fs::create_dir_all(env.conf_dir()).map_err(|e| {
            VzError::new(
                ExitCode::ConfigSaveFailed,
                format!("create {}: {e}", env.conf_dir().display()),
            )
        })?;
        conf.save(&conf_path)
            .map_err(|e| VzError::new(ExitCode::ConfigSaveFailed, e.to_string()))?;
        if let Some(n) = &opts.name {
            link_name(env, ctid, n)?;
        }
        Ok(())
    })();
    let made = saved.and_then(|_| {
        disk::create_private(env, ctid, &conf, &template.path, &private_dir, &root_dir)
    });
    if let Err(e) = made {
        let _ = std::fs::remove_file(&conf_path);
        if let Some(n) = &opts.name {
            unlink_name(env, n);
        }
        return Err(e);
    }
    Ok(())
}

fn link_name(env: &VzEnv, ctid: Ctid, name: &str) -> VzResult<()> {
    let dir = env.names_dir();
    std::fs::create_dir_all(&dir)
        .map_err(|e| VzError::new(ExitCode::SystemError, e.to_string()))?;
    let link = dir.join(name);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(format!("../conf/{ctid}.conf"), &link)
        .map_err(|e| VzError::new(ExitCode::SystemError, format!("name {name}: {e}")))
}

fn unlink_name(env: &VzEnv, name: &str) {
    let _ = std::fs::remove_file(env.names_dir().join(name));
}

pub fn destroy(env: &VzEnv, ctid: Ctid) -> VzResult<()> {
    let _lock = CtLock::acquire(env, ctid, false)?;
    let ct = Ct::load(env, ctid)?;
    ct.require_exists()?;
    if ct.is_running(env) {
        return Err(VzError::new(
            ExitCode::AlreadyRunning,
            format!("Container {ctid} is running: stop it first"),
        ));
    }
    let root = ct.root(env);
    if ct.is_mounted(env) {
        private::umount_root(&root)?;
    }
    // A runtime state left by a crash (the container is not running).
    let _ = delete::delete(&env.runtime(), &ctid.to_string(), true);
    disk::remove_private(ctid, &ct.private(env), &root)?;
    let _ = std::fs::remove_dir(&root);
    if let Some(name) = ct.name() {
        unlink_name(env, name);
    }
    for suffix in ["console", "console.1", "last", "log"] {
        let _ = std::fs::remove_file(supervisor::dir(env).join(format!("{ctid}.{suffix}")));
    }
    let _ = std::fs::remove_dir_all(env.bundle_dir(ctid));
    std::fs::remove_file(env.conf_path(ctid))
        .map_err(|e| VzError::new(ExitCode::DeleteFailed, format!("remove config: {e}")))
}

// ---------------------------------------------------------------- start / stop

pub fn start(env: &VzEnv, ctid: Ctid, wait: bool) -> VzResult<i32> {
    let lock = CtLock::acquire(env, ctid, false)?;
    let ct = Ct::load(env, ctid)?;
    ct.require_exists()?;
    if ct.is_running(env) {
        return Err(VzError::new(
            ExitCode::AlreadyRunning,
            format!("Container {ctid} is already running"),
        ));
    }
    if !ct.private(env).is_dir() {
        return Err(VzError::new(
            ExitCode::PrivateNotFound,
            format!(
                "Container {ctid} private area {} does not exist",
                ct.private(env).display()
            ),
        ));
    }
    // A bad resource value fails here, with vzctl's message, not in the supervisor.
    let resources = super::resources::Settings::from_config(&ct.conf)?;
    if !resources.unenforceable.is_empty() {
        eprintln!(
            "Warning: container {ctid}: ignoring {}: upstream kernels cannot enforce them (docs/RESOURCES.md)",
            resources.unenforceable.join(", ")
        );
    }
    // Leftovers of a container that died without its supervisor.
    let _ = delete::delete(&env.runtime(), &ctid.to_string(), true);
    supervisor::clear_stop(env, ctid);
    let pid = supervisor::spawn(env, ctid)?;
    drop(lock);
    if wait {
        wait_for_boot(env, &ct)?;
    }
    Ok(pid)
}

/// `--wait`: returns when the init reports its boot finished (systemd), or at once for
/// inits that do not tell.
fn wait_for_boot(env: &VzEnv, ct: &Ct) -> VzResult<()> {
    let root = ct.root(env);
    if init::detect(&root) != Some(init::InitKind::Systemd) {
        return Ok(());
    }
    // Until systemd has opened its private socket, systemctl cannot even ask.
    let deadline = Instant::now() + Duration::from_secs(ct.stop_timeout(env).max(60));
    loop {
        let (answer, _) = run_in(
            env,
            ct.ctid,
            &["systemctl", "is-system-running", "--wait"],
            true,
        )?;
        match answer.trim() {
            "running" | "degraded" => return Ok(()),
            "" if Instant::now() < deadline && ct.is_running(env) => {
                std::thread::sleep(Duration::from_millis(100));
            }
            other => {
                return Err(VzError::new(
                    ExitCode::StartFailed,
                    format!(
                        "Container {} did not finish booting: systemd says {other:?}",
                        ct.ctid
                    ),
                ))
            }
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct StopOptions {
    /// Kill at once instead of asking the init to shut down.
    pub fast: bool,
}

pub fn stop(env: &VzEnv, ctid: Ctid, opts: StopOptions) -> VzResult<()> {
    let _lock = CtLock::acquire(env, ctid, false)?;
    let ct = Ct::load(env, ctid)?;
    ct.require_exists()?;
    if !ct.is_running(env) {
        return Err(VzError::new(
            ExitCode::NotRunning,
            format!("Container {ctid} is not running"),
        ));
    }
    supervisor::request_stop(env, ctid)?;
    let result = stop_running(env, &ct, opts);
    supervisor::clear_stop(env, ctid);
    result
}

fn stop_running(env: &VzEnv, ct: &Ct, opts: StopOptions) -> VzResult<()> {
    let ctid = ct.ctid;
    let rt = env.runtime();
    let id = ctid.to_string();
    let mut graceful = !opts.fast;
    if graceful {
        let method = init::detect(&ct.root(env))
            .unwrap_or(init::InitKind::Other)
            .stop_method();
        let asked = match method {
            StopMethod::Signal(sig) => kill::kill(&rt, &id, sig, false).map_err(VzError::from),
            StopMethod::Command(argv) => {
                let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
                run_in(env, ctid, &refs, false).map(|_| ())
            }
        };
        if let Err(e) = asked {
            eprintln!("Unable to stop container {ctid} gracefully ({e}): killing it");
            graceful = false;
        }
    }
    let timeout = Duration::from_secs(ct.stop_timeout(env));
    if graceful && !wait_until(timeout, || !ct.is_running(env)) {
        eprintln!(
            "Container {ctid} did not stop within {}s: killing it",
            timeout.as_secs()
        );
        graceful = false;
    }
    if !graceful {
        let _ = kill::kill(&rt, &id, libc::SIGKILL, true);
        if !wait_until(Duration::from_secs(10), || !ct.is_running(env)) {
            return Err(VzError::new(
                ExitCode::StopFailed,
                format!("Unable to stop container {ctid}"),
            ));
        }
    }
    // The supervisor deletes the container and unmounts the root; without one, we do.
    let supervised = wait_until(Duration::from_secs(20), || {
        supervisor::pid(env, ctid).is_none()
    });
    if !supervised || ct.runtime_state(env).is_some() {
        delete::delete(&rt, &id, true)
            .map_err(|e| VzError::runtime(ExitCode::StopFailed, "delete", e))?;
    }
    if ct.is_mounted(env) {
        private::umount_root(&ct.root(env))?;
    }
    Ok(())
}

fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

pub fn restart(env: &VzEnv, ctid: Ctid, wait: bool) -> VzResult<i32> {
    let ct = Ct::load(env, ctid)?;
    if ct.is_running(env) {
        stop(env, ctid, StopOptions::default())?;
    }
    start(env, ctid, wait)
}

// ---------------------------------------------------------------- mount / status

pub fn mount(env: &VzEnv, ctid: Ctid) -> VzResult<()> {
    let _lock = CtLock::acquire(env, ctid, false)?;
    let ct = Ct::load(env, ctid)?;
    ct.require_exists()?;
    if ct.is_mounted(env) {
        return Err(VzError::new(
            ExitCode::AlreadyMounted,
            format!("Container {ctid} is already mounted"),
        ));
    }
    private::mount_ct(env, &ct)
}

pub fn umount(env: &VzEnv, ctid: Ctid) -> VzResult<()> {
    let _lock = CtLock::acquire(env, ctid, false)?;
    let ct = Ct::load(env, ctid)?;
    ct.require_exists()?;
    if ct.is_running(env) {
        return Err(VzError::new(
            ExitCode::AlreadyRunning,
            format!("Container {ctid} is running: stop it first"),
        ));
    }
    if !ct.is_mounted(env) {
        return Err(VzError::new(
            ExitCode::NotMounted,
            format!("Container {ctid} is not mounted"),
        ));
    }
    private::umount_root(&ct.root(env))
}

pub fn status(env: &VzEnv, ctid: Ctid) -> VzResult<CtStatus> {
    Ok(Ct::load(env, ctid)?.status(env))
}

// ---------------------------------------------------------------- exec / enter

/// Runs `argv` in the running container with its stdio; returns the exit code.
pub fn exec_argv(env: &VzEnv, ctid: Ctid, argv: Vec<String>, tty: bool) -> VzResult<i32> {
    let ct = Ct::load(env, ctid)?;
    ct.require_exists()?;
    if !ct.is_running(env) {
        return Err(VzError::new(
            ExitCode::NotRunning,
            format!("Container {ctid} is not running"),
        ));
    }
    let term = std::env::var("TERM").unwrap_or_else(|_| "xterm".into());
    let opts = exec::ExecOptions {
        args: argv,
        env: vec![
            "HOME=/root".into(),
            format!("TERM={term}"),
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ],
        cwd: Some("/".into()),
        tty,
        ..Default::default()
    };
    exec::exec(&env.runtime(), &ctid.to_string(), &opts).map_err(|e| {
        VzError::runtime(
            ExitCode::CommandFailed,
            &format!("exec in container {ctid}"),
            e,
        )
    })
}

/// vzctl's exec: the words form one shell command; `-` reads the commands from stdin.
pub fn shell_argv(words: &[String]) -> Vec<String> {
    if words.len() == 1 && words[0] == "-" {
        vec!["/bin/sh".into()]
    } else {
        vec!["/bin/sh".into(), "-c".into(), words.join(" ")]
    }
}

/// An interactive login shell on a terminal.
pub fn enter(env: &VzEnv, ctid: Ctid) -> VzResult<i32> {
    let ct = Ct::load(env, ctid)?;
    let shell = ["/bin/bash", "/bin/sh"]
        .into_iter()
        .find(|s| init::resolve_in_root(&ct.root(env), s).is_some())
        .unwrap_or("/bin/sh");
    exec_argv(env, ctid, vec![shell.into(), "-l".into()], true)
}

/// Runs a command in the container capturing its stdout (for vzctl's own use).
fn run_in(env: &VzEnv, ctid: Ctid, argv: &[&str], capture: bool) -> VzResult<(String, i32)> {
    let exe =
        std::env::current_exe().map_err(|e| VzError::new(ExitCode::SystemError, e.to_string()))?;
    let mut command = std::process::Command::new(exe);
    command
        .env(super::env::ETC_ENV, &env.etc)
        .arg("exec2")
        .arg(ctid.to_string())
        .args(argv);
    command.stdin(std::process::Stdio::null());
    if !capture {
        command.stdout(std::process::Stdio::null());
    }
    let out = command
        .output()
        .map_err(|e| VzError::new(ExitCode::SystemError, e.to_string()))?;
    Ok((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code().unwrap_or(1),
    ))
}

// ---------------------------------------------------------------- set

#[derive(Debug, Default, Clone)]
pub struct SetOptions {
    pub hostname: Option<String>,
    pub name: Option<String>,
    pub nameservers: Vec<String>,
    pub searchdomains: Vec<String>,
    pub onboot: Option<bool>,
    /// --diskspace, --diskinodes, --quotatime, --quotaugidlimit
    pub disk: DiskRequest,
    /// Resource parameters as (ctid.conf key, value) (see `resources::option_to_config`).
    pub resources: Vec<(String, String)>,
    pub save: bool,
}

pub fn set(env: &VzEnv, ctid: Ctid, opts: &SetOptions) -> VzResult<()> {
    let _lock = CtLock::acquire(env, ctid, false)?;
    let mut ct = Ct::load(env, ctid)?;
    ct.require_exists()?;
    let running = ct.is_running(env);
    if !running && !opts.save {
        return Err(VzError::new(
            ExitCode::NotRunning,
            format!("Container {ctid} is not running: use --save to change its config"),
        ));
    }
    for ns in &opts.nameservers {
        if ns.parse::<std::net::IpAddr>().is_err() {
            return Err(VzError::new(
                ExitCode::InvalidValue,
                format!("invalid nameserver {ns:?}"),
            ));
        }
    }
    if let Some(name) = &opts.name {
        validate_name(name)?;
        if let Ok(other) = Ctid::resolve(name, &env.etc) {
            if other != ctid {
                return Err(VzError::new(
                    ExitCode::InvalidValue,
                    format!("Name {name} is used by container {other}"),
                ));
            }
        }
    }
    // Disk limits are checked first, then the other resources are checked and applied
    // (live), then the disk limits are applied: bad values change nothing.
    let disk_plan = disk::plan(env, &ct, &opts.disk)?;
    super::resources::set(env, &mut ct, &opts.resources, running, opts.save)?;
    if let Some(plan) = &disk_plan {
        disk::apply(env, &ct, plan)?;
    }
    // Files inside the container, the way the distributions read them. Written whenever
    // the root is reachable (running or mounted); otherwise at the next start.
    let root = ct.root(env);
    let mounted = ct.is_mounted(env);
    if mounted {
        write_guest_files(&root, opts, &ct.conf)?;
    }
    if running {
        if let Some(h) = &opts.hostname {
            let (_, code) = run_in(env, ctid, &["hostname", h], false)?;
            if code != 0 {
                eprintln!("warning: could not set the hostname live (exit {code}); it applies at the next start");
            }
        }
    }
    if opts.save {
        if let Some(plan) = &disk_plan {
            plan.after.save(&mut ct.conf);
        }
        if let Some(h) = &opts.hostname {
            ct.conf.set("HOSTNAME", h);
        }
        if !opts.nameservers.is_empty() {
            ct.conf.set("NAMESERVER", &opts.nameservers.join(" "));
        }
        if !opts.searchdomains.is_empty() {
            ct.conf.set("SEARCHDOMAIN", &opts.searchdomains.join(" "));
        }
        if let Some(on) = opts.onboot {
            ct.conf.set("ONBOOT", if on { "yes" } else { "no" });
        }
        if let Some(name) = &opts.name {
            if let Some(old) = ct.name() {
                unlink_name(env, old);
            }
            ct.conf.set("NAME", name);
            link_name(env, ctid, name)?;
        }
        ct.conf
            .save(&env.conf_path(ctid))
            .map_err(|e| VzError::new(ExitCode::ConfigSaveFailed, e.to_string()))?;
    }
    Ok(())
}

fn write_guest_files(root: &std::path::Path, opts: &SetOptions, conf: &ConfigFile) -> VzResult<()> {
    let fail = |what: &str, e: std::io::Error| {
        VzError::new(
            ExitCode::SystemError,
            format!("write {what} in the container: {e}"),
        )
    };
    if let Some(h) = &opts.hostname {
        rootfs::write(root, "/etc/hostname", &format!("{h}\n"), 0o644)
            .map_err(|e| fail("/etc/hostname", e))?;
        let hosts = rootfs::read(root, "/etc/hosts").unwrap_or_default();
        rootfs::write(root, "/etc/hosts", &hosts_with(&hosts, h), 0o644)
            .map_err(|e| fail("/etc/hosts", e))?;
    }
    if !opts.nameservers.is_empty() || !opts.searchdomains.is_empty() {
        let nameservers = if opts.nameservers.is_empty() {
            conf.get("NAMESERVER")
                .unwrap_or("")
                .split_whitespace()
                .map(String::from)
                .collect()
        } else {
            opts.nameservers.clone()
        };
        let search = if opts.searchdomains.is_empty() {
            conf.get("SEARCHDOMAIN")
                .unwrap_or("")
                .split_whitespace()
                .map(String::from)
                .collect()
        } else {
            opts.searchdomains.clone()
        };
        rootfs::write(
            root,
            "/etc/resolv.conf",
            &resolv_conf(&nameservers, &search),
            0o644,
        )
        .map_err(|e| fail("/etc/resolv.conf", e))?;
    }
    Ok(())
}

/// /etc/hosts with the container's name on 127.0.1.1 (Debian's convention), other lines kept.
pub fn hosts_with(current: &str, hostname: &str) -> String {
    let short = hostname.split('.').next().unwrap_or(hostname);
    let entry = if short == hostname {
        format!("127.0.1.1\t{hostname}")
    } else {
        format!("127.0.1.1\t{hostname} {short}")
    };
    let mut lines: Vec<String> = current
        .lines()
        .filter(|l| !l.starts_with("127.0.1.1"))
        .map(String::from)
        .collect();
    if !lines.iter().any(|l| l.starts_with("127.0.0.1")) {
        lines.insert(0, "127.0.0.1\tlocalhost".into());
    }
    lines.push(entry);
    lines.join("\n") + "\n"
}

pub fn resolv_conf(nameservers: &[String], search: &[String]) -> String {
    let mut out = String::from("# written by vzctl\n");
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    for ns in nameservers {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    out
}

// ---------------------------------------------------------------- beancounters

/// `vzctl ubc`: the beancounter table of `ctids` (every running container when empty).
pub fn beancounter_table(env: &VzEnv, ctids: &[Ctid]) -> VzResult<String> {
    let explicit = !ctids.is_empty();
    let ids = if explicit {
        ctids.to_vec()
    } else {
        env.list_ctids()
    };
    let mut rows = Vec::new();
    for ctid in ids {
        let ct = Ct::load(env, ctid)?;
        if explicit {
            ct.require_exists()?;
        }
        match super::beancounters::snapshot(env, &ct) {
            Some(counters) => rows.push((ctid, counters)),
            None if explicit => {
                return Err(VzError::new(
                    ExitCode::NotRunning,
                    format!("Container {ctid} is not running"),
                ))
            }
            None => {}
        }
    }
    Ok(super::beancounters::format_table(&rows))
}

// ---------------------------------------------------------------- onboot

/// Starts every container with ONBOOT="yes" that is not running; returns the failures.
pub fn start_onboot(env: &VzEnv) -> Vec<(Ctid, VzError)> {
    let mut failures = Vec::new();
    for ctid in env.list_ctids() {
        let Ok(ct) = Ct::load(env, ctid) else {
            continue;
        };
        if ct.conf.get("ONBOOT") != Some("yes") || ct.is_running(env) {
            continue;
        }
        if let Err(e) = start(env, ctid, false) {
            failures.push((ctid, e));
        }
    }
    failures
}

/// Stops every running container (host shutdown); returns the failures.
pub fn stop_all(env: &VzEnv) -> Vec<(Ctid, VzError)> {
    let mut failures = Vec::new();
    for ctid in env.list_ctids() {
        let Ok(ct) = Ct::load(env, ctid) else {
            continue;
        };
        if !ct.is_running(env) {
            continue;
        }
        if let Err(e) = stop(env, ctid, StopOptions::default()) {
            failures.push((ctid, e));
        }
    }
    failures
}

/// Whether the runtime state says running (for vzlist).
pub fn runtime_status(env: &VzEnv, ctid: Ctid) -> Option<Status> {
    Ct::load(env, ctid)
        .ok()?
        .runtime_state(env)
        .map(|s| s.status())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_entries() {
        let h = hosts_with(
            "127.0.0.1\tlocalhost\n127.0.1.1\told\n::1 ip6-localhost\n",
            "web.example.com",
        );
        assert_eq!(
            h,
            "127.0.0.1\tlocalhost\n::1 ip6-localhost\n127.0.1.1\tweb.example.com web\n"
        );
        assert_eq!(
            hosts_with("", "ct"),
            "127.0.0.1\tlocalhost\n127.0.1.1\tct\n"
        );
    }

    #[test]
    fn resolv() {
        assert_eq!(
            resolv_conf(
                &["10.0.0.1".into(), "10.0.0.2".into()],
                &["example.com".into()]
            ),
            "# written by vzctl\nsearch example.com\nnameserver 10.0.0.1\nnameserver 10.0.0.2\n"
        );
    }

    #[test]
    fn exec_words() {
        assert_eq!(shell_argv(&["-".into()]), vec!["/bin/sh"]);
        assert_eq!(
            shell_argv(&["ls".into(), "-l".into()]),
            vec!["/bin/sh", "-c", "ls -l"]
        );
    }
}
