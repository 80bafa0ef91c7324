//! One container as vzctl sees it: its config, its paths, and its status, derived every
//! time from the files (config, private area), the mount table and the runtime's state.

use std::path::PathBuf;

use serde::Serialize;

use super::config::{expand_ctid, ConfigFile};
use super::ctid::Ctid;
use super::env::VzEnv;
use super::error::{ExitCode, VzError, VzResult};
use crate::state::{ContainerState, Status};
use crate::store::ContainerDir;

pub struct Ct {
    pub ctid: Ctid,
    pub conf: ConfigFile,
    /// The config file exists.
    pub exists: bool,
}

/// vzctl status: `CTID 101 exist mounted running`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CtStatus {
    pub exists: bool,
    pub mounted: bool,
    pub running: bool,
}

impl Ct {
    pub fn load(env: &VzEnv, ctid: Ctid) -> VzResult<Ct> {
        let path = env.conf_path(ctid);
        if !path.exists() {
            return Ok(Ct {
                ctid,
                conf: ConfigFile::default(),
                exists: false,
            });
        }
        let conf = ConfigFile::load(&path)
            .map_err(|e| VzError::new(ExitCode::NoCtConfig, e.to_string()))?;
        Ok(Ct {
            ctid,
            conf,
            exists: true,
        })
    }

    /// Fails with vzctl's "does not exist" unless the container has a config.
    pub fn require_exists(&self) -> VzResult<()> {
        if self.exists {
            Ok(())
        } else {
            Err(VzError::new(
                ExitCode::NoCtConfig,
                format!("Container {} does not exist (no config file)", self.ctid),
            ))
        }
    }

    fn path_key(&self, env: &VzEnv, key: &str) -> PathBuf {
        let value = self
            .conf
            .get(key)
            .map(str::to_string)
            .or_else(|| env.get(key))
            .unwrap_or_default();
        PathBuf::from(expand_ctid(&value, &self.ctid.to_string()))
    }

    /// VE_ROOT: where the private area is mounted while the container is mounted/running.
    pub fn root(&self, env: &VzEnv) -> PathBuf {
        self.path_key(env, "VE_ROOT")
    }

    /// VE_PRIVATE: where the container's files live.
    pub fn private(&self, env: &VzEnv) -> PathBuf {
        self.path_key(env, "VE_PRIVATE")
    }

    pub fn name(&self) -> Option<&str> {
        self.conf.get("NAME").filter(|n| !n.is_empty())
    }

    pub fn stop_timeout(&self, env: &VzEnv) -> u64 {
        self.conf
            .get("STOP_TIMEOUT")
            .map(str::to_string)
            .or_else(|| env.get("STOP_TIMEOUT"))
            .and_then(|v| v.parse().ok())
            .unwrap_or(120)
    }

    /// The runtime's view of the container (None when it has no runtime state).
    pub fn runtime_state(&self, env: &VzEnv) -> Option<ContainerState> {
        let dir = ContainerDir::new(&env.runtime_root(), &self.ctid.to_string()).ok()?;
        ContainerState::load(&dir).ok()
    }

    pub fn is_running(&self, env: &VzEnv) -> bool {
        self.runtime_state(env).is_some_and(|s| {
            matches!(
                s.status(),
                Status::Running | Status::Paused | Status::Created | Status::Creating
            )
        })
    }

    pub fn is_mounted(&self, env: &VzEnv) -> bool {
        crate::mountinfo::is_mount_point(&self.root(env))
    }

    pub fn status(&self, env: &VzEnv) -> CtStatus {
        CtStatus {
            exists: self.exists && self.private(env).exists(),
            mounted: self.is_mounted(env),
            running: self.is_running(env),
        }
    }
}

impl CtStatus {
    /// vzctl's words.
    pub fn line(&self, ctid: Ctid) -> String {
        format!(
            "CTID {ctid} {} {} {}",
            if self.exists { "exist" } else { "deleted" },
            if self.mounted { "mounted" } else { "unmounted" },
            if self.running { "running" } else { "down" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line() {
        let s = CtStatus {
            exists: true,
            mounted: true,
            running: false,
        };
        assert_eq!(s.line(Ctid(101)), "CTID 101 exist mounted down");
        let s = CtStatus {
            exists: false,
            mounted: false,
            running: false,
        };
        assert_eq!(s.line(Ctid(7)), "CTID 7 deleted unmounted down");
    }

    #[test]
    fn paths_expand_ctid_from_conf_or_globals() {
        let etc = tempfile::tempdir().unwrap();
        std::fs::write(etc.path().join("vz.conf"), "VE_ROOT=/g/root/$VEID\n").unwrap();
        let env = VzEnv::load(etc.path()).unwrap();
        let ct = Ct {
            ctid: Ctid(5),
            conf: ConfigFile::parse("VE_PRIVATE=\"/p/$VEID\"\n").unwrap(),
            exists: true,
        };
        assert_eq!(ct.root(&env), PathBuf::from("/g/root/5"));
        assert_eq!(ct.private(&env), PathBuf::from("/p/5"));
    }
}
