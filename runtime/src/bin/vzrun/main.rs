//! The `vzrun` binary: parses runc's command line, calls the library, prints results.

mod cli;

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use cli::{Cli, Command};
use vzrun::container::{create, delete, kill, query, start};
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
    match dispatch(&rt, cli.command) {
        Ok(code) => code,
        Err(err) => {
            logging::fatal(&err.to_string());
            ExitCode::FAILURE
        }
    }
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
        Command::Copyup {
            rootfs,
            destinations,
        } => vzrun::copyup::run_hook(&rootfs, &destinations)?,
        Command::Checkpoint(u) => return unsupported("checkpoint", u.help),
        Command::Restore(u) => return unsupported("restore", u.help),
        other => {
            return Err(Error::Container(format!(
                "{:?} is not implemented in this build",
                other
            )))
        }
    }
    Ok(ExitCode::SUCCESS)
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
