//! Small helpers: canonical JSON, RFC 3339 time, name/version validation and
//! the version order used to pick "latest".

use crate::error::{Error, Result};
use std::cmp::Ordering;

/// Serializes JSON with object keys sorted and no whitespace, so that the
/// same value always gives the same bytes (and digest).
pub fn canonical_json(v: &serde_json::Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_json(v, &mut out);
    out
}

fn write_json(v: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(serde_json::to_string(k).expect("string").as_bytes());
                out.push(b':');
                write_json(&m[k.as_str()], out);
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(x, out);
            }
            out.push(b']');
        }
        other => out.extend_from_slice(serde_json::to_string(other).expect("scalar").as_bytes()),
    }
}

/// Formats seconds since the epoch as RFC 3339 UTC (`2025-01-01T00:00:00Z`).
pub fn rfc3339(epoch: i64) -> String {
    let days = epoch.div_euclid(86400);
    let secs = epoch.rem_euclid(86400);
    // Civil-from-days (proleptic Gregorian), after H. Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// `YYYYMMDD` of an epoch (the default template version).
pub fn date_version(epoch: i64) -> String {
    rfc3339(epoch)[..10].replace('-', "")
}

/// Template names: `[A-Za-z0-9][A-Za-z0-9._+-]*`, at most 128 bytes.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "invalid template name {name:?}: use letters, digits and . _ + - (starting with a letter or digit)"
        )))
    }
}

/// Versions: alphanumeric runs joined by single `.`, `_`, `+` or `-`, at most
/// 64 bytes (a subset of the OCI `ref.name` grammar that is also a safe file
/// name).
pub fn validate_version(v: &str) -> Result<()> {
    let b = v.as_bytes();
    let sep = |c: u8| matches!(c, b'.' | b'_' | b'+' | b'-');
    let ok = !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || sep(c))
        && !b.windows(2).any(|w| sep(w[0]) && sep(w[1]));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "invalid template version {v:?}: use letters and digits joined by single . _ + or -"
        )))
    }
}

fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_alphabetic() => c as i32,
        Some(c) => c as i32 + 256,
    }
}

/// Compares versions with dpkg's algorithm (Debian Policy 5.6.12, without
/// epochs, revisions or `~`): alternate non-digit runs (compared character by
/// character, letters before other characters, end of string first) and digit
/// runs (compared as numbers). Ties fall back to plain byte order so the
/// order is total.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < x.len() || j < y.len() {
        // Non-digit run.
        while (i < x.len() && !x[i].is_ascii_digit()) || (j < y.len() && !y[j].is_ascii_digit()) {
            let ca = x.get(i).copied().filter(|c| !c.is_ascii_digit());
            let cb = y.get(j).copied().filter(|c| !c.is_ascii_digit());
            let (oa, ob) = (order(ca), order(cb));
            if oa != ob {
                return oa.cmp(&ob);
            }
            if ca.is_some() {
                i += 1;
            }
            if cb.is_some() {
                j += 1;
            }
        }
        // Digit run, compared numerically (leading zeros ignored).
        while i < x.len() && x[i] == b'0' {
            i += 1;
        }
        while j < y.len() && y[j] == b'0' {
            j += 1;
        }
        let si = i;
        let sj = j;
        while i < x.len() && x[i].is_ascii_digit() {
            i += 1;
        }
        while j < y.len() && y[j].is_ascii_digit() {
            j += 1;
        }
        let (da, db) = (&x[si..i], &y[sj..j]);
        let c = da.len().cmp(&db.len()).then_with(|| da.cmp(db));
        if c != Ordering::Equal {
            return c;
        }
    }
    x.cmp(y)
}

/// Removes leftovers of interrupted runs in `dir`: entries named
/// `<prefix><pid>` (our temporary files and staging directories) whose
/// process no longer exists. Best effort: errors are ignored.
pub fn remove_stale(dir: &std::path::Path, prefix: &str) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for ent in rd.flatten() {
        let name = ent.file_name().to_string_lossy().to_string();
        let Some(pid) = name
            .strip_prefix(prefix)
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if pid <= 0 || pid as u32 == std::process::id() {
            continue;
        }
        let alive = match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
            Ok(()) => true,
            Err(e) => e != nix::errno::Errno::ESRCH,
        };
        if !alive {
            let p = ent.path();
            let _ = match ent.file_type() {
                Ok(t) if t.is_dir() => std::fs::remove_dir_all(&p),
                _ => std::fs::remove_file(&p),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_735_689_600), "2025-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400 + 3661), "2000-02-29T01:01:01Z");
        assert_eq!(date_version(1_735_689_600), "20250101");
    }

    #[test]
    fn version_order() {
        use Ordering::*;
        assert_eq!(compare_versions("12.5", "12.10"), Less);
        assert_eq!(compare_versions("20250101", "20250102"), Less);
        assert_eq!(compare_versions("1.0", "1.0.1"), Less);
        assert_eq!(compare_versions("1.0", "1.0a"), Less);
        assert_eq!(compare_versions("1.0a", "1.0.1"), Less);
        assert_eq!(compare_versions("2", "10"), Less);
        assert_eq!(compare_versions("1.01", "1.1"), Less); // numeric tie, byte order
        assert_eq!(compare_versions("3", "3"), Equal);
    }

    #[test]
    fn names_and_versions() {
        assert!(validate_name("debian-12-x86_64-minimal").is_ok());
        assert!(validate_name("../x").is_err());
        assert!(validate_name(".hidden").is_err());
        assert!(validate_version("20250101.1").is_ok());
        assert!(validate_version("1..2").is_err());
        assert!(validate_version("1/2").is_err());
        assert!(validate_version("-1").is_err());
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{"b":1,"a":{"d":[1,"x"],"c":null}}"#).unwrap();
        assert_eq!(canonical_json(&v), br#"{"a":{"c":null,"d":[1,"x"]},"b":1}"#);
    }
}
