//! oci-tests: run the conformance suite against a runtime, list the tests,
//! or compare two result files.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use oci_tests::ctx::Env;
use oci_tests::harness::{self, RunOptions};

#[derive(Parser)]
#[command(name = "oci-tests", version, about = "OCI runtime conformance suite")]
struct Cli {
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the tests against a runtime.
    Run(RunArgs),
    /// List the test names.
    List {
        /// Substrings that select tests.
        filters: Vec<String>,
    },
    /// Compare a reference run with a candidate run (result files).
    Compare {
        reference: PathBuf,
        candidate: PathBuf,
    },
    /// Print the expected-failure list (runtime, test, reason).
    Expectations,
}

#[derive(clap::Args)]
struct RunArgs {
    /// The runtime binary (runc-compatible command line).
    #[arg(long, env = "RUNTIME")]
    runtime: PathBuf,
    /// Global options put before every command, e.g. "--systemd-cgroup".
    #[arg(long, env = "RUNTIME_ARGS", default_value = "")]
    runtime_args: String,
    /// Name that picks the expectation list; default: the first word of
    /// `RUNTIME --version`.
    #[arg(long, env = "RUNTIME_NAME")]
    name: Option<String>,
    /// Tests run at once.
    #[arg(long, short, default_value_t = 3)]
    jobs: usize,
    /// Write one JSON line per test here.
    #[arg(long)]
    results: Option<PathBuf>,
    /// The static helper (default: oci-helper beside this binary).
    #[arg(long, env = "OCI_HELPER")]
    helper: Option<PathBuf>,
    /// Static busybox for the test root.
    #[arg(long, env = "BUSYBOX", default_value = "/bin/busybox")]
    busybox: PathBuf,
    /// Filters are exact test names, not substrings.
    #[arg(long)]
    exact: bool,
    /// Leave out tests whose name contains this (repeatable).
    #[arg(long)]
    skip: Vec<String>,
    /// Keep each test's directory (bundles, runtime logs) for debugging.
    #[arg(long)]
    keep: bool,
    /// Substrings that select tests (default: all).
    filters: Vec<String>,
}

fn runtime_name(runtime: &PathBuf) -> String {
    let from_version = std::process::Command::new(runtime)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .next()
                .map(String::from)
        });
    from_version
        .or_else(|| {
            runtime
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "runtime".into())
}

fn run(args: RunArgs) -> Result<bool> {
    if unsafe_euid() != 0 {
        bail!("oci-tests must run as root (it creates containers, cgroups and mounts)");
    }
    let runtime = if args.runtime.components().count() == 1 {
        which(&args.runtime)
            .with_context(|| format!("{} is not in PATH", args.runtime.display()))?
    } else {
        args.runtime.clone()
    };
    if !runtime.is_file() {
        bail!("runtime {} does not exist", runtime.display());
    }
    // The runtime runs in each test's directory: relative paths would break.
    let runtime = std::path::absolute(&runtime)?;
    let helper = match args.helper {
        Some(h) => h,
        None => std::env::current_exe()?
            .parent()
            .context("no directory for the current executable")?
            .join("oci-helper"),
    };
    if !helper.is_file() {
        bail!(
            "helper {} does not exist (build it: see scripts/test-oci.sh)",
            helper.display()
        );
    }
    let name = args
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| runtime_name(&runtime));
    let tests = harness::select(
        oci_tests::suites::all(),
        &args.filters,
        &args.skip,
        args.exact,
    );
    if tests.is_empty() {
        bail!("no test matches {:?}", args.filters);
    }
    let env = Arc::new(Env::new(
        runtime.clone(),
        args.runtime_args
            .split_whitespace()
            .map(String::from)
            .collect(),
        name.clone(),
        &helper,
        &args.busybox,
        args.keep,
    )?);
    println!(
        "oci-tests: {} tests against {} ({name}), cgroup {}, {} jobs, work dir {}",
        tests.len(),
        runtime.display(),
        if env.layout.is_v2() { "v2" } else { "v1" },
        args.jobs,
        env.run_dir.display()
    );
    let summary = harness::run(
        env.clone(),
        tests,
        &RunOptions {
            jobs: args.jobs,
            results: args.results.clone(),
        },
    )?;
    if !args.keep {
        let _ = std::fs::remove_dir_all(&env.run_dir);
    }
    let c = |k: &str| summary.counts.get(k).copied().unwrap_or(0);
    println!(
        "{name}: {} passed, {} failed, {} expected failures, {} skipped, {} unexpected passes",
        c("pass"),
        c("FAIL"),
        c("xfail"),
        c("skip"),
        c("XPASS")
    );
    // The plain line CI reads; expected failures count as skipped.
    println!(
        "oci-tests: {} passed, {} failed, {} skipped",
        c("pass"),
        c("FAIL") + c("XPASS"),
        c("skip") + c("xfail")
    );
    Ok(summary.failed == 0)
}

fn unsafe_euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

fn which(name: &PathBuf) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|c| c.is_file())
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Command::Run(a) => run(a),
        Command::List { filters } => {
            for t in harness::select(oci_tests::suites::all(), &filters, &[], false) {
                println!("{}{}", t.name, if t.serial { " (serial)" } else { "" });
            }
            Ok(true)
        }
        Command::Compare {
            reference,
            candidate,
        } => {
            (|| {
                let r = harness::read_records(&reference)?;
                let c = harness::read_records(&candidate)?;
                let mut so = std::io::stdout();
                let reg = harness::compare(&r, &c, &mut so)?;
                if reg.is_empty() {
                    println!("no regressions: every test passing on the reference passes on the candidate");
                } else {
                    println!(
                        "{} tests pass on the reference but not on the candidate: {}",
                        reg.len(),
                        reg.join(", ")
                    );
                }
                Ok(reg.is_empty())
            })()
        }
        Command::Expectations => {
            for e in oci_tests::expect::EXPECTED_FAILURES {
                println!("{}\t{}\t{:?}\t{}", e.runtime, e.test, e.fails, e.reason);
            }
            Ok(true)
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("oci-tests: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
