//! `create`: everything up to a container init that waits for `start`.

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use libcontainer::container::{Container as LcContainer, ContainerStatus, State as LcState};
use libcontainer::notify_socket::NotifyListener;
use libcontainer::process::args::{ContainerArgs, ContainerType};
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::user_ns::UserNamespaceConfig;

use crate::cgroups;
use crate::error::{chain_message, Error, Result};
use crate::prepare;
use crate::procfs;
use crate::spec;
use crate::state::{ContainerState, Phase};
use crate::store::{self, ContainerDir};
use crate::Runtime;

#[derive(Debug, Default, Clone)]
pub struct CreateOptions {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    /// Keep the caller's session keyring instead of giving the container its own.
    pub no_new_keyring: bool,
    pub preserve_fds: i32,
}

/// The result of a successful `create`.
#[derive(Debug)]
pub struct Created {
    pub pid: i32,
    pub state: ContainerState,
}

/// libcgroups' systemd manager applies no device rules on cgroup v2 (there the device
/// cgroup is an eBPF program, which only its cgroupfs manager attaches): refused rather than
/// run containers that could open any device.
fn check_cgroup_driver(systemd: bool, unified: bool) -> Result<()> {
    if systemd && unified {
        return Err(Error::InvalidArgument(
            "--systemd-cgroup on a cgroup v2 host is not supported yet (the device cgroup \
             could not be enforced); use the cgroupfs driver (podman: --cgroup-manager \
             cgroupfs; containerd: SystemdCgroup = false)"
                .into(),
        ));
    }
    Ok(())
}

pub fn create(rt: &Runtime, id: &str, opts: &CreateOptions) -> Result<Created> {
    let dir = ContainerDir::new(&rt.root, id)?;
    let loaded = spec::load_bundle(&opts.bundle)?;
    for field in &loaded.unknown_fields {
        tracing::warn!(target: "vzrun", "config.json: unknown field {field} is ignored");
    }
    check_terminal(&loaded.spec, opts.console_socket.is_some())?;
    check_cgroup_driver(rt.systemd_cgroup, cgroups::Layout::detect().is_unified())?;
    if rt.systemd_cgroup && !libcgroups::systemd::booted() {
        return Err(Error::InvalidArgument(
            "--systemd-cgroup needs systemd running as the host's init, and it is not".into(),
        ));
    }
    let annotations = loaded.spec.annotations().clone().unwrap_or_default();
    // OpenVZ semantics asked for by engines (org.openvz.* annotations).
    let (spec, rootfs) = crate::openvz::annotations::apply(loaded.spec, loaded.rootfs)?;
    let exe = rt.executable()?;
    let prepared = prepare::prepare(spec, id, &rootfs, &exe)?;

    let lock = dir.create_locked()?;
    let mut state = ContainerState {
        oci_version: prepared.spec.version().clone(),
        id: id.to_string(),
        phase: Phase::Creating,
        pid: None,
        pid_start_time: None,
        bundle: loaded.bundle.clone(),
        rootfs: rootfs.clone(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        owner: nix::unistd::geteuid().as_raw(),
        annotations: annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        cgroup_path: prepared.cgroup_path.clone(),
        systemd_cgroup: rt.systemd_cgroup,
    };

    let result = (|| {
        let config = serde_json::to_vec(&prepared.spec).expect("spec serializes");
        store::write_atomic(&dir.file(store::CONFIG_FILE), &config)?;
        state.save(&dir)?;
        let resources = prepared
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().clone());
        let pid = spawn_init(rt, &dir, &state, prepared.spec, opts, annotations)?;
        if !prepared.unified_hugetlb.is_empty() {
            cgroups::apply_unified_hugetlb(&state.cgroup_path, &prepared.unified_hugetlb)?;
        }
        cgroups::apply_v2_swap_off(&state.cgroup_path, state.systemd_cgroup, resources.as_ref())?;
        state.pid = Some(pid);
        state.pid_start_time = procfs::stat(pid).map(|s| s.start_time);
        if let Some(pid_file) = &opts.pid_file {
            write_pid_file(pid_file, pid)?;
        }
        state.phase = Phase::Created;
        state.save(&dir)
    })();

    match result {
        Ok(()) => {
            drop(lock);
            Ok(Created {
                pid: state.pid.expect("set above"),
                state,
            })
        }
        Err(err) => {
            if let Err(cleanup) = destroy(&state, &dir, &lock) {
                tracing::warn!(target: "vzrun", "cleanup after failed create: {cleanup}");
            }
            Err(err)
        }
    }
}

/// runc's rules for terminal and console socket.
fn check_terminal(spec: &oci_spec::runtime::Spec, have_socket: bool) -> Result<()> {
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    match (terminal, have_socket) {
        (true, false) => Err(Error::InvalidArgument(
            "process.terminal is true: a --console-socket is required to receive the terminal"
                .into(),
        )),
        (false, true) => Err(Error::InvalidArgument(
            "--console-socket given but process.terminal is false".into(),
        )),
        _ => Ok(()),
    }
}

/// Runs libcontainer's process machinery (intermediate + init, namespaces, rootfs,
/// prestart/createRuntime/createContainer hooks) and returns the init pid on the host.
fn spawn_init(
    rt: &Runtime,
    dir: &ContainerDir,
    state: &ContainerState,
    spec: oci_spec::runtime::Spec,
    opts: &CreateOptions,
    annotations: HashMap<String, String>,
) -> Result<i32> {
    let notify_listener = NotifyListener::new(&dir.file(store::NOTIFY_SOCKET))
        .map_err(|e| Error::from_chain("create start socket", &e))?;
    let console = match &opts.console_socket {
        Some(path) => Some(
            libcontainer::tty::setup_console_socket(&dir.path, path, "console-socket").map_err(
                |e| Error::from_chain(&format!("console socket {}", path.display()), &e),
            )?,
        ),
        None => None,
    };
    let user_ns_config =
        UserNamespaceConfig::new(&spec).map_err(|e| Error::from_chain("user namespace", &e))?;
    prepare_spawner(&spec)?;
    let hook_state = LcContainer {
        state: LcState {
            oci_version: state.oci_version.clone(),
            id: state.id.clone(),
            status: ContainerStatus::Creating,
            pid: None,
            bundle: state.bundle.clone(),
            annotations: Some(annotations),
            created: None,
            creator: Some(state.owner),
            use_systemd: rt.systemd_cgroup,
            clean_up_intel_rdt_subdirectory: None,
            intel_rdt_dir: None,
            intel_rdt_monitoring_dir: None,
        },
        root: dir.path.clone(),
    };
    let args = ContainerArgs {
        container_type: ContainerType::InitContainer,
        syscall: SyscallType::default(),
        spec: Rc::new(spec),
        rootfs: state.rootfs.clone(),
        console_socket: console.as_ref().map(|fd| fd.as_raw_fd()),
        notify_listener,
        preserve_fds: opts.preserve_fds,
        container: Some(hook_state),
        user_ns_config,
        cgroup_config: cgroups::config(&state.cgroup_path, rt.systemd_cgroup, &state.id),
        detached: true,
        executor: crate::executor::boxed((!opts.no_new_keyring).then(|| state.id.clone())),
        no_pivot: opts.no_pivot,
        stdin: None,
        stdout: None,
        stderr: None,
        as_sibling: false,
        pid_file: None,
    };
    let parents = cgroups::hold_parents(&state.cgroup_path, rt.systemd_cgroup)?;
    let membership = if rt.systemd_cgroup {
        None
    } else {
        Some(cgroups::join_extra_hierarchies(&state.cgroup_path)?)
    };
    let pid = libcontainer::process::container_main_process::container_main_process(&args)
        .map_err(|e| Error::Container(chain_message(&e)));
    drop(membership);
    drop(parents);
    Ok(pid?.as_raw())
}

/// What libcontainer's own builder does to the calling process before it forks the
/// container: the OOM score is inherited by the children (and must be set while we are
/// still dumpable); a non-dumpable caller cannot be ptraced or have its /proc opened by
/// processes of the namespaces it is about to join.
pub(crate) fn prepare_spawner(spec: &oci_spec::runtime::Spec) -> Result<()> {
    if let Some(score) = spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
        std::fs::write("/proc/self/oom_score_adj", score.to_string())
            .map_err(|e| Error::io(format!("set oomScoreAdj {score}"), e))?;
    }
    if spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| !ns.is_empty())
    {
        nix::sys::prctl::set_dumpable(false)
            .map_err(|e| Error::sys("make vzrun non-dumpable", e))?;
    }
    Ok(())
}

/// runc writes the pid file atomically too: engines poll for it.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::io("current directory", e))?
            .join(path)
    };
    store::write_atomic(&absolute, pid.to_string().as_bytes())
}

/// Kills whatever the container left, removes its cgroup and its directory. Used by
/// `delete` and by a failed `create`; every step tolerates things already gone.
pub(crate) fn destroy(
    state: &ContainerState,
    dir: &ContainerDir,
    lock: &store::ContainerLock,
) -> Result<()> {
    if let Some(pid) = state.pid {
        if procfs::is_alive(pid, state.pid_start_time) {
            // SAFETY: kill(2) on the recorded init, verified by its start time just above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    cgroups::kill_all_and_wait(
        &state.cgroup_path,
        state.systemd_cgroup,
        &state.id,
        std::time::Duration::from_secs(10),
    )?;
    cgroups::remove(&state.cgroup_path, state.systemd_cgroup, &state.id)?;
    dir.remove(lock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_systemd_driver_is_refused_on_cgroup_v2_only() {
        assert!(check_cgroup_driver(false, true).is_ok());
        assert!(check_cgroup_driver(false, false).is_ok());
        assert!(check_cgroup_driver(true, false).is_ok());
        let message = check_cgroup_driver(true, true).unwrap_err().to_string();
        assert!(message.contains("device cgroup"), "{message}");
        assert!(message.contains("cgroupfs"), "{message}");
    }
}
