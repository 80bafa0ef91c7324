//! The last step in the container process: check the program like runc does, reset
//! the signal mask, exec.
//!
//! Foreground `run`/`exec` block signals *before* spawning the container (so no SIGCHLD
//! or forwarded signal can be lost, the race that makes youki 0.7's `run` hang), and a
//! signal mask survives execve: it must be cleared here, in the container process.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use libcontainer::workload::{
    Executor, ExecutorError, ExecutorSetEnvsError, ExecutorValidationError,
};
use oci_spec::runtime::Spec;

#[derive(Clone, Default)]
pub struct VzExecutor {
    /// Name of the new session keyring (the container id), or None for `--no-new-keyring`.
    pub session_keyring: Option<String>,
}

pub fn boxed(session_keyring: Option<String>) -> Box<dyn Executor> {
    Box::new(VzExecutor { session_keyring })
}

impl Executor for VzExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        let args = spec
            .process()
            .as_ref()
            .and_then(|p| p.args().as_ref())
            .filter(|a| !a.is_empty())
            .ok_or(ExecutorError::InvalidArg)?;
        let argv: Vec<CString> = args
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<_, _>>()
            .map_err(|_| ExecutorError::Other("process.args contains a NUL byte".into()))?;
        if let Some(name) = &self.session_keyring {
            join_session_keyring(name)?;
        }
        if let Some(size) = spec.process().as_ref().and_then(|p| p.console_size()) {
            if spec
                .process()
                .as_ref()
                .and_then(|p| p.terminal())
                .unwrap_or(false)
            {
                set_window_size(size.height() as u16, size.width() as u16);
            }
        }
        unblock_all_signals();
        let err = nix::unistd::execvp(&argv[0], &argv).unwrap_err();
        Err(ExecutorError::Other(format!("exec {:?}: {err}", args[0])))
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| ExecutorValidationError::ArgValidationError("no process".into()))?;
        let Some(program) = process.args().as_ref().and_then(|a| a.first()) else {
            return Err(ExecutorValidationError::ArgValidationError(
                "process.args must not be empty".into(),
            ));
        };
        let env = process.env().clone().unwrap_or_default();
        let path_var = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or("");
        find_executable(program, path_var)
            .map(|_| ())
            .map_err(ExecutorValidationError::ArgValidationError)
    }

    fn setup_envs(&self, envs: HashMap<String, String>) -> Result<(), ExecutorSetEnvsError> {
        for (key, _) in std::env::vars_os() {
            // SAFETY: the container init is single-threaded at this point.
            unsafe { std::env::remove_var(key) };
        }
        for (key, value) in envs {
            // SAFETY: as above.
            unsafe { std::env::set_var(key, value) };
        }
        Ok(())
    }
}

/// runc's lookup: a name with a '/' is used as is, others are searched in the
/// container's PATH. Errors read like runc's.
pub fn find_executable(program: &str, path_var: &str) -> Result<PathBuf, String> {
    let check = |p: &Path| -> Result<PathBuf, String> {
        let meta = std::fs::metadata(p).map_err(|e| format!("exec: {program:?}: {e}"))?;
        if meta.is_dir() {
            return Err(format!("exec: {program:?}: is a directory"));
        }
        if meta.permissions().mode() & 0o111 == 0 {
            return Err(format!("exec: {program:?}: permission denied"));
        }
        Ok(p.to_path_buf())
    };
    if program.contains('/') {
        return check(Path::new(program));
    }
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(program);
        if candidate.is_file() {
            return check(&candidate);
        }
    }
    Err(format!(
        "exec: {program:?}: executable file not found in $PATH"
    ))
}

/// runc gives every container process a session keyring of its own, so containers do not
/// share (or see) the caller's keys.
fn join_session_keyring(name: &str) -> Result<(), ExecutorError> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    let name =
        CString::new(name).map_err(|_| ExecutorError::Other("keyring name contains NUL".into()))?;
    // SAFETY: keyctl(2) JOIN_SESSION_KEYRING with a valid C string.
    let rc = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if rc < 0 {
        let err = std::io::Error::last_os_error();
        // Kernels without keyrings (or seccomp-denied keyctl) get none, as with runc.
        if !matches!(
            err.raw_os_error(),
            Some(libc::ENOSYS) | Some(libc::EPERM) | Some(libc::EACCES)
        ) {
            return Err(ExecutorError::Other(format!("join session keyring: {err}")));
        }
    }
    Ok(())
}

/// process.consoleSize: the terminal is our stdin by now.
fn set_window_size(rows: u16, cols: u16) {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize struct that outlives the call.
    unsafe { libc::ioctl(libc::STDIN_FILENO, libc::TIOCSWINSZ, &size) };
}

fn unblock_all_signals() {
    // SAFETY: sigset_t is plain data initialised by sigemptyset before use.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_like_runc() {
        assert_eq!(
            find_executable("sh", "/nonexistent:/bin").unwrap(),
            Path::new("/bin/sh")
        );
        assert!(
            find_executable("/bin/sh", "").is_ok(),
            "absolute paths need no PATH"
        );
        let e = find_executable("no-such-program", "/bin").unwrap_err();
        assert!(e.contains("executable file not found in $PATH"), "{e}");
        assert!(find_executable("/etc/passwd", "")
            .unwrap_err()
            .contains("permission denied"));
        assert!(find_executable("/tmp", "")
            .unwrap_err()
            .contains("is a directory"));
    }
}
