//! Detects what a root directory contains: distribution and version from
//! `/etc/os-release` (or `/usr/lib/os-release`), the package list and the
//! architecture from the package database (dpkg status, or the rpm database
//! through the `rpm` tool), falling back to the ELF header of a core binary.

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The package manager whose database was found in a root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageDb {
    Dpkg,
    Rpm,
    None,
}

impl PackageDb {
    pub fn as_str(&self) -> &'static str {
        match self {
            PackageDb::Dpkg => "dpkg",
            PackageDb::Rpm => "rpm",
            PackageDb::None => "none",
        }
    }
}

/// Facts about a root directory.
#[derive(Debug, Clone)]
pub struct RootInfo {
    /// os-release fields, if an os-release file was found.
    pub os_release: BTreeMap<String, String>,
    pub package_db: PackageDb,
    /// "name version arch" lines, sorted.
    pub packages: Vec<String>,
    /// OpenVZ-style architecture name (x86_64, x86, aarch64...), if known.
    pub arch: Option<String>,
}

impl RootInfo {
    /// sha256 (hex) of the sorted package list, one "name version arch" per line.
    pub fn packages_digest(&self) -> String {
        let mut h = Sha256::new();
        for p in &self.packages {
            h.update(p.as_bytes());
            h.update(b"\n");
        }
        crate::compress::hex(&h.finalize())
    }

    /// `<distro>-<version>-<arch>[-<flavour>]`, or an error naming what is missing.
    pub fn default_name(&self, flavour: Option<&str>) -> Result<String> {
        let id = self.os_release.get("ID").ok_or_else(|| {
            Error::Invalid(
                "no /etc/os-release (or /usr/lib/os-release) with an ID= field in the root: \
                 give --name"
                    .into(),
            )
        })?;
        let ver = self
            .os_release
            .get("VERSION_ID")
            .map(String::as_str)
            .unwrap_or("rolling");
        let arch = self.arch.as_deref().ok_or_else(|| {
            Error::Invalid("cannot detect the architecture of the root: give --arch".into())
        })?;
        let mut name = format!("{id}-{ver}-{arch}");
        if let Some(f) = flavour.filter(|f| !f.is_empty()) {
            name.push('-');
            name.push_str(f);
        }
        Ok(sanitize_name(&name))
    }
}

fn sanitize_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-') {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Maps Debian/RPM/ELF architecture names to the OpenVZ template convention.
pub fn openvz_arch(a: &str) -> String {
    match a {
        "amd64" | "x86_64" => "x86_64".into(),
        "i386" | "i486" | "i586" | "i686" => "x86".into(),
        "arm64" | "aarch64" => "aarch64".into(),
        "ppc64el" | "ppc64le" => "ppc64le".into(),
        other => other.into(),
    }
}

/// Maps an OpenVZ-style architecture to the OCI/Go name used in image configs.
pub fn oci_arch(a: &str) -> String {
    match a {
        "x86_64" => "amd64".into(),
        "x86" => "386".into(),
        "aarch64" => "arm64".into(),
        "ppc64le" => "ppc64le".into(),
        "armhf" | "armv7hl" => "arm".into(),
        other => other.into(),
    }
}

/// Resolves `rel` inside `root` the way the root's own processes would see
/// it: absolute symlinks are taken relative to `root`, and nothing resolves
/// outside it. Returns None when a component is missing.
pub fn resolve_in_root(root: &Path, rel: &str) -> Option<PathBuf> {
    let mut parts: Vec<String> = rel
        .split('/')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    parts.reverse();
    let mut cur: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(p) = parts.pop() {
        match p.as_str() {
            "." => continue,
            ".." => {
                cur.pop();
                continue;
            }
            _ => {}
        }
        let candidate: PathBuf =
            root.join(cur.iter().chain(std::iter::once(&p)).collect::<PathBuf>());
        let meta = std::fs::symlink_metadata(&candidate).ok()?;
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return None;
            }
            let target = std::fs::read_link(&candidate).ok()?;
            let t = target.to_string_lossy().to_string();
            if t.starts_with('/') {
                cur.clear();
            }
            for q in t.split('/').filter(|s| !s.is_empty()).rev() {
                parts.push(q.to_string());
            }
        } else {
            cur.push(p);
        }
    }
    Some(root.join(cur.iter().collect::<PathBuf>()))
}

fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim();
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let v = v.trim();
        let v = if v.len() >= 2
            && ((v.starts_with('"') && v.ends_with('"'))
                || (v.starts_with('\'') && v.ends_with('\'')))
        {
            let inner = &v[1..v.len() - 1];
            let mut out = String::new();
            let mut esc = false;
            for c in inner.chars() {
                if esc {
                    out.push(c);
                    esc = false;
                } else if c == '\\' && v.starts_with('"') {
                    esc = true;
                } else {
                    out.push(c);
                }
            }
            out
        } else {
            v.to_string()
        };
        m.insert(k.to_string(), v);
    }
    m
}

fn dpkg_packages(status: &str) -> (Vec<String>, BTreeMap<String, usize>) {
    let mut pkgs = Vec::new();
    let mut arches: BTreeMap<String, usize> = BTreeMap::new();
    for para in status.split("\n\n") {
        let mut name = None;
        let mut ver = None;
        let mut arch = None;
        let mut installed = false;
        for line in para.lines() {
            if let Some(v) = line.strip_prefix("Package: ") {
                name = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Version: ") {
                ver = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Architecture: ") {
                arch = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Status: ") {
                installed = v.trim().ends_with(" installed");
            }
        }
        if let (Some(n), Some(v), Some(a), true) = (name, ver, arch, installed) {
            pkgs.push(format!("{n} {v} {a}"));
            if a != "all" {
                *arches.entry(a.to_string()).or_default() += 1;
            }
        }
    }
    pkgs.sort();
    (pkgs, arches)
}

fn rpm_packages(root: &Path) -> Result<(Vec<String>, BTreeMap<String, usize>)> {
    // The rpm database format (sqlite or Berkeley DB, header blobs) is read
    // by the rpm tool itself; --dbpath avoids Debian's ~/.rpmdb default.
    let out = Command::new("rpm")
        .arg("--root")
        .arg(root)
        .args([
            "--dbpath",
            "/var/lib/rpm",
            "-qa",
            "--qf",
            "%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE} %{ARCH}\\n",
        ])
        .output()
        .map_err(|e| {
            Error::io(
                "running rpm to read the root's package database (is rpm installed?)",
                e,
            )
        })?;
    if !out.status.success() {
        return Err(Error::Invalid(format!(
            "rpm could not read the package database in {}: {}",
            root.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let mut pkgs = Vec::new();
    let mut arches: BTreeMap<String, usize> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("gpg-pubkey ") {
            continue;
        }
        if let Some(a) = line.rsplit(' ').next() {
            if a != "noarch" && a != "(none)" {
                *arches.entry(a.to_string()).or_default() += 1;
            }
        }
        pkgs.push(line.to_string());
    }
    pkgs.sort();
    Ok((pkgs, arches))
}

fn elf_arch(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let mut h = [0u8; 20];
    f.read_exact(&mut h).ok()?;
    if &h[..4] != b"\x7fELF" {
        return None;
    }
    let machine = if h[5] == 1 {
        u16::from_le_bytes([h[18], h[19]])
    } else {
        u16::from_be_bytes([h[18], h[19]])
    };
    Some(
        match machine {
            0x3e => "x86_64",
            0x03 => "x86",
            0xb7 => "aarch64",
            0x28 => "armhf",
            0x15 => "ppc64le",
            0x16 => "s390x",
            0xf3 => "riscv64",
            _ => return None,
        }
        .to_string(),
    )
}

/// Inspects a root directory.
pub fn inspect_root(root: &Path) -> Result<RootInfo> {
    let mut os_release = BTreeMap::new();
    for cand in ["etc/os-release", "usr/lib/os-release"] {
        if let Some(p) = resolve_in_root(root, cand) {
            match std::fs::read(&p) {
                Ok(bytes) => {
                    os_release = parse_os_release(&String::from_utf8_lossy(&bytes));
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io_path("reading", &p, e)),
            }
        }
    }
    let dpkg_status = root.join("var/lib/dpkg/status");
    let rpm_dir = root.join("var/lib/rpm");
    let (package_db, packages, arches) = if dpkg_status.is_file() {
        let text = std::fs::read_to_string(&dpkg_status)
            .map_err(|e| Error::io_path("reading", &dpkg_status, e))?;
        let (p, a) = dpkg_packages(&text);
        (PackageDb::Dpkg, p, a)
    } else if rpm_dir.is_dir()
        && std::fs::read_dir(&rpm_dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    {
        let (p, a) = rpm_packages(root)?;
        (PackageDb::Rpm, p, a)
    } else {
        (PackageDb::None, Vec::new(), BTreeMap::new())
    };
    // The most common architecture among arch-specific packages.
    let mut arch = arches
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(a, _)| openvz_arch(a));
    if arch.is_none() {
        for cand in [
            "bin/sh",
            "usr/bin/env",
            "bin/busybox",
            "sbin/init",
            "usr/bin/bash",
        ] {
            if let Some(a) = resolve_in_root(root, cand).and_then(|p| elf_arch(&p)) {
                arch = Some(a);
                break;
            }
        }
    }
    Ok(RootInfo {
        os_release,
        package_db,
        packages,
        arch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_quotes() {
        let m = parse_os_release(
            "ID=debian\nNAME=\"Debian GNU/Linux\"\n# c\nVERSION_ID='12'\nX=\"a\\\"b\"\n",
        );
        assert_eq!(m["ID"], "debian");
        assert_eq!(m["NAME"], "Debian GNU/Linux");
        assert_eq!(m["VERSION_ID"], "12");
        assert_eq!(m["X"], "a\"b");
    }

    #[test]
    fn dpkg_status_installed_only() {
        let s = "Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\n\
                 Package: b\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 2\n\n\
                 Package: c\nStatus: install ok installed\nArchitecture: all\nVersion: 3\n";
        let (p, a) = dpkg_packages(s);
        assert_eq!(p, vec!["a 1 amd64", "c 3 all"]);
        assert_eq!(a.get("amd64"), Some(&1));
    }
}
