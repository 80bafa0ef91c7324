//! Runs OCI hooks from the runtime process (poststart, poststop) with the state document
//! on stdin; the hooks run inside `create` are libcontainer's.

use oci_spec::runtime::Hook;

use libcontainer::container::{ContainerStatus, State as LcState};

use crate::error::{chain_message, Result};
use crate::state::{ContainerState, Status};

pub fn run(hooks: Option<&Vec<Hook>>, state: &ContainerState, status: Status) -> Result<()> {
    let Some(hooks) = hooks.filter(|h| !h.is_empty()) else {
        return Ok(());
    };
    let lc_state = to_libcontainer(state, status);
    libcontainer::hooks::run_hooks(Some(hooks), Some(&lc_state), None, None, None)
        .map_err(|e| crate::error::Error::Container(chain_message(&e)))
}

pub fn to_libcontainer(state: &ContainerState, status: Status) -> LcState {
    LcState {
        oci_version: state.oci_version.clone(),
        id: state.id.clone(),
        status: match status {
            Status::Creating => ContainerStatus::Creating,
            Status::Created => ContainerStatus::Created,
            Status::Running => ContainerStatus::Running,
            Status::Paused => ContainerStatus::Paused,
            Status::Stopped => ContainerStatus::Stopped,
        },
        pid: match status {
            Status::Stopped => None,
            _ => state.pid,
        },
        bundle: state.bundle.clone(),
        annotations: Some(
            state
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        created: None,
        creator: Some(state.owner),
        use_systemd: state.systemd_cgroup,
        clean_up_intel_rdt_subdirectory: None,
        intel_rdt_dir: None,
        intel_rdt_monitoring_dir: None,
    }
}
