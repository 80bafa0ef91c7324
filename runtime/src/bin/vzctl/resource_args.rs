//! `vzctl set`'s resource options (docs/RESOURCES.md): parsed here into ctid.conf keys
//! by the library's `resources::option_to_config`, which validates each value.

use clap::Args;

use vzrun::openvz::resources;
use vzrun::openvz::{ExitCode as VzCode, VzError, VzResult};

/// Values: barrier[:limit] in pages, bytes or items, with vzctl's suffixes (K, M, G, T,
/// P = pages, B = bytes) or "unlimited"; --ram/--swap take bytes.
#[derive(Args, Debug, Default)]
pub struct ResourceArgs {
    /// Max number of processes and threads (NUMPROC)
    #[arg(long, allow_hyphen_values = true, value_name = "N[:N]")]
    numproc: Option<String>,
    /// RAM available to the container (PHYSPAGES limit), bytes unless suffixed
    #[arg(long, allow_hyphen_values = true, value_name = "BYTES")]
    ram: Option<String>,
    /// Swap available to the container (SWAPPAGES limit), bytes unless suffixed
    #[arg(long, allow_hyphen_values = true, value_name = "BYTES")]
    swap: Option<String>,
    /// RAM in pages (barrier:limit)
    #[arg(long, allow_hyphen_values = true, value_name = "P[:P]")]
    physpages: Option<String>,
    /// Swap in pages (barrier:limit)
    #[arg(long, allow_hyphen_values = true, value_name = "P[:P]")]
    swappages: Option<String>,
    /// CPU weight, 8..500000 (default 1000)
    #[arg(long, allow_hyphen_values = true, value_name = "N")]
    cpuunits: Option<String>,
    /// CPU cap in percent of one CPU (0: none)
    #[arg(long, allow_hyphen_values = true, value_name = "PERCENT")]
    cpulimit: Option<String>,
    /// CPU time cap in CPUs (0: none)
    #[arg(long, allow_hyphen_values = true, value_name = "N")]
    cpus: Option<String>,
    /// CPUs the container may run on: "all" or a list like 0-2,7
    #[arg(long, allow_hyphen_values = true, value_name = "CPUS")]
    cpumask: Option<String>,
    /// Disk I/O priority 0..7 (default 4)
    #[arg(long, allow_hyphen_values = true, value_name = "0-7")]
    ioprio: Option<String>,
    /// Disk bandwidth limit, MB/s unless suffixed (B, K, M, G); 0: none
    #[arg(long, allow_hyphen_values = true, value_name = "RATE")]
    iolimit: Option<String>,
    /// Disk operations per second limit (0: none)
    #[arg(long, allow_hyphen_values = true, value_name = "IOPS")]
    iopslimit: Option<String>,
    // Beancounters upstream kernels count but cannot limit, and ones they lack: only
    // "unlimited" is accepted (docs/RESOURCES.md).
    /// Only "unlimited": upstream kernels cannot limit it
    #[arg(long, allow_hyphen_values = true, value_name = "unlimited")]
    kmemsize: Option<String>,
    /// Only "unlimited": upstream kernels cannot limit it
    #[arg(long, allow_hyphen_values = true, value_name = "unlimited")]
    lockedpages: Option<String>,
    /// Only "unlimited": upstream kernels cannot limit it
    #[arg(long, allow_hyphen_values = true, value_name = "unlimited")]
    privvmpages: Option<String>,
    /// Only "unlimited": upstream kernels cannot limit it
    #[arg(long, allow_hyphen_values = true, value_name = "unlimited")]
    shmpages: Option<String>,
    /// Only "unlimited": upstream kernels cannot limit it
    #[arg(long, allow_hyphen_values = true, value_name = "unlimited")]
    vmguarpages: Option<String>,
    /// Only "unlimited": upstream kernels cannot limit it
    #[arg(long, allow_hyphen_values = true, value_name = "unlimited")]
    oomguarpages: Option<String>,
    /// Only "unlimited": upstream kernels cannot limit it
    #[arg(long, allow_hyphen_values = true, value_name = "unlimited")]
    numtcpsock: Option<String>,
    /// Only "unlimited": upstream kernels cannot limit it
    #[arg(long, allow_hyphen_values = true, value_name = "unlimited")]
    numflock: Option<String>,
    /// Only "unlimited": upstream kernels cannot limit it
    #[arg(long, allow_hyphen_values = true, value_name = "unlimited")]
    numpty: Option<String>,
    /// Only "unlimited": upstream kernels cannot limit it
    #[arg(long, allow_hyphen_values = true, value_name = "unlimited")]
    numsiginfo: Option<String>,
    /// Only "unlimited": upstream kernels cannot limit it
    #[arg(long, allow_hyphen_values = true, value_name = "unlimited")]
    tcpsndbuf: Option<String>,
    /// Only "unlimited": upstream kernels cannot limit it
    #[arg(long, allow_hyphen_values = true, value_name = "unlimited")]
    tcprcvbuf: Option<String>,
    /// Only "unlimited": upstream kernels cannot limit it
    #[arg(long, allow_hyphen_values = true, value_name = "unlimited")]
    othersockbuf: Option<String>,
    /// Only "unlimited": upstream kernels cannot limit it
    #[arg(long, allow_hyphen_values = true, value_name = "unlimited")]
    dgramrcvbuf: Option<String>,
    /// Only "unlimited": upstream kernels cannot limit it
    #[arg(long, allow_hyphen_values = true, value_name = "unlimited")]
    numothersock: Option<String>,
    /// Only "unlimited": upstream kernels cannot limit it
    #[arg(long, allow_hyphen_values = true, value_name = "unlimited")]
    dcachesize: Option<String>,
    /// Only "unlimited": upstream kernels cannot limit it
    #[arg(long, allow_hyphen_values = true, value_name = "unlimited")]
    numfile: Option<String>,
    /// Only "unlimited": upstream kernels cannot limit it
    #[arg(long, allow_hyphen_values = true, value_name = "unlimited")]
    numiptent: Option<String>,
}

impl ResourceArgs {
    /// (ctid.conf key, value) for each option given, each value validated.
    pub fn changes(&self) -> VzResult<Vec<(String, String)>> {
        let options: [(&str, &Option<String>); 30] = [
            ("numproc", &self.numproc),
            ("ram", &self.ram),
            ("swap", &self.swap),
            ("physpages", &self.physpages),
            ("swappages", &self.swappages),
            ("cpuunits", &self.cpuunits),
            ("cpulimit", &self.cpulimit),
            ("cpus", &self.cpus),
            ("cpumask", &self.cpumask),
            ("ioprio", &self.ioprio),
            ("iolimit", &self.iolimit),
            ("iopslimit", &self.iopslimit),
            ("kmemsize", &self.kmemsize),
            ("lockedpages", &self.lockedpages),
            ("privvmpages", &self.privvmpages),
            ("shmpages", &self.shmpages),
            ("vmguarpages", &self.vmguarpages),
            ("oomguarpages", &self.oomguarpages),
            ("numtcpsock", &self.numtcpsock),
            ("numflock", &self.numflock),
            ("numpty", &self.numpty),
            ("numsiginfo", &self.numsiginfo),
            ("tcpsndbuf", &self.tcpsndbuf),
            ("tcprcvbuf", &self.tcprcvbuf),
            ("othersockbuf", &self.othersockbuf),
            ("dgramrcvbuf", &self.dgramrcvbuf),
            ("numothersock", &self.numothersock),
            ("dcachesize", &self.dcachesize),
            ("numfile", &self.numfile),
            ("numiptent", &self.numiptent),
        ];
        let mut changes: Vec<(String, String)> = Vec::new();
        for (option, value) in options {
            let Some(value) = value else { continue };
            let (key, text) = resources::option_to_config(option, value)
                .map_err(|e| VzError::new(e.code, format!("--{option}: {e}")))?;
            if changes.iter().any(|(k, _)| *k == key) {
                return Err(VzError::new(
                    VzCode::InvalidParameter,
                    format!("--{option} sets {key}, which another option sets too"),
                ));
            }
            changes.push((key, text));
        }
        Ok(changes)
    }
}
