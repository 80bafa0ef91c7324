//! What the suite reads from the host: mount table, cgroup layout, processes.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// One line of /proc/<pid>/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    pub root: String,
    pub mount_point: String,
    /// Per-mount options (ro, nosuid, ...).
    pub options: Vec<String>,
    /// Optional fields: shared:N, master:N, propagate_from:N, unbindable.
    pub optional: Vec<String>,
    pub fstype: String,
    pub source: String,
    /// Superblock options (size=, mode=, ...).
    pub super_options: Vec<String>,
}

impl MountInfo {
    pub fn has_option(&self, opt: &str) -> bool {
        self.options.iter().any(|o| o == opt)
    }
    pub fn has_super_option(&self, opt: &str) -> bool {
        self.super_options.iter().any(|o| o == opt)
    }
    pub fn is_shared(&self) -> bool {
        self.optional.iter().any(|o| o.starts_with("shared:"))
    }
    pub fn is_slave(&self) -> bool {
        self.optional.iter().any(|o| o.starts_with("master:"))
    }
}

/// Undoes the octal escapes (\040 for space...) the kernel puts in mountinfo.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 4])
                .ok()
                .and_then(|t| u8::from_str_radix(t, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    let mut v = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if fields.len() < sep + 4 || sep < 6 {
            continue;
        }
        v.push(MountInfo {
            root: unescape(fields[3]),
            mount_point: unescape(fields[4]),
            options: fields[5].split(',').map(String::from).collect(),
            optional: fields[6..sep].iter().map(|s| s.to_string()).collect(),
            fstype: fields[sep + 1].to_string(),
            source: unescape(fields[sep + 2]),
            super_options: fields[sep + 3].split(',').map(String::from).collect(),
        });
    }
    v
}

pub fn host_mounts() -> Result<Vec<MountInfo>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").context("reading mountinfo")?;
    Ok(parse_mountinfo(&text))
}

/// Which cgroup hierarchies the host has, and where.
#[derive(Debug, Clone)]
pub enum CgroupLayout {
    /// Legacy or hybrid: one mount per v1 controller (or co-mounted group);
    /// `unified` is the hybrid cgroup2 mount if any.
    V1 {
        controllers: BTreeMap<String, PathBuf>,
        hierarchies: Vec<PathBuf>,
        unified: Option<PathBuf>,
    },
    /// Pure cgroup v2.
    V2 { root: PathBuf },
}

impl CgroupLayout {
    pub fn detect() -> Result<Self> {
        let mounts = host_mounts()?;
        if let Some(m) = mounts
            .iter()
            .find(|m| m.fstype == "cgroup2" && m.mount_point == "/sys/fs/cgroup")
        {
            return Ok(CgroupLayout::V2 {
                root: PathBuf::from(&m.mount_point),
            });
        }
        let mut controllers = BTreeMap::new();
        let mut hierarchies = Vec::new();
        for m in mounts.iter().filter(|m| m.fstype == "cgroup") {
            hierarchies.push(PathBuf::from(&m.mount_point));
            for opt in &m.super_options {
                if matches!(opt.as_str(), "rw" | "ro") || opt.contains('=') {
                    continue;
                }
                controllers
                    .entry(opt.clone())
                    .or_insert_with(|| PathBuf::from(&m.mount_point));
            }
        }
        if hierarchies.is_empty() {
            anyhow::bail!("no cgroup v1 or v2 hierarchy mounted on this host");
        }
        let unified = mounts
            .iter()
            .find(|m| m.fstype == "cgroup2")
            .map(|m| PathBuf::from(&m.mount_point));
        Ok(CgroupLayout::V1 {
            controllers,
            hierarchies,
            unified,
        })
    }

    pub fn is_v2(&self) -> bool {
        matches!(self, CgroupLayout::V2 { .. })
    }

    /// Every hierarchy root a runtime may create a cgroup in.
    pub fn all_roots(&self) -> Vec<PathBuf> {
        match self {
            CgroupLayout::V2 { root } => vec![root.clone()],
            CgroupLayout::V1 {
                hierarchies,
                unified,
                ..
            } => {
                let mut v = hierarchies.clone();
                v.extend(unified.iter().cloned());
                v
            }
        }
    }

    /// Directory of cgroup `rel` (a cgroupsPath) for `controller`, if the
    /// host has that controller.
    pub fn dir(&self, controller: &str, rel: &str) -> Option<PathBuf> {
        let rel = rel.trim_start_matches('/');
        match self {
            CgroupLayout::V2 { root } => Some(root.join(rel)),
            CgroupLayout::V1 { controllers, .. } => {
                controllers.get(controller).map(|m| m.join(rel))
            }
        }
    }

    /// Reads a cgroup file of `rel`, trimmed.
    pub fn read(&self, controller: &str, rel: &str, file: &str) -> Result<String> {
        let dir = self
            .dir(controller, rel)
            .with_context(|| format!("host has no {controller} cgroup controller"))?;
        let p = dir.join(file);
        let s = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        Ok(s.trim().to_string())
    }

    /// Every existing directory of cgroup `rel` across hierarchies.
    pub fn existing_dirs(&self, rel: &str) -> Vec<PathBuf> {
        let rel = rel.trim_start_matches('/');
        self.all_roots()
            .into_iter()
            .map(|r| r.join(rel))
            .filter(|p| p.is_dir())
            .collect()
    }

    /// Removes cgroup `rel` and everything below it in every hierarchy.
    /// Processes still inside are thawed and killed first; their pids are
    /// returned so the caller can report the leak.
    pub fn remove_tree(&self, rel: &str) -> Vec<i32> {
        let mut leaked = Vec::new();
        for dir in self.existing_dirs(rel) {
            remove_cgroup_dir(&dir, &mut leaked);
        }
        leaked.sort_unstable();
        leaked.dedup();
        leaked
    }
}

fn remove_cgroup_dir(dir: &Path, leaked: &mut Vec<i32>) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup_dir(&e.path(), leaked);
            }
        }
    }
    for attempt in 0..50 {
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        let pids = cgroup_procs(dir);
        if attempt == 0 {
            leaked.extend(pids.iter().copied());
        }
        let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
        let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
        for pid in pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

pub fn cgroup_procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Processes that still belong to a test: their cwd is under `dir`, their
/// root is `rootfs` (same inode: containers pivot into it), or they sit in
/// cgroup `cgroup_rel` in some hierarchy. Used to prove teardown left
/// nothing running.
pub fn processes_referencing(dir: &Path, rootfs_list: &[PathBuf], cgroup_rel: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let roots: Vec<(u64, u64)> = rootfs_list
        .iter()
        .filter_map(|r| std::fs::metadata(r).ok())
        .map(|m| (m.dev(), m.ino()))
        .collect();
    let mut found = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let p = e.path();
        let cwd_hit = std::fs::read_link(p.join("cwd"))
            .map(|c| c.starts_with(dir))
            .unwrap_or(false);
        let root_hit = std::fs::metadata(p.join("root"))
            .map(|m| roots.contains(&(m.dev(), m.ino())))
            .unwrap_or(false);
        let cg_hit = !cgroup_rel.is_empty()
            && std::fs::read_to_string(p.join("cgroup"))
                .map(|c| {
                    c.lines().any(|l| {
                        let path = l.splitn(3, ':').nth(2).unwrap_or("");
                        path == cgroup_rel || path.starts_with(&format!("{cgroup_rel}/"))
                    })
                })
                .unwrap_or(false);
        if cwd_hit || root_hit || cg_hit {
            // Zombies are only waiting for a reaper; they hold nothing.
            let zombie = std::fs::read_to_string(p.join("stat"))
                .map(|s| {
                    s.rsplit_once(')')
                        .map(|(_, r)| r.trim_start().starts_with('Z'))
                })
                .ok()
                .flatten()
                .unwrap_or(false);
            if !zombie {
                found.push(pid);
            }
        }
    }
    found
}

/// Serial of this thread's session keyring, as the helper reports it.
pub fn session_keyring() -> Option<i64> {
    // SAFETY: keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)
    // takes integers only.
    let r = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            0 as libc::c_long,
            -3 as libc::c_long,
            0 as libc::c_long,
        )
    };
    (r >= 0).then_some(r)
}

/// Namespace links of a process (`/proc/<pid>/ns/*`), e.g. "net" -> "net:[4026531840]".
pub fn namespaces_of(pid: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for ns in ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"] {
        if let Ok(t) = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")) {
            m.insert(ns.to_string(), t.to_string_lossy().into_owned());
        }
    }
    m
}

/// The host facts the final self-check compares before and after a run:
/// cgroup mounts (a misbehaving init can remount them) and anything the run
/// mounted or created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSnapshot {
    pub cgroup_mounts: Vec<String>,
    pub run_mounts: Vec<String>,
    pub cgroup_dirs: Vec<String>,
}

impl HostSnapshot {
    pub fn take(run_dir: &Path, layout: &CgroupLayout, cgroup_parent: &str) -> Result<Self> {
        let mounts = host_mounts()?;
        let cgroup_mounts = mounts
            .iter()
            .filter(|m| {
                m.fstype.starts_with("cgroup") || m.mount_point.starts_with("/sys/fs/cgroup")
            })
            .map(|m| {
                format!(
                    "{} {} {} {} {}",
                    m.mount_point,
                    m.fstype,
                    m.options.join(","),
                    m.optional.join(","),
                    m.super_options.join(",")
                )
            })
            .collect();
        let run_mounts = mounts
            .iter()
            .filter(|m| Path::new(&m.mount_point).starts_with(run_dir))
            .map(|m| m.mount_point.clone())
            .collect();
        let cgroup_dirs = layout
            .existing_dirs(cgroup_parent)
            .into_iter()
            .map(|p| p.display().to_string())
            .collect();
        Ok(HostSnapshot {
            cgroup_mounts,
            run_mounts,
            cgroup_dirs,
        })
    }

    /// Human-readable differences, empty when the host is as it was.
    pub fn diff(&self, after: &HostSnapshot) -> Vec<String> {
        let mut out = Vec::new();
        for m in &self.cgroup_mounts {
            if !after.cgroup_mounts.contains(m) {
                out.push(format!("cgroup mount changed or gone: {m}"));
            }
        }
        for m in &after.cgroup_mounts {
            if !self.cgroup_mounts.contains(m) {
                out.push(format!("new cgroup mount: {m}"));
            }
        }
        for m in &after.run_mounts {
            out.push(format!("mount left under the run directory: {m}"));
        }
        for d in &after.cgroup_dirs {
            out.push(format!("cgroup left behind: {d}"));
        }
        out
    }
}

/// True if the ELF file at `path` has no program interpreter (is static).
pub fn is_static_elf(path: &Path) -> Result<bool> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 {
        anyhow::bail!("{} is not a 64-bit ELF file", path.display());
    }
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]) as usize;
    let u64_at = |o: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&data[o..o + 8]);
        u64::from_le_bytes(b) as usize
    };
    let phoff = u64_at(0x20);
    let phentsize = u16_at(0x36);
    let phnum = u16_at(0x38);
    for i in 0..phnum {
        let off = phoff + i * phentsize;
        if off + 4 > data.len() {
            break;
        }
        let p_type = u32::from_le_bytes([data[off], data[off + 1], data[off + 2], data[off + 3]]);
        if p_type == 3 {
            return Ok(false); // PT_INTERP: needs a dynamic loader
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_line() {
        let t = "36 35 98:0 /mnt1 /mnt/a\\040b rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue\n";
        let m = &parse_mountinfo(t)[0];
        assert_eq!(m.mount_point, "/mnt/a b");
        assert_eq!(m.root, "/mnt1");
        assert!(m.has_option("noatime"));
        assert!(m.is_shared() && m.is_slave());
        assert_eq!(m.fstype, "ext3");
        assert!(m.has_super_option("errors=continue"));
    }
}
