//! Test registry, parallel runner, result records and comparison.

use std::collections::{BTreeMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::ctx::{Ctx, Env};
use crate::expect::Fails;
use crate::host::HostSnapshot;

/// What a test body returns when it did not fail.
pub enum Outcome {
    Pass,
    /// The host lacks something the test needs (kernel feature, controller).
    Skip(String),
}

pub type TestResult = Result<Outcome>;
type TestFn = Arc<dyn Fn(&mut Ctx) -> TestResult + Send + Sync>;

pub struct TestDef {
    pub name: String,
    /// Runs alone, after the parallel tests (it watches host-wide state).
    pub serial: bool,
    pub func: TestFn,
}

impl TestDef {
    pub fn new(name: &str, f: fn(&mut Ctx) -> TestResult) -> TestDef {
        TestDef {
            name: name.to_string(),
            serial: false,
            func: Arc::new(f),
        }
    }
    pub fn closure(
        name: String,
        f: impl Fn(&mut Ctx) -> TestResult + Send + Sync + 'static,
    ) -> TestDef {
        TestDef {
            name,
            serial: false,
            func: Arc::new(f),
        }
    }
    pub fn serial(mut self) -> TestDef {
        self.serial = true;
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Skip,
    /// Failed, and listed as an expected failure for this runtime.
    Xfail,
    /// Passed although listed as an expected failure: the list is stale.
    Xpass,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
            Status::Xfail => "xfail",
            Status::Xpass => "XPASS",
        }
    }
    /// Whether this status makes a run fail.
    pub fn is_failure(self) -> bool {
        matches!(self, Status::Fail | Status::Xpass)
    }
}

/// One line of the results file (JSON lines).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub runtime: String,
    pub test: String,
    pub status: Status,
    pub message: String,
    pub duration_ms: u64,
}

pub struct RunOptions {
    pub jobs: usize,
    pub results: Option<std::path::PathBuf>,
}

#[derive(Default, Debug)]
pub struct Summary {
    pub counts: BTreeMap<&'static str, usize>,
    pub failed: usize,
}

/// Selects tests: every filter is a substring (or the exact name with
/// `exact`); no filter selects all; `skip` patterns remove tests.
pub fn select(all: Vec<TestDef>, filters: &[String], skip: &[String], exact: bool) -> Vec<TestDef> {
    all.into_iter()
        .filter(|t| {
            filters.is_empty()
                || filters.iter().any(|f| {
                    if exact {
                        &t.name == f
                    } else {
                        t.name.contains(f.as_str())
                    }
                })
        })
        .filter(|t| !skip.iter().any(|s| t.name.contains(s.as_str())))
        .collect()
}

fn run_one(env: &Arc<Env>, t: &TestDef) -> Record {
    let start = Instant::now();
    let (mut status, mut message) = match Ctx::new(env.clone(), &t.name) {
        Err(e) => (Status::Fail, format!("setting up the test: {e:#}")),
        Ok(mut ctx) => {
            let r = std::panic::catch_unwind(AssertUnwindSafe(|| (t.func)(&mut ctx)));
            let (st, msg) = match r {
                Ok(Ok(Outcome::Pass)) => (Status::Pass, String::new()),
                Ok(Ok(Outcome::Skip(why))) => (Status::Skip, why),
                Ok(Err(e)) => (Status::Fail, format!("{e:#}")),
                Err(p) => {
                    let what = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "panic".into());
                    (Status::Fail, format!("panicked: {what}"))
                }
            };
            let problems = ctx.teardown();
            if problems.is_empty() {
                (st, msg)
            } else {
                let extra = problems.join("; ");
                let msg = if msg.is_empty() {
                    extra
                } else {
                    format!("{msg}; {extra}")
                };
                (Status::Fail, msg)
            }
        }
    };
    if let Some(exp) = crate::expect::expected_failure(&env.runtime_name, &t.name) {
        let reason = exp.reason;
        match (status, exp.fails) {
            (Status::Fail, _) => {
                status = Status::Xfail;
                message = format!("expected failure ({reason}): {message}");
            }
            (Status::Pass, Fails::Sometimes) => {
                message = format!("passed this time; listed as sometimes failing ({reason})");
            }
            (Status::Pass, Fails::Always) => {
                status = Status::Xpass;
                message = format!(
                    "listed as an expected failure on {} ({reason}) but passed: update src/expect.rs and docs/CONFORMANCE.md",
                    env.runtime_name
                );
            }
            _ => {}
        }
    }
    Record {
        runtime: env.runtime_name.clone(),
        test: t.name.clone(),
        status,
        message,
        duration_ms: start.elapsed().as_millis() as u64,
    }
}

struct Printer {
    results: Option<std::fs::File>,
    done: usize,
    total: usize,
    tty: bool,
    summary: Summary,
}

impl Printer {
    fn record(&mut self, r: &Record) {
        self.done += 1;
        *self.summary.counts.entry(r.status.label()).or_default() += 1;
        if r.status.is_failure() {
            self.summary.failed += 1;
        }
        let mut line = format!("{:<5} {} ({} ms)", r.status.label(), r.test, r.duration_ms);
        if !r.message.is_empty() {
            line.push_str(&format!("\n      {}", r.message.replace('\n', "\n      ")));
        }
        let mut so = std::io::stdout().lock();
        if self.tty {
            let _ = write!(so, "\r\x1b[K");
        }
        let _ = writeln!(so, "{line}");
        if self.tty && self.done < self.total {
            let _ = write!(so, "[{}/{}] running...", self.done, self.total);
        }
        let _ = so.flush();
        if let Some(f) = self.results.as_mut() {
            if let Ok(j) = serde_json::to_string(r) {
                let _ = writeln!(f, "{j}");
            }
        }
    }
}

/// Runs the tests (parallel ones on `jobs` threads, then serial ones
/// alone), then the host self-check. Prints one line per test.
pub fn run(env: Arc<Env>, tests: Vec<TestDef>, opts: &RunOptions) -> Result<Summary> {
    let before = HostSnapshot::take(&env.run_dir, &env.layout, &env.cgroup_parent)?;
    let results = match &opts.results {
        Some(p) => {
            Some(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?)
        }
        None => None,
    };
    let total = tests.len() + 1;
    let printer = Arc::new(Mutex::new(Printer {
        results,
        done: 0,
        total,
        tty: std::io::stdout().is_terminal(),
        summary: Summary::default(),
    }));
    let (serial, parallel): (Vec<TestDef>, Vec<TestDef>) =
        tests.into_iter().partition(|t| t.serial);
    let queue = Arc::new(Mutex::new(parallel.into_iter().collect::<VecDeque<_>>()));
    let workers: Vec<_> = (0..opts.jobs.max(1))
        .map(|_| {
            let queue = queue.clone();
            let env = env.clone();
            let printer = printer.clone();
            std::thread::spawn(move || loop {
                let next = queue.lock().unwrap().pop_front();
                let Some(t) = next else { break };
                let rec = run_one(&env, &t);
                printer.lock().unwrap().record(&rec);
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    for t in serial {
        let rec = run_one(&env, &t);
        printer.lock().unwrap().record(&rec);
    }
    let rec = self_check(&env, &before);
    printer.lock().unwrap().record(&rec);
    let mut p = printer.lock().unwrap();
    if let Some(f) = p.results.as_mut() {
        let _ = f.flush();
    }
    Ok(std::mem::take(&mut p.summary))
}

/// The last "test": the host must look as it did before the run.
fn self_check(env: &Arc<Env>, before: &HostSnapshot) -> Record {
    let start = Instant::now();
    let mut problems = Vec::new();
    let leaked = env.layout.remove_tree(&env.cgroup_parent);
    if !leaked.is_empty() {
        problems.push(format!(
            "processes were still in the run's cgroups: {leaked:?}"
        ));
    }
    match HostSnapshot::take(&env.run_dir, &env.layout, &env.cgroup_parent) {
        Ok(after) => problems.extend(before.diff(&after)),
        Err(e) => problems.push(format!("{e:#}")),
    }
    Record {
        runtime: env.runtime_name.clone(),
        test: "selfcheck.host_unchanged".into(),
        status: if problems.is_empty() {
            Status::Pass
        } else {
            Status::Fail
        },
        message: problems.join("; "),
        duration_ms: start.elapsed().as_millis() as u64,
    }
}

pub fn read_records(path: &Path) -> Result<Vec<Record>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{} line {}: not a result record", path.display(), i + 1))
        })
        .collect()
}

/// Side-by-side table of a reference and a candidate run. Returns the
/// tests that pass on the reference but not on the candidate.
pub fn compare(
    reference: &[Record],
    candidate: &[Record],
    out: &mut impl Write,
) -> Result<Vec<String>> {
    let cand: BTreeMap<&str, &Record> = candidate.iter().map(|r| (r.test.as_str(), r)).collect();
    let refs: BTreeMap<&str, &Record> = reference.iter().map(|r| (r.test.as_str(), r)).collect();
    let mut names: Vec<&str> = refs.keys().chain(cand.keys()).copied().collect();
    names.sort_unstable();
    names.dedup();
    let rname = reference
        .first()
        .map(|r| r.runtime.as_str())
        .unwrap_or("reference");
    let cname = candidate
        .first()
        .map(|r| r.runtime.as_str())
        .unwrap_or("candidate");
    let width = names.iter().map(|n| n.len()).max().unwrap_or(4).max(4);
    writeln!(out, "{:<width$}  {:<7}  {:<7}  note", "TEST", rname, cname)?;
    let mut regressions = Vec::new();
    for n in names {
        let r = refs.get(n).map(|r| r.status);
        let c = cand.get(n).map(|r| r.status);
        let label = |s: Option<Status>| s.map(|s| s.label()).unwrap_or("-");
        let note = if r == Some(Status::Pass) && c != Some(Status::Pass) {
            regressions.push(n.to_string());
            let why = cand.get(n).map(|c| c.message.as_str()).unwrap_or("not run");
            format!("REGRESSION: {}", crate::ctx::short(why))
        } else if r != Some(Status::Pass) && c == Some(Status::Pass) {
            "better than the reference".into()
        } else {
            String::new()
        };
        writeln!(out, "{n:<width$}  {:<7}  {:<7}  {note}", label(r), label(c))?;
    }
    Ok(regressions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(rt: &str, t: &str, s: Status) -> Record {
        Record {
            runtime: rt.into(),
            test: t.into(),
            status: s,
            message: String::new(),
            duration_ms: 0,
        }
    }

    #[test]
    fn compare_flags_only_reference_passes_lost() {
        let r = vec![
            rec("runc", "a", Status::Pass),
            rec("runc", "b", Status::Xfail),
            rec("runc", "c", Status::Pass),
            rec("runc", "d", Status::Pass),
        ];
        let c = vec![
            rec("vzrun", "a", Status::Pass),
            rec("vzrun", "b", Status::Fail),
            rec("vzrun", "c", Status::Skip),
        ];
        let mut out = Vec::new();
        let reg = compare(&r, &c, &mut out).unwrap();
        assert_eq!(reg, vec!["c".to_string(), "d".to_string()]);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("REGRESSION"));
    }

    #[test]
    fn select_filters_and_skips() {
        let mk = |n: &str| TestDef::new(n, |_| Ok(Outcome::Pass));
        let all = vec![mk("kill.one"), mk("kill.two"), mk("exec.one")];
        let s = select(all, &["kill".into()], &["two".into()], false);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].name, "kill.one");
    }
}
