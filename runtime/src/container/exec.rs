//! `exec`: a new process in the namespaces and cgroup of a running container, built from
//! the container's own process settings (or a process.json), like runc.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use libcontainer::notify_socket::{NotifyListener, NotifySocket};
use libcontainer::process::args::{ContainerArgs, ContainerType};
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::user_ns::UserNamespaceConfig;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType, Process, Spec};

use crate::container::create::write_pid_file;
use crate::container::load_spec;
use crate::error::{chain_message, Error, IoContext, Result};
use crate::foreground::{self, SignalCapture};
use crate::state::{ContainerState, Status};
use crate::store::{ContainerDir, LockMode};
use crate::terminal::{self, ConsoleListener};
use crate::{cgroups, Runtime};

#[derive(Debug, Default, Clone)]
pub struct ExecOptions {
    /// process.json; when given it is the whole process (the flags below are ignored).
    pub process: Option<PathBuf>,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: Option<PathBuf>,
    /// "UID" or "UID:GID".
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub tty: bool,
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub no_new_privs: bool,
    pub caps: Vec<String>,
    pub apparmor: Option<String>,
    pub preserve_fds: i32,
    pub ignore_paused: bool,
    pub sub_cgroup: Option<String>,
}

/// Runs the process; returns its exit code (0 when detached).
pub fn exec(rt: &Runtime, id: &str, opts: &ExecOptions) -> Result<i32> {
    let dir = ContainerDir::new(&rt.root, id)?;
    // Foreground: capture signals before anything is spawned (see `foreground`).
    let capture = if opts.detach {
        None
    } else {
        foreground::become_subreaper()?;
        Some(SignalCapture::install()?)
    };

    let lock = dir.lock(LockMode::Shared)?;
    let state = ContainerState::load(&dir)?;
    let status = state.status();
    match status {
        Status::Running => {}
        Status::Paused if opts.ignore_paused => {}
        _ => {
            return Err(Error::WrongState {
                id: id.to_string(),
                status,
                action: "exec in it (it must be running)",
            })
        }
    }
    let init_pid = state.pid.expect("a running container has a pid");
    let spec = load_spec(&dir)?;
    let process = build_process(&spec, opts)?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal && opts.detach && opts.console_socket.is_none() {
        return Err(Error::InvalidArgument(
            "a detached exec with a terminal needs --console-socket".into(),
        ));
    }
    if !terminal && opts.console_socket.is_some() {
        return Err(Error::InvalidArgument(
            "--console-socket given but the process has no terminal (use --tty)".into(),
        ));
    }
    let tenant_spec = tenant_spec(spec, process, init_pid)?;

    let token = format!("{:x}", std::process::id());
    let own_console = if terminal && opts.console_socket.is_none() {
        Some(ConsoleListener::bind(terminal::private_socket_path(
            &dir.path, "exec-tty",
        ))?)
    } else {
        None
    };
    let console_path = opts
        .console_socket
        .clone()
        .or_else(|| own_console.as_ref().map(|c| c.path.clone()));
    let notify_path = dir.file(&format!("exec-{token}.sock"));
    let tty_link = format!("exec-tty-{token}");
    let cleanup = |dir: &ContainerDir| {
        let _ = std::fs::remove_file(&notify_path);
        let _ = std::fs::remove_file(dir.file(&tty_link));
    };

    let spawned = (|| {
        let notify_listener = NotifyListener::new(&notify_path)
            .map_err(|e| Error::from_chain("create exec start socket", &e))?;
        let console = match &console_path {
            Some(p) => Some(
                libcontainer::tty::setup_console_socket(&dir.path, p, &tty_link).map_err(|e| {
                    Error::from_chain(&format!("console socket {}", p.display()), &e)
                })?,
            ),
            None => None,
        };
        let (ready_read, ready_write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "pipe".to_string())?;
        let cgroup_path = match &opts.sub_cgroup {
            Some(sub) => sub_cgroup(&state.cgroup_path, sub)?,
            None => state.cgroup_path.clone(),
        };
        let user_ns_config = UserNamespaceConfig::new(&tenant_spec)
            .map_err(|e| Error::from_chain("user namespace", &e))?;
        crate::container::create::prepare_spawner(&tenant_spec)?;
        let args = ContainerArgs {
            container_type: ContainerType::TenantContainer {
                exec_notify_fd: ready_write.as_raw_fd(),
            },
            syscall: SyscallType::default(),
            spec: Rc::new(tenant_spec),
            rootfs: state.rootfs.clone(),
            console_socket: console.as_ref().map(|c| c.as_raw_fd()),
            notify_listener,
            preserve_fds: opts.preserve_fds,
            // libcontainer needs the state when the spec has seccomp (its listener metadata).
            container: Some(libcontainer::container::Container {
                state: crate::container::hooks::to_libcontainer(&state, Status::Running),
                root: dir.path.clone(),
            }),
            user_ns_config,
            cgroup_config: cgroups::config(&cgroup_path, state.systemd_cgroup, id),
            detached: opts.detach,
            executor: crate::executor::boxed(Some(id.to_string())),
            no_pivot: false,
            stdin: None,
            stdout: None,
            stderr: None,
            as_sibling: false,
            pid_file: None,
        };
        let membership = if state.systemd_cgroup {
            None
        } else {
            Some(cgroups::join_extra_hierarchies(&cgroup_path)?)
        };
        let pid = libcontainer::process::container_main_process::container_main_process(&args)
            .map_err(|e| Error::Container(chain_message(&e)));
        drop(membership);
        let pid = pid?.as_raw();
        NotifySocket::new(&notify_path)
            .notify_container_start()
            .map_err(|e| Error::from_chain("start the exec process", &e))?;
        // The process writes an error here if it cannot exec; EOF means it did.
        drop(ready_write);
        let mut failure = Vec::new();
        let mut file = std::fs::File::from(ready_read);
        let _ = std::io::Read::read_to_end(&mut file, &mut failure);
        if !failure.is_empty() {
            return Err(Error::Container(format!(
                "exec failed: {}",
                String::from_utf8_lossy(&failure).trim()
            )));
        }
        Ok(pid)
    })();
    cleanup(&dir);
    // Never hold the container's lock while the process runs: `delete --force` must work.
    drop(lock);
    let pid = spawned?;
    if let Some(pid_file) = &opts.pid_file {
        write_pid_file(pid_file, pid)?;
    }
    match capture {
        None => Ok(0),
        Some(capture) => {
            let master = own_console
                .as_ref()
                .map(|c| c.receive_master())
                .transpose()?;
            foreground::wait(pid, &capture, master)
        }
    }
}

/// The process to run: process.json, or the container's process with the flags applied
/// (runc's rules: args replaced, env appended, cwd/user/caps/no-new-privs overridden).
pub fn build_process(spec: &Spec, opts: &ExecOptions) -> Result<Process> {
    if let Some(path) = &opts.process {
        let data = std::fs::read(path).ctx(|| format!("read process file {}", path.display()))?;
        let mut value: serde_json::Value =
            serde_json::from_slice(&data).map_err(|e| Error::InvalidConfig {
                path: path.clone(),
                reason: format!("invalid JSON: {e}"),
            })?;
        if let Some(obj) = value.as_object_mut() {
            obj.entry("user")
                .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
        }
        let process: Process =
            serde_path_to_error::deserialize(value).map_err(|e| Error::InvalidConfig {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        validate_process(&process).map_err(|reason| Error::InvalidConfig {
            path: path.clone(),
            reason,
        })?;
        return Ok(process);
    }
    let mut process = spec.process().clone().unwrap_or_default();
    if opts.args.is_empty() {
        return Err(Error::InvalidArgument(
            "exec needs a command (or --process)".into(),
        ));
    }
    process.set_args(Some(opts.args.clone()));
    let mut env = process.env().clone().unwrap_or_default();
    for entry in &opts.env {
        if !entry.contains('=') {
            return Err(Error::InvalidArgument(format!(
                "--env {entry:?} is not NAME=VALUE"
            )));
        }
        env.push(entry.clone());
    }
    process.set_env(Some(env));
    if let Some(cwd) = &opts.cwd {
        process.set_cwd(cwd.clone());
    }
    if let Some(profile) = &opts.apparmor {
        process.set_apparmor_profile(Some(profile.clone()));
    }
    process.set_terminal(Some(opts.tty));
    if opts.no_new_privs {
        process.set_no_new_privileges(Some(true));
    }
    let mut user = process.user().clone();
    if let Some(text) = &opts.user {
        let (uid, gid) = parse_user(text)?;
        user.set_uid(uid);
        if let Some(gid) = gid {
            user.set_gid(gid);
        }
    }
    if !opts.additional_gids.is_empty() {
        let mut gids = user.additional_gids().clone().unwrap_or_default();
        gids.extend(&opts.additional_gids);
        user.set_additional_gids(Some(gids));
    }
    process.set_user(user);
    if !opts.caps.is_empty() {
        let mut caps = process.capabilities().clone().unwrap_or_default();
        for name in &opts.caps {
            let cap = parse_capability(name)?;
            let add = |set: Option<oci_spec::runtime::Capabilities>| {
                let mut set = set.unwrap_or_default();
                set.insert(cap);
                Some(set)
            };
            caps.set_bounding(add(caps.bounding().clone()));
            caps.set_effective(add(caps.effective().clone()));
            caps.set_permitted(add(caps.permitted().clone()));
        }
        process.set_capabilities(Some(caps));
    }
    validate_process(&process).map_err(Error::InvalidArgument)?;
    Ok(process)
}

fn validate_process(process: &Process) -> std::result::Result<(), String> {
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err("process.args must not be empty".into());
    }
    if !process.cwd().is_absolute() {
        return Err(format!("cwd {:?} must be an absolute path", process.cwd()));
    }
    Ok(())
}

fn parse_user(text: &str) -> Result<(u32, Option<u32>)> {
    let bad = || Error::InvalidArgument(format!("--user {text:?} must be UID or UID:GID"));
    match text.split_once(':') {
        Some((u, g)) => Ok((
            u.parse().map_err(|_| bad())?,
            Some(g.parse().map_err(|_| bad())?),
        )),
        None => Ok((text.parse().map_err(|_| bad())?, None)),
    }
}

fn parse_capability(name: &str) -> Result<oci_spec::runtime::Capability> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    serde_json::from_value(serde_json::Value::String(full.clone()))
        .map_err(|_| Error::InvalidArgument(format!("unknown capability {name:?}")))
}

/// The container's spec with the new process, joining every namespace of the init.
fn tenant_spec(mut spec: Spec, process: Process, init_pid: i32) -> Result<Spec> {
    let mut linux = spec.linux().clone().unwrap_or_default();
    let joined: Vec<LinuxNamespace> = linux
        .namespaces()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|mut ns| {
            ns.set_path(Some(PathBuf::from(format!(
                "/proc/{init_pid}/ns/{}",
                proc_ns_name(ns.typ())
            ))));
            ns
        })
        .collect();
    linux.set_namespaces(Some(joined));
    spec.set_linux(Some(linux));
    spec.set_process(Some(process));
    spec.set_hooks(None);
    Ok(spec)
}

fn proc_ns_name(typ: LinuxNamespaceType) -> &'static str {
    match typ {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Time => "time",
    }
}

fn sub_cgroup(base: &Path, sub: &str) -> Result<PathBuf> {
    let relative = Path::new(sub.trim_start_matches('/'));
    if relative
        .components()
        .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(Error::InvalidArgument(format!(
            "--cgroup {sub:?} must be a path below the container's cgroup"
        )));
    }
    Ok(base.join(relative))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        serde_json::from_str(
            r#"{"ociVersion":"1.0.2","root":{"path":"/r"},
            "process":{"args":["sh"],"cwd":"/","env":["PATH=/bin","A=1"],"user":{"uid":0,"gid":0},
              "capabilities":{"bounding":["CAP_KILL"],"effective":["CAP_KILL"],"permitted":["CAP_KILL"]}},
            "linux":{"namespaces":[{"type":"pid"},{"type":"mount"}]}}"#,
        )
        .unwrap()
    }

    #[test]
    fn flags_override_the_container_process() {
        let opts = ExecOptions {
            args: vec!["id".into()],
            env: vec!["B=2".into()],
            cwd: Some("/tmp".into()),
            user: Some("1000:1001".into()),
            additional_gids: vec![5],
            caps: vec!["net_admin".into()],
            ..Default::default()
        };
        let p = build_process(&spec(), &opts).unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &vec!["id".to_string()]);
        assert_eq!(p.env().as_ref().unwrap().last().unwrap(), "B=2");
        assert_eq!(p.cwd(), Path::new("/tmp"));
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 1001));
        assert_eq!(p.user().additional_gids().as_ref().unwrap(), &vec![5]);
        let caps = p.capabilities().as_ref().unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 2);
        assert!(caps.ambient().as_ref().is_none_or(|a| a.is_empty()));
    }

    #[test]
    fn rejects_bad_flags() {
        let base = ExecOptions {
            args: vec!["x".into()],
            ..Default::default()
        };
        for opts in [
            ExecOptions {
                user: Some("root".into()),
                ..base.clone()
            },
            ExecOptions {
                env: vec!["NOEQUALS".into()],
                ..base.clone()
            },
            ExecOptions {
                caps: vec!["CAP_BOGUS".into()],
                ..base.clone()
            },
            ExecOptions {
                cwd: Some("rel".into()),
                ..base.clone()
            },
            ExecOptions {
                args: vec![],
                ..base.clone()
            },
        ] {
            assert!(build_process(&spec(), &opts).is_err(), "{opts:?}");
        }
    }

    #[test]
    fn tenant_joins_the_init_namespaces() {
        let p = build_process(
            &spec(),
            &ExecOptions {
                args: vec!["x".into()],
                ..Default::default()
            },
        )
        .unwrap();
        let t = tenant_spec(spec(), p, 42).unwrap();
        let ns = t.linux().as_ref().unwrap().namespaces().clone().unwrap();
        assert_eq!(ns[0].path().as_deref(), Some(Path::new("/proc/42/ns/pid")));
        assert_eq!(ns[1].path().as_deref(), Some(Path::new("/proc/42/ns/mnt")));
    }

    #[test]
    fn sub_cgroups_stay_below() {
        assert_eq!(
            sub_cgroup(Path::new("/a"), "b/c").unwrap(),
            Path::new("/a/b/c")
        );
        assert!(sub_cgroup(Path::new("/a"), "../x").is_err());
    }
}
