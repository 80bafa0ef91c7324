//! One error type for the library, with a coarse [`ErrorKind`] so callers such
//! as `vzctl create` can map failures to their own exit codes.

use std::path::{Path, PathBuf};

/// What kind of failure happened, for callers that map errors to exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No template matches the requested name/version (vzctl exit code 91).
    NotFound,
    /// The template exists but fails verification (bad digest, size, media
    /// type, JSON or tar structure, unsafe paths).
    Corrupt,
    /// The operating system refused an operation (permissions, full disk...).
    Io,
    /// The caller's input is wrong (bad name, missing os-release, bad recipe).
    Invalid,
}

/// Errors returned by every vzbuild operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("template not found: {0}")]
    NotFound(String),
    #[error("corrupt template {}: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    // The OS error is part of the message (not a `source`), so that printing
    // the error chain does not repeat it.
    #[error("{context}: {err}")]
    Io {
        context: String,
        err: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// The coarse class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Corrupt { .. } => ErrorKind::Corrupt,
            Error::Io { .. } => ErrorKind::Io,
            Error::Invalid(_) => ErrorKind::Invalid,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            err: source,
        }
    }

    pub(crate) fn io_path(action: &str, path: &Path, source: std::io::Error) -> Self {
        Error::io(format!("{action} {}", path.display()), source)
    }

    pub(crate) fn corrupt(path: &Path, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;
