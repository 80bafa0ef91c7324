//! Foreground `run` and `exec`: vzrun stays the parent (subreaper) of the container
//! process, forwards every signal it receives, relays the terminal, reaps orphans, and
//! exits with the process' status.
//!
//! Signals are blocked and read from a signalfd that exists *before* the container is
//! spawned, so neither the container's exit (SIGCHLD) nor a signal meant for it can be
//! missed. The container process clears the inherited mask right before exec
//! (see `executor`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::signal;
use crate::terminal;

pub struct SignalCapture {
    fd: OwnedFd,
    previous: libc::sigset_t,
}

impl SignalCapture {
    /// Blocks every forwardable signal and SIGCHLD in this (single) thread and opens a
    /// signalfd for them. Call before spawning the container.
    pub fn install() -> Result<Self> {
        // SAFETY: sigset_t values are plain data, initialised by sigemptyset/sigaddset;
        // pthread_sigmask and signalfd get valid pointers.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for sig in signal::forwardable() {
                libc::sigaddset(&mut set, sig);
            }
            libc::sigaddset(&mut set, libc::SIGCHLD);
            let mut previous: libc::sigset_t = std::mem::zeroed();
            if libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut previous) != 0 {
                return Err(Error::io("block signals", std::io::Error::last_os_error()));
            }
            let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
            if fd < 0 {
                let err = std::io::Error::last_os_error();
                libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
                return Err(Error::io("signalfd", err));
            }
            Ok(Self {
                fd: OwnedFd::from_raw_fd(fd),
                previous,
            })
        }
    }

    fn next(&self) -> Option<i32> {
        // SAFETY: reading one signalfd_siginfo (plain data) from our signalfd.
        unsafe {
            let mut info: libc::signalfd_siginfo = std::mem::zeroed();
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            let n = libc::read(
                self.fd.as_raw_fd(),
                &mut info as *mut _ as *mut libc::c_void,
                size,
            );
            (n as usize == size).then_some(info.ssi_signo as i32)
        }
    }
}

impl Drop for SignalCapture {
    fn drop(&mut self) {
        // SAFETY: restoring the mask saved by install().
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.previous, std::ptr::null_mut()) };
    }
}

/// Makes this process the reaper of the container's orphans (and, since libcontainer's
/// intermediate process exits, the parent of the container process itself).
pub fn become_subreaper() -> Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(|e| Error::sys("become subreaper", e))
}

/// How a waited-for process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessExit {
    Exited(i32),
    Signaled(i32),
}

impl ProcessExit {
    fn from_status(status: libc::c_int) -> Self {
        if libc::WIFSIGNALED(status) {
            ProcessExit::Signaled(libc::WTERMSIG(status))
        } else {
            ProcessExit::Exited(libc::WEXITSTATUS(status))
        }
    }

    /// The exit code the way shells report it (128+N when killed by signal N).
    pub fn code(self) -> i32 {
        match self {
            ProcessExit::Exited(code) => code,
            ProcessExit::Signaled(sig) => 128 + sig,
        }
    }
}

/// Waits for `pid` and returns its exit code, forwarding signals and relaying `master`
/// (the container's terminal) to our stdin/stdout when given.
pub fn wait(pid: i32, capture: &SignalCapture, master: Option<OwnedFd>) -> Result<i32> {
    let _raw = master.as_ref().and_then(|_| terminal::RawMode::enter());
    let relay = master.map(|m| Relay {
        master: m,
        input: Some(libc::STDIN_FILENO),
        output: Output::Fd(libc::STDOUT_FILENO),
    });
    Ok(wait_relaying(pid, capture, relay, true)?.code())
}

/// The container's terminal and where its traffic goes.
pub struct Relay {
    pub master: OwnedFd,
    /// Copied to the terminal (None: nothing is typed into it).
    pub input: Option<RawFd>,
    /// Receives what the container writes to its terminal.
    pub output: Output,
}

/// Where a container's terminal output goes.
pub enum Output {
    /// A terminal or pipe (the caller's stdout).
    Fd(RawFd),
    /// A log file of bounded size (a system container's console, which nobody reads live).
    Log(CappedLog),
}

impl Output {
    fn write(&mut self, data: &[u8]) {
        match self {
            Output::Fd(fd) => write_all(*fd, data),
            Output::Log(log) => log.write(data),
        }
    }
}

/// A log that never grows past `limit` bytes: when a write would cross it, the file is
/// renamed to `<path>.1` (replacing the older one) and a new one begun, so a container
/// printing forever holds at most twice the limit on the host's disk.
pub struct CappedLog {
    path: PathBuf,
    file: File,
    written: u64,
    limit: u64,
}

impl CappedLog {
    /// Creates (truncates) `path` and removes its older generation: a log begins anew.
    pub fn create(path: &Path, limit: u64) -> std::io::Result<Self> {
        let _ = std::fs::remove_file(Self::rotated_path(path));
        Ok(Self {
            path: path.to_path_buf(),
            file: Self::open(path)?,
            written: 0,
            limit: limit.max(1),
        })
    }

    fn open(path: &Path) -> std::io::Result<File> {
        OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)
    }

    /// The older generation of `path`.
    pub fn rotated_path(path: &Path) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(".1");
        PathBuf::from(name)
    }

    fn write(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.written >= self.limit && !self.rotate() {
                return; // nowhere to write: drop the output rather than stall the container
            }
            let room = (self.limit - self.written) as usize;
            let (now, later) = data.split_at(data.len().min(room));
            if self.file.write_all(now).is_err() {
                return;
            }
            self.written += now.len() as u64;
            data = later;
        }
    }

    fn rotate(&mut self) -> bool {
        if std::fs::rename(&self.path, Self::rotated_path(&self.path)).is_err() {
            return false;
        }
        match Self::open(&self.path) {
            Ok(file) => {
                self.file = file;
                self.written = 0;
                true
            }
            Err(_) => false,
        }
    }
}

/// Waits for `pid`, relaying its terminal, reaping orphans; with `forward` every signal
/// we receive is passed on to it.
pub fn wait_relaying(
    pid: i32,
    capture: &SignalCapture,
    relay: Option<Relay>,
    forward: bool,
) -> Result<ProcessExit> {
    if let Some(r) = &relay {
        if r.input.is_some() {
            terminal::copy_window_size(r.master.as_raw_fd());
        }
        set_nonblocking(r.master.as_raw_fd());
    }
    // `_master_fd` keeps the terminal open while we relay it.
    let (_master_fd, mut input, mut output) = match relay {
        Some(r) => (Some(r.master), r.input, r.output),
        None => (None, None, Output::Fd(libc::STDOUT_FILENO)),
    };
    let master = _master_fd.as_ref().map(|m| m.as_raw_fd());
    let mut master_open = master.is_some();
    let mut status: Option<ProcessExit> = None;
    loop {
        // Reap first: the exit may have happened before we got here.
        if status.is_none() {
            status = reap(pid);
        }
        if let Some(exit) = status {
            if let Some(m) = master {
                drain(m, &mut output);
            }
            return Ok(exit);
        }
        let mut fds = vec![libc::pollfd {
            fd: capture.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if let (Some(m), true) = (master, master_open) {
            fds.push(libc::pollfd {
                fd: m,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        if let Some(i) = input {
            fds.push(libc::pollfd {
                fd: i,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        // SAFETY: poll(2) on a valid array of pollfd structs.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Error::io("poll", err));
        }
        for entry in &fds {
            if entry.revents == 0 {
                continue;
            }
            if entry.fd == capture.fd.as_raw_fd() {
                while let Some(sig) = capture.next() {
                    match sig {
                        libc::SIGCHLD => {}
                        libc::SIGWINCH if input.is_some() => {
                            terminal::copy_window_size(master.expect("relay has a master"))
                        }
                        other if forward => {
                            // SAFETY: kill(2) with plain integers, to our own child.
                            unsafe { libc::kill(pid, other) };
                        }
                        _ => {}
                    }
                }
            } else if Some(entry.fd) == input {
                if !copy(
                    entry.fd,
                    &mut Output::Fd(master.expect("relay has a master")),
                ) {
                    input = None;
                }
            } else if Some(entry.fd) == master && !copy(entry.fd, &mut output) {
                master_open = false;
            }
        }
    }
}

/// Reaps every exited child; returns the exit code if `pid` was among them.
fn reap(pid: i32) -> Option<ProcessExit> {
    let mut result = None;
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid(2) with a valid status pointer.
        let reaped = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if reaped <= 0 {
            return result;
        }
        if reaped == pid {
            result = Some(ProcessExit::from_status(status));
        }
    }
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl(2) flag manipulation on a valid fd.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

/// Copies what is available from `from` to `to`; false at end of file or on error.
fn copy(from: RawFd, to: &mut Output) -> bool {
    let mut buf = [0u8; 16384];
    // SAFETY: read(2) into a local buffer of the given size.
    let n = unsafe { libc::read(from, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
    if n < 0 {
        let err = std::io::Error::last_os_error();
        return matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
        );
    }
    if n == 0 {
        return false;
    }
    to.write(&buf[..n as usize]);
    true
}

fn write_all(fd: RawFd, mut data: &[u8]) {
    while !data.is_empty() {
        // SAFETY: write(2) from a valid slice.
        let n = unsafe { libc::write(fd, data.as_ptr() as *const libc::c_void, data.len()) };
        if n <= 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            if err.kind() == std::io::ErrorKind::WouldBlock {
                let mut pfd = libc::pollfd {
                    fd,
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: poll(2) on one valid pollfd.
                unsafe { libc::poll(&mut pfd, 1, 1000) };
                continue;
            }
            return;
        }
        data = &data[n as usize..];
    }
}

/// Copies the rest of the container's output after it exited.
fn drain(master: RawFd, output: &mut Output) {
    while copy(master, output) {
        let mut pfd = libc::pollfd {
            fd: master,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll(2) on one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, 50) } <= 0 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_like_a_shell() {
        assert_eq!(ProcessExit::from_status(0).code(), 0);
        assert_eq!(ProcessExit::from_status(42 << 8), ProcessExit::Exited(42));
        assert_eq!(
            ProcessExit::from_status(libc::SIGKILL),
            ProcessExit::Signaled(9)
        );
        assert_eq!(ProcessExit::from_status(libc::SIGKILL).code(), 137);
    }

    #[test]
    fn capped_log_rotates_and_never_exceeds_twice_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("101.console");
        let mut log = Output::Log(CappedLog::create(&path, 10).unwrap());
        log.write(b"0123456"); // 7 bytes: fits
        assert_eq!(std::fs::read(&path).unwrap(), b"0123456");
        log.write(b"789abcdefghij"); // crosses the limit: the first 10 bytes fill it
        let rotated = CappedLog::rotated_path(&path);
        assert_eq!(std::fs::read(&rotated).unwrap(), b"0123456789");
        assert_eq!(std::fs::read(&path).unwrap(), b"abcdefghij");
        log.write(&[b'x'; 25]); // two more rotations: only the newest two generations stay
        assert_eq!(std::fs::read(&rotated).unwrap(), [b'x'; 10]);
        assert_eq!(std::fs::read(&path).unwrap(), [b'x'; 5]);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
