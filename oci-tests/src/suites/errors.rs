//! Bad input and operations in the wrong state: a clear message, runc's
//! exit status (1), and nothing half-made.

use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use serde_json::json;

use super::{assert_nothing_left, create_must_fail};
use crate::ctx::{short, Ctx};
use crate::harness::{Outcome, TestDef, TestResult};

pub fn register(t: &mut Vec<TestDef>) {
    t.push(TestDef::new("errors.invalid_json", invalid_json));
    t.push(TestDef::new("errors.wrong_field_type", wrong_field_type));
    t.push(TestDef::new(
        "errors.unknown_fields_ignored",
        unknown_fields_ignored,
    ));
    t.push(TestDef::new(
        "errors.missing_root_field",
        missing_root_field,
    ));
    t.push(TestDef::new("errors.empty_args", empty_args));
    t.push(TestDef::new("errors.missing_rootfs", missing_rootfs));
    t.push(TestDef::new("errors.missing_bundle", missing_bundle));
    t.push(TestDef::new("errors.missing_config", missing_config));
    t.push(TestDef::new(
        "errors.missing_executable",
        missing_executable,
    ));
    t.push(TestDef::new("errors.duplicate_id", duplicate_id));
    t.push(TestDef::new("errors.create_without_id", create_without_id));
    t.push(TestDef::new("errors.unknown_command", unknown_command));
    for (label, id) in [
        ("slash", "a/b"),
        ("dotdot_path", "../escape"),
        ("dotdot", ".."),
        ("dot", "."),
        ("empty", ""),
    ] {
        t.push(TestDef::closure(
            format!("errors.invalid_id_{label}"),
            move |ctx| invalid_id(ctx, id),
        ));
    }
    for cmd in [
        "start", "state", "kill", "delete", "pause", "resume", "exec", "ps", "events", "update",
    ] {
        t.push(TestDef::closure(
            format!("errors.unknown_id_{cmd}"),
            move |ctx| unknown_id(ctx, cmd),
        ));
    }
    t.push(TestDef::new(
        "errors.delete_force_unknown_id",
        delete_force_unknown_id,
    ));
    t.push(TestDef::new("errors.start_running", start_running));
    t.push(TestDef::new("errors.start_stopped", start_stopped));
    t.push(TestDef::new(
        "errors.delete_running_without_force",
        delete_running_without_force,
    ));
    t.push(TestDef::new("errors.kill_stopped", kill_stopped));
    t.push(TestDef::new("errors.pause_stopped", pause_stopped));
    t.push(TestDef::new("errors.resume_running", resume_running));
    t.push(TestDef::new("errors.exec_stopped", exec_stopped));
    t.push(TestDef::new("errors.sigkill_create_then_delete_force", sigkill_create).serial());
}

fn invalid_json(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    b.write_config()?;
    std::fs::write(
        b.dir.join("config.json"),
        "{\"ociVersion\": \"1.0.2\", \"process\": ",
    )?;
    let bundle = b.dir.display().to_string();
    ctx.rt(&["create", "--bundle", &bundle, &b.id])?
        .runc_error()?;
    assert_nothing_left(ctx, &b)?;
    Ok(Outcome::Pass)
}

fn wrong_field_type(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.spec["process"]["args"] = json!("/oci-helper report");
    b.write_config()?;
    create_must_fail(ctx, &b)?;
    Ok(Outcome::Pass)
}

fn unknown_fields_ignored(ctx: &mut Ctx) -> TestResult {
    // The spec: runtimes MUST ignore unknown properties.
    let mut b = ctx.bundle()?;
    b.spec["org.oci-tests.unknown"] = json!({"nested": [1, 2]});
    b.spec["process"]["org.oci-tests.unknown"] = json!(true);
    b.spec["linux"]["org.oci-tests.unknown"] = json!("x");
    ctx.launch_report(&b)?;
    Ok(Outcome::Pass)
}

fn missing_root_field(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.spec.as_object_mut().context("spec")?.remove("root");
    b.write_config()?;
    create_must_fail(ctx, &b)?;
    Ok(Outcome::Pass)
}

fn empty_args(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.spec["process"]["args"] = json!([]);
    b.write_config()?;
    create_must_fail(ctx, &b)?;
    Ok(Outcome::Pass)
}

fn missing_rootfs(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.spec["root"]["path"] = json!("no-such-rootfs");
    b.write_config()?;
    create_must_fail(ctx, &b)?;
    Ok(Outcome::Pass)
}

fn missing_bundle(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    let missing = ctx.dir.join("no-such-bundle").display().to_string();
    ctx.rt(&["create", "--bundle", &missing, &b.id])?
        .runc_error()?;
    assert_nothing_left(ctx, &b)?;
    Ok(Outcome::Pass)
}

fn missing_config(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    let _ = std::fs::remove_file(b.dir.join("config.json"));
    let bundle = b.dir.display().to_string();
    ctx.rt(&["create", "--bundle", &bundle, &b.id])?
        .runc_error()?;
    assert_nothing_left(ctx, &b)?;
    Ok(Outcome::Pass)
}

fn missing_executable(ctx: &mut Ctx) -> TestResult {
    // The process cannot be found: create (runc checks it) or start fails,
    // and the container does not end up running.
    let mut b = ctx.bundle()?;
    b.args(&["/no/such/program"]);
    b.write_config()?;
    let bundle = b.dir.display().to_string();
    let out = ctx.rt(&["create", "--bundle", &bundle, &b.id])?;
    if out.success() {
        ctx.rt(&["start", &b.id])?
            .runc_error()
            .context("start of a missing program")?;
        let st = ctx.rt(&["state", &b.id])?;
        ensure!(
            !st.stdout.contains("\"running\""),
            "the container claims to run a missing program"
        );
    } else {
        out.runc_error()?;
        assert_nothing_left(ctx, &b)?;
    }
    Ok(Outcome::Pass)
}

fn duplicate_id(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    ctx.create(&b)?;
    let pid = ctx.pid(&b.id)?;
    let other = ctx.bundle()?;
    other.write_config()?;
    let bundle = other.dir.display().to_string();
    let out = ctx
        .rt(&["create", "--bundle", &bundle, &b.id])?
        .runc_error()?;
    drop(out);
    let st = ctx.state(&b.id)?;
    ensure!(
        st["status"] == "created" && st["pid"] == pid,
        "the first container changed after a duplicate create: {st}"
    );
    ensure!(
        st["bundle"].as_str() == b.dir.to_str(),
        "the duplicate create replaced the bundle: {}",
        st["bundle"]
    );
    ctx.start(&b.id)?;
    ctx.wait_report(&b, "report")?;
    Ok(Outcome::Pass)
}

fn create_without_id(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    b.write_config()?;
    let bundle = b.dir.display().to_string();
    let out = ctx.rt(&["create", "--bundle", &bundle])?;
    ensure!(!out.success(), "create without an id succeeded");
    ensure!(
        !out.stderr.trim().is_empty(),
        "create without an id gave no message"
    );
    Ok(Outcome::Pass)
}

fn unknown_command(ctx: &mut Ctx) -> TestResult {
    let out = ctx.rt(&["no-such-command"])?;
    ensure!(!out.success(), "an unknown command succeeded");
    ensure!(
        !(out.stderr.trim().is_empty() && out.stdout.trim().is_empty()),
        "an unknown command gave no message"
    );
    Ok(Outcome::Pass)
}

fn invalid_id(ctx: &mut Ctx, id: &str) -> TestResult {
    let b = ctx.bundle()?;
    b.write_config()?;
    let bundle = b.dir.display().to_string();
    ctx.rt(&["create", "--bundle", &bundle, id])?
        .runc_error()
        .with_context(|| format!("create with the invalid id {id:?}"))?;
    // Nothing may appear beside or above the state directory.
    let escape = ctx.dir.join("escape");
    ensure!(
        !escape.exists(),
        "the id {id:?} created {}",
        escape.display()
    );
    let list = ctx.rt(&["list", "-q"])?.ok()?;
    ensure!(
        list.stdout.trim().is_empty(),
        "list shows {:?}",
        short(&list.stdout)
    );
    let procs = crate::host::processes_referencing(&b.dir, std::slice::from_ref(&b.rootfs), "");
    ensure!(
        procs.is_empty(),
        "processes of the refused container run: {procs:?}"
    );
    Ok(Outcome::Pass)
}

fn unknown_id(ctx: &mut Ctx, cmd: &str) -> TestResult {
    let id = "oci-tests-no-such-container";
    let args: Vec<&str> = match cmd {
        "exec" => vec!["exec", id, "/bin/true"],
        "kill" => vec!["kill", id, "KILL"],
        "update" => vec!["update", "--pids-limit", "10", id],
        "events" => vec!["events", "--stats", id],
        c => vec![c, id],
    };
    let out = if cmd == "exec" {
        ctx.rt(&args)?.runc_exec_error()?
    } else {
        ctx.rt(&args)?.runc_error()?
    };
    let msg = out.stderr.to_lowercase();
    ensure!(
        msg.contains(id)
            || msg.contains("not exist")
            || msg.contains("not found")
            || msg.contains("no such"),
        "the message does not say the container is unknown: {:?}",
        short(&out.stderr)
    );
    Ok(Outcome::Pass)
}

fn delete_force_unknown_id(ctx: &mut Ctx) -> TestResult {
    // runc: forced delete of something already gone is not an error, so
    // cleanup paths can call it blindly.
    let out = ctx.rt(&["delete", "--force", "oci-tests-no-such-container"])?;
    ensure!(
        out.success(),
        "delete --force of an unknown id failed: {}",
        out.stderr.trim()
    );
    Ok(Outcome::Pass)
}

fn start_running(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    ctx.launch_report(&b)?;
    ctx.rt(&["start", &b.id])?.runc_error()?;
    ctx.wait_status(&b.id, "running")?;
    Ok(Outcome::Pass)
}

fn stopped_container(ctx: &mut Ctx) -> Result<String> {
    let mut b = ctx.bundle()?;
    b.args(&["/oci-helper", "exit", "0"]);
    ctx.launch(&b)?;
    ctx.wait_status(&b.id, "stopped")?;
    Ok(b.id)
}

fn start_stopped(ctx: &mut Ctx) -> TestResult {
    let id = stopped_container(ctx)?;
    ctx.rt(&["start", &id])?.runc_error()?;
    ctx.wait_status(&id, "stopped")?;
    Ok(Outcome::Pass)
}

fn delete_running_without_force(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    ctx.launch_report(&b)?;
    ctx.rt(&["delete", &b.id])?.runc_error()?;
    ctx.wait_status(&b.id, "running")?;
    Ok(Outcome::Pass)
}

fn kill_stopped(ctx: &mut Ctx) -> TestResult {
    let id = stopped_container(ctx)?;
    ctx.rt(&["kill", &id, "KILL"])?.runc_error()?;
    Ok(Outcome::Pass)
}

fn pause_stopped(ctx: &mut Ctx) -> TestResult {
    let id = stopped_container(ctx)?;
    ctx.rt(&["pause", &id])?.runc_error()?;
    ctx.wait_status(&id, "stopped")?;
    Ok(Outcome::Pass)
}

fn resume_running(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    ctx.launch_report(&b)?;
    ctx.rt(&["resume", &b.id])?.runc_error()?;
    ctx.wait_status(&b.id, "running")?;
    Ok(Outcome::Pass)
}

fn exec_stopped(ctx: &mut Ctx) -> TestResult {
    let id = stopped_container(ctx)?;
    ctx.rt(&["exec", &id, "/bin/true"])?.runc_exec_error()?;
    Ok(Outcome::Pass)
}

/// SIGKILLs `create` at growing delays; after each, `delete --force` must
/// succeed and leave no state, cgroup or process behind.
fn sigkill_create(ctx: &mut Ctx) -> TestResult {
    // Measure one full create to spread the kill points over it.
    let probe = ctx.bundle()?;
    let t0 = Instant::now();
    ctx.create(&probe)?;
    let full = t0.elapsed();
    ctx.rt(&["delete", "--force", &probe.id])?.ok()?;
    let steps = 12u32;
    let mut finished_early = 0;
    for i in 0..=steps {
        let delay = full * i / steps;
        let b = ctx.bundle()?;
        b.write_config()?;
        let bundle = b.dir.display().to_string();
        let (mut child, _, _): (Child, _, _) =
            ctx.cmd(&["create", "--bundle", &bundle, &b.id]).spawn()?;
        std::thread::sleep(delay);
        let already = child.try_wait()?.is_some();
        if already {
            finished_early += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
        let out = ctx
            .rt(&["delete", "--force", &b.id])?
            .ok()
            .with_context(|| format!("after SIGKILL of create at {delay:?}"))?;
        drop(out);
        // Give orphaned runtime children a moment to notice and exit.
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            match assert_nothing_left(ctx, &b) {
                Ok(()) => break,
                Err(e) if Instant::now() > deadline => {
                    return Err(e.context(format!(
                        "after SIGKILL of create at {delay:?} and delete --force"
                    )))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
    ensure!(
        finished_early < steps,
        "create always finished before the kill; the test did not exercise anything"
    );
    Ok(Outcome::Pass)
}
