//! exec.*: a new process in a running container, with its options.

use anyhow::{ensure, Context};
use serde_json::json;

use super::{cap_mask, exec_report};
use crate::ctx::{Bundle, Ctx, Report};
use crate::harness::{Outcome, TestDef, TestResult};

pub fn register(t: &mut Vec<TestDef>) {
    t.push(TestDef::new("exec.joins_namespaces", joins_namespaces));
    t.push(TestDef::new("exec.joins_cgroup", joins_cgroup));
    t.push(TestDef::new(
        "exec.stdout_and_exit_status",
        stdout_and_exit_status,
    ));
    t.push(TestDef::new("exec.env", env));
    t.push(TestDef::new("exec.cwd", cwd));
    t.push(TestDef::new("exec.user", user));
    t.push(TestDef::new("exec.cap", cap));
    t.push(TestDef::new("exec.no_new_privs", no_new_privs));
    t.push(TestDef::new("exec.process_file", process_file));
    t.push(TestDef::new(
        "exec.process_file_invalid",
        process_file_invalid,
    ));
    t.push(TestDef::new("exec.detach_pid_file", detach_pid_file));
}

fn running(ctx: &mut Ctx) -> anyhow::Result<(Bundle, Report)> {
    let b = ctx.bundle()?;
    let r = ctx.launch_report(&b)?;
    Ok((b, r))
}

fn joins_namespaces(ctx: &mut Ctx) -> TestResult {
    let (b, init) = running(ctx)?;
    let r = exec_report(ctx, &b.id, &[], &[])?;
    for ns in ["pid", "net", "ipc", "uts", "mnt", "cgroup"] {
        ensure!(
            r.ns(ns)? == init.ns(ns)?,
            "exec runs in another {ns} namespace than the container"
        );
    }
    ensure!(r.0["pid"] != 1, "the exec'd process is pid 1");
    Ok(Outcome::Pass)
}

fn joins_cgroup(ctx: &mut Ctx) -> TestResult {
    let (b, _) = running(ctx)?;
    let (child, _, _) = ctx.cmd(&["exec", &b.id, "/oci-helper", "hold"]).spawn()?;
    ctx.track_child(child);
    let pid = ctx.pid(&b.id)?;
    let got = crate::ctx::wait_for(crate::ctx::WAIT, || {
        let mut n = 0;
        for d in ctx.env.layout.existing_dirs(&b.cgroup_path()) {
            let p = crate::host::cgroup_procs(&d);
            if p.iter().any(|x| *x != pid) {
                n += 1;
            }
        }
        Ok((n > 0).then_some(n))
    })?;
    ensure!(
        got.is_some(),
        "the exec'd process did not join the container's cgroup"
    );
    Ok(Outcome::Pass)
}

fn stdout_and_exit_status(ctx: &mut Ctx) -> TestResult {
    let (b, _) = running(ctx)?;
    let out = ctx.rt(&["exec", &b.id, "/bin/sh", "-c", "echo exec-out; exit 5"])?;
    ensure!(
        out.code == Some(5),
        "exec returned {}, expected the process's 5",
        out.describe_exit()
    );
    ensure!(
        out.stdout.contains("exec-out"),
        "exec stdout was {:?}",
        out.stdout
    );
    Ok(Outcome::Pass)
}

fn env(ctx: &mut Ctx) -> TestResult {
    let (b, _) = running(ctx)?;
    let r = exec_report(ctx, &b.id, &["--env", "EXTRA=one two"], &[])?;
    let env = r.env();
    ensure!(
        env.iter().any(|e| e == "EXTRA=one two"),
        "--env missing: {env:?}"
    );
    ensure!(
        env.iter().any(|e| e == "TERM=xterm"),
        "the config's env is missing: {env:?}"
    );
    Ok(Outcome::Pass)
}

fn cwd(ctx: &mut Ctx) -> TestResult {
    let (b, _) = running(ctx)?;
    let r = exec_report(ctx, &b.id, &["--cwd", "/tmp"], &[])?;
    ensure!(
        r.str("cwd")? == "/tmp",
        "exec --cwd /tmp ran in {}",
        r.str("cwd")?
    );
    Ok(Outcome::Pass)
}

fn user(ctx: &mut Ctx) -> TestResult {
    let (b, _) = running(ctx)?;
    let r = exec_report(ctx, &b.id, &["--user", "1000:2000"], &[])?;
    ensure!(
        r.status_fields("Uid")?.iter().all(|u| u == "1000"),
        "uid is {}",
        r.status("Uid")?
    );
    ensure!(
        r.status_fields("Gid")?.iter().all(|g| g == "2000"),
        "gid is {}",
        r.status("Gid")?
    );
    Ok(Outcome::Pass)
}

fn cap(ctx: &mut Ctx) -> TestResult {
    let (b, _) = running(ctx)?;
    let r = exec_report(ctx, &b.id, &["--cap", "CAP_SYS_ADMIN"], &[])?;
    let want = cap_mask(&["CAP_SYS_ADMIN"])?;
    for set in ["CapBnd", "CapEff", "CapPrm"] {
        ensure!(
            r.cap_set(set)? & want != 0,
            "exec --cap CAP_SYS_ADMIN: {set} lacks it"
        );
    }
    let base = exec_report(ctx, &b.id, &[], &[])?;
    ensure!(
        base.cap_set("CapEff")? & want == 0,
        "CAP_SYS_ADMIN is there even without --cap"
    );
    Ok(Outcome::Pass)
}

fn no_new_privs(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.spec["process"]["noNewPrivileges"] = json!(false);
    ctx.launch_report(&b)?;
    let r = exec_report(ctx, &b.id, &["--no-new-privs"], &[])?;
    ensure!(
        r.status("NoNewPrivs")? == "1",
        "exec --no-new-privs: NoNewPrivs is {}",
        r.status("NoNewPrivs")?
    );
    let r = exec_report(ctx, &b.id, &[], &[])?;
    ensure!(
        r.status("NoNewPrivs")? == "0",
        "NoNewPrivs is set without --no-new-privs"
    );
    Ok(Outcome::Pass)
}

fn process_file(ctx: &mut Ctx) -> TestResult {
    let (b, _) = running(ctx)?;
    let p = json!({
        "terminal": false,
        "user": {"uid": 1000, "gid": 1000, "additionalGids": [2000]},
        "args": ["/oci-helper", "report", "--", "from-process-file"],
        "env": ["PATH=/bin", "FROM_FILE=1"],
        "cwd": "/home/tester",
        "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
        "noNewPrivileges": true
    });
    let f = ctx.dir.join("process.json");
    std::fs::write(&f, serde_json::to_vec(&p)?)?;
    let out = ctx
        .rt(&["exec", "--process", &f.display().to_string(), &b.id])?
        .ok()?;
    let r = Report::parse(&out.stdout)?;
    ensure!(
        r.0["args"][3] == "from-process-file",
        "argv is {}",
        r.0["args"]
    );
    ensure!(
        r.env().iter().any(|e| e == "FROM_FILE=1"),
        "env is {:?}",
        r.env()
    );
    ensure!(r.str("cwd")? == "/home/tester", "cwd is {}", r.str("cwd")?);
    ensure!(
        r.status_fields("Uid")?.iter().all(|u| u == "1000"),
        "uid is {}",
        r.status("Uid")?
    );
    ensure!(
        r.status_fields("Groups")? == ["2000"],
        "groups are {}",
        r.status("Groups")?
    );
    ensure!(
        r.cap_set("CapBnd")? == cap_mask(&["CAP_KILL"])?,
        "bounding set is {}",
        r.status("CapBnd")?
    );
    ensure!(
        r.status("NoNewPrivs")? == "1",
        "NoNewPrivs is {}",
        r.status("NoNewPrivs")?
    );
    Ok(Outcome::Pass)
}

fn process_file_invalid(ctx: &mut Ctx) -> TestResult {
    let (b, _) = running(ctx)?;
    let f = ctx.dir.join("process.json");
    std::fs::write(&f, "{\"args\": [")?;
    ctx.rt(&["exec", "--process", &f.display().to_string(), &b.id])?
        .runc_exec_error()?;
    ctx.wait_status(&b.id, "running")?;
    Ok(Outcome::Pass)
}

fn detach_pid_file(ctx: &mut Ctx) -> TestResult {
    let (b, _) = running(ctx)?;
    let pf = ctx.dir.join("exec.pid");
    ctx.rt(&[
        "exec",
        "--detach",
        "--pid-file",
        &pf.display().to_string(),
        &b.id,
        "/oci-helper",
        "report",
        "--out",
        "/out/exec.json",
        "--hold",
    ])?
    .ok()?;
    let pid: i32 = std::fs::read_to_string(&pf)
        .context("exec --pid-file was not written")?
        .trim()
        .parse()?;
    let r = ctx.wait_report(&b, "exec")?;
    let nspid = super::host_status(pid, "NSpid")?;
    let inner = nspid.split_whitespace().last().unwrap_or("");
    ensure!(
        r.0["pid"].as_i64().map(|p| p.to_string()).as_deref() == Some(inner),
        "the pid file's process {pid} (NSpid {nspid}) is not the exec'd one (pid {} inside)",
        r.0["pid"]
    );
    Ok(Outcome::Pass)
}
