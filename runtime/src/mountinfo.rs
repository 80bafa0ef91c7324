//! Reading /proc/self/mountinfo.

use std::path::{Path, PathBuf};

/// Mount points of the calling process' mount namespace, in mount order.
pub fn mount_points() -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|m| {
            m.lines()
                .filter_map(|l| l.split(' ').nth(4).map(|p| PathBuf::from(unescape(p))))
                .collect()
        })
        .unwrap_or_default()
}

pub fn is_mount_point(path: &Path) -> bool {
    mount_points().iter().any(|m| m == path)
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
pub fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            if let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/trail\\"), "/trail\\");
    }

    #[test]
    fn root_is_mounted() {
        assert!(is_mount_point(Path::new("/")));
        assert!(!is_mount_point(Path::new("/definitely/not/a/mount")));
    }
}
