//! Container ids as OpenVZ users write them: a number (101), or a `--name` alias that
//! `vzctl set --name` recorded (as vzctl 4 does, a symlink names/<NAME> -> ../conf/<CTID>.conf).

use std::fmt;
use std::path::Path;

use super::error::{ExitCode, VzError, VzResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ctid(pub u32);

impl fmt::Display for Ctid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Ctid {
    /// A numeric CTID. 0 is the host and cannot be a container.
    pub fn parse_number(text: &str) -> Option<Ctid> {
        let n: u32 = text.parse().ok()?;
        (n > 0 && n <= i32::MAX as u32 && !text.starts_with('0')).then_some(Ctid(n))
    }

    /// A CTID or a container name known in `etc/names`.
    pub fn resolve(text: &str, etc: &Path) -> VzResult<Ctid> {
        if let Some(ctid) = Ctid::parse_number(text) {
            return Ok(ctid);
        }
        validate_name(text)?;
        let link = etc.join("names").join(text);
        let target = std::fs::read_link(&link).map_err(|_| {
            VzError::new(
                ExitCode::InvalidParameter,
                format!("Invalid CTID or unknown container name: {text}"),
            )
        })?;
        target
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".conf"))
            .and_then(Ctid::parse_number)
            .ok_or_else(|| {
                VzError::new(
                    ExitCode::SystemError,
                    format!(
                        "name {text} points to {}, not a container config",
                        target.display()
                    ),
                )
            })
    }
}

/// Names: letters, digits and `-_.`, not starting with a digit (so they never look like CTIDs).
pub fn validate_name(name: &str) -> VzResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == '-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(VzError::new(
            ExitCode::InvalidValue,
            format!("invalid container name {name:?}: use letters, digits, '-', '_', '.', not starting with a digit"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(Ctid::parse_number("101"), Some(Ctid(101)));
        for bad in ["0", "-1", "0101", "abc", "", "99999999999"] {
            assert_eq!(Ctid::parse_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_resolve_through_symlinks() {
        let etc = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(etc.path().join("names")).unwrap();
        std::os::unix::fs::symlink("../conf/101.conf", etc.path().join("names/web")).unwrap();
        assert_eq!(Ctid::resolve("web", etc.path()).unwrap(), Ctid(101));
        assert_eq!(Ctid::resolve("102", etc.path()).unwrap(), Ctid(102));
        assert_eq!(
            Ctid::resolve("nope", etc.path()).unwrap_err().code,
            ExitCode::InvalidParameter
        );
        assert!(validate_name("9lives").is_err());
        assert!(validate_name("a/b").is_err());
        validate_name("web-1.example").unwrap();
    }
}
