//! The `vzrun` binary: parses runc's command line, calls the library, prints results.

mod cli;

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use cli::{Cli, Command};
use vzrun::container::{
    create, delete, events, exec, features, kill, pause, ps, query, run, start, update,
};
use vzrun::{logging, signal, Error, Runtime};

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(&logging::LogConfig {
        file: cli.global.log.clone(),
        format: cli.global.log_format,
        debug: cli.global.debug,
    });
    let mut rt = Runtime::new(&cli.global.root);
    rt.systemd_cgroup = cli.global.systemd_cgroup;
    let Some(command) = cli.command else {
        if cli.version {
            print!("{}", version());
            return ExitCode::SUCCESS;
        }
        let _ = Cli::command().print_help();
        return ExitCode::from(2);
    };
    // runc: exec's own failures exit 255, since 1-254 belong to the process.
    let failure = match command {
        Command::Exec(_) => ExitCode::from(255),
        _ => ExitCode::FAILURE,
    };
    match dispatch(&rt, command) {
        Ok(code) => code,
        Err(err) => {
            logging::fatal(&err.to_string());
            failure
        }
    }
}

fn version() -> String {
    let libseccomp = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_else(|_| "unknown".into());
    format!(
        "vzrun version {}\nspec: 1.2.1\nlibcontainer: 0.7.0\nlibseccomp: {libseccomp}\n",
        env!("CARGO_PKG_VERSION")
    )
}

fn print_json<T: serde::Serialize>(value: &T) -> vzrun::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)
        .map_err(|e| Error::Container(format!("write JSON: {e}")))?;
    let _ = out.flush();
    Ok(())
}

fn dispatch(rt: &Runtime, command: Command) -> vzrun::Result<ExitCode> {
    match command {
        Command::Create(c) => {
            create::create(
                rt,
                &c.id,
                &create::CreateOptions {
                    bundle: c.bundle,
                    pid_file: c.pid_file,
                    console_socket: c.console_socket,
                    no_pivot: c.no_pivot,
                    no_new_keyring: c.no_new_keyring,
                    preserve_fds: c.preserve_fds,
                },
            )?;
        }
        Command::Start(c) => start::start(rt, &c.id)?,
        Command::State(c) => print_json(&query::state(rt, &c.id)?)?,
        Command::Kill(c) => kill::kill(rt, &c.id, signal::parse(&c.signal)?, c.all)?,
        Command::Delete(c) => delete::delete(rt, &c.id, c.force)?,
        Command::List(c) => {
            let entries = query::list(rt)?;
            if c.quiet {
                for e in &entries {
                    println!("{}", e.id);
                }
            } else if c.format == "json" {
                print_json(&entries)?;
                println!();
            } else if c.format == "table" {
                print_list_table(&entries);
            } else {
                return Err(Error::InvalidArgument(format!(
                    "unknown format {:?} (use table or json)",
                    c.format
                )));
            }
        }
        Command::Run(c) => {
            let code = run::run(
                rt,
                &c.id,
                &run::RunOptions {
                    create: create::CreateOptions {
                        bundle: c.bundle,
                        pid_file: c.pid_file,
                        console_socket: c.console_socket,
                        no_pivot: c.no_pivot,
                        no_new_keyring: c.no_new_keyring,
                        preserve_fds: c.preserve_fds,
                    },
                    detach: c.detach,
                    no_subreaper: c.no_subreaper,
                    keep: c.keep,
                },
            )?;
            return Ok(exit_code(code));
        }
        Command::Exec(c) => {
            let code = exec::exec(
                rt,
                &c.id,
                &exec::ExecOptions {
                    process: c.process,
                    args: c.command,
                    env: c.env,
                    cwd: c.cwd,
                    user: c.user,
                    additional_gids: c.additional_gids,
                    tty: c.tty,
                    console_socket: c.console_socket,
                    detach: c.detach,
                    pid_file: c.pid_file,
                    no_new_privs: c.no_new_privs,
                    caps: c.cap,
                    apparmor: c.apparmor,
                    preserve_fds: c.preserve_fds,
                    ignore_paused: c.ignore_paused,
                    sub_cgroup: c.cgroup,
                },
            )?;
            return Ok(exit_code(code));
        }
        Command::Checkpoint(u) => return unsupported("checkpoint", u.help),
        Command::Restore(u) => return unsupported("restore", u.help),
        Command::Pause(c) => pause::pause(rt, &c.id)?,
        Command::Resume(c) => pause::resume(rt, &c.id)?,
        Command::Ps(c) => match c.format.as_str() {
            "json" => {
                println!(
                    "{}",
                    serde_json::to_string(&ps::pids(rt, &c.id)?).expect("pids serialize")
                );
            }
            "table" => print!("{}", ps::table(rt, &c.id, &c.ps_args)?),
            other => {
                return Err(Error::InvalidArgument(format!(
                    "unknown format {other:?} (use table or json)"
                )))
            }
        },
        Command::Events(c) => {
            if c.stats {
                println!("{}", events::stats_event(rt, &c.id)?);
            } else {
                let interval = events::parse_interval(&c.interval)?;
                events::stream(rt, &c.id, interval, |event| {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{event}");
                    let _ = out.flush();
                })?;
            }
        }
        Command::Update(c) => {
            if c.l3_cache_schema.is_some() || c.mem_bw_schema.is_some() {
                return Err(Error::NotSupported("updating Intel RDT schemata"));
            }
            let resources = match &c.resources {
                Some(path) => read_resources(path)?,
                None => update::UpdateFlags {
                    blkio_weight: c.blkio_weight,
                    cpu_period: c.cpu_period,
                    cpu_quota: c.cpu_quota,
                    cpu_rt_period: c.cpu_rt_period,
                    cpu_rt_runtime: c.cpu_rt_runtime,
                    cpu_share: c.cpu_share,
                    cpuset_cpus: c.cpuset_cpus,
                    cpuset_mems: c.cpuset_mems,
                    memory: c.memory,
                    memory_reservation: c.memory_reservation,
                    memory_swap: c.memory_swap,
                    kernel_memory: c.kernel_memory,
                    kernel_memory_tcp: c.kernel_memory_tcp,
                    pids_limit: c.pids_limit,
                }
                .to_resources()?,
            };
            update::update(rt, &c.id, &resources)?;
        }
        Command::Features => {
            print_json(&features::features())?;
            println!();
        }
        Command::Spec(c) => features::write_default_spec(&c.bundle, c.rootless)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `update -r FILE` or `-r -` (stdin).
fn read_resources(path: &std::path::Path) -> vzrun::Result<serde_json::Value> {
    let text = if path == std::path::Path::new("-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| Error::io("read resources from stdin", e))?;
        s
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("read {}", path.display()), e))?
    };
    serde_json::from_str(&text).map_err(|e| {
        Error::InvalidArgument(format!("resources {}: invalid JSON: {e}", path.display()))
    })
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(255))
}

/// `checkpoint`/`restore` print their help but fail, so engines that probe with
/// `checkpoint --help` (podman) learn that checkpointing is unavailable.
fn unsupported(name: &'static str, help: bool) -> vzrun::Result<ExitCode> {
    if help {
        let mut cmd = Cli::command();
        if let Some(sub) = cmd.find_subcommand_mut(name) {
            let _ = sub.print_help();
        }
    }
    Err(Error::NotSupported(match name {
        "checkpoint" => "checkpoint (CRIU support is planned)",
        _ => "restore (CRIU support is planned)",
    }))
}

fn print_list_table(entries: &[query::ListEntry]) {
    let mut rows = vec![[
        "ID".to_string(),
        "PID".into(),
        "STATUS".into(),
        "BUNDLE".into(),
        "CREATED".into(),
        "OWNER".into(),
    ]];
    for e in entries {
        rows.push([
            e.id.clone(),
            e.pid.to_string(),
            e.status.clone(),
            e.bundle.clone(),
            e.created.clone(),
            e.owner.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, cell)| format!("{cell:<w$}", w = widths[i]))
            .collect();
        println!("{}", line.join("   ").trim_end());
    }
}
