//! vzctl's per-container lock ($LOCKDIR/<CTID>.lck): a second vzctl that would change a
//! container while another one does fails at once with exit code 9, as in OpenVZ.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;

use super::ctid::Ctid;
use super::env::VzEnv;
use super::error::{ExitCode, VzError, VzResult};
use crate::store::{lock_holder, posix_lock, LockMode};

pub struct CtLock {
    _file: File,
}

impl CtLock {
    pub fn acquire(env: &VzEnv, ctid: Ctid, wait: bool) -> VzResult<CtLock> {
        let dir = env.lock_dir();
        std::fs::create_dir_all(&dir).map_err(|e| {
            VzError::new(
                ExitCode::SystemError,
                format!("create {}: {e}", dir.display()),
            )
        })?;
        let path = dir.join(format!("{ctid}.lck"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| {
                VzError::new(
                    ExitCode::SystemError,
                    format!("open {}: {e}", path.display()),
                )
            })?;
        match posix_lock(&file, LockMode::Exclusive, wait) {
            Ok(()) => Ok(CtLock { _file: file }),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let holder = lock_holder(&file)
                    .map(|p| format!(" (pid {p})"))
                    .unwrap_or_default();
                Err(VzError::new(
                    ExitCode::Locked,
                    format!("Container {ctid} is locked by another vzctl{holder}; try again later"),
                ))
            }
            Err(e) => Err(VzError::new(
                ExitCode::SystemError,
                format!("lock {}: {e}", path.display()),
            )),
        }
    }
}
