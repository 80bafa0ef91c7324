//! `vzmemcheck [-v] [-A]`: the host's memory utilization and commitment by the running
//! containers, in vzmemcheck(8)'s columns (low memory, RAM, mem+swap, allocated memory),
//! as percentages or (-A) megabytes with the denominators on the last line. Computed
//! from the containers' beancounters; docs/RESOURCES.md gives each column's formula.

use std::process::ExitCode;

use clap::Parser;

use vzrun::openvz::beancounters::{self, Counter};
use vzrun::openvz::ct::Ct;
use vzrun::openvz::resources::{PAGE_SIZE, UNLIMITED};
use vzrun::openvz::{Ctid, VzEnv};

#[derive(Parser, Debug)]
#[command(
    name = "vzmemcheck",
    about = "Show the host's memory utilization and commitment by containers",
    version
)]
struct Cli {
    /// Show each container
    #[arg(short = 'v')]
    verbose: bool,
    /// Absolute values in megabytes (the last line gives the denominators)
    #[arg(short = 'A')]
    absolute: bool,
}

/// The host's totals, in bytes.
#[derive(Debug, Clone, Copy)]
struct Totals {
    ram: f64,
    swap: f64,
}

impl Totals {
    /// vzctl's budget for kernel ("low") memory: 40% of it; on 64-bit all RAM is low.
    fn lowmem(&self) -> f64 {
        self.ram * 0.4
    }
    fn ram_swap(&self) -> f64 {
        self.ram + self.swap
    }
}

/// One container's eight numbers, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Usage {
    lowmem_util: f64,
    lowmem_commit: f64,
    ram_util: f64,
    memswap_util: f64,
    memswap_commit: f64,
    alloc_util: f64,
    alloc_commit: f64,
    alloc_limit: f64,
}

impl Usage {
    fn values(&self) -> [f64; 8] {
        [
            self.lowmem_util,
            self.lowmem_commit,
            self.ram_util,
            self.memswap_util,
            self.memswap_commit,
            self.alloc_util,
            self.alloc_commit,
            self.alloc_limit,
        ]
    }

    fn add(&mut self, other: &Usage) {
        self.lowmem_util += other.lowmem_util;
        self.lowmem_commit += other.lowmem_commit;
        self.ram_util += other.ram_util;
        self.memswap_util += other.memswap_util;
        self.memswap_commit += other.memswap_commit;
        self.alloc_util += other.alloc_util;
        self.alloc_commit += other.alloc_commit;
        self.alloc_limit += other.alloc_limit;
    }

    /// The denominators of the eight columns.
    fn denominators(t: &Totals) -> [f64; 8] {
        let rs = t.ram_swap();
        [t.lowmem(), t.lowmem(), t.ram, rs, rs, rs, rs, rs]
    }
}

fn pages(c: Option<&Counter>, pick: impl Fn(&Counter) -> u64) -> Option<u64> {
    c.map(pick)
}

/// A container's usage from its beancounters.
fn usage(counters: &[Counter], totals: &Totals) -> Usage {
    let get = |name: &str| counters.iter().find(|c| c.name == name);
    let bytes = |p: u64| p as f64 * PAGE_SIZE as f64;
    let phys = get("physpages");
    let swap = get("swappages");
    let phys_held = pages(phys, |c| c.held).unwrap_or(0);
    let swap_held = pages(swap, |c| c.held).unwrap_or(0);
    let phys_limit = pages(phys, |c| c.limit).unwrap_or(UNLIMITED);
    let swap_limit = pages(swap, |c| c.limit).unwrap_or(UNLIMITED);
    // What the container may take of RAM + swap: unlimited is all of the host's.
    let commit = if phys_limit >= UNLIMITED || swap_limit >= UNLIMITED {
        totals.ram_swap()
    } else {
        bytes(phys_limit + swap_limit).min(totals.ram_swap())
    };
    // Kernel memory is charged inside the RAM limit upstream: that limit bounds it.
    let kmem_commit = if phys_limit >= UNLIMITED {
        totals.ram
    } else {
        bytes(phys_limit).min(totals.ram)
    };
    Usage {
        lowmem_util: get("kmemsize").map_or(0.0, |c| c.held as f64),
        lowmem_commit: kmem_commit,
        ram_util: bytes(phys_held),
        memswap_util: bytes(phys_held + swap_held),
        memswap_commit: commit,
        alloc_util: get("privvmpages").map_or(0.0, |c| bytes(c.held)),
        // VSwap: vmguarpages = ram + swap; privvmpages limit = (ram + swap) * overcommit,
        // unlimited without one (vzctl(8)): both are the RAM + swap commitment.
        alloc_commit: commit,
        alloc_limit: commit,
    }
}

fn scale(values: [f64; 8], denominators: [f64; 8], absolute: bool) -> [f64; 8] {
    let mut out = values;
    for (v, d) in out.iter_mut().zip(denominators) {
        *v = if absolute {
            *v / (1024.0 * 1024.0)
        } else if d > 0.0 {
            *v * 100.0 / d
        } else {
            0.0
        };
    }
    out
}

fn row(values: [f64; 8]) -> String {
    values
        .iter()
        .map(|v| format!("{v:7.2}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn report(
    containers: &[(Ctid, Vec<Counter>)],
    totals: &Totals,
    verbose: bool,
    absolute: bool,
) -> String {
    let denominators = Usage::denominators(totals);
    let mut out = String::new();
    out.push_str(if absolute {
        "Output values in Mbytes\n"
    } else {
        "Output values in %\n"
    });
    let lead = if verbose { "CTID       " } else { "" };
    out.push_str(&format!(
        "{lead} LowMem  LowMem     RAM MemSwap MemSwap   Alloc   Alloc   Alloc\n"
    ));
    let lead = if verbose { "           " } else { "" };
    out.push_str(&format!(
        "{lead}   util  commit    util    util  commit    util  commit   limit\n"
    ));
    let mut total = Usage::default();
    for (ctid, counters) in containers {
        let u = usage(counters, totals);
        if verbose {
            out.push_str(&format!(
                "{:<10} {}\n",
                ctid.to_string(),
                row(scale(u.values(), denominators, absolute))
            ));
        }
        total.add(&u);
    }
    if verbose {
        out.push_str(&"-".repeat(74));
        out.push('\n');
        out.push_str("Summary:   ");
    }
    out.push_str(&row(scale(total.values(), denominators, absolute)));
    out.push('\n');
    if absolute {
        if verbose {
            out.push_str("           ");
        }
        out.push_str(&row(scale(denominators, denominators, true)));
        out.push('\n');
    }
    out
}

fn meminfo_bytes(text: &str, key: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kb| kb * 1024.0)
}

fn run(cli: Cli) -> Result<String, String> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")
        .map_err(|e| format!("Cannot open /proc/meminfo: {e}"))?;
    let totals = Totals {
        ram: meminfo_bytes(&meminfo, "MemTotal").ok_or("no MemTotal in /proc/meminfo")?,
        swap: meminfo_bytes(&meminfo, "SwapTotal").unwrap_or(0.0),
    };
    let env = VzEnv::from_environment().map_err(|e| e.to_string())?;
    let mut containers = Vec::new();
    for ctid in env.list_ctids() {
        let ct = Ct::load(&env, ctid).map_err(|e| e.to_string())?;
        if let Some(counters) = beancounters::snapshot(&env, &ct) {
            containers.push((ctid, counters));
        }
    }
    Ok(report(&containers, &totals, cli.verbose, cli.absolute))
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("vzmemcheck: {message}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &'static str, held: u64, limit: u64) -> Counter {
        Counter {
            name,
            held,
            maxheld: held,
            barrier: 0,
            limit,
            failcnt: 0,
        }
    }

    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

    fn totals() -> Totals {
        Totals {
            ram: 4.0 * GIB,
            swap: 0.0,
        }
    }

    #[test]
    fn percentages_per_container_and_summary() {
        // 1 GiB RAM limit, 512 MiB in use, no swap allowed.
        let one = vec![
            c("kmemsize", 16 << 20, UNLIMITED),
            c("physpages", 131072, 262144),
            c("swappages", 0, 0),
            c("privvmpages", 65536, UNLIMITED),
        ];
        let u = usage(&one, &totals());
        assert_eq!(u.ram_util, 0.5 * GIB);
        assert_eq!(u.memswap_commit, GIB);
        assert_eq!(u.lowmem_commit, GIB);
        let text = report(
            &[(Ctid(101), one.clone()), (Ctid(102), one)],
            &totals(),
            true,
            false,
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Output values in %");
        assert_eq!(
            lines[1],
            "CTID        LowMem  LowMem     RAM MemSwap MemSwap   Alloc   Alloc   Alloc"
        );
        assert_eq!(
            lines[2],
            "              util  commit    util    util  commit    util  commit   limit"
        );
        // kmem 16 MiB of 1.6 GiB = 0.98%; commit 1 GiB / 1.6 GiB = 62.5%; RAM 12.5%...
        assert_eq!(
            lines[3],
            "101           0.98   62.50   12.50   12.50   25.00    6.25   25.00   25.00"
        );
        assert_eq!(lines[5], "-".repeat(74));
        assert_eq!(
            lines[6],
            "Summary:      1.95  125.00   25.00   25.00   50.00   12.50   50.00   50.00"
        );
    }

    #[test]
    fn absolute_values_end_with_denominators() {
        let unlimited = vec![c("physpages", 256, UNLIMITED), c("swappages", 0, UNLIMITED)];
        let text = report(&[(Ctid(5), unlimited)], &totals(), false, true);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Output values in Mbytes");
        assert_eq!(lines.len(), 5);
        assert_eq!(
            lines[3],
            "   0.00 4096.00    1.00    1.00 4096.00    0.00 4096.00 4096.00"
        );
        assert_eq!(
            lines[4],
            "1638.40 1638.40 4096.00 4096.00 4096.00 4096.00 4096.00 4096.00"
        );
    }
}
