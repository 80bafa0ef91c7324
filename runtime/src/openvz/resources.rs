//! OpenVZ resource parameters (ctid.conf(5) keys, `vzctl set` options, `org.openvz.*`
//! annotations) and their one translation into an OCI `LinuxResources`, used at boot, by
//! live `vzctl set` and for containers that engines start through vzrun.
//!
//! Everything here that decides is pure and unit-tested: [`Settings`] parses and validates
//! the keys; [`translate`] maps them for a [`Host`] (cgroup v1 or v2, its CPUs). The few
//! functions that read the host ([`Host::detect`], [`block_device_of`]) and apply a plan
//! ([`apply_live`]) are at the end. docs/RESOURCES.md documents every mapping.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::config::ConfigFile;
use super::error::{ExitCode, VzError, VzResult};

/// "unlimited": LONG_MAX, as /proc/user_beancounters and vzctl write it.
pub const UNLIMITED: u64 = i64::MAX as u64;
/// Memory beancounters count pages; x86_64 (the project's only target) has 4 KiB pages.
pub const PAGE_SIZE: u64 = 4096;
/// CFS period vzrun uses for `--cpulimit`/`--cpus` (the kernel's default).
pub const CPU_PERIOD_US: u64 = 100_000;
pub const CPUUNITS_MIN: u32 = 8;
pub const CPUUNITS_MAX: u32 = 500_000;
pub const CPUUNITS_DEFAULT: u32 = 1000;
pub const IOPRIO_MAX: u8 = 7;
pub const IOPRIO_DEFAULT: u8 = 4;
/// vzctl truncates `--iolimit` to 2 GB/s.
pub const IOLIMIT_MAX: u64 = 2 << 30;

/// What a beancounter's numbers count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Pages,
    Bytes,
    Items,
}

/// What upstream kernels can do with a beancounter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// A cgroup limit enforces it and the cgroup counts it.
    Enforced,
    /// Counted honestly (cgroup files, /proc), but no upstream limit exists.
    Counted,
    /// Neither counted nor enforced upstream.
    Unsupported,
}

#[derive(Debug, Clone, Copy)]
pub struct Beancounter {
    /// As /proc/user_beancounters and vzlist name it.
    pub name: &'static str,
    /// The ctid.conf key.
    pub key: &'static str,
    pub unit: Unit,
    pub support: Support,
}

const fn bc(name: &'static str, key: &'static str, unit: Unit, support: Support) -> Beancounter {
    Beancounter {
        name,
        key,
        unit,
        support,
    }
}

/// Every OpenVZ beancounter, in /proc/user_beancounters order.
pub const BEANCOUNTERS: &[Beancounter] = &[
    bc("kmemsize", "KMEMSIZE", Unit::Bytes, Support::Counted),
    bc(
        "lockedpages",
        "LOCKEDPAGES",
        Unit::Pages,
        Support::Unsupported,
    ),
    bc("privvmpages", "PRIVVMPAGES", Unit::Pages, Support::Counted),
    bc("shmpages", "SHMPAGES", Unit::Pages, Support::Counted),
    bc("numproc", "NUMPROC", Unit::Items, Support::Enforced),
    bc("physpages", "PHYSPAGES", Unit::Pages, Support::Enforced),
    bc(
        "vmguarpages",
        "VMGUARPAGES",
        Unit::Pages,
        Support::Unsupported,
    ),
    bc(
        "oomguarpages",
        "OOMGUARPAGES",
        Unit::Pages,
        Support::Counted,
    ),
    bc("numtcpsock", "NUMTCPSOCK", Unit::Items, Support::Counted),
    bc("numflock", "NUMFLOCK", Unit::Items, Support::Unsupported),
    bc("numpty", "NUMPTY", Unit::Items, Support::Counted),
    bc(
        "numsiginfo",
        "NUMSIGINFO",
        Unit::Items,
        Support::Unsupported,
    ),
    bc("tcpsndbuf", "TCPSNDBUF", Unit::Bytes, Support::Unsupported),
    bc("tcprcvbuf", "TCPRCVBUF", Unit::Bytes, Support::Unsupported),
    bc(
        "othersockbuf",
        "OTHERSOCKBUF",
        Unit::Bytes,
        Support::Unsupported,
    ),
    bc(
        "dgramrcvbuf",
        "DGRAMRCVBUF",
        Unit::Bytes,
        Support::Unsupported,
    ),
    bc(
        "numothersock",
        "NUMOTHERSOCK",
        Unit::Items,
        Support::Counted,
    ),
    bc(
        "dcachesize",
        "DCACHESIZE",
        Unit::Bytes,
        Support::Unsupported,
    ),
    bc("numfile", "NUMFILE", Unit::Items, Support::Counted),
    bc("numiptent", "NUMIPTENT", Unit::Items, Support::Unsupported),
    bc("swappages", "SWAPPAGES", Unit::Pages, Support::Enforced),
];

pub fn beancounter(name_or_key: &str) -> Option<&'static Beancounter> {
    BEANCOUNTERS
        .iter()
        .find(|b| b.name == name_or_key || b.key == name_or_key)
}

/// The non-beancounter keys this module owns.
pub const CPU_IO_KEYS: &[&str] = &[
    "CPUUNITS",
    "CPULIMIT",
    "CPUS",
    "CPUMASK",
    "IOPRIO",
    "IOLIMIT",
    "IOPSLIMIT",
];

/// True for every ctid.conf key this module reads.
pub fn is_resource_key(key: &str) -> bool {
    CPU_IO_KEYS.contains(&key) || beancounter(key).is_some()
}

fn invalid(message: impl Into<String>) -> VzError {
    VzError::new(ExitCode::InvalidValue, message)
}

// ---------------------------------------------------------------- values

/// A beancounter's `barrier:limit`, in its unit (pages, bytes or items).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ubc {
    pub barrier: u64,
    pub limit: u64,
}

impl Ubc {
    pub fn is_unlimited(&self) -> bool {
        self.limit >= UNLIMITED
    }
}

/// Splits "123M" into (123, Some('M')); digits only, no sign, no fraction.
fn number_and_suffix(text: &str) -> Option<(u64, Option<char>)> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if digits_end == 0 {
        return None;
    }
    let number: u64 = text[..digits_end].parse().ok()?;
    let rest = &text[digits_end..];
    let mut chars = rest.chars();
    match (chars.next(), chars.next()) {
        (None, _) => Some((number, None)),
        (Some(c), None) => Some((number, Some(c.to_ascii_uppercase()))),
        _ => None,
    }
}

fn suffix_bytes(suffix: char) -> Option<u64> {
    Some(match suffix {
        'B' => 1,
        'K' => 1 << 10,
        'M' => 1 << 20,
        'G' => 1 << 30,
        'T' => 1 << 40,
        'P' => PAGE_SIZE,
        _ => return None,
    })
}

/// One beancounter number: "unlimited", or digits with vzctl's optional suffix
/// (B, K, M, G, T, P = pages). Without a suffix the number is in the beancounter's unit;
/// `num*` beancounters count items and take no suffix.
pub fn parse_ubc_number(key: &str, unit: Unit, text: &str) -> VzResult<u64> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("unlimited") {
        return Ok(UNLIMITED);
    }
    if t.starts_with('-') {
        return Err(invalid(format!("{key}: negative value {t:?}")));
    }
    let (number, suffix) = number_and_suffix(t).ok_or_else(|| {
        invalid(format!(
            "{key}: invalid value {t:?} (a number, a number with a suffix B, K, M, G, T or P, or \"unlimited\")"
        ))
    })?;
    let value = match (suffix, unit) {
        (None, _) => Some(number),
        (Some(_), Unit::Items) => {
            return Err(invalid(format!(
                "{key}: {t:?}: {key} counts items and takes no unit suffix"
            )))
        }
        (Some(s), unit) => {
            let per = suffix_bytes(s).ok_or_else(|| {
                invalid(format!(
                    "{key}: unknown unit {s:?} in {t:?} (use B, K, M, G, T or P)"
                ))
            })?;
            let bytes = number.checked_mul(per);
            match unit {
                Unit::Pages => bytes.map(|b| b / PAGE_SIZE),
                _ => bytes,
            }
        }
    };
    match value {
        Some(v) if v <= UNLIMITED => Ok(v),
        _ => Err(invalid(format!("{key}: {t:?} is too large"))),
    }
}

/// `barrier[:limit]` (one number sets both, as in vzctl).
pub fn parse_ubc(key: &str, unit: Unit, text: &str) -> VzResult<Ubc> {
    let (b, l) = match text.split_once(':') {
        Some((b, l)) => (b, l),
        None => (text, text),
    };
    let barrier = parse_ubc_number(key, unit, b)?;
    let limit = parse_ubc_number(key, unit, l)?;
    if barrier > limit {
        return Err(invalid(format!(
            "{key}: barrier {} is above limit {} ({text:?})",
            b.trim(),
            l.trim()
        )));
    }
    Ok(Ubc { barrier, limit })
}

/// A byte count for `--ram`/`--swap` (bytes unless suffixed), as ctid.conf text in pages
/// units vzctl reads back: the largest exact unit ("512M"), else pages ("P") or bytes.
fn bytes_option_to_ubc_text(option: &str, text: &str) -> VzResult<String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("unlimited") {
        return Ok("0:unlimited".into());
    }
    let bytes = parse_ubc_number(&format!("--{option}"), Unit::Bytes, t)?;
    if bytes == 0 {
        return Ok("0:0".into());
    }
    let exact = [
        ('T', 1u64 << 40),
        ('G', 1 << 30),
        ('M', 1 << 20),
        ('K', 1 << 10),
    ]
    .into_iter()
    .find(|(_, per)| bytes % per == 0)
    .map(|(s, per)| format!("{}{s}", bytes / per))
    .unwrap_or_else(|| {
        if bytes % PAGE_SIZE == 0 {
            format!("{}P", bytes / PAGE_SIZE)
        } else {
            format!("{bytes}B")
        }
    });
    Ok(format!("0:{exact}"))
}

/// CPUs as `--cpumask` takes them: "all" or a list "0-2,7".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuMask {
    All,
    List(Vec<u32>),
}

impl CpuMask {
    pub fn parse(text: &str) -> VzResult<CpuMask> {
        let t = text.trim();
        if t == "all" {
            return Ok(CpuMask::All);
        }
        let cpus = parse_cpu_list(t).map_err(|e| invalid(format!("CPUMASK {t:?}: {e}")))?;
        if cpus.is_empty() {
            return Err(invalid("CPUMASK: the list is empty"));
        }
        Ok(CpuMask::List(cpus))
    }

    /// The kernel's list format of these CPUs on `host`.
    pub fn resolve(&self, host: &Host) -> VzResult<String> {
        let cpus = match self {
            CpuMask::All => host.online_cpus.clone(),
            CpuMask::List(list) => {
                let missing: Vec<u32> = list
                    .iter()
                    .copied()
                    .filter(|c| !host.online_cpus.contains(c))
                    .collect();
                if !missing.is_empty() {
                    return Err(invalid(format!(
                        "CPUMASK: CPU {} not on this host (online CPUs: {})",
                        format_cpu_list(&missing),
                        format_cpu_list(&host.online_cpus)
                    )));
                }
                list.clone()
            }
        };
        Ok(format_cpu_list(&cpus))
    }
}

/// "0-2,7" -> [0, 1, 2, 7] (sorted, deduplicated).
pub fn parse_cpu_list(text: &str) -> Result<Vec<u32>, String> {
    let mut cpus = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (from, to) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let parse = |s: &str| {
            s.trim()
                .parse::<u32>()
                .map_err(|_| format!("invalid CPU number {s:?}"))
        };
        let (from, to) = (parse(from)?, parse(to)?);
        if from > to || to > 8191 {
            return Err(format!("invalid CPU range {part:?}"));
        }
        cpus.extend(from..=to);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// [0, 1, 2, 7] -> "0-2,7".
pub fn format_cpu_list(cpus: &[u32]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        let mut end = start;
        while i + 1 < cpus.len() && cpus[i + 1] == end + 1 {
            i += 1;
            end = cpus[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

/// `--iolimit`: MB/s unless suffixed (B, K, M, G); 0 or "unlimited" = none; truncated at 2 GB/s.
pub fn parse_iolimit(text: &str) -> VzResult<u64> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("unlimited") {
        return Ok(0);
    }
    if t.starts_with('-') {
        return Err(invalid(format!("IOLIMIT: negative value {t:?}")));
    }
    let (number, suffix) = number_and_suffix(t).ok_or_else(|| {
        invalid(format!(
            "IOLIMIT: invalid value {t:?} (a number of MB/s, or with a suffix B, K, M, G)"
        ))
    })?;
    let per = match suffix.unwrap_or('M') {
        s @ ('B' | 'K' | 'M' | 'G') => suffix_bytes(s).expect("known suffix"),
        other => {
            return Err(invalid(format!(
                "IOLIMIT: unknown unit {other:?} in {t:?} (use B, K, M or G)"
            )))
        }
    };
    Ok(number.saturating_mul(per).min(IOLIMIT_MAX))
}

fn parse_plain(key: &str, text: &str, range: std::ops::RangeInclusive<u64>) -> VzResult<u64> {
    let t = text.trim();
    let value: u64 = t.parse().map_err(|_| {
        invalid(format!(
            "{key}: invalid value {t:?} (a whole number {}..{})",
            range.start(),
            range.end()
        ))
    })?;
    if !range.contains(&value) {
        return Err(invalid(format!(
            "{key}: {value} is out of range {}..{}",
            range.start(),
            range.end()
        )));
    }
    Ok(value)
}

// ---------------------------------------------------------------- settings

/// The resource keys of one container, parsed and checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    pub numproc: Option<Ubc>,
    pub physpages: Option<Ubc>,
    pub swappages: Option<Ubc>,
    pub cpuunits: Option<u32>,
    /// Percent of one CPU; 0 = no limit.
    pub cpulimit: Option<u32>,
    /// Number of CPUs' worth of time; 0 = no limit.
    pub cpus: Option<u32>,
    pub cpumask: Option<CpuMask>,
    pub ioprio: Option<u8>,
    /// Bytes per second; 0 = no limit.
    pub iolimit: Option<u64>,
    /// Operations per second; 0 = no limit.
    pub iopslimit: Option<u64>,
    /// Keys with a finite limit that upstream kernels cannot enforce (counted-only and
    /// unsupported beancounters): ignored at boot, refused by `vzctl set`.
    pub unenforceable: Vec<String>,
}

impl Settings {
    /// Parses every resource key of a container config (others are ignored).
    pub fn from_config(conf: &ConfigFile) -> VzResult<Settings> {
        Self::from_pairs(conf.keys().iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> VzResult<Settings> {
        let mut s = Settings::default();
        for (key, value) in pairs {
            s.set(key, value)?;
        }
        Ok(s)
    }

    /// Sets one ctid.conf key (unknown keys are not resources: ignored).
    pub fn set(&mut self, key: &str, value: &str) -> VzResult<()> {
        match key {
            "CPUUNITS" => {
                self.cpuunits =
                    Some(parse_plain(key, value, CPUUNITS_MIN as u64..=CPUUNITS_MAX as u64)? as u32)
            }
            "CPULIMIT" => {
                let t = value.trim();
                let t = t.strip_suffix('%').unwrap_or(t);
                self.cpulimit = Some(parse_plain(key, t, 0..=100 * 8192)? as u32)
            }
            "CPUS" => {
                let t = value.trim();
                let t = if t == "unlimited" { "0" } else { t };
                self.cpus = Some(parse_plain(key, t, 0..=8192)? as u32)
            }
            "CPUMASK" => self.cpumask = Some(CpuMask::parse(value)?),
            "IOPRIO" => self.ioprio = Some(parse_plain(key, value, 0..=IOPRIO_MAX as u64)? as u8),
            "IOLIMIT" => self.iolimit = Some(parse_iolimit(value)?),
            "IOPSLIMIT" => {
                let t = value.trim();
                let t = if t.eq_ignore_ascii_case("unlimited") {
                    "0"
                } else {
                    t
                };
                self.iopslimit = Some(parse_plain(key, t, 0..=u32::MAX as u64)?)
            }
            _ => {
                let Some(b) = beancounter(key).filter(|b| b.key == key) else {
                    return Ok(());
                };
                let ubc = parse_ubc(key, b.unit, value)?;
                match key {
                    "NUMPROC" => {
                        if ubc.limit == 0 {
                            return Err(invalid(
                                "NUMPROC: a limit of 0 would forbid every process (use \"unlimited\" for none)",
                            ));
                        }
                        self.numproc = Some(ubc)
                    }
                    "PHYSPAGES" => {
                        if ubc.limit == 0 {
                            return Err(invalid(
                                "PHYSPAGES/--ram: a limit of 0 leaves the container no memory (use \"unlimited\" for none)",
                            ));
                        }
                        self.physpages = Some(ubc)
                    }
                    "SWAPPAGES" => self.swappages = Some(ubc),
                    _ if !ubc.is_unlimited() => self.unenforceable.push(key.to_string()),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn needs_device(&self) -> bool {
        self.iolimit.unwrap_or(0) > 0 || self.iopslimit.unwrap_or(0) > 0
    }
}

/// The ctid.conf key and value a `vzctl set` option (or `org.openvz.<option>` annotation)
/// stands for, validated. `--ram`/`--swap` set PHYSPAGES/SWAPPAGES "0:<size>".
pub fn option_to_config(option: &str, value: &str) -> VzResult<(String, String)> {
    let (key, text) = match option {
        "ram" => (
            "PHYSPAGES".to_string(),
            bytes_option_to_ubc_text(option, value)?,
        ),
        "swap" => (
            "SWAPPAGES".to_string(),
            bytes_option_to_ubc_text(option, value)?,
        ),
        _ => {
            let key = option.to_ascii_uppercase();
            if !is_resource_key(&key) {
                return Err(VzError::new(
                    ExitCode::InvalidParameter,
                    format!("unknown resource parameter --{option}"),
                ));
            }
            let text = value.trim().to_string();
            (key, text)
        }
    };
    // Validate now: nothing is changed for a bad value.
    let mut check = Settings::default();
    check.set(&key, &text)?;
    Ok((key, text))
}

// ---------------------------------------------------------------- translation

/// What the translation needs to know about the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Pure cgroup v2 (else v1 controllers).
    pub cgroup_v2: bool,
    pub online_cpus: Vec<u32>,
    /// memory.memsw.* (v1) / memory.swap.max (v2) exist.
    pub swap_accounting: bool,
}

/// A block device (major, minor): the one the container's files live on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockDevice {
    pub major: u64,
    pub minor: u64,
}

/// Whether every knob gets a value (vzctl: what the config does not set is the default,
/// so a live change back to a default takes effect), or only the ones given (engines'
/// annotations override just what they name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Full,
    Given,
}

/// The translation: a partial LinuxResources (JSON, as `vzrun update` merges it) plus
/// cgroup files OCI cannot express, relative to the container's cgroup directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub resources: Value,
    /// (file, value) written after the resources, in order (cgroup v2 only).
    pub direct_writes: Vec<(String, String)>,
}

/// cpuunits -> cgroup v1 cpu.shares: scaled so that the default 1000 is the kernel's
/// default 1024, clamped to the kernel's 2..262144.
pub fn cpuunits_to_shares(units: u32) -> u64 {
    (units as u64 * 1024 / 1000).clamp(2, 262_144)
}

/// cpuunits -> cgroup v2 cpu.weight: units/10 (1000 -> the default 100), within 1..10000.
pub fn cpuunits_to_weight(units: u32) -> u64 {
    ((units as u64 + 5) / 10).clamp(1, 10_000)
}

/// ioprio 0..7 -> BFQ weight: each step doubles, 4 (the default) is BFQ's default 100;
/// 0 is raised to 10, the smallest weight OCI allows: 10 12 25 50 100 200 400 800.
pub fn ioprio_to_weight(prio: u8) -> u16 {
    let prio = prio.min(IOPRIO_MAX) as i32;
    let weight = 100.0 * 2f64.powi(prio - IOPRIO_DEFAULT as i32);
    (weight as u16).max(10)
}

/// CFS quota in microseconds per CPU_PERIOD_US for cpulimit/cpus (the smaller wins), or
/// None when neither limits.
pub fn cpu_quota(cpulimit: Option<u32>, cpus: Option<u32>) -> Option<u64> {
    let from_limit = cpulimit.filter(|p| *p > 0).map(u64::from);
    let from_cpus = cpus.filter(|n| *n > 0).map(|n| n as u64 * 100);
    let percent = match (from_limit, from_cpus) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    Some(CPU_PERIOD_US * percent / 100)
}

fn put(root: &mut Map<String, Value>, section: &str, key: &str, value: Value) {
    root.entry(section.to_string())
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("section is an object")
        .insert(key.to_string(), value);
}

fn bytes_of_pages(pages: u64) -> i64 {
    if pages >= UNLIMITED / PAGE_SIZE {
        -1
    } else {
        (pages * PAGE_SIZE) as i64
    }
}

/// Config -> OCI resources. `device` is needed only when an I/O limit is set (the
/// container's disk); a missing one is then an error naming the reason.
pub fn translate(
    s: &Settings,
    host: &Host,
    device: Option<BlockDevice>,
    mode: Mode,
) -> VzResult<Plan> {
    let full = mode == Mode::Full;
    let mut root = Map::new();
    let mut direct_writes = Vec::new();
    let ncpus = host.online_cpus.len().max(1) as u32;

    // CPU: weight, cap, pinning.
    let units = s.cpuunits.or(full.then_some(CPUUNITS_DEFAULT));
    if let Some(units) = units {
        if host.cgroup_v2 {
            put(
                &mut root,
                "unified",
                "cpu.weight",
                json!(cpuunits_to_weight(units).to_string()),
            );
        } else {
            put(&mut root, "cpu", "shares", json!(cpuunits_to_shares(units)));
        }
    }
    if let Some(limit) = s.cpulimit {
        if limit > 100 * ncpus {
            return Err(invalid(format!(
                "CPULIMIT: {limit}% is more than this host's {ncpus} CPUs ({}%)",
                100 * ncpus
            )));
        }
    }
    if let Some(cpus) = s.cpus {
        if cpus > ncpus {
            return Err(invalid(format!(
                "CPUS: {cpus} is more than this host's {ncpus} CPUs"
            )));
        }
    }
    if full || s.cpulimit.is_some() || s.cpus.is_some() {
        let quota = cpu_quota(s.cpulimit, s.cpus);
        put(
            &mut root,
            "cpu",
            "quota",
            json!(quota.map(|q| q as i64).unwrap_or(-1)),
        );
        put(&mut root, "cpu", "period", json!(CPU_PERIOD_US));
    }
    if let Some(mask) = &s.cpumask {
        put(&mut root, "cpu", "cpus", json!(mask.resolve(host)?));
    }

    // Memory: VSwap. OCI's memory.swap is RAM + swap.
    if s.physpages.is_some() || s.swappages.is_some() {
        let ram = s.physpages.map(|u| u.limit).unwrap_or(UNLIMITED);
        let limit = bytes_of_pages(ram);
        if s.physpages.is_none() && mode == Mode::Given {
            return Err(invalid(
                "swap limits need a RAM limit too (set ram/physpages)",
            ));
        }
        put(&mut root, "memory", "limit", json!(limit));
        let swap_limited = s.swappages.is_some_and(|u| !u.is_unlimited());
        if host.swap_accounting {
            let swap = match (limit, s.swappages) {
                (-1, _) => -1,
                (_, Some(u)) if !u.is_unlimited() => limit + bytes_of_pages(u.limit),
                _ => -1,
            };
            put(&mut root, "memory", "swap", json!(swap));
        } else if swap_limited {
            return Err(invalid(
                "SWAPPAGES: this host has no swap accounting (boot with swapaccount=1, or cgroup v2)",
            ));
        }
    }

    // numproc: pids.
    if let Some(n) = s.numproc.or(full.then_some(Ubc {
        barrier: UNLIMITED,
        limit: UNLIMITED,
    })) {
        let limit = if n.is_unlimited() { -1 } else { n.limit as i64 };
        put(&mut root, "pids", "limit", json!(limit));
    }

    // I/O: BFQ weight and throttling on the container's disk.
    if let Some(prio) = s.ioprio {
        put(
            &mut root,
            "blockIO",
            "weight",
            json!(ioprio_to_weight(prio)),
        );
    }
    if s.iolimit.is_some() || s.iopslimit.is_some() {
        let device = match device {
            Some(d) => d,
            None if s.needs_device() => {
                return Err(invalid(
                    "IOLIMIT/IOPSLIMIT need the block device of the container's disk, and none was found",
                ))
            }
            // Removing limits that were never on a device: nothing to do.
            None => return Ok(Plan {
                resources: Value::Object(root),
                direct_writes,
            }),
        };
        let entry =
            |rate: u64| json!([{"major": device.major, "minor": device.minor, "rate": rate}]);
        for (value, fields, v2_keys) in [
            (
                s.iolimit,
                ["throttleReadBpsDevice", "throttleWriteBpsDevice"],
                "rbps=max wbps=max",
            ),
            (
                s.iopslimit,
                ["throttleReadIOPSDevice", "throttleWriteIOPSDevice"],
                "riops=max wiops=max",
            ),
        ] {
            let Some(rate) = value else { continue };
            if rate == 0 && host.cgroup_v2 {
                // io.max takes "max" to lift a limit, which OCI cannot say.
                for field in fields {
                    put(&mut root, "blockIO", field, json!([]));
                }
                direct_writes.push((
                    "io.max".to_string(),
                    format!("{}:{} {v2_keys}", device.major, device.minor),
                ));
            } else {
                // v1: a rate of 0 removes the device's rule.
                for field in fields {
                    put(&mut root, "blockIO", field, entry(rate));
                }
            }
        }
    }
    Ok(Plan {
        resources: Value::Object(root),
        direct_writes,
    })
}

// ---------------------------------------------------------------- annotations

/// Annotations engines may put on a container: `org.openvz.<option>`, with the value
/// syntax of `vzctl set --<option>`.
pub const ANNOTATION_PREFIX: &str = "org.openvz.";

/// The options accepted as annotations.
pub const ANNOTATION_OPTIONS: &[&str] = &[
    "numproc",
    "ram",
    "swap",
    "physpages",
    "swappages",
    "cpuunits",
    "cpulimit",
    "cpus",
    "cpumask",
    "ioprio",
    "iolimit",
    "iopslimit",
];

/// Resource settings from a spec's annotations (None when it has none of ours).
pub fn settings_from_annotations(
    annotations: &std::collections::HashMap<String, String>,
) -> VzResult<Option<Settings>> {
    let mut pairs = BTreeMap::new();
    for (name, value) in annotations {
        let Some(option) = name.strip_prefix(ANNOTATION_PREFIX) else {
            continue;
        };
        if !ANNOTATION_OPTIONS.contains(&option) {
            continue;
        }
        let (key, text) = option_to_config(option, value)
            .map_err(|e| invalid(format!("annotation {name}: {e}")))?;
        pairs.insert(key, text);
    }
    if pairs.is_empty() {
        return Ok(None);
    }
    let settings = Settings::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    if !settings.unenforceable.is_empty() {
        return Err(unenforceable_error(&settings.unenforceable));
    }
    Ok(Some(settings))
}

pub fn unenforceable_error(keys: &[String]) -> VzError {
    VzError::new(
        ExitCode::BadKernel,
        format!(
            "{}: upstream Linux kernels cannot enforce this limit (only \"unlimited\" is accepted; see docs/RESOURCES.md)",
            keys.join(", ")
        ),
    )
}

// ---------------------------------------------------------------- the host

impl Host {
    /// This machine.
    pub fn detect() -> Host {
        Host::of(crate::cgroups::Layout::detect())
    }

    /// A host with these cgroup mounts (its CPUs are this machine's).
    pub fn of(layout: &crate::cgroups::Layout) -> Host {
        let cgroup_v2 = layout.is_unified();
        let swap_accounting = if cgroup_v2 {
            layout.unified.as_ref().is_some_and(|u| {
                v2_swap_accounting(
                    u,
                    &std::fs::read_to_string("/proc/cmdline").unwrap_or_default(),
                )
            })
        } else {
            layout
                .v1
                .get("memory")
                .is_some_and(|m| has_swap_file(m, "memory.memsw.limit_in_bytes"))
        };
        Host {
            cgroup_v2,
            online_cpus: online_cpus(),
            swap_accounting,
        }
    }
}

/// cgroup v2 gives every non-root cgroup with the memory controller memory.swap.* unless
/// the kernel runs without swap accounting; the root cgroup never has them. A child with
/// memory files tells. A host with none yet (no systemd: the containers' cgroups are the
/// first ones) is judged by the kernel command line.
fn v2_swap_accounting(mount: &Path, cmdline: &str) -> bool {
    let with_memory = std::fs::read_dir(mount).ok().and_then(|entries| {
        entries
            .flatten()
            .map(|e| e.path())
            .find(|dir| dir.join("memory.max").exists())
    });
    match with_memory {
        Some(child) => child.join("memory.swap.max").exists(),
        None => !cmdline.split_whitespace().any(|arg| {
            arg == "swapaccount=0"
                || arg
                    .strip_prefix("cgroup.memory=")
                    .is_some_and(|v| v.split(',').any(|o| o == "noswap"))
        }),
    }
}

/// The root cgroup lacks some files its children have: look one level down too.
fn has_swap_file(mount: &Path, file: &str) -> bool {
    if mount.join(file).exists() {
        return true;
    }
    std::fs::read_dir(mount)
        .map(|entries| entries.flatten().any(|e| e.path().join(file).exists()))
        .unwrap_or(false)
}

pub fn online_cpus() -> Vec<u32> {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|t| parse_cpu_list(t.trim()).ok())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
            (0..n).collect()
        })
}

/// The whole-disk block device holding `path`: throttling rules take whole disks, so a
/// partition is mapped to its disk; overlayfs is followed to its upper directory.
pub fn block_device_of(path: &Path) -> VzResult<BlockDevice> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path)
        .map_err(|e| invalid(format!("I/O limits: stat {}: {e}", path.display())))?;
    let dev = meta.dev();
    let (major, minor) = (libc::major(dev) as u64, libc::minor(dev) as u64);
    if major == 0 {
        if let Some(upper) = overlay_upper_dir(path) {
            return block_device_of(&upper);
        }
        return Err(invalid(format!(
            "I/O limits: {} is not on a block device (device {major}:{minor}; tmpfs, btrfs subvolumes and network filesystems cannot be throttled per device)",
            path.display()
        )));
    }
    let sys = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    if sys.join("partition").exists() {
        if let Ok(disk) = std::fs::read_to_string(sys.join("../dev")) {
            if let Some((a, b)) = disk.trim().split_once(':') {
                if let (Ok(a), Ok(b)) = (a.parse(), b.parse()) {
                    return Ok(BlockDevice { major: a, minor: b });
                }
            }
        }
    }
    Ok(BlockDevice { major, minor })
}

/// The upperdir of the overlay mounted at (or holding) `path`, from mountinfo.
fn overlay_upper_dir(path: &Path) -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut best: Option<(usize, PathBuf)> = None;
    for line in mountinfo.lines() {
        let (left, right) = line.split_once(" - ")?;
        let mount_point = PathBuf::from(crate::mountinfo::unescape(left.split(' ').nth(4)?));
        let mut fields = right.split(' ');
        if fields.next() != Some("overlay") || !path.starts_with(&mount_point) {
            continue;
        }
        let options = fields.nth(1).unwrap_or("");
        let upper = options
            .split(',')
            .find_map(|o| o.strip_prefix("upperdir="))
            .map(|u| PathBuf::from(crate::mountinfo::unescape(u)));
        let depth = mount_point.components().count();
        if let Some(upper) = upper {
            if best.as_ref().is_none_or(|(d, _)| depth >= *d) {
                best = Some((depth, upper));
            }
        }
    }
    best.map(|(_, upper)| upper)
}

/// The I/O scheduler of a block device ("bfq", "mq-deadline", ...), if readable.
pub fn io_scheduler(device: BlockDevice) -> Option<String> {
    let text = std::fs::read_to_string(format!(
        "/sys/dev/block/{}:{}/queue/scheduler",
        device.major, device.minor
    ))
    .ok()?;
    text.split_whitespace()
        .find(|w| w.starts_with('['))
        .map(|w| w.trim_matches(|c| c == '[' || c == ']').to_string())
}

// ---------------------------------------------------------------- containers

/// Resource values `vzctl set` applied to a running container without `--save` live in
/// this file of the container's runtime state directory, so later live changes build on
/// them; the directory (and so the file) goes away when the container stops or reboots,
/// which then runs with its saved config again, as OpenVZ does.
const LIVE_FILE: &str = "openvz-live.conf";

fn live_path(env: &super::env::VzEnv, ctid: super::ctid::Ctid) -> Option<PathBuf> {
    crate::store::ContainerDir::new(&env.runtime_root(), &ctid.to_string())
        .ok()
        .filter(|d| d.exists())
        .map(|d| d.file(LIVE_FILE))
}

fn load_live(env: &super::env::VzEnv, ctid: super::ctid::Ctid) -> ConfigFile {
    live_path(env, ctid)
        .and_then(|p| ConfigFile::load(&p).ok())
        .unwrap_or_default()
}

/// The container's config with the live (unsaved) resource values of a running container.
pub fn effective_config(env: &super::env::VzEnv, ct: &super::ct::Ct) -> ConfigFile {
    let mut conf = ct.conf.clone();
    if ct.is_running(env) {
        for (key, value) in load_live(env, ct.ctid).keys() {
            conf.set(&key, &value);
        }
    }
    conf
}

/// The resources a container boots with (its saved config), and the config keys it
/// has that upstream kernels cannot enforce (ignored; the caller warns).
pub fn boot_resources(conf: &ConfigFile, root: &Path) -> VzResult<(Value, Vec<String>)> {
    let settings = Settings::from_config(conf)?;
    let device = if settings.needs_device() {
        Some(block_device_of(root)?)
    } else {
        None
    };
    let plan = translate(&settings, &Host::detect(), device, Mode::Full)?;
    Ok((plan.resources, settings.unenforceable))
}

/// Merges partial resources into a spec's `linux.resources` (objects key by key, other
/// values replaced; devices the spec has are kept).
pub fn merge_into_spec(spec: &mut oci_spec::runtime::Spec, resources: &Value) -> VzResult<()> {
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut current = serde_json::to_value(linux.resources().clone().unwrap_or_default())
        .expect("resources serialize");
    merge_json(&mut current, resources);
    let merged = serde_json::from_value(current)
        .map_err(|e| invalid(format!("resources do not form a valid LinuxResources: {e}")))?;
    linux.set_resources(Some(merged));
    spec.set_linux(Some(linux));
    Ok(())
}

fn merge_json(base: &mut Value, update: &Value) {
    match (base, update) {
        (Value::Object(b), Value::Object(u)) => {
            for (key, value) in u {
                merge_json(b.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (slot, value) => *slot = value.clone(),
    }
}

/// Applies `org.openvz.*` resource annotations to a spec an engine gave (see
/// [`ANNOTATION_OPTIONS`]); `rootfs` locates the disk for I/O limits.
pub fn apply_annotations(
    spec: &mut oci_spec::runtime::Spec,
    rootfs: &Path,
    layout: &crate::cgroups::Layout,
) -> VzResult<()> {
    let Some(annotations) = spec.annotations().clone() else {
        return Ok(());
    };
    let Some(settings) = settings_from_annotations(&annotations)? else {
        return Ok(());
    };
    // Only containers that ask pay for looking at the host.
    let host = &Host::of(layout);
    let device = if settings.needs_device() {
        Some(block_device_of(rootfs)?)
    } else {
        None
    };
    let plan = translate(&settings, host, device, Mode::Given)?;
    merge_into_spec(spec, &plan.resources)
}

/// `vzctl set`'s resource part: `changes` are (ctid.conf key, value) pairs, already
/// validated one by one. Checks them together against the host, applies them to a
/// running container at once (through `vzrun update`), and puts them into `conf` when
/// `save` (the caller writes the file). Nothing changes when a check fails.
pub fn set(
    env: &super::env::VzEnv,
    ct: &mut super::ct::Ct,
    changes: &[(String, String)],
    running: bool,
    save: bool,
) -> VzResult<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let given = Settings::from_pairs(changes.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    if !given.unenforceable.is_empty() {
        return Err(unenforceable_error(&given.unenforceable));
    }
    let mut live = if running {
        load_live(env, ct.ctid)
    } else {
        ConfigFile::default()
    };
    let mut effective = effective_config(env, ct);
    for (key, value) in changes {
        effective.set(key, value);
    }
    let settings = Settings::from_config(&effective)?;
    let host = Host::detect();
    if running {
        let device = if settings.needs_device() {
            Some(block_device_of(&ct.root(env))?)
        } else if settings.iolimit.is_some() || settings.iopslimit.is_some() {
            // Lifting limits: they can only be on the disk if it is a block device.
            block_device_of(&ct.root(env)).ok()
        } else {
            None
        };
        let plan = translate(&settings, &host, device, Mode::Full)?;
        if given.ioprio.is_some() {
            warn_without_bfq(device.or_else(|| block_device_of(&ct.root(env)).ok()));
        }
        apply_plan(env, ct.ctid, &plan)?;
        for (key, value) in changes {
            if save {
                live.remove(key);
            } else {
                live.set(key, value);
            }
        }
        if let Some(path) = live_path(env, ct.ctid) {
            live.save(&path)
                .map_err(|e| VzError::new(ExitCode::SystemError, e.to_string()))?;
        }
    } else {
        // Check against the host now; the disk is known once the container is mounted.
        let placeholder = BlockDevice { major: 0, minor: 0 };
        translate(&settings, &host, Some(placeholder), Mode::Full)?;
    }
    if save {
        for (key, value) in changes {
            ct.conf.set(key, value);
        }
    }
    Ok(())
}

fn warn_without_bfq(device: Option<BlockDevice>) {
    if let Some(d) = device {
        match io_scheduler(d) {
            Some(s) if s != "bfq" => eprintln!(
                "warning: --ioprio sets BFQ weights, but device {}:{} uses the {s} scheduler (echo bfq > /sys/dev/block/{}:{}/queue/scheduler)",
                d.major, d.minor, d.major, d.minor
            ),
            _ => {}
        }
    }
}

/// Applies a plan to a running container: the resources through `vzrun update` (merged
/// into and saved with the runtime's spec), then the cgroup files OCI cannot express.
pub fn apply_plan(env: &super::env::VzEnv, ctid: super::ctid::Ctid, plan: &Plan) -> VzResult<()> {
    crate::container::update::update(&env.runtime(), &ctid.to_string(), &plan.resources).map_err(
        |e| {
            VzError::new(
                ExitCode::SetUbcFailed,
                format!("Unable to apply resource limits to container {ctid}: {e}"),
            )
        },
    )?;
    if plan.direct_writes.is_empty() {
        return Ok(());
    }
    let layout = crate::cgroups::Layout::detect();
    let dir = layout
        .dir("io", &super::translate::cgroup_path(ctid))
        .ok_or_else(|| VzError::new(ExitCode::SetIoFailed, "no cgroup v2 hierarchy"))?;
    for (file, value) in &plan.direct_writes {
        std::fs::write(dir.join(file), value).map_err(|e| {
            VzError::new(
                ExitCode::SetIoFailed,
                format!("write {value:?} to {}: {e}", dir.join(file).display()),
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1_host() -> Host {
        Host {
            cgroup_v2: false,
            online_cpus: vec![0, 1],
            swap_accounting: true,
        }
    }

    fn v2_host() -> Host {
        Host {
            cgroup_v2: true,
            ..v1_host()
        }
    }

    const DISK: BlockDevice = BlockDevice { major: 7, minor: 3 };

    #[test]
    fn v2_swap_accounting_from_a_child_or_the_command_line() {
        let root = tempfile::tempdir().unwrap();
        let cmdline = "console=ttyS0 quiet";
        // A fresh host: no child cgroup yet, the kernel's default (accounting on).
        assert!(v2_swap_accounting(root.path(), cmdline));
        assert!(!v2_swap_accounting(root.path(), "quiet swapaccount=0"));
        assert!(!v2_swap_accounting(
            root.path(),
            "cgroup.memory=nokmem,noswap quiet"
        ));
        // A child without the memory controller says nothing.
        std::fs::create_dir(root.path().join("other")).unwrap();
        std::fs::write(root.path().join("other/pids.max"), "max").unwrap();
        assert!(v2_swap_accounting(root.path(), cmdline));
        // A child with memory files and no swap files: accounting is off, whatever the
        // command line says.
        let child = root.path().join("init.scope");
        std::fs::create_dir(&child).unwrap();
        std::fs::write(child.join("memory.max"), "max").unwrap();
        assert!(!v2_swap_accounting(root.path(), cmdline));
        std::fs::write(child.join("memory.swap.max"), "max").unwrap();
        assert!(v2_swap_accounting(root.path(), cmdline));
    }

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        Settings::from_pairs(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn ubc_values_units_and_errors() {
        let p = |t| parse_ubc("PHYSPAGES", Unit::Pages, t);
        assert_eq!(
            p("0:512M").unwrap(),
            Ubc {
                barrier: 0,
                limit: 131072
            }
        );
        assert_eq!(
            p("1000").unwrap(),
            Ubc {
                barrier: 1000,
                limit: 1000
            }
        );
        assert_eq!(p("2P:1g").unwrap().limit, 262144);
        assert_eq!(p("0:unlimited").unwrap().limit, UNLIMITED);
        assert!(p("2:1")
            .unwrap_err()
            .message
            .contains("barrier 2 is above limit 1"));
        assert!(p("-5").unwrap_err().message.contains("negative"));
        assert!(p("5X").unwrap_err().message.contains("unknown unit"));
        assert!(p("1.5G").is_err());
        assert!(p("").is_err());
        assert!(p("99999999999999999999").is_err());
        let n = |t| parse_ubc("NUMPROC", Unit::Items, t);
        assert_eq!(n("64").unwrap().limit, 64);
        assert!(n("64K")
            .unwrap_err()
            .message
            .contains("takes no unit suffix"));
        let k = |t| parse_ubc("KMEMSIZE", Unit::Bytes, t);
        assert_eq!(k("1M").unwrap().limit, 1 << 20);
        assert_eq!(k("2p").unwrap().limit, 8192);
    }

    #[test]
    fn options_become_config_keys() {
        assert_eq!(
            option_to_config("ram", "512M").unwrap(),
            ("PHYSPAGES".into(), "0:512M".into())
        );
        assert_eq!(
            option_to_config("ram", "536870912").unwrap().1,
            "0:512M",
            "--ram takes bytes"
        );
        assert_eq!(option_to_config("swap", "4097").unwrap().1, "0:4097B");
        assert_eq!(option_to_config("swap", "0").unwrap().1, "0:0");
        assert_eq!(
            option_to_config("numproc", "64").unwrap(),
            ("NUMPROC".into(), "64".into())
        );
        assert_eq!(option_to_config("cpuunits", " 3000 ").unwrap().1, "3000");
        assert_eq!(
            option_to_config("kmemsize", "unlimited").unwrap().0,
            "KMEMSIZE"
        );
        assert!(option_to_config("bogus", "1").is_err());
        for (option, bad) in [
            ("cpuunits", "7"),
            ("cpuunits", "500001"),
            ("cpuunits", "-1"),
            ("cpulimit", "ten"),
            ("ioprio", "8"),
            ("iolimit", "5X"),
            ("iolimit", "-1"),
            ("cpumask", "3-1"),
            ("cpumask", "x"),
            ("numproc", "10:5"),
            ("numproc", "0"),
            ("ram", "0"),
        ] {
            let err = option_to_config(option, bad).unwrap_err();
            assert_eq!(err.code, ExitCode::InvalidValue, "{option} {bad}");
        }
    }

    #[test]
    fn io_and_cpu_values() {
        assert_eq!(parse_iolimit("10").unwrap(), 10 << 20, "MB/s by default");
        assert_eq!(parse_iolimit("512K").unwrap(), 512 << 10);
        assert_eq!(parse_iolimit("unlimited").unwrap(), 0);
        assert_eq!(parse_iolimit("5G").unwrap(), IOLIMIT_MAX, "truncated at 2G");
        assert_eq!(parse_cpu_list("0-2,7,1").unwrap(), vec![0, 1, 2, 7]);
        assert_eq!(format_cpu_list(&[0, 1, 2, 7, 9, 10]), "0-2,7,9-10");
        assert_eq!(
            settings(&[("CPULIMIT", "50%")]).cpulimit,
            Some(50),
            "a % sign is fine"
        );
    }

    #[test]
    fn mappings_are_the_documented_ones() {
        assert_eq!(cpuunits_to_shares(1000), 1024);
        assert_eq!(cpuunits_to_shares(3000), 3072);
        assert_eq!(cpuunits_to_shares(8), 8);
        assert_eq!(cpuunits_to_shares(500_000), 262_144);
        assert_eq!(cpuunits_to_weight(1000), 100);
        assert_eq!(cpuunits_to_weight(3000), 300);
        assert_eq!(cpuunits_to_weight(8), 1);
        assert_eq!(cpuunits_to_weight(500_000), 10_000);
        let weights: Vec<u16> = (0..=7).map(ioprio_to_weight).collect();
        assert_eq!(weights, vec![10, 12, 25, 50, 100, 200, 400, 800]);
        assert_eq!(cpu_quota(Some(50), None), Some(50_000));
        assert_eq!(cpu_quota(Some(150), Some(1)), Some(100_000));
        assert_eq!(cpu_quota(Some(0), Some(0)), None);
        assert_eq!(cpu_quota(None, Some(2)), Some(200_000));
    }

    #[test]
    fn full_translation_v1() {
        let s = settings(&[
            ("NUMPROC", "64"),
            ("PHYSPAGES", "0:256M"),
            ("SWAPPAGES", "0:128M"),
            ("CPUUNITS", "3000"),
            ("CPULIMIT", "50"),
            ("CPUMASK", "1"),
            ("IOPRIO", "7"),
            ("IOLIMIT", "2M"),
            ("HOSTNAME", "ignored"),
        ]);
        let plan = translate(&s, &v1_host(), Some(DISK), Mode::Full).unwrap();
        assert_eq!(
            plan.resources,
            json!({
                "cpu": {"shares": 3072, "quota": 50000, "period": 100000, "cpus": "1"},
                "memory": {"limit": 256 << 20, "swap": 384 << 20},
                "pids": {"limit": 64},
                "blockIO": {
                    "weight": 800,
                    "throttleReadBpsDevice": [{"major": 7, "minor": 3, "rate": 2 << 20}],
                    "throttleWriteBpsDevice": [{"major": 7, "minor": 3, "rate": 2 << 20}],
                },
            })
        );
        assert!(plan.direct_writes.is_empty());
        // It is a valid LinuxResources.
        let r: oci_spec::runtime::LinuxResources = serde_json::from_value(plan.resources).unwrap();
        assert_eq!(r.pids().as_ref().unwrap().limit(), 64);
    }

    #[test]
    fn defaults_undo_live_changes() {
        let plan = translate(&Settings::default(), &v1_host(), None, Mode::Full).unwrap();
        assert_eq!(
            plan.resources,
            json!({"cpu": {"shares": 1024, "quota": -1, "period": 100000}, "pids": {"limit": -1}})
        );
        let plan = translate(
            &settings(&[("PHYSPAGES", "unlimited"), ("SWAPPAGES", "0:1G")]),
            &v1_host(),
            None,
            Mode::Full,
        )
        .unwrap();
        assert_eq!(plan.resources["memory"], json!({"limit": -1, "swap": -1}));
        // Lifting an I/O limit on v1: rate 0 removes the rule.
        let plan = translate(
            &settings(&[("IOPSLIMIT", "0")]),
            &v1_host(),
            Some(DISK),
            Mode::Full,
        )
        .unwrap();
        assert_eq!(
            plan.resources["blockIO"]["throttleWriteIOPSDevice"],
            json!([{"major": 7, "minor": 3, "rate": 0}])
        );
    }

    #[test]
    fn full_translation_v2() {
        let s = settings(&[("CPUUNITS", "3000"), ("IOLIMIT", "0"), ("IOPRIO", "2")]);
        let plan = translate(&s, &v2_host(), Some(DISK), Mode::Full).unwrap();
        assert_eq!(plan.resources["unified"], json!({"cpu.weight": "300"}));
        assert!(plan.resources["cpu"].get("shares").is_none());
        assert_eq!(plan.resources["blockIO"]["weight"], 25);
        assert_eq!(
            plan.resources["blockIO"]["throttleReadBpsDevice"],
            json!([])
        );
        assert_eq!(
            plan.direct_writes,
            vec![("io.max".to_string(), "7:3 rbps=max wbps=max".to_string())]
        );
        let r: oci_spec::runtime::LinuxResources = serde_json::from_value(plan.resources).unwrap();
        assert_eq!(r.unified().as_ref().unwrap()["cpu.weight"], "300");
    }

    #[test]
    fn given_mode_sets_only_what_is_named() {
        let plan = translate(
            &settings(&[("CPUUNITS", "500")]),
            &v1_host(),
            None,
            Mode::Given,
        )
        .unwrap();
        assert_eq!(plan.resources, json!({"cpu": {"shares": 512}}));
        let err = translate(
            &settings(&[("SWAPPAGES", "0:1G")]),
            &v1_host(),
            None,
            Mode::Given,
        )
        .unwrap_err();
        assert!(err.message.contains("need a RAM limit"));
    }

    #[test]
    fn host_limits_are_checked() {
        let h = v1_host();
        let e = translate(&settings(&[("CPUMASK", "0-3")]), &h, None, Mode::Full).unwrap_err();
        assert!(
            e.message
                .contains("CPU 2-3 not on this host (online CPUs: 0-1)"),
            "{e}"
        );
        let e = translate(&settings(&[("CPULIMIT", "300")]), &h, None, Mode::Full).unwrap_err();
        assert!(e.message.contains("more than this host's 2 CPUs"));
        let e = translate(&settings(&[("CPUS", "4")]), &h, None, Mode::Full).unwrap_err();
        assert!(e.message.contains("4 is more than"));
        let e = translate(&settings(&[("IOLIMIT", "1M")]), &h, None, Mode::Full).unwrap_err();
        assert!(e.message.contains("block device"));
        let all = translate(&settings(&[("CPUMASK", "all")]), &h, None, Mode::Full).unwrap();
        assert_eq!(all.resources["cpu"]["cpus"], "0-1");
        let no_memsw = Host {
            swap_accounting: false,
            ..h
        };
        let e = translate(
            &settings(&[("PHYSPAGES", "0:1G"), ("SWAPPAGES", "0:1G")]),
            &no_memsw,
            None,
            Mode::Full,
        )
        .unwrap_err();
        assert!(e.message.contains("no swap accounting"));
    }

    #[test]
    fn unenforceable_beancounters_are_collected() {
        let s = settings(&[
            ("KMEMSIZE", "14372700:14790164"),
            ("NUMTCPSOCK", "unlimited"),
            ("NUMFILE", "9312"),
        ]);
        assert_eq!(s.unenforceable, vec!["KMEMSIZE", "NUMFILE"]);
        assert_eq!(
            unenforceable_error(&s.unenforceable).code,
            ExitCode::BadKernel
        );
    }

    #[test]
    fn annotations() {
        let mut a = std::collections::HashMap::new();
        a.insert("org.openvz.ctid".to_string(), "101".to_string());
        assert_eq!(settings_from_annotations(&a).unwrap(), None);
        a.insert("org.openvz.cpuunits".to_string(), "3000".to_string());
        a.insert("org.openvz.ram".to_string(), "64M".to_string());
        let s = settings_from_annotations(&a).unwrap().unwrap();
        assert_eq!(s.cpuunits, Some(3000));
        assert_eq!(s.physpages.unwrap().limit, 16384);
        a.insert("org.openvz.ioprio".to_string(), "9".to_string());
        let e = settings_from_annotations(&a).unwrap_err();
        assert!(e.message.contains("annotation org.openvz.ioprio"), "{e}");
    }
}
