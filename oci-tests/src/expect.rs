//! Expected failures of the reference runtimes on this kind of host, each
//! with its reason. docs/CONFORMANCE.md carries the same table (a unit test
//! keeps the two in step).

/// How reliably a listed test fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fails {
    /// Fails every time: a pass means the list is stale.
    Always,
    /// Fails on a race: a pass is reported but is no error.
    Sometimes,
}

pub struct Expectation {
    pub runtime: &'static str,
    pub test: &'static str,
    pub fails: Fails,
    pub reason: &'static str,
}

const fn always(runtime: &'static str, test: &'static str, reason: &'static str) -> Expectation {
    Expectation {
        runtime,
        test,
        fails: Fails::Always,
        reason,
    }
}

const fn sometimes(runtime: &'static str, test: &'static str, reason: &'static str) -> Expectation {
    Expectation {
        runtime,
        test,
        fails: Fails::Sometimes,
        reason,
    }
}

const RUNC_POSTSTART: &str =
    "runc 1.1.5 runs poststart hooks during `create`, before the process is started";
const RUNC_RT_NAMES: &str =
    "runc 1.1.5 knows no real-time signal names (SIGRTMIN+n, SIGRTMAX); numbers 34-64 work";
const CRUN_NO_EVENTS: &str = "crun 1.8.1 has no `events` command";
const CRUN_EXEC_STATUS: &str = "crun exits 1, not runc's 255, when `exec` cannot run the process";
const CRUN_PROPAGATION: &str = "under the hybrid wrapper (an extra mount namespace) crun's container does not share mount events with the host here; not analysed further";

pub const EXPECTED_FAILURES: &[Expectation] = &[
    always("runc", "hooks.run_at_their_phases", RUNC_POSTSTART),
    always(
        "runc",
        "hooks.state_on_stdin",
        "runc 1.1.5 gives createContainer and startContainer hooks the pid seen inside the container (1), and poststart (run during create) sees status created",
    ),
    always(
        "runc",
        "hooks.poststart_failure_continues",
        "runc 1.1.5 runs poststart during `create` and fails it when a poststart hook fails; the spec says warn and continue",
    ),
    always("runc", "linux.domainname", "runc 1.1.5 ignores the domainname field"),
    always(
        "runc",
        "mounts.rootfs_propagation_shared",
        "runc 1.1.5 applies rootfsPropagation before pivot_root only; the container's / stays private",
    ),
    always("runc", "kill.rt_signal_name", RUNC_RT_NAMES),
    always("runc", "kill.rt_signal_name_max", RUNC_RT_NAMES),
    always(
        "runc",
        "errors.sigkill_create_then_delete_force",
        "runc 1.1.5 makes the cpuset cgroup before it writes its state; after an early SIGKILL of create, delete --force finds no state and leaves that cgroup",
    ),
    always("crun", "errors.wrong_field_type", "crun 1.8.1 accepts process.args given as a string"),
    always("crun", "errors.unknown_id_exec", CRUN_EXEC_STATUS),
    always("crun", "errors.exec_stopped", CRUN_EXEC_STATUS),
    always("crun", "exec.process_file_invalid", CRUN_EXEC_STATUS),
    always("crun", "errors.unknown_id_ps", "crun 1.8.1 `ps` exits 253, not 1, for an unknown container"),
    always("crun", "errors.unknown_id_events", CRUN_NO_EVENTS),
    always("crun", "cgroups.events_stats", CRUN_NO_EVENTS),
    always("crun", "cgroups.events_interval", CRUN_NO_EVENTS),
    always("crun", "errors.resume_running", "crun 1.8.1 `resume` of a running container succeeds"),
    always(
        "crun",
        "hooks.state_on_stdin",
        "crun 1.8.1 passes pid 0 to createContainer and startContainer hooks; startContainer gets bundle \"/\" and status \"starting\"",
    ),
    sometimes(
        "crun",
        "hooks.run_at_their_phases",
        "crun 1.8.1 runs poststart without waiting for the startContainer hook; the order varies",
    ),
    sometimes(
        "crun",
        "hooks.poststop_failure_continues",
        "crun 1.8.1 now and then keeps the container after `delete` when a poststop hook fails",
    ),
    always("crun", "hooks.create_runtime_failure_aborts", "crun exits 255, not 1, when a hook fails"),
    always("crun", "mounts.propagation_rslave", CRUN_PROPAGATION),
    always("crun", "mounts.propagation_rshared", CRUN_PROPAGATION),
    always("crun", "kill.invalid_signal_fails", "crun 1.8.1 accepts unknown signal names and delivers nothing"),
    always("crun", "kill.signal_name_lowercase", "crun 1.8.1 accepts lower-case signal names but delivers nothing"),
    always("crun", "exec.env", "crun `exec --env` replaces the config's environment instead of adding to it"),
    always("crun", "cli.features", "crun 1.8.1 has no `features` command"),
    always(
        "crun",
        "lifecycle.debug_log",
        "crun 1.8.1 logs nothing at debug level for a successful create with --debug",
    ),
    always(
        "crun",
        "errors.sigkill_create_then_delete_force",
        "crun 1.8.1 makes cgroups before it writes its state; after an early SIGKILL of create, delete --force leaves them",
    ),
];

pub fn expected_failure(runtime: &str, test: &str) -> Option<&'static Expectation> {
    EXPECTED_FAILURES
        .iter()
        .find(|e| e.runtime == runtime && e.test == test)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of the table between the expectation markers in the docs.
    fn doc_rows() -> Vec<Vec<String>> {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/CONFORMANCE.md"
        ))
        .expect("docs/CONFORMANCE.md");
        let begin = doc
            .find("<!-- expectations:begin -->")
            .expect("begin marker");
        let end = doc.find("<!-- expectations:end -->").expect("end marker");
        doc[begin..end]
            .lines()
            .filter(|l| l.starts_with('|') && !l.starts_with("|--") && !l.starts_with("| Runtime"))
            .map(|l| {
                let cells: Vec<String> = l
                    .trim()
                    .trim_matches('|')
                    .split(" | ")
                    .map(|c| c.trim().trim_matches('`').to_string())
                    .collect();
                assert_eq!(cells.len(), 4, "bad expectation row: {l}");
                cells
            })
            .collect()
    }

    #[test]
    fn docs_list_the_same_expected_failures() {
        let code: Vec<Vec<String>> = EXPECTED_FAILURES
            .iter()
            .map(|e| {
                vec![
                    e.runtime.to_string(),
                    e.test.to_string(),
                    match e.fails {
                        Fails::Always => "always".to_string(),
                        Fails::Sometimes => "sometimes".to_string(),
                    },
                    e.reason.replace('|', "\\|"),
                ]
            })
            .collect();
        assert_eq!(
            doc_rows(),
            code,
            "docs/CONFORMANCE.md and src/expect.rs disagree"
        );
    }

    #[test]
    fn every_expected_failure_names_a_real_test() {
        let names: Vec<String> = crate::suites::all().into_iter().map(|t| t.name).collect();
        for e in EXPECTED_FAILURES {
            assert!(
                names.iter().any(|n| n == e.test),
                "unknown test {} in expectations",
                e.test
            );
        }
    }
}
