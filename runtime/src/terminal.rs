//! Terminals for foreground `run -t` / `exec -t` without a console socket of the
//! caller's: vzrun receives the pty master itself and relays it to its own stdio.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::termios::{self, SetArg, Termios};

use crate::error::{Error, IoContext, Result};

/// A console socket of our own: the container init connects to it and sends the pty master.
pub struct ConsoleListener {
    listener: UnixListener,
    pub path: PathBuf,
}

impl ConsoleListener {
    pub fn bind(path: PathBuf) -> Result<Self> {
        let _ = std::fs::remove_file(&path);
        let listener = bind_long_path(&path)?;
        Ok(Self { listener, path })
    }

    /// Takes the master fd the container sent (it is already queued once the container
    /// process reported ready).
    pub fn receive_master(&self) -> Result<OwnedFd> {
        let (stream, _) = self
            .listener
            .accept()
            .ctx(|| format!("accept on {}", self.path.display()))?;
        receive_fd(stream.as_raw_fd())
    }
}

impl Drop for ConsoleListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds a unix socket at `path` even when it exceeds sockaddr_un's 108 bytes, by
/// naming it through /proc/self/fd of its directory.
pub fn bind_long_path(path: &Path) -> Result<UnixListener> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| Error::InvalidArgument(format!("socket path {}", path.display())))?;
    let dir_fd = std::fs::File::open(dir).ctx(|| format!("open {}", dir.display()))?;
    let short = Path::new("/proc/self/fd")
        .join(dir_fd.as_raw_fd().to_string())
        .join(name);
    UnixListener::bind(&short).ctx(|| format!("bind {}", path.display()))
}

/// Receives one fd passed with SCM_RIGHTS.
pub fn receive_fd(socket: RawFd) -> Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        socket,
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .ctx(|| "receive the terminal from the container".to_string())?;
    for cmsg in msg.cmsgs().ctx(|| "read control message".to_string())? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel installed this fd in our table for us; we own it now.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(Error::Container("the container sent no terminal".into()))
}

/// Puts our own terminal in raw mode while the container owns the screen; restores it
/// when dropped.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    pub fn enter() -> Option<Self> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(&stdin, SetArg::TCSANOW, &raw).ok()?;
        Some(Self { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.saved);
    }
}

/// Copies our terminal's window size to the container's terminal.
pub fn copy_window_size(master: RawFd) {
    // SAFETY: winsize is plain data; TIOCGWINSZ fills it, TIOCSWINSZ reads it.
    unsafe {
        let mut size: libc::winsize = std::mem::zeroed();
        if libc::ioctl(libc::STDIN_FILENO, libc::TIOCGWINSZ, &mut size) == 0 {
            libc::ioctl(master, libc::TIOCSWINSZ, &size);
        }
    }
}

/// A private path for our console socket under the runtime root (short enough for
/// sockaddr_un, unique per process).
pub fn private_socket_path(root: &Path, purpose: &str) -> PathBuf {
    root.join(format!(".{purpose}-{}.sock", std::process::id()))
}
