//! linux.*: readonly root, hostname/domainname, sysctl, masked and
//! readonly paths, devices and the device cgroup, user-namespace mappings.

use anyhow::{ensure, Context};
use serde_json::json;

use crate::ctx::Ctx;
use crate::harness::{Outcome, TestDef, TestResult};

pub fn register(t: &mut Vec<TestDef>) {
    t.push(TestDef::new("linux.readonly_root", readonly_root));
    t.push(TestDef::new("linux.hostname", hostname));
    t.push(TestDef::new("linux.domainname", domainname));
    t.push(TestDef::new(
        "linux.hostname_without_uts_namespace_fails",
        hostname_without_uts,
    ));
    t.push(TestDef::new("linux.sysctl", sysctl));
    t.push(TestDef::new(
        "linux.sysctl_not_namespaced_fails",
        sysctl_not_namespaced,
    ));
    t.push(TestDef::new("linux.masked_paths", masked_paths));
    t.push(TestDef::new("linux.readonly_paths", readonly_paths));
    t.push(TestDef::new("linux.default_devices", default_devices));
    t.push(TestDef::new("linux.dev_symlinks", dev_symlinks));
    t.push(TestDef::new("linux.devices_created", devices_created));
    t.push(TestDef::new(
        "linux.device_cgroup_denies",
        device_cgroup_denies,
    ));
    t.push(TestDef::new(
        "linux.device_cgroup_allows",
        device_cgroup_allows,
    ));
    t.push(TestDef::new(
        "linux.user_namespace_mappings",
        user_namespace_mappings,
    ));
}

fn readonly_root(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.spec["root"]["readonly"] = json!(true);
    b.report_args("report", &["--write", "/probe", "--write", "/out/probe"]);
    let r = ctx.launch_report(&b)?;
    let root = r.mount_at("/")?;
    ensure!(
        root.has_option("ro"),
        "/ is mounted {:?}, not ro",
        root.options
    );
    let w = r.probe("write", "/probe")?;
    ensure!(
        w == "EROFS",
        "writing to the read-only root gave {w}, expected EROFS"
    );
    let w = r.probe("write", "/out/probe")?;
    ensure!(
        w == "ok",
        "writing to a rw bind mount under a read-only root gave {w}"
    );
    Ok(Outcome::Pass)
}

fn hostname(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.spec["hostname"] = json!("oci-host-name");
    let r = ctx.launch_report(&b)?;
    ensure!(
        r.0["uname"]["nodename"] == "oci-host-name",
        "hostname is {}",
        r.0["uname"]["nodename"]
    );
    Ok(Outcome::Pass)
}

fn domainname(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.spec["domainname"] = json!("oci.example");
    let r = ctx.launch_report(&b)?;
    ensure!(
        r.0["uname"]["domainname"] == "oci.example",
        "domainname is {}",
        r.0["uname"]["domainname"]
    );
    Ok(Outcome::Pass)
}

fn hostname_without_uts(ctx: &mut Ctx) -> TestResult {
    // Setting a hostname in the host's UTS namespace would rename the host.
    let mut b = ctx.bundle()?;
    b.remove_namespace("uts");
    b.spec["hostname"] = json!("must-not-be-set");
    b.write_config()?;
    let before = nix::unistd::gethostname()?;
    super::create_must_fail(ctx, &b)?;
    ensure!(
        nix::unistd::gethostname()? == before,
        "the host's hostname changed"
    );
    Ok(Outcome::Pass)
}

fn sysctl(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.spec["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.msgmax": "4321"});
    b.report_args(
        "report",
        &[
            "--read",
            "/proc/sys/net/ipv4/ip_forward",
            "--read",
            "/proc/sys/kernel/msgmax",
        ],
    );
    let r = ctx.launch_report(&b)?;
    let fwd = r.read_ok("/proc/sys/net/ipv4/ip_forward")?;
    ensure!(fwd.trim() == "1", "net.ipv4.ip_forward is {fwd:?}");
    let mm = r.read_ok("/proc/sys/kernel/msgmax")?;
    ensure!(mm.trim() == "4321", "kernel.msgmax is {mm:?}");
    Ok(Outcome::Pass)
}

fn sysctl_not_namespaced(ctx: &mut Ctx) -> TestResult {
    // vm.* is global; a runtime must refuse rather than change the host.
    // The value is the host's own, so even a runtime that wrongly writes
    // it changes nothing.
    let current = std::fs::read_to_string("/proc/sys/vm/swappiness")?
        .trim()
        .to_string();
    let mut b = ctx.bundle()?;
    b.spec["linux"]["sysctl"] = json!({"vm.swappiness": current});
    b.write_config()?;
    super::create_must_fail(ctx, &b)?;
    Ok(Outcome::Pass)
}

fn masked_paths(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    std::fs::create_dir_all(b.rootfs.join("masked-dir"))?;
    std::fs::write(b.rootfs.join("masked-dir/secret"), "secret")?;
    std::fs::write(b.rootfs.join("masked-file"), "secret")?;
    // A /proc file this kernel has (kcore depends on the kernel config).
    let proc_file = ["/proc/kcore", "/proc/keys", "/proc/timer_list"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .context("none of /proc/kcore, /proc/keys, /proc/timer_list exists")?;
    b.spec["linux"]["maskedPaths"] =
        json!([proc_file, "/masked-dir", "/masked-file", "/no-such-path"]);
    b.report_args(
        "report",
        &[
            "--read",
            "/masked-file",
            "--ls",
            "/masked-dir",
            "--read",
            proc_file,
            "--write",
            "/masked-dir/x",
        ],
    );
    let r = ctx.launch_report(&b)?;
    ensure!(
        r.read_ok("/masked-file")?.is_empty(),
        "the masked file still shows its content"
    );
    ensure!(r.read_ok(proc_file)?.is_empty(), "{proc_file} is readable");
    ensure!(
        r.0["ls"]["/masked-dir"] == json!([]),
        "the masked directory lists {}",
        r.0["ls"]["/masked-dir"]
    );
    let w = r.probe("write", "/masked-dir/x")?;
    ensure!(w != "ok", "a masked directory is writable");
    Ok(Outcome::Pass)
}

fn readonly_paths(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    std::fs::create_dir_all(b.rootfs.join("ro-dir"))?;
    b.spec["linux"]["readonlyPaths"] = json!(["/proc/sys", "/ro-dir", "/no-such-path"]);
    b.report_args(
        "report",
        &[
            "--write",
            "/ro-dir/file",
            "--write",
            "/proc/sys/kernel/hostname",
        ],
    );
    let r = ctx.launch_report(&b)?;
    for p in ["/ro-dir/file", "/proc/sys/kernel/hostname"] {
        let w = r.probe("write", p)?;
        ensure!(w == "EROFS", "writing {p} gave {w}, expected EROFS");
    }
    let m = r.mount_at("/proc/sys")?;
    ensure!(m.has_option("ro"), "/proc/sys is mounted {:?}", m.options);
    Ok(Outcome::Pass)
}

fn default_devices(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    let devs = [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ];
    let mut probes = Vec::new();
    for (p, _, _) in devs {
        probes.extend(["--stat", p, "--open", p]);
    }
    probes.extend(["--stat", "/dev/ptmx"]);
    b.report_args("report", &probes);
    let r = ctx.launch_report(&b)?;
    for (p, major, minor) in devs {
        let st = r.stat(p)?;
        ensure!(
            st["type"] == "char" && st["major"] == major && st["minor"] == minor,
            "{p} is {st}, expected char device {major}:{minor}"
        );
        ensure!(
            st["mode"] == 0o666,
            "{p} has mode {:o}, expected 0666",
            st["mode"].as_i64().unwrap_or(0)
        );
        if p != "/dev/tty" {
            let o = r.probe("open", p)?;
            ensure!(o == "ok", "opening {p} read-write gave {o}");
        }
    }
    let ptmx = r.stat("/dev/ptmx")?;
    ensure!(
        ptmx["type"] == "symlink"
            || (ptmx["type"] == "char" && ptmx["major"] == 5 && ptmx["minor"] == 2),
        "/dev/ptmx is {ptmx}"
    );
    Ok(Outcome::Pass)
}

fn dev_symlinks(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.args(&[
        "/bin/sh",
        "-c",
        "for l in fd stdin stdout stderr; do echo $l=$(readlink /dev/$l); done > /out/links; exec /oci-helper hold",
    ]);
    ctx.launch(&b)?;
    let text = ctx.wait_out_file(&b, "links", |t| t.lines().count() == 4)?;
    for want in [
        "fd=/proc/self/fd",
        "stdin=/proc/self/fd/0",
        "stdout=/proc/self/fd/1",
        "stderr=/proc/self/fd/2",
    ] {
        ensure!(
            text.lines().any(|l| l == want),
            "expected the link {want}; /dev has {text:?}"
        );
    }
    Ok(Outcome::Pass)
}

fn devices_created(ctx: &mut Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.spec["linux"]["devices"] = json!([
        {"path": "/dev/oci-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o620, "uid": 1000, "gid": 2000},
        {"path": "/dev/sub/oci-zero", "type": "c", "major": 1, "minor": 5}
    ]);
    b.report_args(
        "report",
        &["--stat", "/dev/oci-null", "--stat", "/dev/sub/oci-zero"],
    );
    let r = ctx.launch_report(&b)?;
    let st = r.stat("/dev/oci-null")?;
    ensure!(
        st["type"] == "char" && st["major"] == 1 && st["minor"] == 3,
        "/dev/oci-null is {st}"
    );
    ensure!(
        st["mode"] == 0o620,
        "/dev/oci-null has mode {:o}",
        st["mode"].as_i64().unwrap_or(0)
    );
    ensure!(
        st["uid"] == 1000 && st["gid"] == 2000,
        "/dev/oci-null is owned by {}:{}",
        st["uid"],
        st["gid"]
    );
    let st = r.stat("/dev/sub/oci-zero")?;
    ensure!(
        st["type"] == "char" && st["major"] == 1 && st["minor"] == 5,
        "/dev/sub/oci-zero is {st}"
    );
    Ok(Outcome::Pass)
}

/// /dev/fuse (10:229): harmless to open, and in no runtime's default
/// allow list.
fn fuse_bundle(ctx: &mut Ctx, allow: bool) -> anyhow::Result<crate::ctx::Report> {
    let mut b = ctx.bundle()?;
    b.spec["linux"]["devices"] = json!([
        {"path": "/dev/oci-fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666}
    ]);
    let mut rules = vec![json!({"allow": false, "access": "rwm"})];
    if allow {
        rules.push(json!({"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}));
    }
    b.spec["linux"]["resources"]["devices"] = json!(rules);
    b.report_args("report", &["--open", "/dev/oci-fuse"]);
    ctx.launch_report(&b)
}

fn device_cgroup_denies(ctx: &mut Ctx) -> TestResult {
    let r = fuse_bundle(ctx, false)?;
    let o = r.probe("open", "/dev/oci-fuse")?;
    ensure!(
        o == "EPERM",
        "opening a device the cgroup denies gave {o}, expected EPERM"
    );
    Ok(Outcome::Pass)
}

fn device_cgroup_allows(ctx: &mut Ctx) -> TestResult {
    let r = fuse_bundle(ctx, true)?;
    let o = r.probe("open", "/dev/oci-fuse")?;
    // ENODEV/ENXIO: the cgroup let it through and the driver answered.
    ensure!(
        o == "ok" || o == "ENODEV" || o == "ENXIO",
        "opening an allowed device gave {o}"
    );
    Ok(Outcome::Pass)
}

fn user_namespace_mappings(ctx: &mut Ctx) -> TestResult {
    if !std::path::Path::new("/proc/self/ns/user").exists() {
        return Ok(Outcome::Skip("the kernel has no user namespaces".into()));
    }
    let mut b = ctx.bundle()?;
    b.spec["linux"]["namespaces"]
        .as_array_mut()
        .context("namespaces")?
        .push(json!({"type": "user"}));
    b.spec["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.spec["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    // sysfs and v1 cgroup mounts need more than a fresh user namespace has.
    b.remove_mount("/sys/fs/cgroup");
    b.remove_mount("/sys");
    let r = ctx.launch_report(&b)?;
    let uid_map: Vec<String> = r
        .str("uid_map")?
        .split_whitespace()
        .map(String::from)
        .collect();
    ensure!(
        uid_map == ["0", "100000", "65536"],
        "uid_map is {uid_map:?}"
    );
    let gid_map: Vec<String> = r
        .str("gid_map")?
        .split_whitespace()
        .map(String::from)
        .collect();
    ensure!(
        gid_map == ["0", "200000", "65536"],
        "gid_map is {gid_map:?}"
    );
    ensure!(
        r.status_fields("Uid")?.iter().all(|u| u == "0"),
        "inside, the process is not uid 0"
    );
    let pid = ctx.pid(&b.id)?;
    let host_uid = super::host_status(pid, "Uid")?;
    ensure!(
        host_uid.split_whitespace().all(|u| u == "100000"),
        "on the host the process runs as uid {host_uid:?}, expected 100000"
    );
    let host_ns = crate::ctx::host_namespaces();
    ensure!(
        Some(&r.ns("user")?) != host_ns.get("user"),
        "the process is in the host's user namespace"
    );
    Ok(Outcome::Pass)
}
