//! One error type for every runtime operation. Messages name the thing that is wrong
//! (container id, path, field) because engines show them to users verbatim.

use std::path::PathBuf;

use crate::state::Status;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId { id: String, reason: String },

    #[error("container {0:?} does not exist")]
    NotFound(String),

    #[error("container with id {0:?} already exists")]
    AlreadyExists(String),

    #[error("container {id:?} is {status}: cannot {action}")]
    WrongState {
        id: String,
        status: Status,
        action: &'static str,
    },

    #[error("bundle {path}: {reason}")]
    Bundle { path: PathBuf, reason: String },

    #[error("{path}: {reason}")]
    InvalidConfig { path: PathBuf, reason: String },

    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    #[error("{0} is not supported yet")]
    NotSupported(&'static str),

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{context}: {source}")]
    Sys {
        context: String,
        #[source]
        source: nix::Error,
    },

    #[error("cgroup: {0}")]
    Cgroup(String),

    #[error("{0}")]
    Container(String),

    #[error("container state of {id:?} is damaged ({reason}); `delete --force` removes it")]
    Damaged { id: String, reason: String },
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub fn sys(context: impl Into<String>, source: nix::Error) -> Self {
        Error::Sys {
            context: context.into(),
            source,
        }
    }

    /// Flattens a libcontainer/libcgroups error chain into one line: their top-level
    /// messages are often generic ("failed to run container process") and the cause
    /// that users need sits at the end of the chain.
    pub fn from_chain(prefix: &str, err: &(dyn std::error::Error + 'static)) -> Self {
        Error::Container(format!("{prefix}: {}", chain_message(err)))
    }
}

/// "outer: inner: innermost", skipping links whose text repeats the previous one.
pub fn chain_message(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

/// Adds a context string to io results, e.g. `fs::read(p).ctx(|| format!("read {p:?}"))`.
pub trait IoContext<T> {
    fn ctx<F: FnOnce() -> String>(self, f: F) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx<F: FnOnce() -> String>(self, f: F) -> Result<T> {
        self.map_err(|e| Error::io(f(), e))
    }
}

impl<T> IoContext<T> for nix::Result<T> {
    fn ctx<F: FnOnce() -> String>(self, f: F) -> Result<T> {
        self.map_err(|e| Error::sys(f(), e))
    }
}
