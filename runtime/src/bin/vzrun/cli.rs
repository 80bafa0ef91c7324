//! vzrun's command line: runc's commands, flags and defaults, so engines call it unchanged.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "vzrun",
    about = "OCI runtime with OpenVZ system-container semantics (runc-compatible)",
    disable_help_subcommand = true,
    disable_version_flag = true,
    subcommand_required = false,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    /// Print the version (runc's format)
    #[arg(short = 'v', long)]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Args, Debug)]
pub struct GlobalOpts {
    /// Root directory for container state
    #[arg(long, global = true, default_value = vzrun::DEFAULT_ROOT)]
    pub root: PathBuf,
    /// Log file (default: stderr)
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format: text or json
    #[arg(long, global = true, default_value = "text")]
    pub log_format: vzrun::logging::LogFormat,
    /// Manage cgroups through systemd (needs systemd as the host's init)
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Log debug information
    #[arg(long, global = true)]
    pub debug: bool,
    /// Accepted for runc compatibility (rootless is detected, not configured)
    #[arg(long, hide = true)]
    pub rootless: Option<String>,
    /// Accepted for runc compatibility (path of criu, for checkpoint/restore)
    #[arg(long, hide = true)]
    pub criu: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container (its init waits for `start`)
    Create(Create),
    /// Start a created container
    Start(Id),
    /// Print the state of a container as JSON
    State(Id),
    /// Send a signal to the container init (or all its processes)
    Kill(Kill),
    /// Delete a container and everything it holds
    Delete(Delete),
    /// Create and start a container; wait for it unless --detach
    Run(Run),
    /// Run a process in a running container
    Exec(Exec),
    /// List the processes of a container
    Ps(Ps),
    /// Suspend all processes of a container
    Pause(Id),
    /// Resume all processes of a paused container
    Resume(Id),
    /// Show container events and resource statistics
    Events(Events),
    /// Change the resource limits of a running container
    Update(Update),
    /// Print the features this runtime supports (runtime-spec features.md)
    Features,
    /// Write a default config.json into the bundle
    Spec(SpecCmd),
    /// List containers
    List(List),
    /// Checkpoint a running container (not supported yet)
    #[command(disable_help_flag = true)]
    Checkpoint(Unsupported),
    /// Restore a container from a checkpoint (not supported yet)
    #[command(disable_help_flag = true)]
    Restore(Unsupported),
}

#[derive(Args, Debug)]
pub struct Id {
    /// Container id
    pub id: String,
}

#[derive(Args, Debug)]
pub struct Create {
    /// Path to the bundle (directory with config.json)
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the terminal's master fd
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// File to write the container init's pid to
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Do not use pivot_root (for ramfs roots)
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not create a new session keyring
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass N more file descriptors (3..3+N) to the container
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: i32,
    /// Container id
    pub id: String,
}

#[derive(Args, Debug)]
pub struct Kill {
    /// Signal all processes of the container
    #[arg(short, long)]
    pub all: bool,
    /// Container id
    pub id: String,
    /// Signal name or number (TERM, SIGKILL, 9, RTMIN+3, 37)
    #[arg(default_value = "SIGTERM", allow_hyphen_values = true)]
    pub signal: String,
}

#[derive(Args, Debug)]
pub struct Delete {
    /// Kill a running container first
    #[arg(short, long)]
    pub force: bool,
    /// Container id
    pub id: String,
}

#[derive(Args, Debug)]
pub struct Run {
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Return once the container has started
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Do not become a subreaper for the container's orphans
    #[arg(long)]
    pub no_subreaper: bool,
    #[arg(long)]
    pub no_pivot: bool,
    #[arg(long)]
    pub no_new_keyring: bool,
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: i32,
    /// Keep the container's state and cgroup after it exits
    #[arg(long)]
    pub keep: bool,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct Exec {
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Working directory of the new process
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Set an environment variable (repeatable)
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Allocate a terminal
    #[arg(short, long)]
    pub tty: bool,
    /// UID[:GID] to run as
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional group id (repeatable)
    #[arg(short = 'g', long)]
    pub additional_gids: Vec<u32>,
    /// process.json describing the process (replaces the arguments)
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Return once the process has started
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// SELinux label (accepted; SELinux is not supported)
    #[arg(long)]
    pub process_label: Option<String>,
    /// AppArmor profile
    #[arg(long)]
    pub apparmor: Option<String>,
    /// Set no_new_privs
    #[arg(long)]
    pub no_new_privs: bool,
    /// Add a capability (repeatable)
    #[arg(short, long)]
    pub cap: Vec<String>,
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: i32,
    /// Allow exec in a paused container
    #[arg(long)]
    pub ignore_paused: bool,
    /// Sub-cgroup to run the process in
    #[arg(long)]
    pub cgroup: Option<String>,
    pub id: String,
    /// Command and arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct Ps {
    /// table or json
    #[arg(short, long, default_value = "table")]
    pub format: String,
    pub id: String,
    /// Options for ps(1) (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct Events {
    /// Print one statistics event and exit
    #[arg(long)]
    pub stats: bool,
    /// Interval between statistics events
    #[arg(long, default_value = "5s")]
    pub interval: String,
    pub id: String,
}

#[derive(Args, Debug, Default)]
pub struct Update {
    /// JSON file with a LinuxResources object (- for stdin); other flags are then ignored
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    #[arg(long)]
    pub cpu_period: Option<u64>,
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    #[arg(long)]
    pub cpu_rt_period: Option<u64>,
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long)]
    pub cpu_share: Option<u64>,
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    pub kernel_memory: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    pub kernel_memory_tcp: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    #[arg(long)]
    pub l3_cache_schema: Option<String>,
    #[arg(long)]
    pub mem_bw_schema: Option<String>,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct SpecCmd {
    /// Bundle directory to write config.json into
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// A spec for a rootless container
    #[arg(long = "rootless", id = "spec_rootless")]
    pub rootless: bool,
}

#[derive(Args, Debug)]
pub struct List {
    /// table or json
    #[arg(short, long, default_value = "table")]
    pub format: String,
    /// Only print ids
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct Unsupported {
    /// Print help (the command is not supported yet)
    #[arg(short, long)]
    pub help: bool,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub rest: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn runc_style_invocations_parse() {
        for argv in [
            &[
                "vzrun",
                "--root",
                "/r",
                "--log",
                "/l",
                "--log-format",
                "json",
                "create",
                "--bundle",
                "/b",
                "--pid-file",
                "/p",
                "x",
            ][..],
            &["vzrun", "--rootless", "false", "kill", "x", "-1"],
            &["vzrun", "kill", "--all", "x", "9"],
            &[
                "vzrun",
                "exec",
                "--process",
                "/p.json",
                "--detach",
                "--pid-file",
                "/p",
                "x",
            ],
            &["vzrun", "exec", "-t", "x", "sh", "-c", "ls -l"],
            &["vzrun", "update", "--resources", "-", "x"],
            &["vzrun", "spec", "--rootless"],
            &["vzrun", "--version"],
            &["vzrun", "checkpoint", "--help"],
        ] {
            Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        }
    }
}
