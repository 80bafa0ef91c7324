//! process.*: args, env, cwd, user, umask, rlimits, capabilities,
//! noNewPrivileges, oomScoreAdj, preserved fds.

use std::os::fd::OwnedFd;

use anyhow::{ensure, Context};
use serde_json::json;

use super::{cap_mask, expect_caps};
use crate::ctx::Ctx;
use crate::harness::{Outcome, TestDef, TestResult};

pub fn register(t: &mut Vec<TestDef>) {
    t.push(TestDef::new("process.args_exact", args_exact));
    t.push(TestDef::new("process.env_exact", env_exact));
    t.push(TestDef::new("process.cwd", cwd));
    t.push(TestDef::new("process.user_uid_gid", user_uid_gid));
    t.push(TestDef::new("process.additional_gids", additional_gids));
    t.push(TestDef::new("process.umask", umask));
    t.push(TestDef::new("process.rlimits", rlimits));
    t.push(TestDef::new(
        "process.rlimit_unknown_type_fails",
        rlimit_unknown_type_fails,
    ));
    t.push(TestDef::new("process.capabilities_root", capabilities_root));
    t.push(TestDef::new(
        "process.capabilities_non_root",
        capabilities_non_root,
    ));
    t.push(TestDef::new("process.no_new_privileges_true", nnp_true));
    t.push(TestDef::new("process.no_new_privileges_false", nnp_false));
    t.push(TestDef::new("process.oom_score_adj", oom_score_adj));
    t.push(TestDef::new("process.preserve_fds", preserve_fds));
    t.push(TestDef::new("process.no_fds_leak", no_fds_leak));
}

fn args_exact(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    let args = [
        "/oci-helper",
        "report",
        "--out",
        "/out/report.json",
        "--hold",
        "--",
        "two words",
        "",
        "ünïcode",
        "$HOME",
    ];
    b.args(&args);
    let r = ctx.launch_report(&b)?;
    ensure!(
        r.0["args"] == json!(args),
        "argv is {}, expected {:?}",
        r.0["args"],
        args
    );
    Ok(Outcome::Pass)
}

fn env_exact(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    let env = [
        "PATH=/bin:/usr/bin",
        "ONE=1",
        "SPACED=a b  c",
        "EMPTY=",
        "EQUALS=x=y",
    ];
    b.spec["process"]["env"] = json!(env);
    b.write_config()?;
    // The runtime's own environment must not leak into the container.
    let bundle = b.dir.display().to_string();
    ctx.cmd(&["create", "--bundle", &bundle, &b.id])
        .env("OCI_TESTS_LEAK", "1")
        .run()?
        .ok()?;
    ctx.start(&b.id)?;
    let r = ctx.wait_report(&b, "report")?;
    let got = r.env();
    for e in env {
        ensure!(
            got.iter().any(|g| g == e),
            "{e:?} missing from the environment {got:?}"
        );
    }
    ensure!(
        !got.iter().any(|g| g.starts_with("OCI_TESTS_LEAK=")),
        "the runtime's environment leaked into the container: {got:?}"
    );
    // A runtime may add HOME (runc does); nothing else.
    let extra: Vec<&String> = got
        .iter()
        .filter(|g| !env.contains(&g.as_str()) && !g.starts_with("HOME="))
        .collect();
    ensure!(
        extra.is_empty(),
        "unexpected variables in the environment: {extra:?}"
    );
    Ok(Outcome::Pass)
}

fn cwd(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.spec["process"]["cwd"] = json!("/home/tester");
    let r = ctx.launch_report(&b)?;
    ensure!(r.str("cwd")? == "/home/tester", "cwd is {}", r.str("cwd")?);
    Ok(Outcome::Pass)
}

fn user_uid_gid(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.spec["process"]["user"] = json!({"uid": 1000, "gid": 1001});
    let r = ctx.launch_report(&b)?;
    let uid = r.status_fields("Uid")?;
    let gid = r.status_fields("Gid")?;
    ensure!(
        uid.iter().all(|u| u == "1000"),
        "Uid (real, effective, saved, fs) is {uid:?}"
    );
    ensure!(
        gid.iter().all(|g| g == "1001"),
        "Gid (real, effective, saved, fs) is {gid:?}"
    );
    Ok(Outcome::Pass)
}

fn additional_gids(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.spec["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [2000, 3000]});
    let r = ctx.launch_report(&b)?;
    let mut groups = r.status_fields("Groups")?;
    groups.sort();
    ensure!(
        groups == ["2000", "3000"] || groups == ["1000", "2000", "3000"],
        "supplementary groups are {groups:?}, expected 2000 and 3000"
    );
    Ok(Outcome::Pass)
}

fn umask(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.spec["process"]["user"]["umask"] = json!(0o027);
    let r = ctx.launch_report(&b)?;
    ensure!(
        r.status("Umask")? == "0027",
        "umask is {}, expected 0027",
        r.status("Umask")?
    );
    Ok(Outcome::Pass)
}

fn rlimits(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.spec["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 1000, "hard": 2000},
        {"type": "RLIMIT_CORE", "soft": 4096, "hard": 8192},
        {"type": "RLIMIT_NPROC", "soft": 500, "hard": 600}
    ]);
    let r = ctx.launch_report(&b)?;
    for (name, want) in [
        ("RLIMIT_NOFILE", (1000, 2000)),
        ("RLIMIT_CORE", (4096, 8192)),
        ("RLIMIT_NPROC", (500, 600)),
    ] {
        let got = r.rlimit(name)?;
        ensure!(got == want, "{name} is {got:?}, expected {want:?}");
    }
    Ok(Outcome::Pass)
}

fn rlimit_unknown_type_fails(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.spec["process"]["rlimits"] = json!([{"type": "RLIMIT_NO_SUCH", "soft": 1, "hard": 1}]);
    b.write_config()?;
    super::create_must_fail(ctx, &b)?;
    Ok(Outcome::Pass)
}

const BOUNDING: [&str; 6] = [
    "CAP_CHOWN",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETUID",
    "CAP_SETGID",
    "CAP_AUDIT_WRITE",
];
const PERMITTED: [&str; 5] = [
    "CAP_CHOWN",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETUID",
    "CAP_SETGID",
];
const EFFECTIVE: [&str; 2] = ["CAP_CHOWN", "CAP_KILL"];
const INHERITABLE: [&str; 2] = ["CAP_NET_BIND_SERVICE", "CAP_KILL"];
const AMBIENT: [&str; 1] = ["CAP_NET_BIND_SERVICE"];

fn five_sets(ctx: &mut Ctx, uid: u32) -> anyhow::Result<crate::ctx::Report> {
    let mut b = ctx.bundle()?;
    b.spec["process"]["user"] = json!({"uid": uid, "gid": uid});
    b.spec["process"]["capabilities"] = json!({
        "bounding": BOUNDING, "permitted": PERMITTED, "effective": EFFECTIVE,
        "inheritable": INHERITABLE, "ambient": AMBIENT
    });
    b.spec["process"]["noNewPrivileges"] = json!(false);
    ctx.launch_report(&b)
}

fn capabilities_root(ctx: &mut Ctx) -> TestResult {
    // After execve as uid 0 the kernel makes permitted = effective =
    // bounding | inheritable (| ambient); bounding, inheritable and ambient
    // are what the runtime set.
    let r = five_sets(ctx, 0)?;
    let bnd = cap_mask(&BOUNDING)?;
    let inh = cap_mask(&INHERITABLE)?;
    let amb = cap_mask(&AMBIENT)?;
    expect_caps(&r, "CapBnd", bnd)?;
    expect_caps(&r, "CapInh", inh)?;
    expect_caps(&r, "CapAmb", amb)?;
    expect_caps(&r, "CapPrm", bnd | inh | amb)?;
    expect_caps(&r, "CapEff", bnd | inh | amb)?;
    Ok(Outcome::Pass)
}

fn capabilities_non_root(ctx: &mut Ctx) -> TestResult {
    // A non-root process keeps across execve only its ambient set in
    // permitted and effective; bounding and inheritable stay as set.
    let r = five_sets(ctx, 1000)?;
    expect_caps(&r, "CapBnd", cap_mask(&BOUNDING)?)?;
    expect_caps(&r, "CapInh", cap_mask(&INHERITABLE)?)?;
    expect_caps(&r, "CapAmb", cap_mask(&AMBIENT)?)?;
    expect_caps(&r, "CapPrm", cap_mask(&AMBIENT)?)?;
    expect_caps(&r, "CapEff", cap_mask(&AMBIENT)?)?;
    Ok(Outcome::Pass)
}

fn nnp(ctx: &mut Ctx, on: bool) -> TestResult {
    let mut b = ctx.bundle()?;
    b.spec["process"]["noNewPrivileges"] = json!(on);
    let r = ctx.launch_report(&b)?;
    let want = if on { "1" } else { "0" };
    ensure!(
        r.status("NoNewPrivs")? == want,
        "NoNewPrivs is {}, expected {want}",
        r.status("NoNewPrivs")?
    );
    Ok(Outcome::Pass)
}

fn nnp_true(ctx: &mut Ctx) -> TestResult {
    nnp(ctx, true)
}

fn nnp_false(ctx: &mut Ctx) -> TestResult {
    nnp(ctx, false)
}

fn oom_score_adj(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.spec["process"]["oomScoreAdj"] = json!(523);
    let r = ctx.launch_report(&b)?;
    let got = r.str("oom_score_adj")?;
    ensure!(
        got.trim() == "523",
        "oom_score_adj is {got:?}, expected 523"
    );
    Ok(Outcome::Pass)
}

fn preserve_fds(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    b.write_config()?;
    let f3 = ctx.dir.join("fd3.txt");
    let f4 = ctx.dir.join("fd4.txt");
    let f5 = ctx.dir.join("fd5.txt");
    for f in [&f3, &f4, &f5] {
        std::fs::write(f, "x")?;
    }
    let fds: Vec<OwnedFd> = [&f3, &f4, &f5]
        .iter()
        .map(|p| std::fs::File::open(p).map(OwnedFd::from))
        .collect::<std::io::Result<_>>()?;
    let bundle = b.dir.display().to_string();
    ctx.cmd(&["create", "--preserve-fds", "2", "--bundle", &bundle, &b.id])
        .extra_fds(fds)
        .run()?
        .ok()?;
    ctx.start(&b.id)?;
    let r = ctx.wait_report(&b, "report")?;
    let fdmap = &r.0["fds"];
    for (n, f) in [("3", &f3), ("4", &f4)] {
        let target = fdmap[n]
            .as_str()
            .with_context(|| format!("fd {n} was not preserved: {fdmap}"))?;
        ensure!(
            target.ends_with(&*f.file_name().unwrap().to_string_lossy()),
            "fd {n} is {target}"
        );
    }
    ensure!(
        fdmap["5"].is_null() || !fdmap["5"].as_str().unwrap_or("").ends_with("fd5.txt"),
        "fd 5 was passed although --preserve-fds was 2: {fdmap}"
    );
    Ok(Outcome::Pass)
}

fn no_fds_leak(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    let r = ctx.launch_report(&b)?;
    // 0-2 and the descriptor the helper itself uses to list /proc/self/fd.
    let fds = r.0["fds"].as_object().context("fds")?;
    let extra: Vec<String> = fds
        .iter()
        .filter(|(n, t)| {
            n.parse::<i32>().map(|n| n > 2).unwrap_or(true)
                && !t.as_str().unwrap_or("").contains("/proc/")
        })
        .map(|(n, t)| format!("{n} -> {}", t.as_str().unwrap_or("")))
        .collect();
    ensure!(
        extra.is_empty(),
        "descriptors leaked into the container: {extra:?}"
    );
    Ok(Outcome::Pass)
}
