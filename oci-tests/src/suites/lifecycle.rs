//! Lifecycle, state transitions and the state JSON.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

use crate::ctx::{short, wait_for, Ctx, WAIT};
use crate::harness::{Outcome, TestDef, TestResult};

pub fn register(t: &mut Vec<TestDef>) {
    t.push(TestDef::new(
        "lifecycle.create_gives_created",
        create_gives_created,
    ));
    t.push(TestDef::new(
        "lifecycle.create_does_not_run_process",
        create_does_not_run_process,
    ));
    t.push(TestDef::new(
        "lifecycle.start_runs_process",
        start_runs_process,
    ));
    t.push(TestDef::new(
        "lifecycle.stopped_after_exit",
        stopped_after_exit,
    ));
    t.push(TestDef::new(
        "lifecycle.delete_stopped_removes",
        delete_stopped_removes,
    ));
    t.push(TestDef::new("lifecycle.delete_created", delete_created));
    t.push(TestDef::new(
        "lifecycle.state_json_fields",
        state_json_fields,
    ));
    t.push(TestDef::new(
        "lifecycle.state_annotations",
        state_annotations,
    ));
    t.push(TestDef::new(
        "lifecycle.state_bundle_absolute",
        state_bundle_absolute,
    ));
    t.push(TestDef::new(
        "lifecycle.bundle_defaults_to_cwd",
        bundle_defaults_to_cwd,
    ));
    t.push(TestDef::new("lifecycle.pid_file", pid_file));
    t.push(TestDef::new("lifecycle.run_exit_status", run_exit_status));
    t.push(TestDef::new(
        "lifecycle.run_signal_status",
        run_signal_status,
    ));
    t.push(TestDef::new(
        "lifecycle.run_stdio_passthrough",
        run_stdio_passthrough,
    ));
    t.push(TestDef::new(
        "lifecycle.run_removes_container",
        run_removes_container,
    ));
    t.push(TestDef::new("lifecycle.run_detach", run_detach));
    t.push(TestDef::new(
        "lifecycle.create_stdio_inherited",
        create_stdio_inherited,
    ));
    t.push(TestDef::new("lifecycle.pause_resume", pause_resume));
    t.push(TestDef::new(
        "lifecycle.delete_force_paused",
        delete_force_paused,
    ));
    t.push(TestDef::new(
        "lifecycle.delete_after_process_killed",
        delete_after_process_killed,
    ));
    t.push(TestDef::new(
        "lifecycle.delete_force_cgroup_gone",
        delete_force_cgroup_gone,
    ));
    t.push(TestDef::new(
        "lifecycle.delete_removes_cgroup",
        delete_removes_cgroup,
    ));
    t.push(TestDef::new("lifecycle.create_no_pivot", create_no_pivot));
    t.push(TestDef::new("lifecycle.new_session_keyring", |c| {
        session_keyring(c, false)
    }));
    t.push(TestDef::new("lifecycle.create_no_new_keyring", |c| {
        session_keyring(c, true)
    }));
    t.push(TestDef::new("lifecycle.debug_log", debug_log));
}

fn create_no_pivot(ctx: &mut Ctx) -> TestResult {
    // --no-pivot (chroot-style root, for ramdisk roots): the container
    // still runs in its own root.
    let mut b = ctx.bundle()?;
    b.report_args("report", &["--read", "/etc/hostname"]);
    ctx.create_with(&b, &["--no-pivot"])?;
    ctx.start(&b.id)?;
    let r = ctx.wait_report(&b, "report")?;
    let h = r.read_ok("/etc/hostname")?;
    ensure!(
        h == "oci-tests\n",
        "with --no-pivot /etc/hostname is not the bundle's: {h:?}"
    );
    Ok(Outcome::Pass)
}

fn session_keyring(ctx: &mut Ctx, no_new: bool) -> TestResult {
    let b = ctx.bundle()?;
    let extra: &[&str] = if no_new { &["--no-new-keyring"] } else { &[] };
    ctx.create_with(&b, extra)?;
    ctx.start(&b.id)?;
    let r = ctx.wait_report(&b, "report")?;
    let mine = crate::host::session_keyring();
    let theirs = r.0["session_keyring"].as_i64();
    if no_new {
        ensure!(
            theirs == mine,
            "with --no-new-keyring the session keyring is {}, the runtime's caller has {mine:?}",
            r.0["session_keyring"]
        );
    } else {
        ensure!(
            theirs.is_some() && theirs != mine,
            "the container did not get a session keyring of its own ({} vs the caller's {mine:?})",
            r.0["session_keyring"]
        );
    }
    Ok(Outcome::Pass)
}

fn debug_log(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    b.write_config()?;
    let log = ctx.dir.join("debug.log").display().to_string();
    let bundle = b.dir.display().to_string();
    ctx.cmd(&["create", "--bundle", &bundle, &b.id])
        .global(&["--debug", "--log", &log, "--log-format", "json"])
        .run()?
        .ok()?;
    let text = std::fs::read_to_string(&log).context("--log was not written")?;
    let debug_lines = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["level"] == "debug")
        .count();
    ensure!(
        debug_lines > 0,
        "--debug wrote no debug-level line to the log: {}",
        short(&text)
    );
    Ok(Outcome::Pass)
}

fn create_gives_created(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    ctx.create(&b)?;
    let st = ctx.state(&b.id)?;
    ensure!(
        st["status"] == "created",
        "status after create is {}",
        st["status"]
    );
    let pid = st["pid"]
        .as_i64()
        .context("state has no pid after create")?;
    ensure!(pid > 0, "pid after create is {pid}");
    ensure!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "state pid {pid} is not a live process"
    );
    Ok(Outcome::Pass)
}

fn create_does_not_run_process(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    ctx.create(&b)?;
    std::thread::sleep(Duration::from_millis(300));
    ensure!(
        !b.out_file("report.json").exists(),
        "the user process ran before `start`"
    );
    ctx.start(&b.id)?;
    ctx.wait_report(&b, "report")?;
    Ok(Outcome::Pass)
}

fn start_runs_process(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    let r = ctx.launch_report(&b)?;
    ctx.wait_status(&b.id, "running")?;
    ensure!(
        r.0["pid"] == 1,
        "the process is pid {} in its pid namespace, not 1",
        r.0["pid"]
    );
    let pid = ctx.pid(&b.id)?;
    let host_ns = crate::ctx::host_namespaces();
    let ns = crate::host::namespaces_of(&pid.to_string());
    ensure!(
        ns.get("pid") != host_ns.get("pid"),
        "state pid {pid} is not in the container's pid namespace"
    );
    Ok(Outcome::Pass)
}

fn stopped_after_exit(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.args(&["/oci-helper", "exit", "0"]);
    ctx.launch(&b)?;
    ctx.wait_status(&b.id, "stopped")?;
    Ok(Outcome::Pass)
}

fn gone(ctx: &Ctx, id: &str) -> Result<()> {
    let st = ctx.rt(&["state", id])?;
    ensure!(
        !st.success(),
        "`state {id}` still works after delete: {}",
        short(&st.stdout)
    );
    let list = ctx.rt(&["list", "--format", "json"])?.ok()?;
    ensure!(
        !list.stdout.contains(&format!("\"{id}\"")),
        "`list` still shows {id}: {}",
        short(&list.stdout)
    );
    Ok(())
}

fn delete_stopped_removes(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.args(&["/oci-helper", "exit", "0"]);
    ctx.launch(&b)?;
    ctx.wait_status(&b.id, "stopped")?;
    ctx.rt(&["delete", &b.id])?.ok()?;
    gone(ctx, &b.id)?;
    Ok(Outcome::Pass)
}

fn delete_created(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    ctx.create(&b)?;
    let pid = ctx.pid(&b.id)?;
    ctx.rt(&["delete", &b.id])?.ok()?;
    gone(ctx, &b.id)?;
    let dead = wait_for(WAIT, || Ok((!process_alive(pid)).then_some(())))?;
    ensure!(
        dead.is_some(),
        "the created container's process {pid} survived delete"
    );
    Ok(Outcome::Pass)
}

pub fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit_once(')')
            .map(|(_, r)| r.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

fn state_json_fields(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    ctx.create(&b)?;
    let out = ctx.rt(&["state", &b.id])?.ok()?;
    let raw: Value = serde_json::from_str(&out.stdout).context("state output is not JSON")?;
    for key in ["ociVersion", "id", "status", "pid", "bundle"] {
        ensure!(
            !raw[key].is_null(),
            "state JSON lacks the required field {key}: {raw}"
        );
    }
    let st: oci_spec::runtime::State = serde_json::from_value(raw.clone())
        .context("state JSON does not match the runtime spec's schema")?;
    ensure!(st.id() == &b.id, "state id is {:?}", st.id());
    ensure!(!st.version().is_empty(), "state ociVersion is empty");
    ctx.start(&b.id)?;
    ctx.wait_status(&b.id, "running")?;
    Ok(Outcome::Pass)
}

fn state_annotations(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.spec["annotations"] = json!({"org.oci-tests.key": "value one", "org.oci-tests.empty": ""});
    ctx.create(&b)?;
    let st = ctx.state(&b.id)?;
    ensure!(
        st["annotations"]["org.oci-tests.key"] == "value one"
            && st["annotations"]["org.oci-tests.empty"] == "",
        "state annotations are {}, expected the config's",
        st["annotations"]
    );
    Ok(Outcome::Pass)
}

fn state_bundle_absolute(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    b.write_config()?;
    // The suite runs the runtime in the test directory: a relative bundle.
    let rel = b.dir.strip_prefix(&ctx.dir)?.display().to_string();
    ctx.rt(&["create", "--bundle", &rel, &b.id])?.ok()?;
    let st = ctx.state(&b.id)?;
    let want = b.dir.canonicalize()?;
    ensure!(
        st["bundle"].as_str().map(std::path::PathBuf::from) == Some(want.clone()),
        "state bundle is {}, expected the absolute path {}",
        st["bundle"],
        want.display()
    );
    Ok(Outcome::Pass)
}

fn bundle_defaults_to_cwd(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    b.write_config()?;
    let out = ctx.cmd(&["create", &b.id]).cwd(&b.dir).run()?.ok()?;
    drop(out);
    let st = ctx.state(&b.id)?;
    ensure!(
        st["bundle"].as_str().map(std::path::PathBuf::from) == Some(b.dir.canonicalize()?),
        "without --bundle the bundle should be the working directory; state says {}",
        st["bundle"]
    );
    Ok(Outcome::Pass)
}

fn pid_file(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    let pf = ctx.dir.join("container.pid");
    let pfs = pf.display().to_string();
    ctx.create_with(&b, &["--pid-file", &pfs])?;
    let text = std::fs::read_to_string(&pf).context("--pid-file was not written")?;
    let pid: i32 = text
        .trim()
        .parse()
        .with_context(|| format!("pid file holds {text:?}"))?;
    ensure!(
        pid == ctx.pid(&b.id)?,
        "pid file has {pid}, state has another pid"
    );
    Ok(Outcome::Pass)
}

fn run_foreground(ctx: &mut Ctx, args: &[&str]) -> Result<(crate::ctx::Out, String)> {
    let mut b = ctx.bundle()?;
    b.args(args);
    b.write_config()?;
    let bundle = b.dir.display().to_string();
    let out = ctx.rt(&["run", "--bundle", &bundle, &b.id])?;
    Ok((out, b.id.clone()))
}

fn run_exit_status(ctx: &mut Ctx) -> TestResult {
    let (out, _) = run_foreground(ctx, &["/oci-helper", "exit", "7"])?;
    ensure!(
        out.code == Some(7),
        "`run` gave {}, expected the process's exit status 7",
        out.describe_exit()
    );
    Ok(Outcome::Pass)
}

fn run_signal_status(ctx: &mut Ctx) -> TestResult {
    // Killed from the host: pid 1 of a namespace ignores its own SIGKILL.
    let mut b = ctx.bundle()?;
    b.args(&["/oci-helper", "hold"]);
    b.write_config()?;
    let bundle = b.dir.display().to_string();
    let pf = ctx.dir.join("run.pid");
    let pfs = pf.display().to_string();
    let (mut child, _, _) = ctx
        .cmd(&["run", "--pid-file", &pfs, "--bundle", &bundle, &b.id])
        .spawn()?;
    let pid = wait_for(WAIT, || {
        Ok(std::fs::read_to_string(&pf)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok()))
    })?;
    let Some(pid) = pid else {
        let _ = child.kill();
        let _ = child.wait();
        anyhow::bail!("`run --pid-file` never wrote the pid file");
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    let status = wait_for(WAIT, || Ok(child.try_wait()?))?;
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        anyhow::bail!("`run` did not return after its process was killed");
    };
    ensure!(
        status.code() == Some(137),
        "`run` of a process killed by SIGKILL exited {status}, expected status 137 (128+9)"
    );
    Ok(Outcome::Pass)
}

fn run_stdio_passthrough(ctx: &mut Ctx) -> TestResult {
    let (out, _) = run_foreground(
        ctx,
        &["/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2"],
    )?;
    let out = out.ok()?;
    ensure!(
        out.stdout.contains("to-stdout"),
        "stdout was {:?}",
        short(&out.stdout)
    );
    ensure!(
        out.stderr.contains("to-stderr"),
        "stderr was {:?}",
        short(&out.stderr)
    );
    Ok(Outcome::Pass)
}

fn run_removes_container(ctx: &mut Ctx) -> TestResult {
    let (out, id) = run_foreground(ctx, &["/oci-helper", "exit", "0"])?;
    out.ok()?;
    gone(ctx, &id)?;
    Ok(Outcome::Pass)
}

fn run_detach(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    b.write_config()?;
    let bundle = b.dir.display().to_string();
    let pf = ctx.dir.join("run.pid").display().to_string();
    ctx.rt(&[
        "run",
        "--detach",
        "--pid-file",
        &pf,
        "--bundle",
        &bundle,
        &b.id,
    ])?
    .ok()?;
    ctx.wait_report(&b, "report")?;
    ctx.wait_status(&b.id, "running")?;
    let pid: i32 = std::fs::read_to_string(&pf)?.trim().parse()?;
    ensure!(
        pid == ctx.pid(&b.id)?,
        "run --pid-file disagrees with state"
    );
    Ok(Outcome::Pass)
}

fn create_stdio_inherited(ctx: &mut Ctx) -> TestResult {
    // Without a terminal the process gets the runtime's own stdio.
    let mut b = ctx.bundle()?;
    b.args(&[
        "/bin/sh",
        "-c",
        "echo hello-from-container; exec /oci-helper hold",
    ]);
    let out = ctx.create(&b)?;
    drop(out);
    ctx.start(&b.id)?;
    let logs = ctx.dir.join("logs");
    let found = wait_for(WAIT, || {
        for e in std::fs::read_dir(&logs)?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with("-create.out")
                && std::fs::read_to_string(e.path())?.contains("hello-from-container")
            {
                return Ok(Some(()));
            }
        }
        Ok(None)
    })?;
    ensure!(
        found.is_some(),
        "the container's stdout did not reach the stdout `create` was given"
    );
    Ok(Outcome::Pass)
}

fn read_counter(path: &std::path::Path) -> Result<u64> {
    let t = std::fs::read_to_string(path)?;
    t.trim()
        .parse()
        .with_context(|| format!("counter file holds {t:?}"))
}

fn freezer_state(ctx: &Ctx, cg: &str) -> Result<String> {
    let l = &ctx.env.layout;
    if l.is_v2() {
        Ok(if l.read("", cg, "cgroup.freeze")? == "1" {
            "FROZEN".into()
        } else {
            "THAWED".into()
        })
    } else {
        l.read("freezer", cg, "freezer.state")
    }
}

fn pause_resume(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.args(&["/oci-helper", "count", "--out", "/out/count"]);
    ctx.launch(&b)?;
    let counter = b.out_file("count");
    ctx.wait_out_file(&b, "count", |t| {
        t.trim().parse::<u64>().map(|n| n > 2).unwrap_or(false)
    })?;
    ctx.rt(&["pause", &b.id])?.ok()?;
    ctx.wait_status(&b.id, "paused")?;
    let cg = b.cgroup_path();
    let fs = freezer_state(ctx, &cg)?;
    ensure!(
        fs == "FROZEN",
        "freezer state of a paused container is {fs}"
    );
    let a = read_counter(&counter)?;
    std::thread::sleep(Duration::from_millis(300));
    let c = read_counter(&counter)?;
    ensure!(
        a == c,
        "the paused process kept running (counter {a} -> {c})"
    );
    ctx.rt(&["resume", &b.id])?.ok()?;
    ctx.wait_status(&b.id, "running")?;
    let fs = freezer_state(ctx, &cg)?;
    ensure!(fs == "THAWED", "freezer state after resume is {fs}");
    let moved = wait_for(WAIT, || Ok((read_counter(&counter)? > c).then_some(())))?;
    ensure!(
        moved.is_some(),
        "the process did not run again after resume"
    );
    Ok(Outcome::Pass)
}

fn delete_force_paused(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    ctx.launch_report(&b)?;
    ctx.rt(&["pause", &b.id])?.ok()?;
    ctx.wait_status(&b.id, "paused")?;
    ctx.rt(&["delete", "--force", &b.id])?.ok()?;
    gone(ctx, &b.id)?;
    Ok(Outcome::Pass)
}

fn delete_after_process_killed(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    ctx.launch_report(&b)?;
    let pid = ctx.pid(&b.id)?;
    // Killed behind the runtime's back, as the OOM killer would.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    ctx.wait_status(&b.id, "stopped")?;
    ctx.rt(&["delete", &b.id])?.ok()?;
    gone(ctx, &b.id)?;
    Ok(Outcome::Pass)
}

fn delete_force_cgroup_gone(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    ctx.launch_report(&b)?;
    let pid = ctx.pid(&b.id)?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    ctx.wait_status(&b.id, "stopped")?;
    // Someone removed the (now empty) cgroup before delete.
    let dirs = ctx.env.layout.existing_dirs(&b.cgroup_path());
    let removed = wait_for(WAIT, || {
        Ok(dirs
            .iter()
            .all(|d| std::fs::remove_dir(d).is_ok() || !d.exists())
            .then_some(()))
    })?;
    ensure!(
        removed.is_some(),
        "could not remove the stopped container's cgroup"
    );
    ctx.rt(&["delete", "--force", &b.id])?.ok()?;
    gone(ctx, &b.id)?;
    Ok(Outcome::Pass)
}

fn delete_removes_cgroup(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    ctx.launch_report(&b)?;
    let cg = b.cgroup_path();
    ensure!(
        !ctx.env.layout.existing_dirs(&cg).is_empty(),
        "the running container has no cgroup at its cgroupsPath {cg}"
    );
    ctx.rt(&["delete", "--force", &b.id])?.ok()?;
    let left = ctx.env.layout.existing_dirs(&cg);
    ensure!(left.is_empty(), "delete left the cgroup: {left:?}");
    Ok(Outcome::Pass)
}
