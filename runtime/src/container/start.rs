//! `start`: wakes the waiting init so it executes the user's program, then runs the
//! poststart hooks.

use libcontainer::notify_socket::NotifySocket;

use crate::container::{hooks, load_spec};
use crate::error::{Error, Result};
use crate::state::{Phase, Status};
use crate::store::{self, ContainerDir, LockMode};
use crate::{cgroups, state::ContainerState, Runtime};

pub fn start(rt: &Runtime, id: &str) -> Result<()> {
    let dir = ContainerDir::new(&rt.root, id)?;
    let _lock = dir.lock(LockMode::Exclusive)?;
    let mut state = ContainerState::load(&dir)?;
    let status = state.status();
    if status != Status::Created {
        return Err(Error::WrongState {
            id: id.to_string(),
            status,
            action: "start it (only a created container can be started)",
        });
    }
    let spec = load_spec(&dir)?;
    NotifySocket::new(dir.file(store::NOTIFY_SOCKET))
        .notify_container_start()
        .map_err(|e| Error::from_chain("wake the container init", &e))?;
    state.phase = Phase::Started;
    state.save(&dir)?;
    let _ = std::fs::remove_file(dir.file(store::NOTIFY_SOCKET));

    let poststart = spec.hooks().as_ref().and_then(|h| h.poststart().clone());
    if let Err(err) = hooks::run(poststart.as_ref(), &state, Status::Running) {
        // The spec: a failing poststart hook is an error of `start`; runc also stops the
        // container then, so it does not run half-initialized.
        cgroups::signal_all(&state.cgroup_path, libc::SIGKILL);
        if let Some(pid) = state.pid {
            // SAFETY: kill(2) on the init we just started (its start time was verified by status()).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        return Err(Error::Container(format!("poststart hook failed: {err}")));
    }
    Ok(())
}
