//! Beancounters on upstream kernels: held, maxheld, barrier, limit and failcnt of every
//! OpenVZ resource that a cgroup (v1 here, v2 where that is the host) or /proc counts
//! honestly, printed the way /proc/user_beancounters does and offered to vzlist.
//!
//! Sources (docs/RESOURCES.md has the full table and what is approximate):
//! numproc = pids.*; physpages = memory usage/limit/failcnt; swappages = swap usage and
//! memsw (v1) or memory.swap.* (v2); kmemsize = kernel memory; shmpages = memory.stat
//! shmem; oomguarpages = RAM + swap in use; privvmpages = private writable mappings of
//! the container's processes; numfile = their open descriptors; numpty = the container's
//! devpts; numtcpsock/numothersock = its network namespace's sockstat.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::config::ConfigFile;
use super::ct::Ct;
use super::ctid::Ctid;
use super::env::VzEnv;
use super::resources::{self, Support, Unit, BEANCOUNTERS, PAGE_SIZE, UNLIMITED};
use super::translate;
use crate::cgroups::Layout;

/// One line of /proc/user_beancounters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    pub name: &'static str,
    pub held: u64,
    pub maxheld: u64,
    pub barrier: u64,
    pub limit: u64,
    pub failcnt: u64,
}

/// The names `read` reports, in table order.
pub fn counted_names() -> impl Iterator<Item = &'static str> {
    BEANCOUNTERS
        .iter()
        .filter(|b| b.support != Support::Unsupported)
        .map(|b| b.name)
}

/// A container's cgroup directories, per controller (v1) or the one v2 directory.
#[derive(Debug, Clone, Default)]
pub struct CgroupFiles {
    pub v2: Option<PathBuf>,
    pub v1: HashMap<String, PathBuf>,
}

impl CgroupFiles {
    pub fn of(layout: &Layout, cgroup_path: &Path) -> CgroupFiles {
        if layout.is_unified() {
            return CgroupFiles {
                v2: layout.dir("", cgroup_path),
                v1: HashMap::new(),
            };
        }
        let v1 = ["memory", "pids", "cpu", "cpuacct", "blkio"]
            .iter()
            .filter_map(|c| Some((c.to_string(), layout.dir(c, cgroup_path)?)))
            .collect();
        CgroupFiles { v2: None, v1 }
    }

    fn read(&self, controller: &str, file: &str) -> Option<String> {
        let dir = match &self.v2 {
            Some(dir) => dir,
            None => self.v1.get(controller)?,
        };
        std::fs::read_to_string(dir.join(file)).ok()
    }

    /// A number file; "max" is unlimited.
    fn number(&self, controller: &str, file: &str) -> Option<u64> {
        let text = self.read(controller, file)?;
        let t = text.trim();
        if t == "max" {
            Some(UNLIMITED)
        } else {
            t.parse().ok()
        }
    }

    /// A "key value" line of a flat keyed file (memory.stat, pids.events...).
    fn keyed(&self, controller: &str, file: &str, key: &str) -> Option<u64> {
        keyed_value(&self.read(controller, file)?, key)
    }
}

fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        (f.next()? == key).then(|| f.next()?.parse().ok())?
    })
}

/// v1 reports "no limit" as a page-aligned LONG_MAX; anything that large is unlimited.
fn pages_or_unlimited(bytes: u64) -> u64 {
    if bytes >= UNLIMITED / 2 {
        UNLIMITED
    } else {
        bytes / PAGE_SIZE
    }
}

/// The container's processes as /proc shows them to the host.
#[derive(Debug, Clone)]
pub struct Processes {
    pub proc_root: PathBuf,
    /// Thread-group ids in the cgroup.
    pub pids: Vec<i32>,
    /// The container's init (its namespaces: network, mounts).
    pub init: Option<i32>,
}

impl Processes {
    fn path(&self, pid: i32, rest: &str) -> PathBuf {
        self.proc_root.join(pid.to_string()).join(rest)
    }

    /// Open descriptors of all processes (a file shared by several processes after a
    /// fork counts once per process).
    fn open_files(&self) -> u64 {
        self.pids
            .iter()
            .map(|p| {
                std::fs::read_dir(self.path(*p, "fd"))
                    .map(|d| d.count() as u64)
                    .unwrap_or(0)
            })
            .sum()
    }

    /// Private writable mappings (VmData + VmStk), in pages.
    fn private_vm_pages(&self) -> u64 {
        self.pids
            .iter()
            .filter_map(|p| std::fs::read_to_string(self.path(*p, "status")).ok())
            .map(|status| {
                let kb = |key: &str| {
                    status
                        .lines()
                        .find_map(|l| l.strip_prefix(key))
                        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                (kb("VmData:") + kb("VmStk:")) * 1024 / PAGE_SIZE
            })
            .sum()
    }

    /// Pseudo-terminals open in the container's own devpts.
    fn ptys(&self) -> Option<u64> {
        let init = self.init?;
        let entries = std::fs::read_dir(self.path(init, "root/dev/pts")).ok()?;
        Some(
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                .count() as u64,
        )
    }

    /// (TCP sockets, other sockets) of the container's network namespace.
    fn sockets(&self) -> Option<(u64, u64)> {
        let init = self.init?;
        let v4 = std::fs::read_to_string(self.path(init, "net/sockstat")).ok()?;
        let v6 = std::fs::read_to_string(self.path(init, "net/sockstat6")).unwrap_or_default();
        Some(socket_counts(&v4, &v6))
    }
}

/// sockstat: "sockets: used N" counts every socket of the namespace; TCP and TCP6
/// "inuse" its TCP sockets.
pub fn socket_counts(sockstat: &str, sockstat6: &str) -> (u64, u64) {
    let field = |text: &str, prefix: &str, name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|rest| {
                let words: Vec<&str> = rest.split_whitespace().collect();
                words
                    .iter()
                    .position(|w| *w == name)
                    .and_then(|i| words.get(i + 1)?.parse().ok())
            })
            .unwrap_or(0)
    };
    let used = field(sockstat, "sockets:", "used");
    let tcp = field(sockstat, "TCP:", "inuse") + field(sockstat6, "TCP6:", "inuse");
    (tcp, used.saturating_sub(tcp))
}

fn counter(
    name: &'static str,
    held: u64,
    maxheld: u64,
    barrier: u64,
    limit: u64,
    failcnt: u64,
) -> Counter {
    Counter {
        name,
        held,
        maxheld: maxheld.max(held),
        barrier,
        limit,
        failcnt,
    }
}

/// Reads every counted beancounter of one container.
pub fn read(files: &CgroupFiles, procs: &Processes) -> Vec<Counter> {
    let v2 = files.v2.is_some();
    let mut out = Vec::new();
    let stat = |key: &str| files.keyed("memory", "memory.stat", key);

    // kmemsize: v1 has its own counter; v2 reports kernel memory in memory.stat.
    let kmem = if v2 {
        let held = stat("kernel").unwrap_or_else(|| {
            ["kernel_stack", "pagetables", "percpu", "sock", "slab"]
                .iter()
                .filter_map(|k| stat(k))
                .sum()
        });
        counter("kmemsize", held, held, UNLIMITED, UNLIMITED, 0)
    } else {
        let held = files
            .number("memory", "memory.kmem.usage_in_bytes")
            .unwrap_or(0);
        counter(
            "kmemsize",
            held,
            files
                .number("memory", "memory.kmem.max_usage_in_bytes")
                .unwrap_or(held),
            UNLIMITED,
            UNLIMITED,
            files.number("memory", "memory.kmem.failcnt").unwrap_or(0),
        )
    };

    let privvm = procs.private_vm_pages();
    let shm = stat("shmem").unwrap_or(0) / PAGE_SIZE;

    let numproc = {
        let held = files
            .number("pids", "pids.current")
            .unwrap_or(procs.pids.len() as u64);
        let limit = files.number("pids", "pids.max").unwrap_or(UNLIMITED);
        // pids.peak also records a fork's transient charge that the limit then refused.
        counter(
            "numproc",
            held,
            files.number("pids", "pids.peak").unwrap_or(held).min(limit),
            limit,
            limit,
            files.keyed("pids", "pids.events", "max").unwrap_or(0),
        )
    };

    let (phys, swap) = if v2 {
        let held = files.number("memory", "memory.current").unwrap_or(0);
        let phys = counter(
            "physpages",
            held / PAGE_SIZE,
            files.number("memory", "memory.peak").unwrap_or(held) / PAGE_SIZE,
            0,
            pages_or_unlimited(files.number("memory", "memory.max").unwrap_or(UNLIMITED)),
            files.keyed("memory", "memory.events", "max").unwrap_or(0),
        );
        let sheld = files.number("memory", "memory.swap.current").unwrap_or(0);
        let swap = counter(
            "swappages",
            sheld / PAGE_SIZE,
            files.number("memory", "memory.swap.peak").unwrap_or(sheld) / PAGE_SIZE,
            0,
            pages_or_unlimited(
                files
                    .number("memory", "memory.swap.max")
                    .unwrap_or(UNLIMITED),
            ),
            files
                .keyed("memory", "memory.swap.events", "max")
                .unwrap_or(0)
                + files
                    .keyed("memory", "memory.swap.events", "fail")
                    .unwrap_or(0),
        );
        (phys, swap)
    } else {
        let held = files.number("memory", "memory.usage_in_bytes").unwrap_or(0);
        let limit = files
            .number("memory", "memory.limit_in_bytes")
            .unwrap_or(UNLIMITED);
        // memsw = memory + swap: the swap part of its limit is what --swap set.
        let memsw_limit = files
            .number("memory", "memory.memsw.limit_in_bytes")
            .unwrap_or(UNLIMITED);
        let swap_limit = if pages_or_unlimited(limit) == UNLIMITED
            || pages_or_unlimited(memsw_limit) == UNLIMITED
        {
            UNLIMITED
        } else {
            memsw_limit.saturating_sub(limit) / PAGE_SIZE
        };
        // The kernel charges memsw before memory: with no swap allowed, memsw refuses
        // first, and each of its refusals is a refusal of RAM. Recent kernels do not
        // count memsw refusals at all; an OOM kill is then the only trace, and counts
        // as one (a lower bound).
        let mem_fails = files.number("memory", "memory.failcnt").unwrap_or(0);
        let memsw_fails = files.number("memory", "memory.memsw.failcnt").unwrap_or(0);
        let (phys_fails, swap_fails) = if swap_limit == 0 {
            let oom_kills = files
                .keyed("memory", "memory.oom_control", "oom_kill")
                .unwrap_or(0);
            (mem_fails + memsw_fails.max(oom_kills), 0)
        } else {
            (mem_fails, memsw_fails)
        };
        let phys = counter(
            "physpages",
            held / PAGE_SIZE,
            files
                .number("memory", "memory.max_usage_in_bytes")
                .unwrap_or(held)
                / PAGE_SIZE,
            0,
            pages_or_unlimited(limit),
            phys_fails,
        );
        let sheld = stat("swap").unwrap_or(0) / PAGE_SIZE;
        let swap = counter("swappages", sheld, sheld, 0, swap_limit, swap_fails);
        (phys, swap)
    };

    let oomguar = {
        let held = phys.held + swap.held;
        let maxheld = if v2 {
            held
        } else {
            files
                .number("memory", "memory.memsw.max_usage_in_bytes")
                .map(|b| b / PAGE_SIZE)
                .unwrap_or(held)
        };
        counter("oomguarpages", held, maxheld, 0, UNLIMITED, 0)
    };
    let (tcp, other) = procs.sockets().unwrap_or((0, 0));
    let pty = procs.ptys().unwrap_or(0);
    let files_open = procs.open_files();

    for name in counted_names() {
        let c = match name {
            "kmemsize" => kmem,
            "privvmpages" => counter(name, privvm, privvm, UNLIMITED, UNLIMITED, 0),
            "shmpages" => counter(name, shm, shm, UNLIMITED, UNLIMITED, 0),
            "numproc" => numproc,
            "physpages" => phys,
            "oomguarpages" => oomguar,
            "numtcpsock" => counter(name, tcp, tcp, UNLIMITED, UNLIMITED, 0),
            "numpty" => counter(name, pty, pty, UNLIMITED, UNLIMITED, 0),
            "numothersock" => counter(name, other, other, UNLIMITED, UNLIMITED, 0),
            "numfile" => counter(name, files_open, files_open, UNLIMITED, UNLIMITED, 0),
            "swappages" => swap,
            _ => continue,
        };
        out.push(c);
    }
    out
}

/// The beancounters of a running container (None when it is not running).
pub fn snapshot(env: &VzEnv, ct: &Ct) -> Option<Vec<Counter>> {
    let state = ct.runtime_state(env)?;
    if !ct.is_running(env) {
        return None;
    }
    let layout = Layout::detect();
    let cgroup = translate::cgroup_path(ct.ctid);
    let procs = Processes {
        proc_root: PathBuf::from("/proc"),
        pids: layout.procs(&cgroup),
        init: state.pid,
    };
    Some(read(&CgroupFiles::of(layout, &cgroup), &procs))
}

/// A stopped container's beancounters as vzlist shows them: barrier and limit from its
/// config, nothing held.
pub fn from_config(conf: &ConfigFile) -> Vec<Counter> {
    counted_names()
        .map(|name| {
            let b = resources::beancounter(name).expect("known beancounter");
            let (barrier, limit) = conf
                .get(b.key)
                .and_then(|v| resources::parse_ubc(b.key, b.unit, v).ok())
                .map(|u| (u.barrier, u.limit))
                .unwrap_or(match name {
                    "physpages" | "swappages" | "oomguarpages" => (0, UNLIMITED),
                    _ => (UNLIMITED, UNLIMITED),
                });
            counter(name, 0, 0, barrier, limit, 0)
        })
        .collect()
}

/// /proc/user_beancounters' layout: a version line, a header, then per container one line
/// per resource, the first carrying "CTID:".
pub fn format_table(containers: &[(Ctid, Vec<Counter>)]) -> String {
    let mut out = String::from("Version: 2.5\n");
    out.push_str(&format!(
        "{:>10}  {:<12} {:>20} {:>20} {:>20} {:>20} {:>20}\n",
        "uid", "resource", "held", "maxheld", "barrier", "limit", "failcnt"
    ));
    for (ctid, counters) in containers {
        for (i, c) in counters.iter().enumerate() {
            let (uid, sep) = if i == 0 {
                (ctid.to_string(), ':')
            } else {
                (String::new(), ' ')
            };
            out.push_str(&format!(
                "{uid:>10}{sep} {:<12} {:>20} {:>20} {:>20} {:>20} {:>20}\n",
                c.name, c.held, c.maxheld, c.barrier, c.limit, c.failcnt
            ));
        }
    }
    out
}

/// Parses a table `format_table` wrote (for tests and tools): CTID -> counters by name.
pub fn parse_table(text: &str) -> HashMap<u32, HashMap<String, [u64; 5]>> {
    let mut out: HashMap<u32, HashMap<String, [u64; 5]>> = HashMap::new();
    let mut current = None;
    for line in text.lines().skip(2) {
        let mut words: Vec<&str> = line.split_whitespace().collect();
        if let Some(first) = words.first() {
            if let Some(id) = first.strip_suffix(':') {
                current = id.parse().ok();
                words.remove(0);
            }
        }
        let (Some(ctid), [name, rest @ ..]) = (current, words.as_slice()) else {
            continue;
        };
        let numbers: Vec<u64> = rest.iter().filter_map(|w| w.parse().ok()).collect();
        if let Ok(values) = <[u64; 5]>::try_from(numbers) {
            out.entry(ctid)
                .or_default()
                .insert(name.to_string(), values);
        }
    }
    out
}

// ---------------------------------------------------------------- vzlist

/// What vzlist shows about a container's resources.
#[derive(Debug, Clone, Default)]
pub struct ListResources {
    pub running: bool,
    pub counters: Vec<Counter>,
    /// The config's (or live) CPU and I/O settings.
    pub settings: resources::Settings,
}

impl ListResources {
    pub fn of(env: &VzEnv, ct: &Ct, running: bool) -> ListResources {
        let live = running.then(|| snapshot(env, ct)).flatten();
        let effective = resources::effective_config(env, ct);
        ListResources {
            running: live.is_some(),
            counters: live.unwrap_or_else(|| from_config(&effective)),
            settings: resources::Settings::from_config(&effective).unwrap_or_default(),
        }
    }

    fn counter(&self, name: &str) -> Option<&Counter> {
        self.counters.iter().find(|c| c.name == name)
    }

    /// A vzlist field: `<ubc>`, `<ubc>.m`, `.b`, `.l`, `.f`, or a CPU/I/O field.
    pub fn field(&self, name: &str) -> Option<String> {
        let dash = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
        let s = &self.settings;
        match name {
            "cpuunits" => {
                return Some(
                    s.cpuunits
                        .unwrap_or(resources::CPUUNITS_DEFAULT)
                        .to_string(),
                )
            }
            "cpulimit" => return Some(s.cpulimit.unwrap_or(0).to_string()),
            "cpus" => return Some(dash(s.cpus.filter(|n| *n > 0).map(u64::from))),
            "cpumask" => {
                return Some(match &s.cpumask {
                    None | Some(resources::CpuMask::All) => "all".into(),
                    Some(resources::CpuMask::List(l)) => resources::format_cpu_list(l),
                })
            }
            "ioprio" => return Some(s.ioprio.unwrap_or(resources::IOPRIO_DEFAULT).to_string()),
            "iolimit" => return Some(dash(s.iolimit.filter(|n| *n > 0))),
            "iopslimit" => return Some(dash(s.iopslimit.filter(|n| *n > 0))),
            _ => {}
        }
        let (base, part) = match name.split_once('.') {
            Some((b, p)) => (b, p),
            None => (name, ""),
        };
        let c = self.counter(base)?;
        let live_only = matches!(part, "" | "m" | "f");
        if live_only && !self.running {
            return Some("-".into());
        }
        Some(
            match part {
                "" => c.held,
                "m" => c.maxheld,
                "b" => c.barrier,
                "l" => c.limit,
                "f" => c.failcnt,
                _ => return None,
            }
            .to_string(),
        )
    }

    /// vzlist -j: each beancounter as {held, maxheld, barrier, limit, failcnt} (zeros
    /// but barrier and limit when stopped), plus the CPU and I/O settings.
    pub fn json(&self) -> Map<String, Value> {
        let mut out = Map::new();
        for c in &self.counters {
            let live = |v: u64| if self.running { v } else { 0 };
            out.insert(
                c.name.to_string(),
                json!({
                    "held": live(c.held),
                    "maxheld": live(c.maxheld),
                    "barrier": c.barrier,
                    "limit": c.limit,
                    "failcnt": live(c.failcnt),
                }),
            );
        }
        let s = &self.settings;
        out.insert(
            "cpuunits".into(),
            json!(s.cpuunits.unwrap_or(resources::CPUUNITS_DEFAULT)),
        );
        out.insert("cpulimit".into(), json!(s.cpulimit.unwrap_or(0)));
        out.insert("cpus".into(), json!(s.cpus.unwrap_or(0)));
        out.insert(
            "ioprio".into(),
            json!(s.ioprio.unwrap_or(resources::IOPRIO_DEFAULT)),
        );
        out.insert("iolimit".into(), json!(s.iolimit.unwrap_or(0)));
        out.insert("iopslimit".into(), json!(s.iopslimit.unwrap_or(0)));
        out
    }
}

/// vzlist's resource fields: (name, header, right-aligned).
pub fn list_fields() -> Vec<(String, String, bool)> {
    let mut fields = Vec::new();
    for b in BEANCOUNTERS
        .iter()
        .filter(|b| b.support != Support::Unsupported)
    {
        let header = vzlist_header(b.name);
        fields.push((b.name.to_string(), header.to_string(), true));
        for (suffix, upper) in [("m", "M"), ("b", "B"), ("l", "L"), ("f", "F")] {
            fields.push((
                format!("{}.{suffix}", b.name),
                format!("{header}.{upper}"),
                true,
            ));
        }
    }
    for (name, header) in [
        ("cpulimit", "CPULIM"),
        ("cpuunits", "CPUUNI"),
        ("cpus", "CPUS"),
        ("cpumask", "CPUMASK"),
        ("ioprio", "IOP"),
        ("iolimit", "IOLIMIT"),
        ("iopslimit", "IOPS"),
    ] {
        fields.push((name.to_string(), header.to_string(), name != "cpumask"));
    }
    fields
}

/// vzlist's column headers for beancounters.
fn vzlist_header(name: &str) -> &'static str {
    match name {
        "kmemsize" => "KMEMSIZE",
        "privvmpages" => "PRIVVMP",
        "shmpages" => "SHMP",
        "numproc" => "NPROC",
        "physpages" => "PHYSP",
        "oomguarpages" => "OOMGUARP",
        "numtcpsock" => "NTCPSOCK",
        "numpty" => "NPTY",
        "numothersock" => "NOTHSOCK",
        "numfile" => "NFILE",
        "swappages" => "SWAPP",
        _ => "?",
    }
}

/// Unit of a beancounter (for docs and tools).
pub fn unit_of(name: &str) -> Option<Unit> {
    resources::beancounter(name).map(|b| b.unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        std::fs::create_dir_all(dir).unwrap();
        for (name, content) in files {
            std::fs::write(dir.join(name), content).unwrap();
        }
    }

    fn no_procs(root: &Path) -> Processes {
        Processes {
            proc_root: root.to_path_buf(),
            pids: vec![],
            init: None,
        }
    }

    fn by_name(counters: &[Counter]) -> HashMap<&'static str, Counter> {
        counters.iter().map(|c| (c.name, *c)).collect()
    }

    #[test]
    fn reads_cgroup_v1_files() {
        let tmp = tempfile::tempdir().unwrap();
        let mem = tmp.path().join("memory");
        let pids = tmp.path().join("pids");
        write(
            &mem,
            &[
                ("memory.usage_in_bytes", "8192000\n"),
                ("memory.max_usage_in_bytes", "33554432\n"),
                ("memory.limit_in_bytes", "33554432\n"),
                ("memory.failcnt", "17\n"),
                ("memory.memsw.limit_in_bytes", "50331648\n"),
                ("memory.memsw.max_usage_in_bytes", "41943040\n"),
                ("memory.memsw.failcnt", "3\n"),
                ("memory.kmem.usage_in_bytes", "1000000\n"),
                ("memory.kmem.max_usage_in_bytes", "2000000\n"),
                ("memory.kmem.failcnt", "0\n"),
                ("memory.stat", "cache 0\nshmem 40960\nswap 8192\n"),
            ],
        );
        write(
            &pids,
            &[
                ("pids.current", "5\n"),
                ("pids.peak", "64\n"),
                ("pids.max", "64\n"),
                ("pids.events", "max 1234\n"),
            ],
        );
        let files = CgroupFiles {
            v2: None,
            v1: [("memory".to_string(), mem), ("pids".to_string(), pids)]
                .into_iter()
                .collect(),
        };
        let c = by_name(&read(&files, &no_procs(tmp.path())));
        assert_eq!(
            c["numproc"],
            Counter {
                name: "numproc",
                held: 5,
                maxheld: 64,
                barrier: 64,
                limit: 64,
                failcnt: 1234
            }
        );
        assert_eq!(
            (
                c["physpages"].held,
                c["physpages"].maxheld,
                c["physpages"].limit
            ),
            (2000, 8192, 8192)
        );
        assert_eq!(c["physpages"].failcnt, 17);
        assert_eq!((c["swappages"].held, c["swappages"].limit), (2, 4096));
        assert_eq!(c["swappages"].failcnt, 3);
        assert_eq!(c["kmemsize"].maxheld, 2_000_000);
        assert_eq!(c["shmpages"].held, 10);
        assert_eq!(c["oomguarpages"].held, 2002);
        assert_eq!(c["oomguarpages"].maxheld, 10240);
        let names: Vec<_> = read(&files, &no_procs(tmp.path()))
            .iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(
            names,
            vec![
                "kmemsize",
                "privvmpages",
                "shmpages",
                "numproc",
                "physpages",
                "oomguarpages",
                "numtcpsock",
                "numpty",
                "numothersock",
                "numfile",
                "swappages"
            ]
        );
    }

    #[test]
    fn without_swap_memsw_refusals_count_for_ram() {
        let tmp = tempfile::tempdir().unwrap();
        let mem = tmp.path().join("memory");
        write(
            &mem,
            &[
                ("memory.limit_in_bytes", "33554432\n"),
                ("memory.memsw.limit_in_bytes", "33554432\n"),
                ("memory.failcnt", "2\n"),
                ("memory.memsw.failcnt", "40\n"),
                (
                    "memory.oom_control",
                    "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
                ),
            ],
        );
        let files = CgroupFiles {
            v2: None,
            v1: [("memory".to_string(), mem.clone())].into_iter().collect(),
        };
        let c = by_name(&read(&files, &no_procs(tmp.path())));
        assert_eq!((c["physpages"].failcnt, c["swappages"].failcnt), (42, 0));
        assert_eq!(c["swappages"].limit, 0);
        // A kernel that does not count memsw refusals: the OOM kills are the trace.
        std::fs::write(mem.join("memory.memsw.failcnt"), "0\n").unwrap();
        let c = by_name(&read(&files, &no_procs(tmp.path())));
        assert_eq!(c["physpages"].failcnt, 5);
    }

    #[test]
    fn reads_cgroup_v2_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("vz/5");
        write(
            &dir,
            &[
                ("memory.current", "4096000\n"),
                ("memory.peak", "8192000\n"),
                ("memory.max", "max\n"),
                ("memory.events", "low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n"),
                ("memory.swap.current", "40960\n"),
                ("memory.swap.max", "1048576\n"),
                ("memory.swap.events", "high 0\nmax 2\nfail 1\n"),
                ("memory.stat", "anon 1\nkernel 123456\nshmem 8192\n"),
                ("pids.current", "3\n"),
                ("pids.max", "max\n"),
                ("pids.events", "max 0\n"),
            ],
        );
        let files = CgroupFiles {
            v2: Some(dir),
            v1: HashMap::new(),
        };
        let c = by_name(&read(&files, &no_procs(tmp.path())));
        assert_eq!(c["physpages"].held, 1000);
        assert_eq!(c["physpages"].maxheld, 2000);
        assert_eq!(c["physpages"].limit, UNLIMITED);
        assert_eq!(c["physpages"].failcnt, 9);
        assert_eq!((c["swappages"].held, c["swappages"].limit), (10, 256));
        assert_eq!(c["swappages"].failcnt, 3);
        assert_eq!(c["kmemsize"].held, 123456);
        assert_eq!(c["numproc"].limit, UNLIMITED);
        assert_eq!(c["numproc"].maxheld, 3, "no pids.peak: maxheld is held");
        assert_eq!(c["shmpages"].held, 2);
    }

    #[test]
    fn counts_processes_files_ptys_and_sockets() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path();
        write(&p.join("10/fd"), &[("0", ""), ("1", ""), ("2", "")]);
        write(&p.join("11/fd"), &[("0", "")]);
        write(
            &p.join("10"),
            &[(
                "status",
                "Name:\tinit\nVmData:\t    400 kB\nVmStk:\t 132 kB\n",
            )],
        );
        write(&p.join("11"), &[("status", "VmData:\t 4096 kB\n")]);
        write(
            &p.join("10/root/dev/pts"),
            &[("0", ""), ("3", ""), ("ptmx", "")],
        );
        write(
            &p.join("10/net"),
            &[
                (
                    "sockstat",
                    "sockets: used 7\nTCP: inuse 2 orphan 0 tw 0 alloc 3 mem 1\nUDP: inuse 1 mem 0\n",
                ),
                ("sockstat6", "TCP6: inuse 1\nUDP6: inuse 0\n"),
            ],
        );
        let procs = Processes {
            proc_root: p.to_path_buf(),
            pids: vec![10, 11],
            init: Some(10),
        };
        let c = by_name(&read(&CgroupFiles::default(), &procs));
        assert_eq!(c["numfile"].held, 4);
        assert_eq!(c["privvmpages"].held, (400 + 132) / 4 + 1024);
        assert_eq!(c["numpty"].held, 2);
        assert_eq!(c["numtcpsock"].held, 3);
        assert_eq!(c["numothersock"].held, 4);
        assert_eq!(c["numproc"].held, 2, "no pids cgroup: the processes");
    }

    #[test]
    fn table_has_the_proc_format_and_parses_back() {
        let counters = vec![
            counter("kmemsize", 100, 200, UNLIMITED, UNLIMITED, 0),
            counter("numproc", 5, 64, 64, 64, 1234),
        ];
        let t = format_table(&[(Ctid(101), counters)]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "Version: 2.5");
        assert_eq!(
            lines[1],
            "       uid  resource                     held              maxheld              barrier                limit              failcnt"
        );
        assert_eq!(
            lines[2],
            "       101: kmemsize                      100                  200  9223372036854775807  9223372036854775807                    0"
        );
        assert!(lines[3].starts_with("            numproc "));
        let parsed = parse_table(&t);
        assert_eq!(parsed[&101]["numproc"], [5, 64, 64, 64, 1234]);
    }

    #[test]
    fn stopped_containers_show_their_config() {
        let conf = ConfigFile::parse("NUMPROC=\"100:200\"\nPHYSPAGES=\"0:256M\"\n").unwrap();
        let c = by_name(&from_config(&conf));
        assert_eq!((c["numproc"].barrier, c["numproc"].limit), (100, 200));
        assert_eq!(c["physpages"].limit, 65536);
        assert_eq!(c["swappages"].limit, UNLIMITED);
        let list = ListResources {
            running: false,
            counters: from_config(&conf),
            settings: resources::Settings::from_config(&conf).unwrap(),
        };
        assert_eq!(list.field("numproc").unwrap(), "-");
        assert_eq!(list.field("numproc.l").unwrap(), "200");
        assert_eq!(list.field("cpuunits").unwrap(), "1000");
        assert_eq!(list.json()["numproc"]["held"], 0);
        assert_eq!(list.json()["physpages"]["limit"], 65536);
        assert!(list.field("nosuch.x").is_none());
        assert!(list_fields()
            .iter()
            .any(|(n, h, _)| n == "physpages.f" && h == "PHYSP.F"));
    }
}
