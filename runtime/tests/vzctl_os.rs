//! vzctl with real distributions: Debian 12 with systemd and with sysvinit, templates
//! built by vzbuild from templates/*.recipe. `scripts/test-vzctl.sh` builds them (cached)
//! and runs these tests with VZCTL_TEST_SYSTEMD_TEMPLATE / VZCTL_TEST_SYSVINIT_TEMPLATE set;
//! they are `#[ignore]`d in a plain `cargo test`, which has no templates.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::vz::{wait_for, Vz};

fn template(var: &str) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        panic!("{var} is not set: run scripts/test-vzctl.sh, which builds the template")
    });
    assert!(path.is_file(), "{var}={} does not exist", path.display());
    path
}

fn cgroup_mounts() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(" - cgroup"))
        .map(|l| {
            l.split(' ').skip(4).take(2).collect::<Vec<_>>().join(" ")
                + " "
                + l.split(" - ").nth(1).unwrap_or("")
        })
        .collect()
}

#[test]
#[ignore = "needs the Debian systemd template (scripts/test-vzctl.sh)"]
fn debian_with_systemd_boots_reboots_and_stops() {
    if common::skip() {
        return;
    }
    let mounts_before = cgroup_mounts();
    let vz = Vz::new();
    vz.add_template(
        "debian-12-x86_64-systemd",
        &template("VZCTL_TEST_SYSTEMD_TEMPLATE"),
    );
    vz.ok(&[
        "create",
        "301",
        "--ostemplate",
        "debian-12-x86_64-systemd",
        "--hostname",
        "deb301",
    ]);
    let started = Instant::now();
    vz.ok(&["start", "301", "--wait"]);
    eprintln!("systemd booted in {:?}", started.elapsed());
    let state = vz.ok(&["exec2", "301", "systemctl is-system-running"]);
    assert!(
        matches!(state.trim(), "running" | "degraded"),
        "systemd is {state:?}; failed units: {}",
        vz.ok(&["exec2", "301", "systemctl --failed --no-legend || true"])
    );
    assert_eq!(
        vz.ok(&["exec", "301", "cat /proc/1/comm"]).trim(),
        "systemd"
    );
    assert_eq!(vz.ok(&["exec", "301", "hostname"]).trim(), "deb301");
    // systemd runs in its own cgroup subtree (the namespace's root), not the host's
    let cgroup = vz.ok(&["exec", "301", "cat /proc/1/cgroup"]);
    assert!(
        cgroup
            .lines()
            .all(|l| l.ends_with(":/") || l.ends_with(":/init.scope")),
        "{cgroup}"
    );
    assert_eq!(
        vz.ok(&["exec", "301", "cat /etc/machine-id"]).trim().len(),
        32
    );
    vz.ok(&["exec", "301", "echo kept > /root/marker"]);

    let before = vz.init_pid("301").unwrap();
    vz.vzctl(&["exec2", "301", "systemctl reboot"]);
    wait_for("the reboot", Duration::from_secs(60), || {
        vz.init_pid("301").is_some_and(|p| p != before)
    });
    wait_for("systemd after the reboot", Duration::from_secs(60), || {
        let out = vz.vzctl(&["exec2", "301", "systemctl is-system-running --wait"]);
        matches!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "running" | "degraded"
        )
    });
    assert_eq!(vz.ok(&["exec", "301", "cat /root/marker"]).trim(), "kept");

    let stopping = Instant::now();
    vz.ok(&["stop", "301"]);
    eprintln!("systemd stopped in {:?}", stopping.elapsed());
    assert_eq!(
        std::fs::read_to_string(vz.path("run/supervisors/301.last"))
            .unwrap()
            .trim(),
        "halt"
    );
    assert_eq!(vz.status("301"), "CTID 301 exist unmounted down");
    vz.ok(&["start", "301", "--wait"]);
    vz.vzctl(&["exec2", "301", "systemctl poweroff"]);
    wait_for("the poweroff", Duration::from_secs(60), || {
        vz.status("301") == "CTID 301 exist unmounted down"
    });
    vz.ok(&["destroy", "301"]);
    assert_eq!(
        cgroup_mounts(),
        mounts_before,
        "the host's cgroup mounts must not change"
    );
}

#[test]
#[ignore = "needs the Debian sysvinit template (scripts/test-vzctl.sh)"]
fn debian_with_sysvinit_boots_and_stops() {
    if common::skip() {
        return;
    }
    let vz = Vz::new();
    vz.add_template(
        "debian-12-x86_64-sysvinit",
        &template("VZCTL_TEST_SYSVINIT_TEMPLATE"),
    );
    vz.ok(&["create", "302", "--ostemplate", "debian-12-x86_64-sysvinit"]);
    vz.ok(&["start", "302"]);
    assert_eq!(vz.ok(&["exec", "302", "cat /proc/1/comm"]).trim(), "init");
    wait_for("runlevel 2", Duration::from_secs(30), || {
        vz.vzctl(&["exec2", "302", "runlevel"]).status.success()
            && String::from_utf8_lossy(&vz.vzctl(&["exec2", "302", "runlevel"]).stdout)
                .contains(" 2")
    });
    vz.ok(&["exec", "302", "echo kept > /root/marker"]);
    let before = vz.init_pid("302").unwrap();
    vz.vzctl(&["exec2", "302", "/sbin/reboot"]);
    wait_for("the reboot", Duration::from_secs(60), || {
        vz.init_pid("302").is_some_and(|p| p != before)
    });
    assert_eq!(vz.ok(&["exec", "302", "cat /root/marker"]).trim(), "kept");
    vz.ok(&["stop", "302"]);
    assert_eq!(
        std::fs::read_to_string(vz.path("run/supervisors/302.last"))
            .unwrap()
            .trim(),
        "halt"
    );
    assert_eq!(vz.status("302"), "CTID 302 exist unmounted down");
    vz.ok(&["destroy", "302"]);
}
