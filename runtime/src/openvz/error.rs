//! vzctl's errors carry vzctl's documented exit codes (vzctl(8), "Exit status"), which
//! hosting scripts test for.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ExitCode {
    /// A beancounter (cgroup) limit could not be applied.
    SetUbcFailed = 1,
    SystemError = 3,
    /// The running kernel cannot do what was asked (upstream lacks the limit).
    BadKernel = 5,
    CommandFailed = 8,
    Locked = 9,
    NoGlobalConfig = 10,
    NoCtConfig = 14,
    InvalidParameter = 20,
    InvalidValue = 21,
    NoOsTemplate = 29,
    NotRunning = 31,
    AlreadyRunning = 32,
    StopFailed = 33,
    NotMounted = 40,
    AlreadyMounted = 41,
    PrivateNotFound = 43,
    PrivateExists = 44,
    NoDiskSpace = 46,
    BrokenContainer = 47,
    CreatePrivateFailed = 48,
    MountFailed = 50,
    UmountFailed = 51,
    DeleteFailed = 52,
    DiskQuotaFailed = 60,
    UgidQuotaFailed = 65,
    ConfigSaveFailed = 139,
    TemplateNotFound = 91,
    StartFailed = 133,
    SetIoFailed = 148,
}

#[derive(Debug)]
pub struct VzError {
    pub code: ExitCode,
    pub message: String,
}

impl VzError {
    pub fn new(code: ExitCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A runtime error in the middle of an operation: system error unless mapped.
    pub fn runtime(code: ExitCode, context: &str, err: crate::Error) -> Self {
        Self::new(code, format!("{context}: {err}"))
    }
}

impl fmt::Display for VzError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for VzError {}

impl From<crate::Error> for VzError {
    fn from(err: crate::Error) -> Self {
        let code = match &err {
            crate::Error::InvalidArgument(_) => ExitCode::InvalidValue,
            _ => ExitCode::SystemError,
        };
        VzError::new(code, err.to_string())
    }
}

pub type VzResult<T> = Result<T, VzError>;
