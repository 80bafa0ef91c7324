//! vzctl's configuration files: `vz.conf` (global defaults) and `conf/<CTID>.conf`, in the
//! shell-like `KEY="value"` format of ctid.conf(5). Files are edited in place: comments,
//! order and keys this tool does not know survive a `set --save`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    /// A comment, a blank line, or anything that is not an assignment (kept verbatim).
    Other(String),
    Assign {
        key: String,
        value: String,
    },
}

/// An ordered KEY=value file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigFile {
    lines: Vec<Line>,
}

impl ConfigFile {
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut lines = Vec::new();
        for (number, raw) in text.lines().enumerate() {
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                lines.push(Line::Other(raw.to_string()));
                continue;
            }
            let Some((key, value)) = trimmed.split_once('=') else {
                return Err(format!(
                    "line {}: expected KEY=\"value\", got {raw:?}",
                    number + 1
                ));
            };
            let key = key.trim();
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("line {}: invalid key {key:?}", number + 1));
            }
            lines.push(Line::Assign {
                key: key.to_string(),
                value: unquote(value.trim()),
            });
        }
        Ok(Self { lines })
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("read {}", path.display()), e))?;
        Self::parse(&text).map_err(|reason| Error::InvalidConfig {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// The last assignment of `key` wins, as when the shell sources the file.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.lines.iter().rev().find_map(|l| match l {
            Line::Assign { key: k, value } if k == key => Some(value.as_str()),
            _ => None,
        })
    }

    /// Sets `key`, replacing its last assignment in place or appending it.
    pub fn set(&mut self, key: &str, value: &str) {
        if let Some(Line::Assign { value: v, .. }) = self
            .lines
            .iter_mut()
            .rev()
            .find(|l| matches!(l, Line::Assign { key: k, .. } if k == key))
        {
            *v = value.to_string();
        } else {
            self.lines.push(Line::Assign {
                key: key.to_string(),
                value: value.to_string(),
            });
        }
    }

    pub fn remove(&mut self, key: &str) {
        self.lines
            .retain(|l| !matches!(l, Line::Assign { key: k, .. } if k == key));
    }

    pub fn keys(&self) -> BTreeMap<String, String> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                Line::Assign { key, value } => Some((key.clone(), value.clone())),
                Line::Other(_) => None,
            })
            .collect()
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            match line {
                Line::Other(text) => out.push_str(text),
                Line::Assign { key, value } => {
                    out.push_str(key);
                    out.push_str("=\"");
                    out.push_str(&value.replace('\\', "\\\\").replace('"', "\\\""));
                    out.push('"');
                }
            }
            out.push('\n');
        }
        out
    }

    /// Writes atomically (temporary file, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::store::write_atomic(path, self.render().as_bytes())?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| Error::io(format!("chmod {}", path.display()), e))
    }
}

fn unquote(value: &str) -> String {
    let inner = if value.len() >= 2
        && ((value.starts_with('"') && value.ends_with('"'))
            || (value.starts_with('\'') && value.ends_with('\'')))
    {
        &value[1..value.len() - 1]
    } else {
        // Unquoted: a trailing comment ends the value.
        value.split(" #").next().unwrap_or(value).trim()
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Expands `$VEID`/`${VEID}` (and `$CTID`) the way vzctl does for VE_ROOT and VE_PRIVATE.
pub fn expand_ctid(value: &str, ctid: &str) -> String {
    value
        .replace("${VEID}", ctid)
        .replace("$VEID", ctid)
        .replace("${CTID}", ctid)
        .replace("$CTID", ctid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# global\nVE_ROOT=/vz/root/$VEID\nVE_PRIVATE=\"/vz/private/$VEID\"\n\nONBOOT='yes'\nHOSTNAME=\"a \\\"b\\\"\"\nNAMESERVER=1.1.1.1 # dns\n";

    #[test]
    fn parses_quotes_and_comments() {
        let c = ConfigFile::parse(SAMPLE).unwrap();
        assert_eq!(c.get("VE_ROOT"), Some("/vz/root/$VEID"));
        assert_eq!(c.get("VE_PRIVATE"), Some("/vz/private/$VEID"));
        assert_eq!(c.get("ONBOOT"), Some("yes"));
        assert_eq!(c.get("HOSTNAME"), Some("a \"b\""));
        assert_eq!(c.get("NAMESERVER"), Some("1.1.1.1"));
        assert_eq!(c.get("MISSING"), None);
    }

    #[test]
    fn set_keeps_comments_and_order() {
        let mut c = ConfigFile::parse(SAMPLE).unwrap();
        c.set("ONBOOT", "no");
        c.set("NAME", "web");
        let text = c.render();
        assert!(text.starts_with("# global\nVE_ROOT=\"/vz/root/$VEID\"\n"));
        assert!(text.contains("ONBOOT=\"no\"\n"));
        assert!(text.ends_with("NAME=\"web\"\n"));
        let again = ConfigFile::parse(&text).unwrap();
        assert_eq!(again.get("HOSTNAME"), Some("a \"b\""));
        assert_eq!(again.keys(), c.keys());
    }

    #[test]
    fn rejects_garbage() {
        assert!(ConfigFile::parse("just words\n")
            .unwrap_err()
            .contains("line 1"));
        assert!(ConfigFile::parse("BAD-KEY=1\n").is_err());
    }

    #[test]
    fn expands_ctid() {
        assert_eq!(expand_ctid("/vz/root/$VEID", "101"), "/vz/root/101");
        assert_eq!(expand_ctid("/x/${VEID}/y", "7"), "/x/7/y");
    }
}
