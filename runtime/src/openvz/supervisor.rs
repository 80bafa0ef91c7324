//! The per-container supervisor: what keeps a system container's life going after
//! `vzctl start` has returned.
//!
//! `vzctl start` spawns `vzctl __supervise CTID` in a session of its own. The supervisor
//! is the child subreaper of the container's init, so it alone learns how the init
//! ended: killed by SIGHUP means the container ran `reboot` (reboot(2) in a child pid
//! namespace kills its init with SIGHUP), anything else means it halted or was stopped.
//! On a reboot it deletes the container and boots it again (same CTID, same files,
//! config re-read); otherwise it deletes it and unmounts VE_ROOT. It also drains the
//! container's console into a log. Its files, in `$VZRUN_ROOT/supervisors/`:
//!
//! ```text
//! <CTID>.pid       "pid start-time" of the supervisor
//! <CTID>.stop      exists while `vzctl stop` runs: an init exit then never reboots
//! <CTID>.console   the console output since the last boot (1 MiB at most, then it
//!                  becomes <CTID>.console.1, the generation before)
//! <CTID>.last      how the last boot ended (halt, reboot, exit N, signal N)
//! <CTID>.log       the supervisor's own messages
//! ```

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::ct::Ct;
use super::ctid::Ctid;
use super::env::{VzEnv, ETC_ENV};
use super::error::{ExitCode, VzError, VzResult};
use super::lock::CtLock;
use super::{boot, private};
use crate::container::delete;
use crate::foreground::{self, CappedLog, Output, ProcessExit, Relay, SignalCapture};
use crate::procfs;

/// Bytes of console output kept per generation: `<CTID>.console` is renamed to
/// `<CTID>.console.1` when it reaches this size, so a container printing forever holds
/// at most twice this on the host's disk.
pub const CONSOLE_LOG_LIMIT: u64 = 1 << 20;

/// The readiness pipe's write end in the supervisor.
const READY_FD: RawFd = 3;

pub fn dir(env: &VzEnv) -> PathBuf {
    env.runtime_root().join("supervisors")
}

fn file(env: &VzEnv, ctid: Ctid, suffix: &str) -> PathBuf {
    dir(env).join(format!("{ctid}.{suffix}"))
}

pub fn console_log(env: &VzEnv, ctid: Ctid) -> PathBuf {
    file(env, ctid, "console")
}

pub fn last_exit(env: &VzEnv, ctid: Ctid) -> Option<String> {
    std::fs::read_to_string(file(env, ctid, "last"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// The supervisor's pid, if it is alive.
pub fn pid(env: &VzEnv, ctid: Ctid) -> Option<i32> {
    let text = std::fs::read_to_string(file(env, ctid, "pid")).ok()?;
    let mut fields = text.split_whitespace();
    let pid: i32 = fields.next()?.parse().ok()?;
    let start: u64 = fields.next()?.parse().ok()?;
    procfs::is_alive(pid, Some(start)).then_some(pid)
}

pub fn request_stop(env: &VzEnv, ctid: Ctid) -> VzResult<()> {
    std::fs::create_dir_all(dir(env))
        .map_err(|e| VzError::new(ExitCode::SystemError, e.to_string()))?;
    std::fs::write(file(env, ctid, "stop"), b"")
        .map_err(|e| VzError::new(ExitCode::SystemError, format!("mark stop: {e}")))
}

pub fn clear_stop(env: &VzEnv, ctid: Ctid) {
    let _ = std::fs::remove_file(file(env, ctid, "stop"));
}

fn stop_requested(env: &VzEnv, ctid: Ctid) -> bool {
    file(env, ctid, "stop").exists()
}

/// Starts the supervisor and returns once the container has started (or failed to).
pub fn spawn(env: &VzEnv, ctid: Ctid) -> VzResult<i32> {
    std::fs::create_dir_all(dir(env))
        .map_err(|e| VzError::new(ExitCode::SystemError, e.to_string()))?;
    let exe =
        std::env::current_exe().map_err(|e| VzError::new(ExitCode::SystemError, e.to_string()))?;
    let (ready_read, ready_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| VzError::new(ExitCode::SystemError, format!("pipe: {e}")))?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(file(env, ctid, "log"))
        .map_err(|e| VzError::new(ExitCode::SystemError, format!("supervisor log: {e}")))?;
    let write_fd = ready_write.as_raw_fd();
    let mut command = Command::new(exe);
    command
        .arg("__supervise")
        .arg(ctid.to_string())
        .env(ETC_ENV, &env.etc)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    // SAFETY: only async-signal-safe calls (setsid, dup2) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() < 0 || libc::dup2(write_fd, READY_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| VzError::new(ExitCode::StartFailed, format!("start the supervisor: {e}")))?;
    drop(ready_write);
    let mut answer = String::new();
    let _ = File::from(ready_read).read_to_string(&mut answer);
    // The supervisor lives on (its parent becomes init); do not leave a zombie meanwhile.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    match answer.trim().split_once(' ') {
        Some(("started", pid)) => pid.parse().map_err(|_| {
            VzError::new(ExitCode::StartFailed, format!("supervisor said {answer:?}"))
        }),
        Some(("failed", message)) => {
            let (code, text) = message.split_once(' ').unwrap_or(("133", message));
            let code = code
                .parse::<i32>()
                .ok()
                .and_then(exit_code_from)
                .unwrap_or(ExitCode::StartFailed);
            Err(VzError::new(code, text.to_string()))
        }
        _ => Err(VzError::new(
            ExitCode::StartFailed,
            format!(
                "the supervisor died before the container started; see {}",
                file(env, ctid, "log").display()
            ),
        )),
    }
}

fn exit_code_from(code: i32) -> Option<ExitCode> {
    use ExitCode::*;
    [
        SystemError,
        Locked,
        PrivateNotFound,
        BrokenContainer,
        MountFailed,
        StartFailed,
        InvalidValue,
        DiskQuotaFailed,
        UgidQuotaFailed,
    ]
    .into_iter()
    .find(|c| *c as i32 == code)
}

/// `vzctl __supervise CTID`: runs in the background for the container's whole life.
pub fn run(env: &VzEnv, ctid: Ctid) -> i32 {
    // SAFETY: fd 3 was set up by spawn() for us alone.
    let ready = unsafe { OwnedFd::from_raw_fd(READY_FD) };
    let mut ready = Some(File::from(ready));
    let report = |ready: &mut Option<File>, line: String| {
        if let Some(mut f) = ready.take() {
            let _ = f.write_all(line.as_bytes());
        }
    };
    let capture =
        match SignalCapture::install().and_then(|c| foreground::become_subreaper().map(|_| c)) {
            Ok(c) => c,
            Err(e) => {
                report(&mut ready, format!("failed 3 {e}\n"));
                return 1;
            }
        };
    let me = std::process::id() as i32;
    let start_time = procfs::stat(me).map(|s| s.start_time).unwrap_or(0);
    let _ = crate::store::write_atomic(
        &file(env, ctid, "pid"),
        format!("{me} {start_time}").as_bytes(),
    );

    let mut booted = boot::boot(env, ctid);
    if let Err(e) = &booted {
        report(
            &mut ready,
            format!("failed {} {}\n", e.code as i32, e.message),
        );
    }
    while let Ok((pid, master)) = booted {
        report(&mut ready, format!("started {pid}\n"));
        let exit = watch(env, ctid, pid, master, &capture);
        let reboot =
            matches!(exit, Ok(ProcessExit::Signaled(libc::SIGHUP))) && !stop_requested(env, ctid);
        let words = match exit {
            Ok(ProcessExit::Signaled(libc::SIGHUP)) => "reboot".to_string(),
            Ok(ProcessExit::Signaled(libc::SIGINT)) => "halt".to_string(),
            Ok(ProcessExit::Signaled(s)) => format!("signal {s}"),
            Ok(ProcessExit::Exited(c)) => format!("exit {c}"),
            Err(e) => format!("lost ({e})"),
        };
        let _ = std::fs::write(file(env, ctid, "last"), format!("{words}\n"));
        eprintln!("container {ctid}: init ended ({words})");
        if let Err(e) = delete::delete(&env.runtime(), &ctid.to_string(), true) {
            eprintln!("container {ctid}: delete after exit: {e}");
        }
        if !reboot {
            break;
        }
        booted = match reboot_lock(env, ctid) {
            Some(_lock) => boot::boot(env, ctid),
            None => break,
        };
        if let Err(e) = &booted {
            eprintln!("container {ctid}: reboot failed: {e}");
        }
    }
    if let Ok(ct) = Ct::load(env, ctid) {
        let _ = private::umount_root(&ct.root(env));
    }
    let _ = std::fs::remove_file(file(env, ctid, "pid"));
    let _ = std::fs::remove_file(file(env, ctid, "tty.sock"));
    0
}

/// The vzctl lock for a reboot; None when a `vzctl stop` claims the container meanwhile.
fn reboot_lock(env: &VzEnv, ctid: Ctid) -> Option<CtLock> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if stop_requested(env, ctid) {
            return None;
        }
        if let Ok(lock) = CtLock::acquire(env, ctid, false) {
            return Some(lock);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Waits for the init, draining its console into the console log.
fn watch(
    env: &VzEnv,
    ctid: Ctid,
    pid: i32,
    master: OwnedFd,
    capture: &SignalCapture,
) -> crate::Result<ProcessExit> {
    let path = console_log(env, ctid);
    let log = CappedLog::create(&path, CONSOLE_LOG_LIMIT)
        .map_err(|e| crate::Error::io(format!("open {}", path.display()), e))?;
    let relay = Relay {
        master,
        input: None,
        output: Output::Log(log),
    };
    foreground::wait_relaying(pid, capture, Some(relay), false)
}
