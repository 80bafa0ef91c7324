//! kill.*: signal names and numbers (real-time ones too), the default
//! signal, --all, created containers, bad signals.

use std::time::Duration;

use anyhow::{ensure, Result};

use crate::ctx::{wait_for, Bundle, Ctx, WAIT};
use crate::harness::{Outcome, TestDef, TestResult};

pub fn register(t: &mut Vec<TestDef>) {
    t.push(TestDef::new("kill.default_is_sigterm", |c| {
        delivered(c, None, 15)
    }));
    t.push(TestDef::new("kill.signal_number", |c| {
        delivered(c, Some("10"), 10)
    }));
    t.push(TestDef::new("kill.signal_name", |c| {
        delivered(c, Some("SIGUSR1"), 10)
    }));
    t.push(TestDef::new("kill.signal_name_without_sig", |c| {
        delivered(c, Some("USR2"), 12)
    }));
    t.push(TestDef::new("kill.signal_name_lowercase", |c| {
        delivered(c, Some("sighup"), 1)
    }));
    t.push(TestDef::new("kill.rt_signal_number", |c| {
        delivered(c, Some("37"), 37)
    }));
    t.push(TestDef::new("kill.rt_signal_number_max", |c| {
        delivered(c, Some("64"), 64)
    }));
    t.push(TestDef::new("kill.rt_signal_name", |c| {
        delivered(c, Some("SIGRTMIN+3"), 37)
    }));
    t.push(TestDef::new("kill.rt_signal_name_max", |c| {
        delivered(c, Some("SIGRTMAX"), 64)
    }));
    t.push(TestDef::new(
        "kill.invalid_signal_fails",
        invalid_signal_fails,
    ));
    t.push(TestDef::new("kill.created_container", created_container));
    t.push(TestDef::new("kill.all_processes", all_processes));
    t.push(TestDef::new(
        "kill.without_all_only_init",
        without_all_only_init,
    ));
}

/// A container whose init records the signals it gets.
fn signal_recorder(ctx: &mut Ctx) -> Result<Bundle> {
    let mut b = ctx.bundle()?;
    b.args(&["/oci-helper", "signals", "--out", "/out/signals"]);
    ctx.launch(&b)?;
    ctx.wait_out_file(&b, "signals", |t| t.starts_with("ready"))?;
    Ok(b)
}

fn delivered(ctx: &mut Ctx, sig: Option<&str>, want: u32) -> TestResult {
    let b = signal_recorder(ctx)?;
    let mut args = vec!["kill", b.id.as_str()];
    if let Some(s) = sig {
        args.push(s);
    }
    ctx.rt(&args)?.ok()?;
    let text = ctx
        .wait_out_file(&b, "signals", |t| t.lines().count() > 1)
        .map_err(|_| {
            anyhow::anyhow!(
                "the container received no signal after `kill {}`",
                sig.unwrap_or("")
            )
        })?;
    let got: Vec<&str> = text.lines().skip(1).collect();
    ensure!(
        got == [want.to_string()],
        "the container received signals {got:?}, expected [{want}]"
    );
    Ok(Outcome::Pass)
}

fn invalid_signal_fails(ctx: &mut Ctx) -> TestResult {
    let b = signal_recorder(ctx)?;
    for bad in ["SIGNOPE", "65", "-1"] {
        ctx.rt(&["kill", &b.id, bad])?.runc_error()?;
    }
    ctx.wait_status(&b.id, "running")?;
    std::thread::sleep(Duration::from_millis(100));
    let text = std::fs::read_to_string(b.out_file("signals"))?;
    ensure!(
        text.lines().count() == 1,
        "an invalid signal was delivered: {text:?}"
    );
    Ok(Outcome::Pass)
}

fn created_container(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    ctx.create(&b)?;
    ctx.rt(&["kill", &b.id, "KILL"])?.ok()?;
    ctx.wait_status(&b.id, "stopped")?;
    ensure!(
        !b.out_file("report.json").exists(),
        "the killed created container ran its process"
    );
    Ok(Outcome::Pass)
}

/// init (pid 1, no handler: ignores SIGTERM) plus two exec'd sleeps.
fn init_and_children(ctx: &mut Ctx) -> Result<(Bundle, Vec<i32>)> {
    let mut b = ctx.bundle()?;
    b.args(&["/oci-helper", "hold"]);
    ctx.launch(&b)?;
    let init = ctx.pid(&b.id)?;
    for _ in 0..2 {
        ctx.rt(&["exec", "--detach", &b.id, "/bin/sleep", "1000"])?
            .ok()?;
    }
    let procs = wait_for(WAIT, || {
        let mut all = Vec::new();
        for d in ctx.env.layout.existing_dirs(&b.cgroup_path()) {
            all.extend(crate::host::cgroup_procs(&d));
        }
        all.sort_unstable();
        all.dedup();
        Ok((all.len() >= 3).then_some(all))
    })?
    .ok_or_else(|| {
        anyhow::anyhow!("the exec'd processes did not show up in the container's cgroup")
    })?;
    Ok((b, procs.into_iter().filter(|p| *p != init).collect()))
}

fn all_processes(ctx: &mut Ctx) -> TestResult {
    let (b, children) = init_and_children(ctx)?;
    ctx.rt(&["kill", "--all", &b.id, "TERM"])?.ok()?;
    let gone = wait_for(WAIT, || {
        Ok(children
            .iter()
            .all(|p| !super::lifecycle::process_alive(*p))
            .then_some(()))
    })?;
    ensure!(
        gone.is_some(),
        "kill --all TERM left the exec'd processes {children:?} running"
    );
    Ok(Outcome::Pass)
}

fn without_all_only_init(ctx: &mut Ctx) -> TestResult {
    let (b, children) = init_and_children(ctx)?;
    ctx.rt(&["kill", &b.id, "TERM"])?.ok()?;
    std::thread::sleep(Duration::from_millis(300));
    let alive: Vec<i32> = children
        .iter()
        .copied()
        .filter(|p| super::lifecycle::process_alive(*p))
        .collect();
    ensure!(
        alive.len() == children.len(),
        "kill without --all signalled other processes too"
    );
    ctx.wait_status(&b.id, "running")?;
    Ok(Outcome::Pass)
}
