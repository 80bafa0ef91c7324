//! `start`: wakes the waiting init so it executes the user's program, then runs the
//! poststart hooks.

use libcontainer::notify_socket::NotifySocket;

use crate::container::{hooks, load_spec};
use crate::error::{Error, Result};
use crate::procfs;
use crate::state::{ContainerState, WAITING_INIT_COMM};
use crate::state::{Phase, Status};
use crate::store::{self, ContainerDir, LockMode};
use crate::Runtime;

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
    if poststart.as_ref().is_some_and(|h| !h.is_empty()) {
        // The spec: poststart hooks run after the user's process has been executed.
        wait_for_exec(&state);
        if let Err(err) = hooks::run(poststart.as_ref(), &state, Status::Running) {
            // The spec: a failing poststart hook is logged and the lifecycle continues.
            tracing::warn!(target: "vzrun", "poststart hook of {id}: {err}");
        }
    }
    Ok(())
}

/// Waits (briefly) until the init has replaced itself with the user's program, or died.
fn wait_for_exec(state: &ContainerState) {
    let Some(pid) = state.pid else { return };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut pause = std::time::Duration::from_micros(50);
    while std::time::Instant::now() < deadline {
        match procfs::stat(pid) {
            Some(s) if !s.is_dead() && s.comm == WAITING_INIT_COMM => {}
            _ => return,
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(5));
    }
}
