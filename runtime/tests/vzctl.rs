//! vzctl and vzlist end to end with a busybox OS template (busybox init as PID 1):
//! create, start, exec/exec2/enter, reboot and poweroff from inside, stop, persistence,
//! set, names, locking, onboot, vzlist, destroy. Each test has its own VZ root (vz.conf
//! in a temporary VZCTL_ETC) and leaves no mount, cgroup, process or file behind.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::vz::{wait_for, Vz, TEMPLATE, VZCTL};

#[test]
fn create_validates_and_writes_the_config() {
    if common::skip() {
        return;
    }
    let vz = Vz::new();
    assert_eq!(
        vz.code(&["create", "101", "--ostemplate", "no-such-template"]),
        91
    );
    assert!(
        !vz.path("private/101").exists(),
        "a failed create leaves nothing"
    );
    assert!(!vz.path("etc/conf/101.conf").exists());
    assert_eq!(vz.code(&["create", "0", "--ostemplate", TEMPLATE]), 20);
    assert_eq!(vz.code(&["create", "101"]), 29, "no template given");
    vz.ok(&[
        "create",
        "101",
        "--ostemplate",
        TEMPLATE,
        "--hostname",
        "ct101",
        "--name",
        "web",
    ]);
    let conf = std::fs::read_to_string(vz.path("etc/conf/101.conf")).unwrap();
    assert!(
        conf.contains(&format!("OSTEMPLATE=\"{TEMPLATE}:1.0\"")),
        "{conf}"
    );
    assert!(conf.contains("HOSTNAME=\"ct101\""));
    assert!(conf.contains("NAME=\"web\""));
    assert!(vz.path("private/101/bin/busybox").exists());
    assert_eq!(vz.status("101"), "CTID 101 exist unmounted down");
    assert_eq!(
        vz.status("web"),
        "CTID 101 exist unmounted down",
        "names resolve"
    );
    assert_eq!(vz.code(&["create", "101", "--ostemplate", TEMPLATE]), 44);
    assert_eq!(vz.code(&["start", "999"]), 14, "unknown container");
    assert_eq!(vz.code(&["stop", "101"]), 31, "not running");
    vz.ok(&["destroy", "web"]);
    assert_eq!(vz.status("101"), "CTID 101 deleted unmounted down");
    assert!(!vz.path("etc/names/web").exists());
}

#[test]
fn lifecycle_exec_persistence_reboot_and_halt() {
    if common::skip() {
        return;
    }
    let vz = Vz::new();
    vz.create_and_start("102");
    assert_eq!(vz.status("102"), "CTID 102 exist mounted running");
    assert_eq!(vz.code(&["start", "102"]), 32, "already running");
    // init is PID 1, busybox's
    assert_eq!(vz.ok(&["exec", "102", "cat /proc/1/comm"]).trim(), "init");
    assert_eq!(vz.ok(&["exec", "102", "hostname"]).trim(), "ct102");
    // exec: 0 or 8; exec2: the command's own code
    assert_eq!(vz.code(&["exec", "102", "exit 3"]), 8);
    assert_eq!(vz.code(&["exec2", "102", "exit 3"]), 3);
    // stdin with "-"
    let mut child = vz
        .command(VZCTL, &["exec2", "102", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo from-stdin\nexit 4\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from-stdin\n");

    vz.ok(&["exec", "102", "echo kept > /root/marker"]);
    // reboot from inside: a new init, same files, still running
    let before = vz.init_pid("102").unwrap();
    vz.vzctl(&["exec", "102", "reboot"]);
    wait_for("the reboot", Duration::from_secs(30), || {
        vz.init_pid("102").is_some_and(|p| p != before)
    });
    assert_eq!(vz.status("102"), "CTID 102 exist mounted running");
    assert_eq!(vz.ok(&["exec", "102", "cat /root/marker"]).trim(), "kept");
    assert_eq!(
        vz.ok(&["exec", "102", "cat /var/log/boots"])
            .lines()
            .count(),
        2
    );
    // stop and start again: files persist
    vz.ok(&["stop", "102"]);
    assert_eq!(vz.status("102"), "CTID 102 exist unmounted down");
    assert!(!vzrun::mountinfo::is_mount_point(&vz.path("root/102")));
    vz.ok(&["start", "102"]);
    assert_eq!(vz.ok(&["exec", "102", "cat /root/marker"]).trim(), "kept");
    // poweroff from inside stops it for good
    vz.vzctl(&["exec", "102", "poweroff"]);
    wait_for("the poweroff", Duration::from_secs(30), || {
        vz.status("102") == "CTID 102 exist unmounted down"
    });
    let last = std::fs::read_to_string(vz.path("run/supervisors/102.last")).unwrap();
    assert_eq!(last.trim(), "halt");
    vz.ok(&["destroy", "102"]);
    assert!(!vz.path("private/102").exists());
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        assert!(
            !hierarchy.path().join("vz/102").exists(),
            "cgroup left in {:?}",
            hierarchy.path()
        );
    }
}

#[test]
fn stop_fast_and_graceful_timing() {
    if common::skip() {
        return;
    }
    let vz = Vz::new();
    vz.create_and_start("103");
    let started = Instant::now();
    vz.ok(&["stop", "--fast", "103"]);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(vz.status("103"), "CTID 103 exist unmounted down");
    assert!(
        !vz.path("run/supervisors/103.pid").exists(),
        "the supervisor ended"
    );
}

#[test]
fn set_hostname_nameserver_name_onboot() {
    if common::skip() {
        return;
    }
    let vz = Vz::new();
    vz.ok(&["create", "104", "--ostemplate", TEMPLATE]);
    assert_eq!(
        vz.code(&["set", "104", "--hostname", "x"]),
        31,
        "not running needs --save"
    );
    vz.ok(&[
        "set",
        "104",
        "--hostname",
        "saved.example.com",
        "--nameserver",
        "10.1.1.1",
        "--searchdomain",
        "example.com",
        "--save",
    ]);
    vz.ok(&["start", "104"]);
    assert_eq!(
        vz.ok(&["exec", "104", "hostname"]).trim(),
        "saved.example.com"
    );
    // live change, written into the container's files the Debian way
    vz.ok(&[
        "set",
        "104",
        "--hostname",
        "live.example.com",
        "--nameserver",
        "10.2.2.2",
    ]);
    assert_eq!(
        vz.ok(&["exec", "104", "hostname"]).trim(),
        "live.example.com"
    );
    assert_eq!(
        vz.ok(&["exec", "104", "cat /etc/hostname"]).trim(),
        "live.example.com"
    );
    assert!(vz
        .ok(&["exec", "104", "cat /etc/hosts"])
        .contains("127.0.1.1\tlive.example.com live"));
    let resolv = vz.ok(&["exec", "104", "cat /etc/resolv.conf"]);
    assert!(
        resolv.contains("nameserver 10.2.2.2") && resolv.contains("search example.com"),
        "{resolv}"
    );
    let conf = std::fs::read_to_string(vz.path("etc/conf/104.conf")).unwrap();
    assert!(
        conf.contains("HOSTNAME=\"saved.example.com\""),
        "without --save the config keeps its value"
    );
    assert_eq!(
        vz.code(&["set", "104", "--nameserver", "not-an-ip", "--save"]),
        21
    );
    vz.ok(&["set", "104", "--name", "db", "--onboot", "yes", "--save"]);
    assert_eq!(vz.status("db"), "CTID 104 exist mounted running");
    vz.ok(&["stop", "db"]);
    vz.ok(&["start-onboot"]);
    assert_eq!(
        vz.status("104"),
        "CTID 104 exist mounted running",
        "ONBOOT=yes starts it"
    );
    vz.ok(&["stop", "104"]);
}

#[test]
fn a_second_vzctl_gets_exit_code_9() {
    if common::skip() {
        return;
    }
    let vz = Vz::new();
    vz.ok(&["create", "105", "--ostemplate", TEMPLATE]);
    std::fs::create_dir_all(vz.path("lock")).unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(vz.path("lock/105.lck"))
        .unwrap();
    // This test process plays the other vzctl: it holds the container's lock.
    vzrun::store::posix_lock(&file, vzrun::store::LockMode::Exclusive, false).unwrap();
    for args in [
        &["start", "105"][..],
        &["mount", "105"],
        &["destroy", "105"],
        &["set", "105", "--onboot", "yes", "--save"],
    ] {
        let out = vz.vzctl(args);
        assert_eq!(out.status.code(), Some(9), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("locked by another vzctl"));
    }
    assert_eq!(
        vz.status("105"),
        "CTID 105 exist unmounted down",
        "status reads without the lock"
    );
    drop(file);
    vz.ok(&["start", "105"]);
    vz.ok(&["stop", "105"]);
}

#[test]
fn vzlist_columns_json_and_filters() {
    if common::skip() {
        return;
    }
    let vz = Vz::new();
    vz.create_and_start("106");
    vz.ok(&[
        "create",
        "107",
        "--ostemplate",
        TEMPLATE,
        "--hostname",
        "stopped.example",
        "--name",
        "cold",
    ]);
    let running = vz.vzlist(&[]);
    assert!(
        running.starts_with("CTID NPROC STATUS  IP_ADDR HOSTNAME\n"),
        "{running}"
    );
    assert!(
        running.contains(" 106 ") && running.contains("running") && !running.contains("107"),
        "{running}"
    );
    let all = vz.vzlist(&["-a", "-H", "-o", "ctid,status,name", "-s", "-ctid"]);
    assert_eq!(all, " 107 stopped cold\n 106 running -\n");
    assert_eq!(vz.vzlist(&["-S", "-H", "-o", "ctid"]), " 107\n");
    let json: serde_json::Value = serde_json::from_str(&vz.vzlist(&["-a", "-j"])).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["ctid"], 106);
    assert_eq!(rows[0]["status"], "running");
    assert!(
        rows[0]["numproc"]["held"].as_u64().unwrap() >= 2,
        "init + sleep"
    );
    assert_eq!(rows[1]["name"], "cold");
    assert_eq!(rows[1]["hostname"], "stopped.example");
    vz.ok(&["stop", "106"]);
}

#[test]
fn enter_gives_a_shell_on_a_terminal() {
    if common::skip() {
        return;
    }
    let vz = Vz::new();
    vz.create_and_start("108");
    // script(1) gives vzctl a real terminal; the shell inside must have one too.
    let out = Command::new("script")
        .args(["-qec", &format!("{VZCTL} enter 108"), "/dev/null"])
        .env("VZCTL_ETC", vz.path("etc"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            let mut stdin = c.stdin.take().unwrap();
            stdin.write_all(b"tty; echo in-$(hostname)-uid$(id -u)\n")?;
            std::thread::sleep(Duration::from_millis(500));
            stdin.write_all(b"exit\n")?;
            drop(stdin);
            c.wait_with_output()
        })
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(text.contains("in-ct108-uid0"), "{text}");
    vz.ok(&["stop", "108"]);
}
