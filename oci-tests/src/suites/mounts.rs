//! mounts.*: bind (rw, ro, file, recursive), tmpfs options, created
//! destinations, propagation of mounts and of the root.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use nix::mount::{mount, MsFlags};
use serde_json::json;

use super::exec_report;
use crate::ctx::{wait_for, Ctx, Report, WAIT};
use crate::harness::{Outcome, TestDef, TestResult};

pub fn register(t: &mut Vec<TestDef>) {
    t.push(TestDef::new("mounts.bind_rw", bind_rw));
    t.push(TestDef::new("mounts.bind_ro", bind_ro));
    t.push(TestDef::new("mounts.bind_file", bind_file));
    t.push(TestDef::new("mounts.tmpfs_options", tmpfs_options));
    t.push(TestDef::new(
        "mounts.destination_created",
        destination_created,
    ));
    t.push(TestDef::new(
        "mounts.rbind_includes_submounts",
        rbind_includes_submounts,
    ));
    t.push(TestDef::new(
        "mounts.bind_excludes_submounts",
        bind_excludes_submounts,
    ));
    t.push(TestDef::new(
        "mounts.propagation_rslave",
        propagation_rslave,
    ));
    t.push(TestDef::new(
        "mounts.propagation_rprivate",
        propagation_rprivate,
    ));
    t.push(TestDef::new(
        "mounts.propagation_rshared",
        propagation_rshared,
    ));
    t.push(TestDef::new("mounts.rootfs_propagation_private", |c| {
        rootfs_propagation(c, "private")
    }));
    t.push(TestDef::new("mounts.rootfs_propagation_slave", |c| {
        rootfs_propagation(c, "slave")
    }));
    t.push(TestDef::new("mounts.rootfs_propagation_shared", |c| {
        rootfs_propagation(c, "shared")
    }));
}

fn host_dir(ctx: &Ctx, name: &str) -> Result<PathBuf> {
    let d = ctx.dir.join(name);
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn bind(src: &Path, dst: &str, opts: &[&str]) -> serde_json::Value {
    json!({"destination": dst, "type": "bind", "source": src.display().to_string(), "options": opts})
}

fn bind_rw(ctx: &mut Ctx) -> TestResult {
    let src = host_dir(ctx, "src")?;
    std::fs::write(src.join("hello"), "from-host")?;
    let mut b = ctx.bundle()?;
    b.add_mount(bind(&src, "/data", &["rbind", "rw"]));
    b.report_args("report", &["--read", "/data/hello", "--write", "/data/new"]);
    let r = ctx.launch_report(&b)?;
    ensure!(
        r.read_ok("/data/hello")? == "from-host",
        "the bind mount shows other content"
    );
    ensure!(
        r.probe("write", "/data/new")? == "ok",
        "the rw bind mount is not writable"
    );
    ensure!(
        src.join("new").exists(),
        "a file written in the container did not appear on the host"
    );
    Ok(Outcome::Pass)
}

fn bind_ro(ctx: &mut Ctx) -> TestResult {
    let src = host_dir(ctx, "src")?;
    let mut b = ctx.bundle()?;
    b.add_mount(bind(&src, "/data", &["rbind", "ro"]));
    b.report_args("report", &["--write", "/data/new"]);
    let r = ctx.launch_report(&b)?;
    let w = r.probe("write", "/data/new")?;
    ensure!(w == "EROFS", "writing to a ro bind mount gave {w}");
    ensure!(
        r.mount_at("/data")?.has_option("ro"),
        "/data is not mounted ro"
    );
    Ok(Outcome::Pass)
}

fn bind_file(ctx: &mut Ctx) -> TestResult {
    let src = host_dir(ctx, "src")?.join("file.txt");
    std::fs::write(&src, "one file")?;
    let mut b = ctx.bundle()?;
    b.add_mount(bind(&src, "/etc/oci-file", &["bind", "ro"]));
    b.report_args("report", &["--read", "/etc/oci-file"]);
    let r = ctx.launch_report(&b)?;
    ensure!(
        r.read_ok("/etc/oci-file")? == "one file",
        "the bind-mounted file shows other content"
    );
    Ok(Outcome::Pass)
}

fn tmpfs_options(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.add_mount(
        json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=0710"]}),
    );
    b.report_args("report", &["--stat", "/scratch"]);
    let r = ctx.launch_report(&b)?;
    let m = r.mount_at("/scratch")?;
    ensure!(m.fstype == "tmpfs", "/scratch is {}", m.fstype);
    for o in ["nosuid", "nodev", "noexec"] {
        ensure!(m.has_option(o), "/scratch lacks {o}: {:?}", m.options);
    }
    ensure!(
        m.has_super_option("size=1024k"),
        "/scratch size is not 1m: {:?}",
        m.super_options
    );
    let st = r.stat("/scratch")?;
    ensure!(
        st["mode"] == 0o710,
        "/scratch has mode {:o}",
        st["mode"].as_i64().unwrap_or(0)
    );
    Ok(Outcome::Pass)
}

fn destination_created(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.add_mount(json!({"destination": "/new/deep/dir", "type": "tmpfs", "source": "tmpfs"}));
    b.report_args("report", &["--stat", "/new/deep/dir"]);
    let r = ctx.launch_report(&b)?;
    ensure!(
        r.stat("/new/deep/dir")?["type"] == "dir",
        "the destination was not created"
    );
    r.mount_at("/new/deep/dir")?;
    Ok(Outcome::Pass)
}

/// A host directory with a tmpfs mounted on its `sub` directory.
fn src_with_submount(ctx: &mut Ctx) -> Result<PathBuf> {
    let src = host_dir(ctx, "src")?;
    let sub = src.join("sub");
    std::fs::create_dir_all(&sub)?;
    ctx.track_host_mount(&sub);
    mount(
        Some("tmpfs"),
        &sub,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("size=1m"),
    )
    .context("mounting the host submount")?;
    Ok(src)
}

fn rbind_includes_submounts(ctx: &mut Ctx) -> TestResult {
    let src = src_with_submount(ctx)?;
    let mut b = ctx.bundle()?;
    b.add_mount(bind(&src, "/data", &["rbind"]));
    let r = ctx.launch_report(&b)?;
    let m = r.mount_at("/data/sub")?;
    ensure!(m.fstype == "tmpfs", "/data/sub is {}", m.fstype);
    Ok(Outcome::Pass)
}

fn bind_excludes_submounts(ctx: &mut Ctx) -> TestResult {
    let src = src_with_submount(ctx)?;
    let mut b = ctx.bundle()?;
    b.add_mount(bind(&src, "/data", &["bind"]));
    let r = ctx.launch_report(&b)?;
    ensure!(
        r.mount_at("/data/sub").is_err(),
        "a non-recursive bind carried the submount along"
    );
    Ok(Outcome::Pass)
}

/// A host directory that is a shared mount of its own.
fn shared_src(ctx: &mut Ctx) -> Result<PathBuf> {
    let src = host_dir(ctx, "src")?;
    std::fs::create_dir_all(src.join("late"))?;
    std::fs::create_dir_all(src.join("inner"))?;
    ctx.track_host_mount(&src);
    mount(
        Some(&src),
        &src,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .context("bind-mounting the source")?;
    mount(
        None::<&str>,
        &src,
        None::<&str>,
        MsFlags::MS_SHARED,
        None::<&str>,
    )
    .context("making the source shared")?;
    Ok(src)
}

/// Mounts a tmpfs at src/late on the host once the container runs and
/// returns what the container then sees.
fn host_mount_after_start(ctx: &mut Ctx, propagation: &str) -> Result<Report> {
    let src = shared_src(ctx)?;
    let mut b = ctx.bundle()?;
    b.add_mount(bind(&src, "/data", &["rbind", propagation]));
    ctx.launch_report(&b)?;
    let late = src.join("late");
    ctx.track_host_mount(&late);
    mount(
        Some("tmpfs"),
        &late,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("size=1m"),
    )?;
    exec_report(ctx, &b.id, &[], &[])
}

fn propagation_rslave(ctx: &mut Ctx) -> TestResult {
    let r = host_mount_after_start(ctx, "rslave")?;
    ensure!(
        r.mount_at("/data/late").is_ok(),
        "a host mount did not propagate into an rslave bind"
    );
    Ok(Outcome::Pass)
}

fn propagation_rprivate(ctx: &mut Ctx) -> TestResult {
    let r = host_mount_after_start(ctx, "rprivate")?;
    ensure!(
        r.mount_at("/data/late").is_err(),
        "a host mount propagated into an rprivate bind"
    );
    Ok(Outcome::Pass)
}

fn propagation_rshared(ctx: &mut Ctx) -> TestResult {
    let src = shared_src(ctx)?;
    let mut b = ctx.bundle()?;
    b.spec["linux"]["rootfsPropagation"] = json!("shared");
    b.add_mount(bind(&src, "/data", &["rbind", "rshared"]));
    ctx.launch_report(&b)?;
    let inner = src.join("inner");
    ctx.track_host_mount(&inner);
    ctx.rt(&[
        "exec",
        "--cap",
        "CAP_SYS_ADMIN",
        &b.id,
        "/bin/mount",
        "-t",
        "tmpfs",
        "tmpfs",
        "/data/inner",
    ])?
    .ok()?;
    let seen = wait_for(WAIT, || {
        Ok(crate::host::host_mounts()?
            .iter()
            .any(|m| Path::new(&m.mount_point) == inner)
            .then_some(()))
    })?;
    ensure!(
        seen.is_some(),
        "a mount made in an rshared bind did not reach the host"
    );
    Ok(Outcome::Pass)
}

fn rootfs_propagation(ctx: &mut Ctx, mode: &str) -> TestResult {
    let mut b = ctx.bundle()?;
    b.spec["linux"]["rootfsPropagation"] = json!(mode);
    let r = ctx.launch_report(&b)?;
    let root = r.mount_at("/")?;
    // A slave needs a shared master; when the bundle's host mount is
    // private the best a runtime can give is "not shared".
    let ok = match mode {
        "private" => !root.is_shared() && !root.is_slave(),
        "slave" => !root.is_shared(),
        _ => root.is_shared(),
    };
    ensure!(
        ok,
        "with rootfsPropagation {mode} the root mount has {:?}",
        root.optional
    );
    Ok(Outcome::Pass)
}
