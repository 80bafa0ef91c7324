//! Cgroup access for the runtime: libcgroups managers for creating, limiting, freezing and
//! removing, plus a cheap layout map (one read of /proc/self/mountinfo) for the queries
//! that run on every `state`/`list` call, where building a full manager would cost a dozen
//! /proc reads.

use std::collections::HashMap;
use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libcgroups::common::{AnyCgroupManager, CgroupConfig, CgroupManager, FreezerState};
use oci_spec::runtime::LinuxResources;

use crate::error::{chain_message, Error, Result};

/// Parent of the default cgroup of containers whose spec has no cgroupsPath.
pub const DEFAULT_PARENT: &str = "vzrun";

/// Parents vzrun creates and removes once empty: the default one and vzctl's (`/vz/<CTID>`).
const OWNED_PARENTS: &[&str] = &[DEFAULT_PARENT, "vz"];

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Where the cgroup hierarchies of this host are mounted.
#[derive(Debug, Default, Clone)]
pub struct Layout {
    /// cgroup v2 mount point, if any (pure v2 host: /sys/fs/cgroup; hybrid: .../unified).
    pub unified: Option<PathBuf>,
    /// v1 controller (and `name=` hierarchy) -> mount point.
    pub v1: HashMap<String, PathBuf>,
}

impl Layout {
    pub fn detect() -> &'static Layout {
        static LAYOUT: OnceLock<Layout> = OnceLock::new();
        LAYOUT.get_or_init(|| {
            fs::read_to_string("/proc/self/mountinfo")
                .map(|m| Layout::parse_mountinfo(&m))
                .unwrap_or_default()
        })
    }

    pub fn parse_mountinfo(content: &str) -> Layout {
        let mut layout = Layout::default();
        for line in content.lines() {
            // "... mount_point options - fstype source super_options"
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let mount_point = match left.split(' ').nth(4) {
                Some(p) => PathBuf::from(crate::mountinfo::unescape(p)),
                None => continue,
            };
            let mut fields = right.split(' ');
            let fstype = fields.next().unwrap_or("");
            let super_options = fields.nth(1).unwrap_or("");
            match fstype {
                "cgroup2" if layout.unified.is_none() || mount_point == Path::new(CGROUP_ROOT) => {
                    layout.unified = Some(mount_point);
                }
                "cgroup" => {
                    for opt in super_options.split(',') {
                        let is_controller = !matches!(
                            opt,
                            "rw" | "ro" | "relatime" | "noatime" | "nosuid" | "nodev" | "noexec"
                        ) && !opt.starts_with("release_agent")
                            && opt != "clone_children"
                            && opt != "noprefix"
                            && opt != "xattr";
                        if is_controller {
                            layout
                                .v1
                                .entry(opt.to_string())
                                .or_insert(mount_point.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        layout
    }

    /// True on a pure cgroup v2 host.
    pub fn is_unified(&self) -> bool {
        self.v1.is_empty() && self.unified.is_some()
    }

    /// The directory of `cgroup_path` in the hierarchy holding `controller`
    /// (or in the unified hierarchy on a v2 host).
    pub fn dir(&self, controller: &str, cgroup_path: &Path) -> Option<PathBuf> {
        let relative = cgroup_path.strip_prefix("/").unwrap_or(cgroup_path);
        if self.is_unified() {
            return self.unified.as_ref().map(|u| u.join(relative));
        }
        self.v1.get(controller).map(|m| m.join(relative))
    }

    /// Pids in the container's cgroup (and its sub-cgroups). On v1 every hierarchy is
    /// read: a process being set up joins them one by one, so one alone can miss it.
    pub fn procs(&self, cgroup_path: &Path) -> Vec<i32> {
        let mut dirs: Vec<PathBuf> = if self.is_unified() {
            self.dir("", cgroup_path).into_iter().collect()
        } else {
            self.v1
                .values()
                .map(|mount| mount.join(cgroup_path.strip_prefix("/").unwrap_or(cgroup_path)))
                .chain(
                    self.unified
                        .iter()
                        .map(|u| u.join(cgroup_path.strip_prefix("/").unwrap_or(cgroup_path))),
                )
                .collect()
        };
        dirs.sort();
        dirs.dedup();
        let mut pids = Vec::new();
        for dir in dirs {
            collect_procs(&dir, &mut pids);
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }
}

fn collect_procs(dir: &Path, out: &mut Vec<i32>) {
    if let Ok(content) = fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(content.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                collect_procs(&entry.path(), out);
            }
        }
    }
}

/// The cgroup path a container gets when its spec names none.
pub fn default_path(id: &str) -> PathBuf {
    PathBuf::from(format!("/{DEFAULT_PARENT}/{id}"))
}

/// True when the container's cgroup is frozen (i.e. the container is paused).
pub fn is_frozen(cgroup_path: &Path) -> bool {
    let layout = Layout::detect();
    if layout.is_unified() {
        return layout
            .dir("", cgroup_path)
            .and_then(|d| fs::read_to_string(d.join("cgroup.freeze")).ok())
            .is_some_and(|v| v.trim() == "1");
    }
    layout
        .dir("freezer", cgroup_path)
        .and_then(|d| fs::read_to_string(d.join("freezer.state")).ok())
        .is_some_and(|v| v.trim() == "FROZEN")
}

pub fn manager(cgroup_path: &Path, systemd: bool, id: &str) -> Result<AnyCgroupManager> {
    libcgroups::common::create_cgroup_manager(config(cgroup_path, systemd, id))
        .map_err(|e| Error::Cgroup(chain_message(&e)))
}

pub fn config(cgroup_path: &Path, systemd: bool, id: &str) -> CgroupConfig {
    CgroupConfig {
        cgroup_path: cgroup_path.to_path_buf(),
        systemd_cgroup: systemd,
        container_name: id.to_string(),
    }
}

pub fn freeze(cgroup_path: &Path, systemd: bool, id: &str, frozen: bool) -> Result<()> {
    let state = if frozen {
        FreezerState::Frozen
    } else {
        FreezerState::Thawed
    };
    manager(cgroup_path, systemd, id)?
        .freeze(state)
        .map_err(|e| Error::Cgroup(chain_message(&e)))
}

/// Sends `signal` to every process of the cgroup.
pub fn signal_all(cgroup_path: &Path, signal: i32) -> usize {
    let pids = Layout::detect().procs(cgroup_path);
    for &pid in &pids {
        // SAFETY: kill(2) with plain integers; ESRCH for a process that just exited is fine.
        unsafe { libc::kill(pid, signal) };
    }
    pids.len()
}

/// SIGKILLs everything in the cgroup until it is empty (processes may fork while we
/// scan), giving up after `timeout`. A frozen cgroup is thawed so the kills take effect.
pub fn kill_all_and_wait(
    cgroup_path: &Path,
    systemd: bool,
    id: &str,
    timeout: Duration,
) -> Result<()> {
    if is_frozen(cgroup_path) {
        freeze(cgroup_path, systemd, id, false)?;
    }
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(200);
    loop {
        if signal_all(cgroup_path, libc::SIGKILL) == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::Cgroup(format!(
                "processes in cgroup {} did not exit within {timeout:?}",
                cgroup_path.display()
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Removes the container's cgroup in every hierarchy, sub-cgroups first (a system
/// container's own systemd makes many), then our default parent once it is empty.
/// With the systemd driver, systemd removes the unit's cgroups (libcgroups asks it).
pub fn remove(cgroup_path: &Path, systemd: bool, id: &str) -> Result<()> {
    if systemd {
        return manager(cgroup_path, systemd, id)?
            .remove()
            .map_err(|e| Error::Cgroup(chain_message(&e)));
    }
    let layout = Layout::detect();
    let relative = cgroup_path.strip_prefix("/").unwrap_or(cgroup_path);
    let mounts: Vec<&PathBuf> = layout.v1.values().chain(layout.unified.iter()).collect();
    let mut failures = Vec::new();
    for mount in &mounts {
        let dir = mount.join(relative);
        if let Err(e) = remove_tree(&dir) {
            failures.push(format!("{}: {e}", dir.display()));
        }
    }
    if let Some(lock_dir) = owned_parent_lock_dir(layout, cgroup_path) {
        // Not while a create holds it (hold_parents); rmdir fails harmlessly while other
        // containers still live there.
        let held = File::open(&lock_dir)
            .ok()
            .filter(|dir| flock(dir, libc::LOCK_EX | libc::LOCK_NB).is_ok());
        if let (Some(lock), Some(parent)) = (held, owned_parent(cgroup_path)) {
            for mount in &mounts {
                let _ = fs::remove_dir(mount.join(parent));
            }
            drop(lock); // only now may a create make it again
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        failures.sort();
        failures.dedup();
        Err(Error::Cgroup(format!(
            "could not remove {}",
            failures.join(", ")
        )))
    }
}

/// Held by `create` while the container's cgroup is being made (see `hold_parents`).
pub struct ParentsHeld {
    _lock: Option<File>,
}

/// Makes the parents of a new container's cgroup and keeps them from being removed until
/// the guard is dropped (after the container's own cgroup exists):
/// * on cgroup v2 the parents are made here: libcgroups' v2 manager checks "exists" then
///   mkdirs each level, and fails with EEXIST when two creates make a shared parent at once;
/// * a parent vzrun owns (`/vzrun`, `/vz`) is removed by `remove` when its last container
///   goes; a shared flock on it here against the exclusive one there keeps a delete from
///   removing it between our mkdir and the container's (which would fail with ENOENT).
pub fn hold_parents(cgroup_path: &Path, systemd: bool) -> Result<ParentsHeld> {
    let relative = cgroup_path.strip_prefix("/").unwrap_or(cgroup_path);
    let parent = match relative.parent() {
        Some(p) if !systemd && !p.as_os_str().is_empty() => p,
        _ => return Ok(ParentsHeld { _lock: None }),
    };
    let layout = Layout::detect();
    if let (true, Some(unified)) = (layout.is_unified(), &layout.unified) {
        let dir = unified.join(parent);
        fs::create_dir_all(&dir)
            .map_err(|e| Error::Cgroup(format!("create {}: {e}", dir.display())))?;
    }
    let Some(lock_dir) = owned_parent_lock_dir(layout, cgroup_path) else {
        return Ok(ParentsHeld { _lock: None });
    };
    // A delete may remove the directory between our mkdir and our lock: then again.
    for _ in 0..100 {
        fs::create_dir_all(&lock_dir)
            .map_err(|e| Error::Cgroup(format!("create {}: {e}", lock_dir.display())))?;
        let Ok(dir) = File::open(&lock_dir) else {
            continue;
        };
        flock(&dir, libc::LOCK_SH)
            .map_err(|e| Error::Cgroup(format!("lock {}: {e}", lock_dir.display())))?;
        // Still the directory at that path (cgroupfs keeps nlink of a removed one).
        let same = match (dir.metadata(), fs::metadata(&lock_dir)) {
            (Ok(held), Ok(now)) => (held.dev(), held.ino()) == (now.dev(), now.ino()),
            _ => false,
        };
        if same {
            return Ok(ParentsHeld { _lock: Some(dir) });
        }
    }
    Err(Error::Cgroup(format!(
        "{} keeps being removed while this container is created",
        lock_dir.display()
    )))
}

/// The parent of `cgroup_path` that vzrun owns, if it is one.
fn owned_parent(cgroup_path: &Path) -> Option<&'static str> {
    OWNED_PARENTS
        .iter()
        .find(|p| cgroup_path.parent() == Some(Path::new("/").join(p).as_path()))
        .copied()
}

/// The directory standing for an owned parent of `cgroup_path` in every hierarchy (the
/// unified one on v2, one v1 hierarchy chosen the same way by every vzrun on v1).
fn owned_parent_lock_dir(layout: &Layout, cgroup_path: &Path) -> Option<PathBuf> {
    let parent = owned_parent(cgroup_path)?;
    let mount = if layout.is_unified() {
        layout.unified.clone()
    } else {
        layout
            .v1
            .get("pids")
            .or_else(|| layout.v1.get("memory"))
            .or_else(|| layout.v1.values().min())
            .cloned()
    }?;
    Some(mount.join(parent))
}

fn flock(file: &File, operation: libc::c_int) -> std::io::Result<()> {
    loop {
        // SAFETY: flock(2) on a valid open descriptor.
        if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// rmdir of a cgroup and everything below it, deepest first. A cgroup whose last
/// process is still exiting refuses with EBUSY for a moment: retried briefly.
fn remove_tree(dir: &Path) -> std::io::Result<()> {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&entry.path())?;
            }
        }
    }
    let mut pause = Duration::from_micros(500);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    }
}

/// On a hybrid host the hugetlb controller lives in the unified hierarchy, where
/// libcgroups' v1 manager cannot reach it (it would refuse the whole spec). True when
/// hugepage limits must go there.
pub fn hugetlb_is_unified_only() -> bool {
    let layout = Layout::detect();
    !layout.is_unified()
        && !layout.v1.contains_key("hugetlb")
        && layout
            .unified
            .as_ref()
            .and_then(|u| fs::read_to_string(u.join("cgroup.controllers")).ok())
            .is_some_and(|c| c.split_whitespace().any(|x| x == "hugetlb"))
}

/// Writes hugepage limits (page size like "2MB", limit in bytes) into the container's
/// cgroup of the unified hierarchy, enabling the controller on the way down.
pub fn apply_unified_hugetlb(cgroup_path: &Path, limits: &[(String, i64)]) -> Result<()> {
    let layout = Layout::detect();
    let unified = layout
        .unified
        .as_ref()
        .ok_or_else(|| Error::Cgroup("no unified hierarchy for hugetlb".into()))?;
    let relative = cgroup_path.strip_prefix("/").unwrap_or(cgroup_path);
    let target = unified.join(relative);
    fs::create_dir_all(&target)
        .map_err(|e| Error::io(format!("create {}", target.display()), e))?;
    let mut dir = unified.clone();
    for component in relative.components() {
        let control = dir.join("cgroup.subtree_control");
        let enabled = fs::read_to_string(&control).unwrap_or_default();
        if !enabled.split_whitespace().any(|c| c == "hugetlb") {
            fs::write(&control, "+hugetlb")
                .map_err(|e| Error::io(format!("enable hugetlb in {}", control.display()), e))?;
        }
        dir.push(component);
    }
    for (size, limit) in limits {
        let file = target.join(format!("hugetlb.{size}.max"));
        let value = if *limit < 0 {
            "max".to_string()
        } else {
            limit.to_string()
        };
        fs::write(&file, &value)
            .map_err(|e| Error::io(format!("write {} = {value}", file.display()), e))?;
    }
    Ok(())
}

/// True when `resources` ask for no swap the OCI way: memory.swap (RAM + swap) equal to a
/// memory.limit.
pub fn swap_off_requested(resources: Option<&LinuxResources>) -> bool {
    resources
        .and_then(|r| r.memory().as_ref())
        .is_some_and(|m| matches!((m.limit(), m.swap()), (Some(l), Some(s)) if l > 0 && s == l))
}

/// On cgroup v2, swap off means memory.swap.max = 0, which libcgroups never writes (it
/// skips zero values), leaving swap unlimited; runc writes it. Called after libcgroups
/// has applied `resources` (the cgroupfs driver only: systemd owns its units' files).
pub fn apply_v2_swap_off(
    cgroup_path: &Path,
    systemd: bool,
    resources: Option<&LinuxResources>,
) -> Result<()> {
    let layout = Layout::detect();
    if systemd || !layout.is_unified() || !swap_off_requested(resources) {
        return Ok(());
    }
    match layout.dir("memory", cgroup_path) {
        Some(dir) => write_swap_off(&dir),
        None => Ok(()),
    }
}

/// Writes memory.swap.max = 0 in `dir`; a kernel without swap accounting has no such
/// file and no swap to turn off (runc ignores it too).
fn write_swap_off(dir: &Path) -> Result<()> {
    use std::io::Write;
    let file = dir.join("memory.swap.max");
    // (no create: a cgroup's files are the kernel's)
    let written = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&file)
        .and_then(|mut f| f.write_all(b"0"));
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other.map_err(|e| Error::io(format!("write {} = 0", file.display()), e)),
    }
}

/// Membership of the calling process in the hierarchies libcgroups does not manage (v1
/// named hierarchies such as name=systemd, and the unified one on hybrid hosts). The
/// container's processes inherit it, so they are inside the container's cgroup there too
/// *before* they make their cgroup namespace, whose root it becomes: a system container's
/// systemd then manages its own subtree, never the host's. Dropping this moves the caller
/// back where it was.
pub struct ExtraMembership {
    original: Vec<PathBuf>,
}

pub fn join_extra_hierarchies(cgroup_path: &Path) -> Result<ExtraMembership> {
    let layout = Layout::detect();
    let mut membership = ExtraMembership {
        original: Vec::new(),
    };
    if layout.is_unified() {
        return Ok(membership);
    }
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let relative = cgroup_path.strip_prefix("/").unwrap_or(cgroup_path);
    let mut extra: Vec<(PathBuf, String)> = layout
        .v1
        .iter()
        .filter(|(name, _)| name.starts_with("name="))
        .map(|(name, mount)| (mount.clone(), name.clone()))
        .collect();
    if let Some(unified) = &layout.unified {
        extra.push((unified.clone(), String::new()));
    }
    for (mount, controllers) in extra {
        let current = own.lines().find_map(|line| {
            let mut f = line.splitn(3, ':');
            let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
            (ctrl == controllers).then(|| path.to_string())
        });
        let Some(current) = current else { continue };
        let target = mount.join(relative);
        fs::create_dir_all(&target)
            .map_err(|e| Error::io(format!("create cgroup {}", target.display()), e))?;
        fs::write(target.join("cgroup.procs"), "0")
            .map_err(|e| Error::io(format!("join cgroup {}", target.display()), e))?;
        membership.original.push(
            mount
                .join(current.trim_start_matches('/'))
                .join("cgroup.procs"),
        );
    }
    Ok(membership)
}

impl Drop for ExtraMembership {
    fn drop(&mut self) {
        for procs in &self.original {
            let _ = fs::write(procs, "0");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 30 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
27 25 0:24 / /sys/fs/cgroup/systemd rw shared:11 - cgroup cgroup rw,xattr,name=systemd
31 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw shared:15 - cgroup cgroup rw,cpu,cpuacct
32 25 0:29 / /sys/fs/cgroup/memory rw shared:16 - cgroup cgroup rw,memory
33 25 0:30 / /sys/fs/cgroup/freezer rw shared:17 - cgroup cgroup rw,freezer
";

    const UNIFIED: &str = "\
25 30 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate
";

    #[test]
    fn hybrid_layout() {
        let l = Layout::parse_mountinfo(HYBRID);
        assert!(!l.is_unified());
        assert_eq!(
            l.unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            l.dir("cpuacct", Path::new("/vzrun/a")).unwrap(),
            Path::new("/sys/fs/cgroup/cpu,cpuacct/vzrun/a")
        );
        assert_eq!(
            l.dir("name=systemd", Path::new("/x")).unwrap(),
            Path::new("/sys/fs/cgroup/systemd/x")
        );
        assert!(l.dir("pids", Path::new("/x")).is_none());
        assert!(l.v1.contains_key("freezer"));
    }

    #[test]
    fn unified_layout() {
        let l = Layout::parse_mountinfo(UNIFIED);
        assert!(l.is_unified());
        assert_eq!(
            l.dir("memory", Path::new("/vzrun/a")).unwrap(),
            Path::new("/sys/fs/cgroup/vzrun/a")
        );
    }

    #[test]
    fn swap_off_is_swap_equal_to_the_limit() {
        let resources = |json: &str| -> LinuxResources { serde_json::from_str(json).unwrap() };
        let off = resources(r#"{"memory": {"limit": 33554432, "swap": 33554432}}"#);
        assert!(swap_off_requested(Some(&off)));
        for json in [
            r#"{"memory": {"limit": 33554432, "swap": 67108864}}"#,
            r#"{"memory": {"limit": -1, "swap": -1}}"#,
            r#"{"memory": {"limit": 33554432}}"#,
            r#"{"pids": {"limit": 5}}"#,
        ] {
            assert!(!swap_off_requested(Some(&resources(json))), "{json}");
        }
        assert!(!swap_off_requested(None));
    }

    #[test]
    fn swap_off_writes_zero_and_tolerates_no_swap_accounting() {
        let dir = tempfile::tempdir().unwrap();
        write_swap_off(dir.path()).unwrap();
        assert!(!dir.path().join("memory.swap.max").exists());
        std::fs::write(dir.path().join("memory.swap.max"), "max").unwrap();
        write_swap_off(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("memory.swap.max")).unwrap(),
            "0"
        );
    }

    #[test]
    fn default_path_is_under_our_parent() {
        assert_eq!(default_path("abc"), Path::new("/vzrun/abc"));
    }
}
