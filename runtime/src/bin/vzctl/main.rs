//! `vzctl`: OpenVZ's container tool on the vzrun library. Parses, calls, prints; exits
//! with vzctl's documented codes.

mod resource_args;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use vzrun::openvz::disk::DiskRequest;
use vzrun::openvz::ops::{self, CreateOptions, SetOptions, StopOptions};
use vzrun::openvz::{supervisor, Ctid, ExitCode as VzCode, VzEnv, VzError, VzResult};

#[derive(Parser, Debug)]
#[command(
    name = "vzctl",
    about = "Manage OpenVZ system containers (vzrun)",
    version,
    disable_help_subcommand = true
)]
struct Cli {
    /// Print less
    #[arg(long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run: the size of `set`'s many options does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Create a container from an OS template
    Create(CreateArgs),
    /// Destroy a stopped container and its files
    #[command(alias = "delete")]
    Destroy(Ct),
    /// Start a container (boots its init)
    Start(StartArgs),
    /// Stop a container (graceful by its init's kind, then killed)
    Stop(StopArgs),
    /// Stop and start a container
    Restart(StartArgs),
    /// Print "CTID N exist|deleted mounted|unmounted running|down"
    Status(Ct),
    /// Mount the private area on the container root
    Mount(Ct),
    /// Unmount the container root
    Umount(Ct),
    /// Run a command in the container (exit 0, or 8 when it fails); "-" reads stdin
    Exec(ExecArgs),
    /// Run a command in the container and exit with its exit code
    Exec2(ExecArgs),
    /// An interactive root shell in the container
    Enter(Ct),
    /// Change a container's settings (live, and with --save for the next start)
    Set(SetArgs),
    /// Start every container whose config says ONBOOT="yes"
    StartOnboot,
    /// Stop every running container
    StopAll,
    /// Print the beancounters of running containers as /proc/user_beancounters does
    #[command(alias = "beancounters")]
    Ubc(UbcArgs),
    /// Internal: the per-container supervisor
    #[command(name = "__supervise", hide = true)]
    Supervise(Ct),
}

#[derive(Args, Debug)]
struct Ct {
    /// Container id (number) or name
    ctid: String,
}

#[derive(Args, Debug)]
struct CreateArgs {
    ctid: String,
    /// OS template NAME[:VERSION] from the template cache
    #[arg(long)]
    ostemplate: Option<String>,
    /// Sample config to start from (conf/ve-SAMPLE.conf-sample)
    #[arg(long)]
    config: Option<String>,
    #[arg(long)]
    hostname: Option<String>,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    private: Option<std::path::PathBuf>,
    #[arg(long)]
    root: Option<std::path::PathBuf>,
    /// simfs (a directory) or ploop (an ext4 image); default: VE_LAYOUT
    #[arg(long)]
    layout: Option<String>,
    #[command(flatten)]
    disk: DiskArgs,
}

/// The first level's limits (create and set).
#[derive(Args, Debug)]
struct DiskArgs {
    /// Disk space soft[:hard], 1 KiB blocks or with K, M, G, T; "unlimited"
    #[arg(long, value_name = "SOFT[:HARD]", allow_hyphen_values = true)]
    diskspace: Option<String>,
    /// Inodes soft[:hard]; "unlimited"
    #[arg(long, value_name = "SOFT[:HARD]", allow_hyphen_values = true)]
    diskinodes: Option<String>,
    /// Grace period above the soft limits, in seconds
    #[arg(long, value_name = "SECONDS", allow_hyphen_values = true)]
    quotatime: Option<String>,
}

impl DiskArgs {
    fn request(&self, quotaugidlimit: Option<&str>) -> VzResult<DiskRequest> {
        DiskRequest::parse(
            self.diskspace.as_deref(),
            self.diskinodes.as_deref(),
            self.quotatime.as_deref(),
            quotaugidlimit,
        )
    }
}

#[derive(Args, Debug)]
struct StartArgs {
    ctid: String,
    /// Return once the container's init reports its boot finished
    #[arg(long)]
    wait: bool,
}

#[derive(Args, Debug)]
struct StopArgs {
    ctid: String,
    /// Kill at once instead of shutting down
    #[arg(long)]
    fast: bool,
}

#[derive(Args, Debug)]
struct UbcArgs {
    /// Containers (ids or names); all running ones when none is given
    ctids: Vec<String>,
}

#[derive(Args, Debug)]
struct ExecArgs {
    ctid: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

#[derive(Args, Debug)]
struct SetArgs {
    ctid: String,
    #[arg(long)]
    hostname: Option<String>,
    #[arg(long)]
    name: Option<String>,
    /// DNS server (repeatable)
    #[arg(long)]
    nameserver: Vec<String>,
    /// DNS search domain (repeatable)
    #[arg(long)]
    searchdomain: Vec<String>,
    /// yes or no
    #[arg(long)]
    onboot: Option<String>,
    #[command(flatten)]
    disk: DiskArgs,
    /// Per-user and per-group quota inside (ploop): 0 = off, N = on
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    quotaugidlimit: Option<String>,
    #[command(flatten)]
    resources: resource_args::ResourceArgs,
    /// Save the settings in the container's config
    #[arg(long)]
    save: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("vzctl: {err}");
            ExitCode::from(err.code as u8)
        }
    }
}

fn resolve(env: &VzEnv, text: &str) -> VzResult<Ctid> {
    Ctid::resolve(text, &env.etc)
}

fn run(cli: Cli) -> VzResult<u8> {
    let env = VzEnv::from_environment()?;
    let say = |text: String| {
        if !cli.quiet {
            println!("{text}");
        }
    };
    match cli.command {
        Command::Create(a) => {
            let ctid = Ctid::parse_number(&a.ctid).ok_or_else(|| {
                VzError::new(
                    VzCode::InvalidParameter,
                    format!("Invalid CTID: {}", a.ctid),
                )
            })?;
            ops::create(
                &env,
                ctid,
                &CreateOptions {
                    ostemplate: a.ostemplate,
                    config: a.config,
                    hostname: a.hostname,
                    name: a.name,
                    private: a.private,
                    root: a.root,
                    disk: a.disk.request(None)?,
                    layout: a.layout,
                },
            )?;
            say(format!("Container {ctid} was created"));
        }
        Command::Destroy(a) => {
            let ctid = resolve(&env, &a.ctid)?;
            ops::destroy(&env, ctid)?;
            say(format!("Container {ctid} was destroyed"));
        }
        Command::Start(a) => {
            let ctid = resolve(&env, &a.ctid)?;
            say(format!("Starting container {ctid} ..."));
            ops::start(&env, ctid, a.wait)?;
            say(format!("Container {ctid} is started"));
        }
        Command::Stop(a) => {
            let ctid = resolve(&env, &a.ctid)?;
            say(format!("Stopping container {ctid} ..."));
            ops::stop(&env, ctid, StopOptions { fast: a.fast })?;
            say(format!("Container {ctid} was stopped"));
        }
        Command::Restart(a) => {
            let ctid = resolve(&env, &a.ctid)?;
            say(format!("Restarting container {ctid}"));
            ops::restart(&env, ctid, a.wait)?;
            say(format!("Container {ctid} is started"));
        }
        Command::Status(a) => {
            let ctid = resolve(&env, &a.ctid)?;
            println!("{}", ops::status(&env, ctid)?.line(ctid));
        }
        Command::Mount(a) => {
            let ctid = resolve(&env, &a.ctid)?;
            ops::mount(&env, ctid)?;
            say(format!("Container {ctid} is mounted"));
        }
        Command::Umount(a) => {
            let ctid = resolve(&env, &a.ctid)?;
            ops::umount(&env, ctid)?;
            say(format!("Container {ctid} is unmounted"));
        }
        Command::Exec(a) => {
            let ctid = resolve(&env, &a.ctid)?;
            let code = ops::exec_argv(&env, ctid, ops::shell_argv(&a.command), false)?;
            if code != 0 {
                return Err(VzError::new(
                    VzCode::CommandFailed,
                    format!("command in container {ctid} exited with {code}"),
                ));
            }
        }
        Command::Exec2(a) => {
            let ctid = resolve(&env, &a.ctid)?;
            let code = ops::exec_argv(&env, ctid, ops::shell_argv(&a.command), false)?;
            return Ok(u8::try_from(code).unwrap_or(255));
        }
        Command::Enter(a) => {
            let ctid = resolve(&env, &a.ctid)?;
            eprintln!("entered into container {ctid}");
            let code = ops::enter(&env, ctid)?;
            eprintln!("exited from container {ctid}");
            return Ok(u8::try_from(code).unwrap_or(255));
        }
        Command::Set(a) => {
            let ctid = resolve(&env, &a.ctid)?;
            let onboot = match a.onboot.as_deref() {
                None => None,
                Some("yes") => Some(true),
                Some("no") => Some(false),
                Some(other) => {
                    return Err(VzError::new(
                        VzCode::InvalidValue,
                        format!("--onboot {other:?}: use yes or no"),
                    ))
                }
            };
            ops::set(
                &env,
                ctid,
                &SetOptions {
                    hostname: a.hostname,
                    name: a.name,
                    nameservers: a.nameserver,
                    searchdomains: a.searchdomain,
                    onboot,
                    disk: a.disk.request(a.quotaugidlimit.as_deref())?,
                    resources: a.resources.changes()?,
                    save: a.save,
                },
            )?;
            if a.save {
                say("Saved parameters for container ".to_string() + &ctid.to_string());
            }
        }
        Command::StartOnboot => {
            let failures = ops::start_onboot(&env);
            for (ctid, e) in &failures {
                eprintln!("vzctl: container {ctid}: {e}");
            }
            if let Some((_, e)) = failures.first() {
                return Ok(e.code as u8);
            }
        }
        Command::StopAll => {
            let failures = ops::stop_all(&env);
            for (ctid, e) in &failures {
                eprintln!("vzctl: container {ctid}: {e}");
            }
            if let Some((_, e)) = failures.first() {
                return Ok(e.code as u8);
            }
        }
        Command::Ubc(a) => {
            let ctids = a
                .ctids
                .iter()
                .map(|t| resolve(&env, t))
                .collect::<VzResult<Vec<_>>>()?;
            print!("{}", ops::beancounter_table(&env, &ctids)?);
        }
        Command::Supervise(a) => {
            let ctid = resolve(&env, &a.ctid)?;
            return Ok(supervisor::run(&env, ctid) as u8);
        }
    }
    Ok(0)
}
