//! The tests, one module per area. Each test is `area.behaviour`.

use anyhow::{bail, ensure, Context, Result};

use crate::ctx::{short, Bundle, Ctx, Out, Report};
use crate::harness::TestDef;

mod cgroups;
mod cli;
mod errors;
mod exec;
mod hooks;
mod kill;
mod lifecycle;
mod linux;
mod mounts;
mod namespaces;
mod process;
mod terminal;

pub fn all() -> Vec<TestDef> {
    let mut v = Vec::new();
    lifecycle::register(&mut v);
    errors::register(&mut v);
    hooks::register(&mut v);
    process::register(&mut v);
    terminal::register(&mut v);
    linux::register(&mut v);
    mounts::register(&mut v);
    namespaces::register(&mut v);
    cgroups::register(&mut v);
    kill::register(&mut v);
    exec::register(&mut v);
    cli::register(&mut v);
    v
}

/// Proves a container that failed to come up left nothing: the runtime
/// does not know it, its cgroup does not exist, no process of it runs.
pub fn assert_nothing_left(ctx: &Ctx, b: &Bundle) -> Result<()> {
    let st = ctx.rt(&["state", &b.id])?;
    ensure!(
        !st.success(),
        "the failed container {} still exists: {}",
        b.id,
        short(&st.stdout)
    );
    let list = ctx.rt(&["list", "--format", "json"])?.ok()?;
    ensure!(
        !list.stdout.contains(&format!("\"{}\"", b.id)),
        "`list` still shows the failed container: {}",
        short(&list.stdout)
    );
    let dirs = ctx.env.layout.existing_dirs(&b.cgroup_path());
    ensure!(
        dirs.is_empty(),
        "the failed container's cgroup is left: {dirs:?}"
    );
    let procs = crate::host::processes_referencing(
        &b.dir,
        std::slice::from_ref(&b.rootfs),
        &b.cgroup_path(),
    );
    ensure!(
        procs.is_empty(),
        "processes of the failed container still run: {procs:?}"
    );
    Ok(())
}

/// `create` of a bad bundle must fail like runc (exit 1, a message) and
/// leave nothing. Returns the failing output.
pub fn create_must_fail(ctx: &Ctx, b: &Bundle) -> Result<Out> {
    let bundle = b.dir.display().to_string();
    let out = ctx.rt(&["create", "--bundle", &bundle, &b.id])?;
    let out = out.runc_error().context("create of an invalid bundle")?;
    assert_nothing_left(ctx, b)?;
    Ok(out)
}

/// Runs `exec [opts] ID /oci-helper report [probes]` and parses stdout.
pub fn exec_report(ctx: &Ctx, id: &str, opts: &[&str], probes: &[&str]) -> Result<Report> {
    let mut args = vec!["exec"];
    args.extend_from_slice(opts);
    args.push(id);
    args.extend_from_slice(&["/oci-helper", "report"]);
    args.extend_from_slice(probes);
    let out = ctx.rt(&args)?.ok()?;
    Report::parse(&out.stdout)
}

/// Bit mask of capability names (CAP_xxx) as the kernel numbers them.
pub fn cap_mask(names: &[&str]) -> Result<u64> {
    let mut m = 0u64;
    for n in names {
        let bit = CAPS
            .iter()
            .position(|c| c == n)
            .with_context(|| format!("unknown capability {n}"))?;
        m |= 1 << bit;
    }
    Ok(m)
}

pub fn cap_names(mask: u64) -> Vec<&'static str> {
    CAPS.iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, n)| *n)
        .collect()
}

pub fn expect_caps(r: &Report, key: &str, want: u64) -> Result<()> {
    let got = r.cap_set(key)?;
    if got != want {
        bail!(
            "{key} is {:?}, expected {:?}",
            cap_names(got),
            cap_names(want)
        );
    }
    Ok(())
}

/// Linux capability names by number (include/uapi/linux/capability.h).
pub const CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Host process status field, e.g. ("1234", "Uid").
pub fn host_status(pid: i32, key: &str) -> Result<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{key}:"))
                .map(|v| v.trim().to_string())
        })
        .with_context(|| format!("/proc/{pid}/status has no {key}"))
}
