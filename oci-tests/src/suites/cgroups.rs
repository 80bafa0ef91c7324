//! cgroups.*: limits from linux.resources as the host's cgroup files show
//! them (v1 or v2, whichever the host has), membership, the view from
//! inside, update, events and ps.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

use crate::ctx::{wait_for, Bundle, Ctx};
use crate::harness::{Outcome, TestDef, TestResult};

pub fn register(t: &mut Vec<TestDef>) {
    t.push(TestDef::new("cgroups.membership", membership));
    t.push(TestDef::new("cgroups.namespace_view", namespace_view));
    t.push(TestDef::new("cgroups.memory_limit", memory_limit));
    t.push(TestDef::new(
        "cgroups.memory_limit_inside",
        memory_limit_inside,
    ));
    t.push(TestDef::new(
        "cgroups.memory_reservation",
        memory_reservation,
    ));
    t.push(TestDef::new("cgroups.cpu_shares", cpu_shares));
    t.push(TestDef::new("cgroups.cpu_quota_period", cpu_quota_period));
    t.push(TestDef::new("cgroups.cpuset", cpuset));
    t.push(TestDef::new("cgroups.pids_limit", pids_limit));
    t.push(TestDef::new(
        "cgroups.pids_limit_enforced",
        pids_limit_enforced,
    ));
    t.push(TestDef::new("cgroups.update_flags", update_flags));
    t.push(TestDef::new(
        "cgroups.update_resources_file",
        update_resources_file,
    ));
    t.push(TestDef::new(
        "cgroups.update_resources_stdin",
        update_resources_stdin,
    ));
    t.push(TestDef::new("cgroups.events_stats", events_stats));
    t.push(TestDef::new("cgroups.events_interval", events_interval));
    t.push(TestDef::new("cgroups.ps_json", ps_json));
    t.push(TestDef::new("cgroups.ps_table", ps_table));
}

const MIB64: i64 = 64 << 20;

fn with_resources(ctx: &mut Ctx, res: Value) -> Result<Bundle> {
    let mut b = ctx.bundle()?;
    let obj = b.spec["linux"]["resources"]
        .as_object_mut()
        .context("resources")?;
    for (k, v) in res.as_object().context("resources json")? {
        obj.insert(k.clone(), v.clone());
    }
    Ok(b)
}

/// Reads a cgroup file of the container; v1 and v2 names are both given.
fn cg_read(ctx: &Ctx, b: &Bundle, controller: &str, v1: &str, v2: &str) -> Result<String> {
    let l = &ctx.env.layout;
    if l.is_v2() {
        l.read(controller, &b.cgroup_path(), v2)
    } else {
        l.read(controller, &b.cgroup_path(), v1)
    }
}

fn need_controller(ctx: &Ctx, controller: &str) -> Option<Outcome> {
    let l = &ctx.env.layout;
    if l.is_v2() {
        let ctrls =
            std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").unwrap_or_default();
        if !ctrls.split_whitespace().any(|c| c == controller) {
            return Some(Outcome::Skip(format!(
                "the host's cgroup v2 has no {controller} controller"
            )));
        }
    } else if l.dir(controller, "/").is_none() {
        return Some(Outcome::Skip(format!(
            "the host has no cgroup v1 {controller} controller"
        )));
    }
    None
}

fn membership(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    ctx.launch_report(&b)?;
    let pid = ctx.pid(&b.id)?;
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    let cg = b.cgroup_path();
    let lines: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _ = it.next()?;
            Some((it.next()?, it.next()?))
        })
        .collect();
    if ctx.env.layout.is_v2() {
        ensure!(
            lines.iter().any(|(c, p)| c.is_empty() && *p == cg),
            "the process is not in {cg}: {text}"
        );
    } else {
        for ctrl in ["memory", "pids", "cpu", "devices", "freezer"] {
            if ctx.env.layout.dir(ctrl, "/").is_none() {
                continue;
            }
            ensure!(
                lines
                    .iter()
                    .any(|(c, p)| c.split(',').any(|x| x == ctrl) && *p == cg),
                "the process is not in {cg} for the {ctrl} controller: {text}"
            );
        }
    }
    Ok(Outcome::Pass)
}

fn namespace_view(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    let r = ctx.launch_report(&b)?;
    let text = r.str("cgroup")?;
    for l in text.lines() {
        let path = l.splitn(3, ':').nth(2).unwrap_or("");
        ensure!(
            path == "/",
            "inside its cgroup namespace the process sees {l:?}, expected /"
        );
    }
    Ok(Outcome::Pass)
}

fn memory_limit(ctx: &mut Ctx) -> TestResult {
    if let Some(s) = need_controller(ctx, "memory") {
        return Ok(s);
    }
    let b = with_resources(ctx, json!({"memory": {"limit": MIB64}}))?;
    ctx.launch_report(&b)?;
    let v = cg_read(ctx, &b, "memory", "memory.limit_in_bytes", "memory.max")?;
    ensure!(
        v == MIB64.to_string(),
        "memory limit file says {v}, expected {MIB64}"
    );
    Ok(Outcome::Pass)
}

fn memory_limit_inside(ctx: &mut Ctx) -> TestResult {
    if let Some(s) = need_controller(ctx, "memory") {
        return Ok(s);
    }
    let mut b = with_resources(ctx, json!({"memory": {"limit": MIB64}}))?;
    let file = if ctx.env.layout.is_v2() {
        "/sys/fs/cgroup/memory.max"
    } else {
        "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    };
    b.report_args("report", &["--read", file]);
    let r = ctx.launch_report(&b)?;
    let v = r.read_ok(file)?;
    ensure!(v.trim() == MIB64.to_string(), "inside, {file} says {v:?}");
    Ok(Outcome::Pass)
}

fn memory_reservation(ctx: &mut Ctx) -> TestResult {
    if let Some(s) = need_controller(ctx, "memory") {
        return Ok(s);
    }
    let b = with_resources(
        ctx,
        json!({"memory": {"limit": MIB64, "reservation": 32 << 20}}),
    )?;
    ctx.launch_report(&b)?;
    let v = cg_read(
        ctx,
        &b,
        "memory",
        "memory.soft_limit_in_bytes",
        "memory.low",
    )?;
    ensure!(
        v == (32i64 << 20).to_string(),
        "memory reservation file says {v}"
    );
    Ok(Outcome::Pass)
}

fn cpu_shares(ctx: &mut Ctx) -> TestResult {
    if let Some(s) = need_controller(ctx, "cpu") {
        return Ok(s);
    }
    let b = with_resources(ctx, json!({"cpu": {"shares": 512}}))?;
    ctx.launch_report(&b)?;
    if ctx.env.layout.is_v2() {
        // v2 has weights; runtimes convert shares (runc: 512 -> 20).
        let w: i64 = cg_read(ctx, &b, "cpu", "", "cpu.weight")?.parse()?;
        ensure!(
            (1..=10000).contains(&w) && w < 100,
            "cpu.weight is {w}; shares 512 should map below the default 100"
        );
    } else {
        let v = cg_read(ctx, &b, "cpu", "cpu.shares", "")?;
        ensure!(v == "512", "cpu.shares is {v}");
    }
    Ok(Outcome::Pass)
}

fn cpu_quota_period(ctx: &mut Ctx) -> TestResult {
    if let Some(s) = need_controller(ctx, "cpu") {
        return Ok(s);
    }
    let b = with_resources(ctx, json!({"cpu": {"quota": 50000, "period": 100000}}))?;
    ctx.launch_report(&b)?;
    if ctx.env.layout.is_v2() {
        let v = cg_read(ctx, &b, "cpu", "", "cpu.max")?;
        ensure!(v == "50000 100000", "cpu.max is {v:?}");
    } else {
        let q = cg_read(ctx, &b, "cpu", "cpu.cfs_quota_us", "")?;
        let p = cg_read(ctx, &b, "cpu", "cpu.cfs_period_us", "")?;
        ensure!(
            q == "50000" && p == "100000",
            "cfs quota/period are {q}/{p}"
        );
    }
    Ok(Outcome::Pass)
}

fn cpuset(ctx: &mut Ctx) -> TestResult {
    if let Some(s) = need_controller(ctx, "cpuset") {
        return Ok(s);
    }
    let b = with_resources(ctx, json!({"cpu": {"cpus": "0", "mems": "0"}}))?;
    ctx.launch_report(&b)?;
    let c = cg_read(ctx, &b, "cpuset", "cpuset.cpus", "cpuset.cpus")?;
    let m = cg_read(ctx, &b, "cpuset", "cpuset.mems", "cpuset.mems")?;
    ensure!(c == "0" && m == "0", "cpuset cpus/mems are {c:?}/{m:?}");
    Ok(Outcome::Pass)
}

fn pids_limit(ctx: &mut Ctx) -> TestResult {
    if let Some(s) = need_controller(ctx, "pids") {
        return Ok(s);
    }
    let b = with_resources(ctx, json!({"pids": {"limit": 64}}))?;
    ctx.launch_report(&b)?;
    let v = cg_read(ctx, &b, "pids", "pids.max", "pids.max")?;
    ensure!(v == "64", "pids.max is {v}");
    Ok(Outcome::Pass)
}

fn pids_limit_enforced(ctx: &mut Ctx) -> TestResult {
    if let Some(s) = need_controller(ctx, "pids") {
        return Ok(s);
    }
    let mut b = with_resources(ctx, json!({"pids": {"limit": 6}}))?;
    // Tries to start 10 sleeps; the shell may give up at the first
    // refused fork, so the host judges by the cgroup's counters.
    b.args(&[
        "/bin/sh",
        "-c",
        "echo started > /out/forked; for i in 1 2 3 4 5 6 7 8 9 10; do sleep 60 & done; exec /oci-helper hold",
    ]);
    ctx.launch(&b)?;
    ctx.wait_out_file(&b, "forked", |t| t.ends_with('\n'))?;
    let refused = wait_for(crate::ctx::WAIT, || {
        let ev = cg_read(ctx, &b, "pids", "pids.events", "pids.events").unwrap_or_default();
        let max: i64 = ev
            .lines()
            .find_map(|l| l.strip_prefix("max ").and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0);
        Ok((max > 0).then_some(max))
    })?;
    ensure!(
        refused.is_some(),
        "no fork was refused although 11 processes were started under pids.limit 6"
    );
    let cur: i64 = cg_read(ctx, &b, "pids", "pids.current", "pids.current")?.parse()?;
    ensure!(cur <= 6, "{cur} processes run in a cgroup limited to 6");
    Ok(Outcome::Pass)
}

fn check_updated(ctx: &Ctx, b: &Bundle, mem: i64, pids: i64) -> Result<()> {
    let m = cg_read(ctx, b, "memory", "memory.limit_in_bytes", "memory.max")?;
    ensure!(
        m == mem.to_string(),
        "after update the memory limit is {m}, expected {mem}"
    );
    let p = cg_read(ctx, b, "pids", "pids.max", "pids.max")?;
    ensure!(
        p == pids.to_string(),
        "after update pids.max is {p}, expected {pids}"
    );
    Ok(())
}

fn running_limited(ctx: &mut Ctx) -> Result<Bundle> {
    let b = with_resources(
        ctx,
        json!({"memory": {"limit": MIB64}, "pids": {"limit": 64}}),
    )?;
    ctx.launch_report(&b)?;
    Ok(b)
}

fn update_flags(ctx: &mut Ctx) -> TestResult {
    let b = running_limited(ctx)?;
    ctx.rt(&[
        "update",
        "--memory",
        "100663296",
        "--pids-limit",
        "99",
        &b.id,
    ])?
    .ok()?;
    check_updated(ctx, &b, 100663296, 99)?;
    Ok(Outcome::Pass)
}

const RESOURCES: &str = r#"{"memory": {"limit": 83886080}, "pids": {"limit": 77}}"#;

fn update_resources_file(ctx: &mut Ctx) -> TestResult {
    let b = running_limited(ctx)?;
    let f = ctx.dir.join("resources.json");
    std::fs::write(&f, RESOURCES)?;
    ctx.rt(&["update", "-r", &f.display().to_string(), &b.id])?
        .ok()?;
    check_updated(ctx, &b, 83886080, 77)?;
    Ok(Outcome::Pass)
}

fn update_resources_stdin(ctx: &mut Ctx) -> TestResult {
    let b = running_limited(ctx)?;
    ctx.cmd(&["update", "-r", "-", &b.id])
        .stdin(RESOURCES.as_bytes())
        .run()?
        .ok()?;
    check_updated(ctx, &b, 83886080, 77)?;
    Ok(Outcome::Pass)
}

fn check_stats(v: &Value, id: &str) -> Result<()> {
    ensure!(
        v["type"] == "stats",
        "event type is {}, expected stats",
        v["type"]
    );
    ensure!(v["id"] == id, "event id is {}", v["id"]);
    let pids = v["data"]["pids"]["current"].as_i64().unwrap_or(0);
    ensure!(pids >= 1, "stats report {pids} pids: {}", v["data"]["pids"]);
    ensure!(
        v["data"]["memory"].is_object(),
        "stats have no memory section"
    );
    Ok(())
}

fn events_stats(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    ctx.launch_report(&b)?;
    let out = ctx.rt(&["events", "--stats", &b.id])?.ok()?;
    let v: Value =
        serde_json::from_str(out.stdout.trim()).context("events --stats printed no JSON object")?;
    check_stats(&v, &b.id)?;
    Ok(Outcome::Pass)
}

fn events_interval(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    ctx.launch_report(&b)?;
    let (child, out, _) = ctx.cmd(&["events", "--interval", "200ms", &b.id]).spawn()?;
    ctx.track_child(child);
    let lines = wait_for(Duration::from_secs(10), || {
        let t = std::fs::read_to_string(&out).unwrap_or_default();
        Ok((t.lines().count() >= 2).then_some(t))
    })?
    .context("events --interval 200ms printed fewer than 2 events in 10 s")?;
    for l in lines.lines().take(2) {
        let v: Value =
            serde_json::from_str(l).with_context(|| format!("event line is not JSON: {l:?}"))?;
        check_stats(&v, &b.id)?;
    }
    Ok(Outcome::Pass)
}

fn ps_json(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    ctx.launch_report(&b)?;
    let pid = ctx.pid(&b.id)?;
    let out = ctx.rt(&["ps", "--format", "json", &b.id])?.ok()?;
    let v: Vec<i64> = serde_json::from_str(out.stdout.trim())
        .context("ps --format json is not a JSON array of pids")?;
    ensure!(
        v.contains(&(pid as i64)),
        "ps lists {v:?}, not the init pid {pid}"
    );
    Ok(Outcome::Pass)
}

fn ps_table(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    ctx.launch_report(&b)?;
    let pid = ctx.pid(&b.id)?;
    let out = ctx.rt(&["ps", &b.id])?.ok()?;
    let mut lines = out.stdout.lines();
    let header = lines.next().unwrap_or_default();
    ensure!(header.contains("PID"), "ps has no PID column: {header:?}");
    let col = header
        .split_whitespace()
        .position(|c| c == "PID")
        .unwrap_or(1);
    let found = lines.any(|l| l.split_whitespace().nth(col) == Some(&pid.to_string()));
    ensure!(
        found,
        "ps does not list the init pid {pid}: {:?}",
        out.stdout
    );
    Ok(Outcome::Pass)
}
