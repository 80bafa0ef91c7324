//! `kill`: signals the container init, or with `--all` every process of its cgroup.
//! Signals are raw numbers so the real-time range works (systemd stops on SIGRTMIN+3).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::cgroups;
use crate::error::{Error, Result};
use crate::procfs;
use crate::state::{ContainerState, Status};
use crate::store::{ContainerDir, LockMode};
use crate::Runtime;

pub fn kill(rt: &Runtime, id: &str, signal: i32, all: bool) -> Result<()> {
    let dir = ContainerDir::new(&rt.root, id)?;
    let _lock = dir.lock(LockMode::Shared)?;
    let state = ContainerState::load(&dir)?;
    let status = state.status();
    match status {
        Status::Created | Status::Running | Status::Paused => {}
        // Without a pid namespace processes can outlive the init: `--all` still reaches them.
        Status::Stopped if all => {}
        Status::Stopped | Status::Creating => {
            return Err(Error::WrongState {
                id: id.to_string(),
                status,
                action: "signal it (container not running)",
            })
        }
    }
    if all {
        cgroups::signal_all(&state.cgroup_path, signal);
    } else if let Some(pid) = state.pid {
        signal_process(pid, state.pid_start_time, signal)?;
    }
    if status == Status::Paused && signal == libc::SIGKILL {
        // A frozen process cannot die: thaw so the kill takes effect.
        cgroups::freeze(&state.cgroup_path, state.systemd_cgroup, id, false)?;
    }
    Ok(())
}

/// Signals `pid` through a pidfd opened after checking its start time, so a pid reused
/// by an unrelated process is never signalled.
pub fn signal_process(pid: i32, start_time: Option<u64>, signal: i32) -> Result<()> {
    // SAFETY: pidfd_open(2) with plain integers; returns a new fd or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if raw < 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ESRCH) {
            return Ok(());
        }
        return Err(Error::io(format!("pidfd_open {pid}"), err));
    }
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    let pidfd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    if !procfs::is_alive(pid, start_time) {
        return Ok(());
    }
    // SAFETY: pidfd_send_signal(2) on a pidfd we own, no siginfo, no flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ESRCH) {
            return Err(Error::io(format!("send signal {signal} to {pid}"), err));
        }
    }
    Ok(())
}
