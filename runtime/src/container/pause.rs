//! `pause` and `resume`: the cgroup freezer.

use crate::cgroups;
use crate::error::{Error, Result};
use crate::state::{ContainerState, Status};
use crate::store::{ContainerDir, LockMode};
use crate::Runtime;

pub fn pause(rt: &Runtime, id: &str) -> Result<()> {
    set_frozen(rt, id, true)
}

pub fn resume(rt: &Runtime, id: &str) -> Result<()> {
    set_frozen(rt, id, false)
}

fn set_frozen(rt: &Runtime, id: &str, frozen: bool) -> Result<()> {
    let dir = ContainerDir::new(&rt.root, id)?;
    let _lock = dir.lock(LockMode::Exclusive)?;
    let state = ContainerState::load(&dir)?;
    let status = state.status();
    let (needed, action) = if frozen {
        (Status::Running, "pause it (it is not running)")
    } else {
        (Status::Paused, "resume it (it is not paused)")
    };
    if status != needed {
        return Err(Error::WrongState {
            id: id.to_string(),
            status,
            action,
        });
    }
    cgroups::freeze(&state.cgroup_path, state.systemd_cgroup, id, frozen)
}
