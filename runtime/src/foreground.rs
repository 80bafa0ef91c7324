//! Foreground `run` and `exec`: vzrun stays the parent (subreaper) of the container
//! process, forwards every signal it receives, relays the terminal, reaps orphans, and
//! exits with the process' status.
//!
//! Signals are blocked and read from a signalfd that exists *before* the container is
//! spawned, so neither the container's exit (SIGCHLD) nor a signal meant for it can be
//! missed. The container process clears the inherited mask right before exec
//! (see `executor`).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

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
        output: libc::STDOUT_FILENO,
    });
    Ok(wait_relaying(pid, capture, relay, true)?.code())
}

/// The container's terminal and where its traffic goes.
pub struct Relay {
    pub master: OwnedFd,
    /// Copied to the terminal (None: nothing is typed into it).
    pub input: Option<RawFd>,
    /// Receives what the container writes to its terminal.
    pub output: RawFd,
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
    let master = relay.as_ref().map(|r| r.master.as_raw_fd());
    let mut input = relay.as_ref().and_then(|r| r.input);
    let output = relay
        .as_ref()
        .map(|r| r.output)
        .unwrap_or(libc::STDOUT_FILENO);
    let mut master_open = master.is_some();
    let mut status: Option<ProcessExit> = None;
    loop {
        // Reap first: the exit may have happened before we got here.
        if status.is_none() {
            status = reap(pid);
        }
        if let Some(exit) = status {
            if let Some(m) = master {
                drain(m, output);
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
                if !copy(entry.fd, master.expect("relay has a master")) {
                    input = None;
                }
            } else if Some(entry.fd) == master && !copy(entry.fd, output) {
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
fn copy(from: RawFd, to: RawFd) -> bool {
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
    write_all(to, &buf[..n as usize]);
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
fn drain(master: RawFd, output: RawFd) {
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
}
