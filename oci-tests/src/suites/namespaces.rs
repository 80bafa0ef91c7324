//! namespaces.*: new namespaces, the host's when not asked for, and
//! namespaces joined by path.

use anyhow::{ensure, Result};

use crate::ctx::Ctx;
use crate::harness::{Outcome, TestDef, TestResult};

/// Config name -> /proc/<pid>/ns name.
const KINDS: [(&str, &str); 6] = [
    ("pid", "pid"),
    ("network", "net"),
    ("ipc", "ipc"),
    ("uts", "uts"),
    ("mount", "mnt"),
    ("cgroup", "cgroup"),
];

pub fn register(t: &mut Vec<TestDef>) {
    for (kind, proc_name) in KINDS {
        t.push(TestDef::closure(
            format!("namespaces.new_{kind}"),
            move |ctx| new_ns(ctx, proc_name),
        ));
        if kind != "mount" {
            t.push(TestDef::closure(
                format!("namespaces.host_{kind}"),
                move |ctx| host_ns(ctx, kind, proc_name),
            ));
            t.push(TestDef::closure(
                format!("namespaces.join_{kind}"),
                move |ctx| join_ns(ctx, kind, proc_name),
            ));
        }
    }
    t.push(TestDef::new(
        "namespaces.join_missing_path_fails",
        join_missing_path_fails,
    ));
    t.push(TestDef::new(
        "namespaces.join_wrong_type_fails",
        join_wrong_type_fails,
    ));
}

fn new_ns(ctx: &mut Ctx, proc_name: &str) -> TestResult {
    let b = ctx.bundle()?;
    let r = ctx.launch_report(&b)?;
    let host = crate::ctx::host_namespaces();
    let mine = r.ns(proc_name)?;
    ensure!(
        Some(&mine) != host.get(proc_name),
        "the container shares the host's {proc_name} namespace"
    );
    Ok(Outcome::Pass)
}

fn host_ns(ctx: &mut Ctx, kind: &str, proc_name: &str) -> TestResult {
    let mut b = ctx.bundle()?;
    b.remove_namespace(kind);
    if kind == "uts" {
        b.spec.as_object_mut().map(|o| o.remove("hostname"));
    }
    if kind == "network" {
        // sysfs may only be mounted by the owner of the network namespace.
        b.remove_mount("/sys/fs/cgroup");
        b.remove_mount("/sys");
    }
    let r = ctx.launch_report(&b)?;
    let host = crate::ctx::host_namespaces();
    let mine = r.ns(proc_name)?;
    ensure!(
        Some(&mine) == host.get(proc_name),
        "without a {kind} namespace entry the process is in {mine}, not the host's {:?}",
        host.get(proc_name)
    );
    if kind == "pid" {
        ensure!(
            r.0["pid"] != 1,
            "in the host's pid namespace the process cannot be pid 1"
        );
    }
    Ok(Outcome::Pass)
}

fn join_ns(ctx: &mut Ctx, kind: &str, proc_name: &str) -> TestResult {
    let a = ctx.bundle()?;
    ctx.launch_report(&a)?;
    let a_pid = ctx.pid(&a.id)?;
    let mut b = ctx.bundle()?;
    b.set_namespace_path(kind, &format!("/proc/{a_pid}/ns/{proc_name}"));
    if kind == "uts" {
        b.spec.as_object_mut().map(|o| o.remove("hostname"));
    }
    let r = ctx.launch_report(&b)?;
    let want = crate::host::namespaces_of(&a_pid.to_string());
    let mine = r.ns(proc_name)?;
    ensure!(
        Some(&mine) == want.get(proc_name),
        "the process is in {mine}, not the joined {kind} namespace {:?}",
        want.get(proc_name)
    );
    Ok(Outcome::Pass)
}

fn failing_join(ctx: &mut Ctx, path: impl Fn(&Ctx) -> Result<String>) -> TestResult {
    let mut b = ctx.bundle()?;
    let p = path(ctx)?;
    b.set_namespace_path("network", &p);
    b.write_config()?;
    super::create_must_fail(ctx, &b)?;
    Ok(Outcome::Pass)
}

fn join_missing_path_fails(ctx: &mut Ctx) -> TestResult {
    failing_join(ctx, |c| Ok(c.dir.join("no-such-ns").display().to_string()))
}

fn join_wrong_type_fails(ctx: &mut Ctx) -> TestResult {
    // An ipc namespace given as the network namespace.
    failing_join(ctx, |_| Ok(format!("/proc/{}/ns/ipc", std::process::id())))
}
