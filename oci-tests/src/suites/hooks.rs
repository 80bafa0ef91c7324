//! The six hook kinds: when each runs, in which namespaces, with the
//! container state on stdin; hook failures and timeouts.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

use super::assert_nothing_left;
use crate::ctx::{Bundle, Ctx};
use crate::harness::{Outcome, TestDef, TestResult};

pub fn register(t: &mut Vec<TestDef>) {
    t.push(TestDef::new(
        "hooks.run_at_their_phases",
        run_at_their_phases,
    ));
    t.push(TestDef::new("hooks.state_on_stdin", state_on_stdin));
    t.push(TestDef::new("hooks.namespaces", namespaces));
    t.push(TestDef::new("hooks.args_and_env", args_and_env));
    t.push(TestDef::new(
        "hooks.create_runtime_failure_aborts",
        create_runtime_failure_aborts,
    ));
    t.push(TestDef::new(
        "hooks.create_container_failure_aborts",
        create_container_failure_aborts,
    ));
    t.push(TestDef::new("hooks.timeout_aborts", timeout_aborts));
    t.push(TestDef::new(
        "hooks.poststart_failure_continues",
        poststart_failure_continues,
    ));
    t.push(TestDef::new(
        "hooks.poststop_failure_continues",
        poststop_failure_continues,
    ));
}

const HOST_KINDS: [&str; 4] = ["prestart", "createRuntime", "poststart", "poststop"];
const ALL_KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// A hook entry that records itself with the helper. startContainer runs
/// the helper inside the container (its path resolves there); the others
/// run the host copy and write straight into the bundle's out dir.
fn recording_hook(ctx: &Ctx, b: &Bundle, kind: &str) -> Value {
    if kind == "startContainer" {
        json!({"path": "/oci-helper", "args": ["oci-helper", "hook", kind, "/out"]})
    } else {
        json!({
            "path": ctx.env.host_helper.display().to_string(),
            "args": ["oci-helper", "hook", kind, b.out.display().to_string()]
        })
    }
}

fn with_all_hooks(ctx: &mut Ctx) -> Result<Bundle> {
    let mut b = ctx.bundle()?;
    for kind in ALL_KINDS {
        b.spec["hooks"][kind] = json!([recording_hook(ctx, &b, kind)]);
    }
    Ok(b)
}

fn order(b: &Bundle) -> Vec<String> {
    std::fs::read_to_string(b.out_file("hooks.order"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

fn hook_record(b: &Bundle, kind: &str) -> Result<Value> {
    let text = std::fs::read_to_string(b.out_file(&format!("{kind}.json")))
        .with_context(|| format!("the {kind} hook did not run"))?;
    serde_json::from_str(&text).with_context(|| format!("{kind} record is not JSON"))
}

/// Runs create, start, kill, delete and returns the hook order after each.
fn full_cycle(ctx: &Ctx, b: &Bundle) -> Result<[Vec<String>; 3]> {
    ctx.create(b)?;
    let after_create = order(b);
    ctx.start(&b.id)?;
    ctx.wait_report(b, "report")?;
    let after_start = order(b);
    ctx.rt(&["kill", &b.id, "KILL"])?.ok()?;
    ctx.wait_status(&b.id, "stopped")?;
    ctx.rt(&["delete", &b.id])?.ok()?;
    Ok([after_create, after_start, order(b)])
}

fn pos(v: &[String], kind: &str) -> Option<usize> {
    v.iter().position(|k| k == kind)
}

fn run_at_their_phases(ctx: &mut Ctx) -> TestResult {
    let b = with_all_hooks(ctx)?;
    let [c, s, d] = full_cycle(ctx, &b)?;
    let mut sorted = c.clone();
    sorted.sort();
    ensure!(
        sorted == ["createContainer", "createRuntime", "prestart"],
        "after create the hooks run were {c:?}; expected prestart, createRuntime, createContainer"
    );
    ensure!(
        pos(&c, "createRuntime") < pos(&c, "createContainer"),
        "createContainer ran before createRuntime: {c:?}"
    );
    ensure!(
        s.len() == 5 && s[3..] == ["startContainer".to_string(), "poststart".to_string()],
        "after start the hook order is {s:?}; expected startContainer then poststart"
    );
    ensure!(
        d.len() == 6 && d[5] == "poststop",
        "after delete the hook order is {d:?}; expected poststop last"
    );
    Ok(Outcome::Pass)
}

fn state_on_stdin(ctx: &mut Ctx) -> TestResult {
    let mut b = with_all_hooks(ctx)?;
    b.spec["annotations"] = json!({"org.oci-tests.hook": "yes"});
    ctx.create(&b)?;
    let pid = ctx.pid(&b.id)?;
    ctx.start(&b.id)?;
    ctx.wait_report(&b, "report")?;
    ctx.rt(&["delete", "--force", &b.id])?.ok()?;
    let bundle = b.dir.canonicalize()?;
    let mut problems = Vec::new();
    for kind in ALL_KINDS {
        let rec = hook_record(&b, kind)?;
        let stdin = rec["stdin"].as_str().unwrap_or_default();
        let st: Value = match serde_json::from_str(stdin) {
            Ok(v) => v,
            Err(_) => {
                problems.push(format!("{kind}: stdin is not the state JSON: {stdin:?}"));
                continue;
            }
        };
        let mut p = |ok: bool, what: String| {
            if !ok {
                problems.push(format!("{kind}: {what}"));
            }
        };
        p(st["id"] == b.id.as_str(), format!("id is {}", st["id"]));
        p(
            st["bundle"].as_str().map(std::path::PathBuf::from) == Some(bundle.clone()),
            format!("bundle is {}", st["bundle"]),
        );
        p(st["ociVersion"].is_string(), "no ociVersion".into());
        let status = st["status"].as_str().unwrap_or_default();
        p(
            ["creating", "created", "running", "stopped"].contains(&status),
            format!("status {status:?} is not a spec status"),
        );
        p(
            st["annotations"]["org.oci-tests.hook"] == "yes",
            "no annotations".into(),
        );
        if kind != "poststop" {
            p(
                st["pid"] == pid,
                format!("pid is {}, the container's host pid is {pid}", st["pid"]),
            );
        }
        if kind == "poststart" {
            p(
                status == "running",
                format!("status is {status:?}, expected running"),
            );
        }
        if kind == "poststop" {
            p(
                status == "stopped",
                format!("status is {status:?}, expected stopped"),
            );
        }
    }
    ensure!(problems.is_empty(), "{}", problems.join("; "));
    Ok(Outcome::Pass)
}

fn namespaces(ctx: &mut Ctx) -> TestResult {
    let b = with_all_hooks(ctx)?;
    ctx.create(&b)?;
    let pid = ctx.pid(&b.id)?;
    let container = crate::host::namespaces_of(&pid.to_string());
    ctx.start(&b.id)?;
    ctx.wait_report(&b, "report")?;
    ctx.rt(&["delete", "--force", &b.id])?.ok()?;
    let mut problems = Vec::new();
    for kind in ALL_KINDS {
        let rec = hook_record(&b, kind)?;
        for ns in ["mnt", "uts", "ipc", "net"] {
            let got = rec["namespaces"][ns].as_str();
            let theirs = container.get(ns).map(String::as_str);
            if HOST_KINDS.contains(&kind) {
                // The runtime namespace: that of the runtime process that
                // ran the hook (its parent), and not the container's.
                let runtime = rec["parent_namespaces"][ns].as_str();
                if got != runtime || got == theirs {
                    problems.push(format!(
                        "{kind} ran in {ns} {got:?}; the runtime's is {runtime:?}, the container's {theirs:?}"
                    ));
                }
            } else if got != theirs {
                problems.push(format!(
                    "{kind} ran in {ns} {got:?}, not the container's {theirs:?}"
                ));
            }
        }
    }
    ensure!(problems.is_empty(), "{}", problems.join("; "));
    Ok(Outcome::Pass)
}

fn args_and_env(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    let mut hook = recording_hook(ctx, &b, "createRuntime");
    hook["args"].as_array_mut().context("args")?.extend([
        json!("--"),
        json!("with space"),
        json!(""),
    ]);
    hook["env"] = json!(["HOOK_ONE=1", "HOOK_TWO=two words"]);
    b.spec["hooks"]["createRuntime"] = json!([hook]);
    ctx.create(&b)?;
    let rec = hook_record(&b, "createRuntime")?;
    let want_args = json!([
        "oci-helper",
        "hook",
        "createRuntime",
        b.out.display().to_string(),
        "--",
        "with space",
        ""
    ]);
    ensure!(
        rec["args"] == want_args,
        "hook argv is {}, expected {want_args}",
        rec["args"]
    );
    let mut env: Vec<String> = rec["env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    env.sort();
    ensure!(
        env == ["HOOK_ONE=1", "HOOK_TWO=two words"],
        "hook environment is {env:?}, expected exactly the config's env"
    );
    Ok(Outcome::Pass)
}

fn failing_hook_aborts_create(ctx: &mut Ctx, kind: &str) -> TestResult {
    let mut b = ctx.bundle()?;
    b.spec["hooks"][kind] = json!([{"path": "/bin/false"}]);
    b.write_config()?;
    let bundle = b.dir.display().to_string();
    ctx.rt(&["create", "--bundle", &bundle, &b.id])?
        .runc_error()
        .with_context(|| format!("create with a failing {kind} hook"))?;
    assert_nothing_left(ctx, &b)?;
    Ok(Outcome::Pass)
}

fn create_runtime_failure_aborts(ctx: &mut Ctx) -> TestResult {
    failing_hook_aborts_create(ctx, "createRuntime")
}

fn create_container_failure_aborts(ctx: &mut Ctx) -> TestResult {
    failing_hook_aborts_create(ctx, "createContainer")
}

fn timeout_aborts(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.spec["hooks"]["createRuntime"] =
        json!([{"path": "/bin/sleep", "args": ["sleep", "20"], "timeout": 1}]);
    b.write_config()?;
    let bundle = b.dir.display().to_string();
    let t0 = Instant::now();
    ctx.rt(&["create", "--bundle", &bundle, &b.id])?
        .runc_error()
        .context("create with a hook that exceeds its timeout")?;
    ensure!(
        t0.elapsed() < Duration::from_secs(10),
        "create took {:?}: the hook's 1 s timeout was not enforced",
        t0.elapsed()
    );
    assert_nothing_left(ctx, &b)?;
    Ok(Outcome::Pass)
}

fn poststart_failure_continues(ctx: &mut Ctx) -> TestResult {
    // Spec: a failing poststart hook is logged; the lifecycle continues.
    let mut b = ctx.bundle()?;
    b.spec["hooks"]["poststart"] = json!([{"path": "/bin/false"}]);
    ctx.create(&b)?;
    let out = ctx.rt(&["start", &b.id])?;
    ensure!(
        out.success(),
        "start failed because of the poststart hook: {}",
        out.stderr.trim()
    );
    ctx.wait_report(&b, "report")?;
    ctx.wait_status(&b.id, "running")?;
    Ok(Outcome::Pass)
}

fn poststop_failure_continues(ctx: &mut Ctx) -> TestResult {
    // Spec: a failing poststop hook is logged; delete still completes.
    let mut b = ctx.bundle()?;
    b.spec["hooks"]["poststop"] = json!([{"path": "/bin/false"}]);
    ctx.launch_report(&b)?;
    ctx.rt(&["kill", &b.id, "KILL"])?.ok()?;
    ctx.wait_status(&b.id, "stopped")?;
    let out = ctx.rt(&["delete", &b.id])?;
    let st = ctx.rt(&["state", &b.id])?;
    ensure!(
        !st.success(),
        "the container survived delete with a failing poststop hook (delete: {}, {:?})",
        out.describe_exit(),
        out.stderr.trim()
    );
    Ok(Outcome::Pass)
}
