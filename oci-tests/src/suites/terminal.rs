//! terminal.*: process.terminal with --console-socket, for create and exec.

use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::json;

use crate::ctx::{Ctx, Out, Report, COMMAND_TIMEOUT};
use crate::harness::{Outcome, TestDef, TestResult};

pub fn register(t: &mut Vec<TestDef>) {
    t.push(TestDef::new("terminal.console_socket", console_socket));
    t.push(TestDef::new("terminal.io_through_pty", io_through_pty));
    t.push(TestDef::new("terminal.console_size", console_size));
    t.push(TestDef::new(
        "terminal.without_console_socket_fails",
        without_console_socket_fails,
    ));
    t.push(TestDef::new("terminal.exec_tty", exec_tty));
}

/// Runs a runtime command that takes `--console-socket`, accepts the
/// connection and returns the pty master it sent, with the command's output.
pub fn with_console(
    ctx: &Ctx,
    args_before_id: &[&str],
    id_and_rest: &[&str],
) -> Result<(OwnedFd, Out)> {
    let sock = ctx.dir.join(format!("console-{}.sock", id_and_rest[0]));
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock).context("binding the console socket")?;
    listener.set_nonblocking(true)?;
    let sock_s = sock.display().to_string();
    let mut args: Vec<&str> = args_before_id.to_vec();
    args.extend_from_slice(&["--console-socket", &sock_s]);
    args.extend_from_slice(id_and_rest);
    let (mut child, out_path, err_path) = ctx.cmd(&args).spawn()?;
    let start = Instant::now();
    let mut master = None;
    let status = loop {
        if master.is_none() {
            match listener.accept() {
                Ok((conn, _)) => master = Some(receive_fd(&conn)?),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e).context("accepting on the console socket"),
            }
        }
        if let Some(st) = child.try_wait()? {
            // The runtime may connect and exit quickly: one more accept.
            if master.is_none() {
                if let Ok((conn, _)) = listener.accept() {
                    master = Some(receive_fd(&conn)?);
                }
            }
            break st;
        }
        if start.elapsed() > COMMAND_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{args:?} did not finish within {COMMAND_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    use std::os::unix::process::ExitStatusExt;
    let out = Out {
        cmdline: args.join(" "),
        code: status.code(),
        signal: status.signal(),
        stdout: std::fs::read_to_string(out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(err_path).unwrap_or_default(),
        elapsed: start.elapsed(),
    };
    let out = out.ok()?;
    let master = master.context("the runtime never sent a pty master over the console socket")?;
    Ok((master, out))
}

fn receive_fd(conn: &std::os::unix::net::UnixStream) -> Result<OwnedFd> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .context("receiving from the console socket")?;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: SCM_RIGHTS just installed this descriptor for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    bail!("the console socket message carried no file descriptor")
}

fn is_pty_master(fd: &OwnedFd) -> bool {
    // TIOCGPTN only succeeds on a pty master.
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int into `n`.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGPTN, &mut n) == 0 }
}

/// Reads from the master until `needle` shows up or time runs out.
fn read_until(master: &mut std::fs::File, needle: &str) -> Result<String> {
    let fd = master.as_raw_fd();
    // SAFETY: F_SETFL with O_NONBLOCK on a descriptor we own.
    unsafe {
        libc::fcntl(
            fd,
            libc::F_SETFL,
            libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK,
        )
    };
    let start = Instant::now();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while start.elapsed() < Duration::from_secs(10) {
        match master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                seen.push_str(&String::from_utf8_lossy(&buf[..n]));
                if seen.contains(needle) {
                    return Ok(seen);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => return Err(e).context("reading the pty master"),
        }
    }
    bail!("{needle:?} never came through the pty; got {seen:?}")
}

fn check_tty_report(r: &Report) -> Result<()> {
    let t = &r.0["tty"];
    for n in 0..3 {
        ensure!(
            t[format!("isatty{n}")] == true,
            "fd {n} is not a terminal: {t}"
        );
    }
    let stdin = t["stdin"].as_str().unwrap_or_default();
    ensure!(
        stdin.starts_with("/dev/pts/"),
        "stdin is {stdin:?}, not a /dev/pts device"
    );
    ensure!(
        t["foreground_pgrp"] == t["pgrp"],
        "the process is not in the terminal's foreground group (no controlling tty?): {t}"
    );
    Ok(())
}

fn tty_bundle(ctx: &mut Ctx) -> Result<crate::ctx::Bundle> {
    let mut b = ctx.bundle()?;
    b.spec["process"]["terminal"] = json!(true);
    Ok(b)
}

fn console_socket(ctx: &mut Ctx) -> TestResult {
    let b = tty_bundle(ctx)?;
    b.write_config()?;
    let bundle = b.dir.display().to_string();
    let (master, _) = with_console(ctx, &["create", "--bundle", &bundle], &[&b.id])?;
    ensure!(
        is_pty_master(&master),
        "the descriptor sent over the console socket is not a pty master"
    );
    ctx.start(&b.id)?;
    let r = ctx.wait_report(&b, "report")?;
    check_tty_report(&r)?;
    let sid = r.0["tty"]["sid"].as_i64();
    ensure!(
        sid == r.0["pid"].as_i64(),
        "the process is not a session leader (sid {sid:?})"
    );
    drop(master);
    Ok(Outcome::Pass)
}

fn io_through_pty(ctx: &mut Ctx) -> TestResult {
    let mut b = tty_bundle(ctx)?;
    b.args(&[
        "/bin/sh",
        "-c",
        "echo ready-$((6*7)); read line; echo \"got:$line\" > /out/echo; exec /oci-helper hold",
    ]);
    b.write_config()?;
    let bundle = b.dir.display().to_string();
    let (master, _) = with_console(ctx, &["create", "--bundle", &bundle], &[&b.id])?;
    ctx.start(&b.id)?;
    let mut m = std::fs::File::from(master);
    read_until(&mut m, "ready-42")?;
    m.write_all(b"ping\n")?;
    let echo = ctx.wait_out_file(&b, "echo", |t| t.contains('\n'))?;
    ensure!(
        echo.trim() == "got:ping",
        "the container read {echo:?} from its terminal"
    );
    Ok(Outcome::Pass)
}

fn console_size(ctx: &mut Ctx) -> TestResult {
    let mut b = tty_bundle(ctx)?;
    b.spec["process"]["consoleSize"] = json!({"height": 33, "width": 111});
    b.write_config()?;
    let bundle = b.dir.display().to_string();
    let (_master, _) = with_console(ctx, &["create", "--bundle", &bundle], &[&b.id])?;
    ctx.start(&b.id)?;
    let r = ctx.wait_report(&b, "report")?;
    let t = &r.0["tty"];
    ensure!(
        t["rows"] == 33 && t["cols"] == 111,
        "terminal size is {}x{}, expected 33x111",
        t["rows"],
        t["cols"]
    );
    Ok(Outcome::Pass)
}

fn without_console_socket_fails(ctx: &mut Ctx) -> TestResult {
    let b = tty_bundle(ctx)?;
    b.write_config()?;
    let bundle = b.dir.display().to_string();
    ctx.rt(&["create", "--bundle", &bundle, &b.id])?
        .runc_error()?;
    super::assert_nothing_left(ctx, &b)?;
    Ok(Outcome::Pass)
}

fn exec_tty(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    ctx.launch_report(&b)?;
    let (master, _) = with_console(
        ctx,
        &["exec", "--tty", "--detach"],
        &[
            &b.id,
            "/oci-helper",
            "report",
            "--out",
            "/out/exec.json",
            "--hold",
        ],
    )?;
    ensure!(
        is_pty_master(&master),
        "exec sent something that is not a pty master"
    );
    let r = ctx.wait_report(&b, "exec")?;
    check_tty_report(&r)?;
    Ok(Outcome::Pass)
}
