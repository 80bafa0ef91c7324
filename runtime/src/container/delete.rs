//! `delete`: removes a stopped or created container (any container with `--force`),
//! including what a `create` killed half-way left behind.

use crate::cgroups;
use crate::container::{create::destroy, hooks};
use crate::error::{Error, Result};
use crate::state::{ContainerState, Status};
use crate::store::{ContainerDir, LockMode};
use crate::Runtime;

pub fn delete(rt: &Runtime, id: &str, force: bool) -> Result<()> {
    let dir = ContainerDir::new(&rt.root, id)?;
    let lock = match dir.lock(LockMode::Exclusive) {
        Ok(lock) => lock,
        Err(Error::NotFound(_)) => {
            dir.remove_stale_staging();
            // runc: deleting a container that does not exist is fine with --force.
            return if force {
                Ok(())
            } else {
                Err(Error::NotFound(id.to_string()))
            };
        }
        Err(Error::Damaged { .. }) => return remove_damaged(&dir),
        Err(e) => return Err(e),
    };
    let state = match ContainerState::load(&dir) {
        Ok(state) => state,
        Err(Error::Damaged { .. }) => return remove_damaged(&dir),
        Err(e) => return Err(e),
    };
    // With the exclusive lock held, a container still "creating" lost its creator.
    let status = state.status();
    if matches!(status, Status::Running | Status::Paused) && !force {
        return Err(Error::WrongState {
            id: id.to_string(),
            status,
            action: "delete it (stop it first or use --force)",
        });
    }
    let poststop = crate::container::load_spec(&dir)
        .ok()
        .and_then(|spec| spec.hooks().as_ref().and_then(|h| h.poststop().clone()));
    destroy(&state, &dir, &lock)?;
    if let Err(err) = hooks::run(poststop.as_ref(), &state, Status::Stopped) {
        // The spec: poststop failures are logged and the lifecycle continues.
        tracing::warn!(target: "vzrun", "poststop hook of {id}: {err}");
    }
    Ok(())
}

/// A container directory without a usable state (its `create` was killed early): clean
/// the cgroup its config names, or the default one, and remove the directory.
fn remove_damaged(dir: &ContainerDir) -> Result<()> {
    let cgroup_path = crate::container::load_spec(dir)
        .ok()
        .and_then(|s| s.linux().as_ref().and_then(|l| l.cgroups_path().clone()))
        .unwrap_or_else(|| cgroups::default_path(&dir.id));
    let _ = cgroups::kill_all_and_wait(
        &cgroup_path,
        false,
        &dir.id,
        std::time::Duration::from_secs(10),
    );
    if let Err(e) = cgroups::remove(&cgroup_path, false, &dir.id) {
        tracing::warn!(target: "vzrun", "remove cgroup of damaged container {}: {e}", dir.id);
    }
    std::fs::remove_dir_all(&dir.path)
        .or_else(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Ok(()),
            _ => Err(e),
        })
        .map_err(|e| Error::io(format!("remove {}", dir.path.display()), e))?;
    Ok(())
}
