//! vzrun's own behaviour on the real kernel, beyond what the runtime-agnostic oci-tests
//! check: real-time signals, tmpcopyup, JSON logs for engines, atomic creation under
//! concurrency, exec vs delete, crash leftovers, checkpoint probing.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Env;

#[test]
fn lifecycle_and_state_json() {
    if common::skip() {
        return;
    }
    let env = Env::new();
    let bundle = env.bundle("life", &["sleep", "100"], |_| {});
    let id = env.id("life");
    let pid_file = env.dir.path().join("pid");
    env.ok(&[
        "create",
        "--bundle",
        bundle.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ]);
    let state: serde_json::Value = serde_json::from_str(&env.ok(&["state", &id])).unwrap();
    assert_eq!(state["status"], "created");
    assert_eq!(state["id"], id.as_str());
    let pid = state["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), pid.to_string());
    assert_eq!(state["bundle"], bundle.to_str().unwrap());
    env.ok(&["start", &id]);
    env.wait_status(&id, "running");
    // start twice is an error naming the state
    let again = env.run(&["start", &id]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("is running"));
    env.ok(&["kill", &id, "KILL"]);
    env.wait_status(&id, "stopped");
    let stopped: serde_json::Value = serde_json::from_str(&env.ok(&["state", &id])).unwrap();
    assert_eq!(stopped["pid"], 0);
    env.ok(&["delete", &id]);
    assert!(!env.run(&["state", &id]).status.success());
    assert!(common::cgroups_named(&format!("life-{}", std::process::id())).is_empty());
}

#[test]
fn realtime_signals_reach_the_container() {
    if common::skip() {
        return;
    }
    let env = Env::new();
    // PID 1 ignores signals it has no handler for: the trap is the handler.
    let bundle = env.bundle(
        "rt",
        &["sh", "-c", "trap 'echo got37 > /tmp/sig' 37; trap 'echo got64 > /tmp/sig' 64; while :; do sleep 0.05; done"],
        |_| {},
    );
    let id = env.id("rt");
    env.ok(&["run", "--detach", "--bundle", bundle.to_str().unwrap(), &id]);
    std::thread::sleep(Duration::from_millis(200));
    for (signal, expect) in [("SIGRTMIN+3", "got37"), ("64", "got64"), ("RTMAX", "got64")] {
        env.ok(&["exec", &id, "rm", "-f", "/tmp/sig"]);
        env.ok(&["kill", &id, signal]);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let out = env.run(&["exec", &id, "cat", "/tmp/sig"]);
            if String::from_utf8_lossy(&out.stdout).trim() == expect {
                break;
            }
            assert!(Instant::now() < deadline, "signal {signal} never arrived");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let bad = env.run(&["kill", &id, "RTMIN+31"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid signal"));
}

#[test]
fn tmpcopyup_fills_the_tmpfs_from_the_image() {
    if common::skip() {
        return;
    }
    let env = Env::new();
    let bundle = env.bundle("copyup", &["sh", "-c", "cat /data/sub/file; ls -l /data/link; grep ' /data ' /proc/mounts; stat -c '%a %u' /data/sub"], |c| {
        c["mounts"].as_array_mut().unwrap().push(serde_json::json!(
            {"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "tmpcopyup", "mode=755"]}
        ));
    });
    let data = bundle.join("rootfs/data/sub");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("file"), "from the image\n").unwrap();
    std::os::unix::fs::symlink("sub/file", bundle.join("rootfs/data/link")).unwrap();
    std::os::unix::fs::chown(&data, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let id = env.id("copyup");
    let out = env.run(&["run", "--bundle", bundle.to_str().unwrap(), &id]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("from the image"), "{stdout}");
    assert!(stdout.contains("link -> sub/file"), "{stdout}");
    assert!(stdout.contains("tmpfs /data tmpfs"), "{stdout}");
    assert!(stdout.contains("755 65534"), "{stdout}");
}

#[test]
fn json_log_lines_for_engines() {
    if common::skip() {
        return;
    }
    let env = Env::new();
    let log = env.dir.path().join("log.json");
    let out = env.run(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "start",
        "no-such-container",
    ]);
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert_eq!(
        last["msg"],
        "container \"no-such-container\" does not exist"
    );
    assert!(last["time"].is_string());
}

#[test]
fn concurrent_creates_of_one_id_make_one_container() {
    if common::skip() {
        return;
    }
    let env = Env::new();
    let bundle = env.bundle("dup", &["sleep", "100"], |_| {});
    let id = env.id("dup");
    let children: Vec<_> = (0..8)
        .map(|_| {
            let err = tempfile::tempfile().unwrap();
            let child = env
                .cmd(&["create", "--bundle", bundle.to_str().unwrap(), &id])
                .stdout(Stdio::null())
                .stderr(err.try_clone().unwrap())
                .spawn()
                .unwrap();
            (child, err)
        })
        .collect();
    let results: Vec<_> = children
        .into_iter()
        .map(|(mut child, mut err)| {
            let status = child.wait().unwrap();
            let mut stderr = Vec::new();
            use std::io::{Read, Seek};
            err.seek(std::io::SeekFrom::Start(0)).unwrap();
            err.read_to_end(&mut stderr).unwrap();
            std::process::Output {
                status,
                stdout: Vec::new(),
                stderr,
            }
        })
        .collect();
    let winners = results.iter().filter(|r| r.status.success()).count();
    assert_eq!(winners, 1, "exactly one create wins");
    for r in results.iter().filter(|r| !r.status.success()) {
        assert!(String::from_utf8_lossy(&r.stderr).contains("already exists"));
    }
    assert_eq!(env.status(&id), "created");
    let listed = env.ok(&["list", "--quiet"]);
    assert_eq!(listed.lines().collect::<Vec<_>>(), vec![id.as_str()]);
}

#[test]
fn delete_force_is_not_blocked_by_a_running_exec() {
    if common::skip() {
        return;
    }
    let env = Env::new();
    let bundle = env.bundle("execdel", &["sleep", "100"], |_| {});
    let id = env.id("execdel");
    env.ok(&["run", "-d", "--bundle", bundle.to_str().unwrap(), &id]);
    let mut exec = env
        .cmd(&["exec", &id, "sleep", "60"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    env.ok(&["delete", "--force", &id]);
    assert!(started.elapsed() < Duration::from_secs(5));
    let status = exec.wait().unwrap();
    assert!(
        !status.success(),
        "the exec'd process died with its container"
    );
}

#[test]
fn foreground_run_passes_exit_status_and_signals() {
    if common::skip() {
        return;
    }
    let env = Env::new();
    let bundle = env.bundle("fg", &["sh", "-c", "exit 42"], |_| {});
    let id = env.id("fg");
    let out = env.run(&["run", "--bundle", bundle.to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(42));
    assert!(
        !env.root.join(&id).exists(),
        "run deletes the container afterwards"
    );

    // A signal to `vzrun run` reaches the container's init (which traps it and exits 7).
    let bundle = env.bundle(
        "fgsig",
        &[
            "sh",
            "-c",
            "trap 'exit 7' TERM; while :; do sleep 0.05; done",
        ],
        |_| {},
    );
    let id = env.id("fgsig");
    let child = env
        .cmd(&["run", "--bundle", bundle.to_str().unwrap(), &id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(7));
}

#[test]
fn exec_with_process_file_and_stdin() {
    if common::skip() {
        return;
    }
    let env = Env::new();
    let bundle = env.bundle("proc", &["sleep", "100"], |_| {});
    let id = env.id("proc");
    env.ok(&["run", "-d", "--bundle", bundle.to_str().unwrap(), &id]);
    let process = env.dir.path().join("process.json");
    std::fs::write(
        &process,
        r#"{"args":["sh","-c","read line; echo got:$line:$FOO; id -u"],"env":["PATH=/bin","FOO=bar"],"cwd":"/","user":{"uid":65534,"gid":65534}}"#,
    )
    .unwrap();
    let mut child = env
        .cmd(&["exec", "--process", process.to_str().unwrap(), &id])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "got:hello:bar\n65534\n"
    );
}

#[test]
fn killed_create_leaves_what_delete_force_cleans() {
    if common::skip() {
        return;
    }
    let env = Env::new();
    let bundle = env.bundle("crash", &["sleep", "100"], |_| {});
    // Kill `create` at spread-out moments of its life.
    for delay_ms in [0u64, 1, 2, 4, 8, 15, 30, 60] {
        let id = env.id("crash");
        let mut child = env
            .cmd(&["create", "--bundle", bundle.to_str().unwrap(), &id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        env.ok(&["delete", "--force", &id]);
        assert!(
            !env.root.join(&id).exists(),
            "delay {delay_ms}ms left the directory"
        );
        let leftovers: Vec<_> = std::fs::read_dir(&env.root)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(
            leftovers.is_empty(),
            "delay {delay_ms}ms left {leftovers:?}"
        );
    }
    assert!(common::cgroups_named(&format!("crash-{}", std::process::id())).is_empty());
}

#[test]
fn checkpoint_is_reported_unsupported() {
    if common::skip() {
        return;
    }
    let env = Env::new();
    let help = env.run(&["checkpoint", "--help"]);
    assert!(
        !help.status.success(),
        "podman must not think checkpointing works"
    );
    assert!(String::from_utf8_lossy(&help.stdout).contains("Checkpoint"));
    assert!(String::from_utf8_lossy(&help.stderr).contains("not supported yet"));
}

#[test]
fn bad_bundles_fail_cleanly() {
    if common::skip() {
        return;
    }
    let env = Env::new();
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "noargs",
            Box::new(|c| c["process"]["args"] = serde_json::json!([])),
            "args must not be empty",
        ),
        (
            "badroot",
            Box::new(|c| c["root"]["path"] = "missing".into()),
            "root.path",
        ),
        (
            "badtype",
            Box::new(|c| c["process"]["args"] = "sh".into()),
            "process.args: invalid type",
        ),
        (
            "nocmd",
            Box::new(|c| c["process"]["args"] = serde_json::json!(["/no/such/program"])),
            "/no/such/program",
        ),
    ];
    for (name, edit, message) in cases {
        let bundle = env.bundle(name, &["true"], edit);
        let id = env.id(name);
        let out = env.run(&["create", "--bundle", bundle.to_str().unwrap(), &id]);
        assert!(!out.status.success(), "{name} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message), "{name}: {err}");
        assert!(!env.root.join(&id).exists(), "{name} left state behind");
    }
    let bundle = env.dir.path().join("nojson");
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::write(bundle.join("config.json"), "{\"ociVersion\": ").unwrap();
    let out = env.run(&["create", "--bundle", bundle.to_str().unwrap(), "x"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid JSON"));
    let out = env.run(&["create", "--bundle", "/nonexistent", "x"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such directory"));
    let out = env.run(&["create", "--bundle", bundle.to_str().unwrap(), "bad/id"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid container id"));
}
