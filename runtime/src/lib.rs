//! vzrun: an OCI runtime (runc's command line) built on libcontainer, carrying OpenVZ's
//! system-container semantics.
//!
//! The library decides; the binaries parse arguments and print. Every container operation
//! lives in [`container`], one file per operation.

pub mod cgroups;
pub mod container;
pub mod error;
pub mod executor;
pub mod foreground;
pub mod logging;
pub mod mountinfo;
pub mod mountsetup;
pub mod openvz;
pub mod prepare;
pub mod procfs;
pub mod signal;
pub mod spec;
pub mod state;
pub mod store;
pub mod terminal;

use std::path::PathBuf;

pub use error::{Error, Result};

/// Default `--root`: where container state lives.
pub const DEFAULT_ROOT: &str = "/run/vzrun";

/// The global settings every operation needs.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub root: PathBuf,
    pub systemd_cgroup: bool,
}

impl Runtime {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            systemd_cgroup: false,
        }
    }

    /// The path of the running vzrun binary, for hooks that call back into it.
    pub fn executable(&self) -> Result<PathBuf> {
        std::env::current_exe().map_err(|e| Error::io("locate the vzrun executable", e))
    }
}
