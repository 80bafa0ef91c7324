//! What the runtime remembers about a container, and the status derived from it.
//!
//! Only facts that cannot be recovered from the kernel are stored (bundle, pid and its
//! start time, cgroup path, creation time, how far the lifecycle got). The status shown to
//! users is derived on every read from those facts plus /proc and the cgroup freezer, so a
//! runtime process that died half-way never leaves a status that lies.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::procfs;
use crate::store::{self, ContainerDir};

/// The OCI status values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// How far the lifecycle got, as recorded by the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// `create` is under way (or died before finishing).
    Creating,
    /// The init process waits for `start`.
    Created,
    /// `start` was issued.
    Started,
}

/// The name libcontainer gives the container init until it executes the user's program.
pub const WAITING_INIT_COMM: &str = "youki:[2:INIT]";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    pub oci_version: String,
    pub id: String,
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// /proc/<pid>/stat start time of `pid`, to tell our process from a reused pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_start_time: Option<u64>,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 creation time.
    pub created: String,
    pub owner: u32,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    pub cgroup_path: PathBuf,
    #[serde(default)]
    pub systemd_cgroup: bool,
}

impl ContainerState {
    pub fn load(dir: &ContainerDir) -> Result<Self> {
        let path = dir.file(store::STATE_FILE);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(if dir.exists() {
                    Error::Damaged {
                        id: dir.id.clone(),
                        reason: "state.json is missing".into(),
                    }
                } else {
                    Error::NotFound(dir.id.clone())
                })
            }
            Err(e) => return Err(Error::io(format!("read {}", path.display()), e)),
        };
        serde_json::from_slice(&data).map_err(|e| Error::Damaged {
            id: dir.id.clone(),
            reason: format!("state.json is unreadable: {e}"),
        })
    }

    pub fn save(&self, dir: &ContainerDir) -> Result<()> {
        let data = serde_json::to_vec(self).expect("state serializes");
        store::write_atomic(&dir.file(store::STATE_FILE), &data)
    }

    /// True while the recorded init process is still the one we started.
    pub fn init_alive(&self) -> bool {
        self.pid
            .is_some_and(|pid| procfs::is_alive(pid, self.pid_start_time))
    }

    /// The status as the kernel shows it now.
    pub fn status(&self) -> Status {
        let Some(pid) = self.pid else {
            return match self.phase {
                Phase::Creating => Status::Creating,
                _ => Status::Stopped,
            };
        };
        let Some(stat) = procfs::stat(pid) else {
            return Status::Stopped;
        };
        if stat.is_dead() || self.pid_start_time.is_some_and(|t| t != stat.start_time) {
            return Status::Stopped;
        }
        match self.phase {
            Phase::Creating => Status::Creating,
            // A `start` that died after waking the init leaves phase Created behind: the
            // init's name tells whether it still waits.
            Phase::Created if stat.comm == WAITING_INIT_COMM => Status::Created,
            Phase::Created | Phase::Started => {
                if crate::cgroups::is_frozen(&self.cgroup_path) {
                    Status::Paused
                } else {
                    Status::Running
                }
            }
        }
    }

    /// The OCI state document (`vzrun state`, hooks' stdin).
    pub fn oci_state(&self, status: Status) -> OciState {
        OciState {
            oci_version: self.oci_version.clone(),
            id: self.id.clone(),
            status,
            // runc reports 0 once the process is gone.
            pid: match status {
                Status::Stopped => 0,
                _ => self.pid.unwrap_or(0),
            },
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            owner: String::new(),
            annotations: self.annotations.clone(),
        }
    }
}

/// runc's `state` output: the OCI state plus rootfs, created and owner.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ContainerState {
        ContainerState {
            oci_version: "1.0.2".into(),
            id: "t".into(),
            phase: Phase::Started,
            pid: None,
            pid_start_time: None,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "2026-01-01T00:00:00Z".into(),
            owner: 0,
            annotations: BTreeMap::new(),
            cgroup_path: "/vzrun/t".into(),
            systemd_cgroup: false,
        }
    }

    #[test]
    fn status_is_derived_from_the_process() {
        let mut s = sample();
        assert_eq!(s.status(), Status::Stopped);
        s.phase = Phase::Creating;
        assert_eq!(s.status(), Status::Creating);
        // Our own test process is alive but not a waiting init: a Created phase reads as running.
        let me = std::process::id() as i32;
        let stat = procfs::stat(me).unwrap();
        s.pid = Some(me);
        s.pid_start_time = Some(stat.start_time);
        s.phase = Phase::Created;
        assert_eq!(s.status(), Status::Running);
        s.pid_start_time = Some(stat.start_time + 1);
        assert_eq!(
            s.status(),
            Status::Stopped,
            "a reused pid is not our container"
        );
    }

    #[test]
    fn oci_state_hides_pid_of_stopped_container() {
        let mut s = sample();
        s.pid = Some(1234);
        let st = s.oci_state(Status::Stopped);
        assert_eq!(st.pid, 0);
        let json = serde_json::to_value(s.oci_state(Status::Running)).unwrap();
        assert_eq!(json["ociVersion"], "1.0.2");
        assert_eq!(json["pid"], 1234);
        assert_eq!(json["status"], "running");
    }
}
