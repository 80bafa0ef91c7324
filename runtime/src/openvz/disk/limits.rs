//! The disk keys of a container's config and of `vzctl set`/`create`, parsed and checked
//! before anything changes: DISKSPACE (1 KiB blocks, soft[:hard]), DISKINODES (inodes,
//! soft[:hard]), QUOTATIME (grace seconds) and QUOTAUGIDLIMIT (second-level switch).
//! Kernel-free.

use std::fmt;

/// One limit: a number, or none at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Limit {
    Value(u64),
    Unlimited,
}

impl Limit {
    pub fn value(self) -> Option<u64> {
        match self {
            Limit::Value(v) => Some(v),
            Limit::Unlimited => None,
        }
    }

    /// The value the kernel's quota interface takes (0 = no limit).
    pub fn quota_value(self) -> u64 {
        self.value().unwrap_or(0)
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Value(v) => write!(f, "{v}"),
            Limit::Unlimited => f.write_str("unlimited"),
        }
    }
}

/// A soft and a hard limit (soft never above hard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftHard {
    pub soft: Limit,
    pub hard: Limit,
}

impl SoftHard {
    pub const UNLIMITED: SoftHard = SoftHard {
        soft: Limit::Unlimited,
        hard: Limit::Unlimited,
    };

    pub fn is_unlimited(&self) -> bool {
        *self == Self::UNLIMITED
    }
}

impl fmt::Display for SoftHard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.soft, self.hard)
    }
}

/// OpenVZ writes "no limit" as LONG_MAX in configs; read it back as unlimited.
const LONG_MAX: u64 = i64::MAX as u64;
/// The largest DISKSPACE in KiB whose byte count still fits the kernel's 64-bit limits.
pub const MAX_DISKSPACE_KB: u64 = LONG_MAX / 1024;
/// Inode counts beyond 2^32 are impossible on ext4 and XFS alike.
pub const MAX_DISKINODES: u64 = u32::MAX as u64;

/// Which key a value belongs to (for messages and units).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    DiskSpace,
    DiskInodes,
}

impl Key {
    pub fn option(self) -> &'static str {
        match self {
            Key::DiskSpace => "--diskspace",
            Key::DiskInodes => "--diskinodes",
        }
    }

    pub fn config_key(self) -> &'static str {
        match self {
            Key::DiskSpace => "DISKSPACE",
            Key::DiskInodes => "DISKINODES",
        }
    }
}

/// Parses `soft[:hard]` (one value: both limits). DISKSPACE takes 1 KiB blocks with an
/// optional binary suffix K, M, G, T (`10G`); DISKINODES takes plain counts. Either takes
/// `unlimited`.
pub fn parse_soft_hard(key: Key, text: &str) -> Result<SoftHard, String> {
    let text = text.trim();
    let (soft_text, hard_text) = match text.split_once(':') {
        Some((s, h)) => (s, h),
        None => (text, text),
    };
    let soft = parse_limit(key, soft_text)?;
    let hard = parse_limit(key, hard_text)?;
    if soft > hard {
        return Err(format!(
            "{} {text}: the soft limit ({soft}) is above the hard limit ({hard})",
            key.option()
        ));
    }
    Ok(SoftHard { soft, hard })
}

fn parse_limit(key: Key, text: &str) -> Result<Limit, String> {
    let what = key.option();
    let t = text.trim();
    if t.is_empty() {
        return Err(format!("{what}: empty value (use soft[:hard])"));
    }
    if t.eq_ignore_ascii_case("unlimited") {
        return Ok(Limit::Unlimited);
    }
    if t.starts_with('-') {
        return Err(format!("{what} {t}: negative values are impossible"));
    }
    let (digits, multiplier) = match key {
        Key::DiskSpace => match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
            None => (t, 1u64),
            Some((i, _)) => {
                let unit = &t[i..];
                let m = match unit.to_ascii_uppercase().as_str() {
                    "K" | "KB" => 1,
                    "M" | "MB" => 1 << 10,
                    "G" | "GB" => 1 << 20,
                    "T" | "TB" => 1 << 30,
                    _ => {
                        return Err(format!(
                            "{what} {t}: unknown unit {unit:?} (use K, M, G or T, or 1 KiB blocks)"
                        ))
                    }
                };
                (&t[..i], m)
            }
        },
        Key::DiskInodes => {
            if !t.chars().all(|c| c.is_ascii_digit()) {
                return Err(format!(
                    "{what} {t}: not a number of inodes (digits, or unlimited)"
                ));
            }
            (t, 1)
        }
    };
    if digits.is_empty() {
        return Err(format!("{what} {t}: a number must come before the unit"));
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{what} {t}: number out of range"))?;
    // OpenVZ's own spelling of "no limit" in configs.
    if n == LONG_MAX && multiplier == 1 {
        return Ok(Limit::Unlimited);
    }
    let value = n
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{what} {t}: number out of range"))?;
    let max = match key {
        Key::DiskSpace => MAX_DISKSPACE_KB,
        Key::DiskInodes => MAX_DISKINODES,
    };
    if value == 0 {
        return Err(format!(
            "{what} {t}: a limit of 0 is impossible (use unlimited for no limit)"
        ));
    }
    if value > max {
        return Err(format!(
            "{what} {t}: above the largest possible limit {max}"
        ));
    }
    Ok(Limit::Value(value))
}

/// QUOTATIME: the grace period in seconds during which usage may stay above soft limits.
pub fn parse_quotatime(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(format!("--quotatime {t}: negative values are impossible"));
    }
    let n: u64 = t
        .parse()
        .map_err(|_| format!("--quotatime {t}: not a number of seconds"))?;
    // The kernel keeps grace times as 32-bit seconds on XFS and in ext4's quota files.
    if n > u32::MAX as u64 {
        return Err(format!(
            "--quotatime {t}: above the largest grace {}",
            u32::MAX
        ));
    }
    Ok(n)
}

/// QUOTAUGIDLIMIT: 0 = no second level; otherwise the number of user and group ids the
/// container's root may give quotas to (the switch for per-user/group quota inside).
pub fn parse_ugidlimit(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(format!(
            "--quotaugidlimit {t}: negative values are impossible"
        ));
    }
    let n: u64 = t
        .parse()
        .map_err(|_| format!("--quotaugidlimit {t}: not a number"))?;
    if n > u32::MAX as u64 {
        return Err(format!("--quotaugidlimit {t}: number out of range"));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(t: &str) -> Result<SoftHard, String> {
        parse_soft_hard(Key::DiskSpace, t)
    }

    fn v(n: u64) -> Limit {
        Limit::Value(n)
    }

    #[test]
    fn soft_and_hard_with_units() {
        assert_eq!(
            space("1000:2000").unwrap(),
            SoftHard {
                soft: v(1000),
                hard: v(2000)
            }
        );
        assert_eq!(
            space("10G").unwrap(),
            SoftHard {
                soft: v(10 << 20),
                hard: v(10 << 20)
            }
        );
        assert_eq!(space("512m:1g").unwrap().hard, v(1 << 20));
        assert_eq!(space("2T").unwrap().soft, v(2 << 30));
        assert_eq!(space("100K").unwrap().soft, v(100));
        assert_eq!(space("1M:unlimited").unwrap().hard, Limit::Unlimited);
        assert!(space("unlimited").unwrap().is_unlimited());
        assert!(space("9223372036854775807:9223372036854775807")
            .unwrap()
            .is_unlimited());
        assert_eq!(
            space("unlimited").unwrap().to_string(),
            "unlimited:unlimited"
        );
        assert_eq!(space("5:6").unwrap().to_string(), "5:6");
    }

    #[test]
    fn refuses_bad_values_with_the_reason() {
        assert!(space("2000:1000").unwrap_err().contains("above the hard"));
        assert!(space("-5").unwrap_err().contains("negative"));
        assert!(space("5:-1").unwrap_err().contains("negative"));
        assert!(space("10X").unwrap_err().contains("unknown unit \"X\""));
        assert!(space("10GiBs").unwrap_err().contains("unknown unit"));
        assert!(space("G").unwrap_err().contains("number must come before"));
        assert!(space("").unwrap_err().contains("empty"));
        assert!(space("1:").unwrap_err().contains("empty"));
        assert!(space("0").unwrap_err().contains("0 is impossible"));
        assert!(space("99999999999999999999").unwrap_err().contains("range"));
        assert!(space("9000000000T").unwrap_err().contains("largest"));
        assert!(space("90000000000000T").unwrap_err().contains("range"));
        assert!(space("unlimited:5").unwrap_err().contains("above the hard"));
        let inodes = |t| parse_soft_hard(Key::DiskInodes, t);
        assert_eq!(inodes("100:200").unwrap().hard, v(200));
        assert!(inodes("10K")
            .unwrap_err()
            .contains("not a number of inodes"));
        assert!(inodes("5000000000").unwrap_err().contains("largest"));
    }

    #[test]
    fn quotatime_and_ugidlimit() {
        assert_eq!(parse_quotatime("600").unwrap(), 600);
        assert_eq!(parse_quotatime("0").unwrap(), 0);
        assert!(parse_quotatime("-1").unwrap_err().contains("negative"));
        assert!(parse_quotatime("1h").unwrap_err().contains("not a number"));
        assert_eq!(parse_ugidlimit("100").unwrap(), 100);
        assert!(parse_ugidlimit("-3").unwrap_err().contains("negative"));
        assert!(parse_ugidlimit("many")
            .unwrap_err()
            .contains("not a number"));
    }

    #[test]
    fn quota_values() {
        assert_eq!(Limit::Unlimited.quota_value(), 0);
        assert_eq!(v(7).quota_value(), 7);
    }
}
