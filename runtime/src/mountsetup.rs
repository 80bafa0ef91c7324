//! The container mount setup vzrun adds to what libcontainer does, run by the small
//! `vzrun-setup` program as the first createContainer hook: in the container's mount (and
//! cgroup) namespace, after every spec mount is in place and before pivot_root.
//!
//! * `tmpcopyup`: a tmpfs mounted over an image directory starts with that directory's
//!   content (podman's systemd mode). The shadowed content is read through a detached,
//!   non-recursive clone of the rootfs mount (open_tree(OPEN_TREE_CLONE)), which has none
//!   of the submounts, so nothing is mounted anywhere to get it.
//! * per-mount propagation options (`rprivate`, `rslave`, `shared`...), which libcontainer
//!   parses but never applies;
//! * the `cgroup` mount on cgroup v1 hosts: a tmpfs with one mount per hierarchy (the
//!   namespaced view with a cgroup namespace, a bind of the container's own cgroup without),
//!   comounted hierarchies (`cpu,cpuacct`, `net_cls,net_prio`) included, which libcontainer
//!   cannot mount, and read-only when the spec says `ro`;
//! * read-only for a `cgroup` mount libcontainer made (cgroup v2 hosts), sparing the
//!   spec's own mounts below it (podman's name=systemd bind).
//!
//! This file is compiled into the `vzrun` library (prepare builds the arguments) and, on its
//! own, into the `vzrun-setup` binary: it uses std, libc and nix only, so that binary stays
//! small and starts fast (it is exec'd during every create that needs it).

use std::ffi::{CString, OsString};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::mount::MsFlags;
use nix::sys::stat::{Mode, SFlag};

/// The file name of the helper program, installed next to vzrun and vzctl.
pub const PROGRAM: &str = "vzrun-setup";

/// A v1 `cgroup` mount vzrun makes instead of libcontainer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CgroupMount {
    /// Where in the container (normally /sys/fs/cgroup).
    pub dest: PathBuf,
    pub readonly: bool,
    /// The container has its own cgroup namespace: mount the hierarchies (its view);
    /// otherwise bind the container's own cgroup directories from the host.
    pub namespaced: bool,
    /// The container's cgroup path (for the binds).
    pub cgroup_path: PathBuf,
    /// (host mount point, mount options such as "cpu" or "net_cls,net_prio" or "name=systemd").
    pub hierarchies: Vec<(PathBuf, String)>,
}

/// Everything the hook is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MountSetup {
    pub rootfs: PathBuf,
    /// tmpfs destinations to fill with the image's content.
    pub copyup: Vec<PathBuf>,
    /// (destination, propagation option) in spec order.
    pub propagation: Vec<(PathBuf, String)>,
    pub cgroup: Option<CgroupMount>,
    /// A `cgroup` mount libcontainer made that must become read-only (v2 hosts).
    pub readonly_cgroup: Option<PathBuf>,
    /// Spec mounts below that cgroup mount, left as they are.
    pub keep_writable: Vec<PathBuf>,
}

impl MountSetup {
    pub fn is_empty(&self) -> bool {
        self.copyup.is_empty()
            && self.propagation.is_empty()
            && self.cgroup.is_none()
            && self.readonly_cgroup.is_none()
    }

    /// The hook's arguments (after the program name).
    pub fn to_args(&self) -> Vec<String> {
        let p = |p: &Path| p.display().to_string();
        let mut args = vec![p(&self.rootfs)];
        for d in &self.copyup {
            args.extend(["--copyup".into(), p(d)]);
        }
        for (d, o) in &self.propagation {
            args.extend(["--propagation".into(), p(d), o.clone()]);
        }
        if let Some(c) = &self.cgroup {
            args.extend([
                "--cgroup".into(),
                p(&c.dest),
                if c.readonly { "ro" } else { "rw" }.into(),
                if c.namespaced { "ns" } else { "bind" }.into(),
                p(&c.cgroup_path),
            ]);
            for (mount, options) in &c.hierarchies {
                args.extend(["--hierarchy".into(), p(mount), options.clone()]);
            }
        }
        if let Some(d) = &self.readonly_cgroup {
            args.extend(["--readonly-cgroup".into(), p(d)]);
        }
        for d in &self.keep_writable {
            args.extend(["--keep".into(), p(d)]);
        }
        args
    }

    pub fn from_args(args: &[OsString]) -> Result<Self, String> {
        let mut it = args.iter().map(|a| a.to_string_lossy().into_owned());
        let mut next = |what: &str| it.next().ok_or_else(|| format!("missing {what}"));
        let mut setup = MountSetup {
            rootfs: PathBuf::from(next("ROOTFS")?),
            ..Default::default()
        };
        while let Ok(flag) = next("") {
            match flag.as_str() {
                "--copyup" => setup.copyup.push(next("DEST")?.into()),
                "--propagation" => {
                    let dest = next("DEST")?;
                    setup.propagation.push((dest.into(), next("OPTION")?));
                }
                "--cgroup" => {
                    let dest = next("DEST")?;
                    let readonly = next("ro|rw")? == "ro";
                    let namespaced = next("ns|bind")? == "ns";
                    let cgroup_path = next("CGROUP_PATH")?;
                    setup.cgroup = Some(CgroupMount {
                        dest: dest.into(),
                        readonly,
                        namespaced,
                        cgroup_path: cgroup_path.into(),
                        hierarchies: Vec::new(),
                    });
                }
                "--hierarchy" => {
                    let mount = next("MOUNT")?;
                    let options = next("OPTIONS")?;
                    setup
                        .cgroup
                        .as_mut()
                        .ok_or("--hierarchy before --cgroup")?
                        .hierarchies
                        .push((mount.into(), options));
                }
                "--readonly-cgroup" => setup.readonly_cgroup = Some(next("DEST")?.into()),
                "--keep" => setup.keep_writable.push(next("DEST")?.into()),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(setup)
    }
}

fn context(what: impl std::fmt::Display) -> impl FnOnce(io::Error) -> io::Error {
    move |e| io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn sys(what: impl std::fmt::Display) -> impl FnOnce(nix::Error) -> io::Error {
    move |e| io::Error::new(io::Error::from(e).kind(), format!("{what}: {e}"))
}

/// Does everything `setup` asks for.
pub fn run(setup: &MountSetup) -> io::Result<()> {
    let rootfs = &setup.rootfs;
    let live_root = open_dir(None, rootfs)?;
    if !setup.copyup.is_empty() {
        copy_up(rootfs, &live_root, &setup.copyup)?;
    }
    if let Some(cgroup) = &setup.cgroup {
        let keep: Vec<PathBuf> = setup
            .keep_writable
            .iter()
            .map(|d| in_root(rootfs, d))
            .collect();
        mount_cgroups(rootfs, cgroup, &keep)?;
    }
    for (dest, option) in &setup.propagation {
        let relative = dest.strip_prefix("/").unwrap_or(dest);
        let target = open_dir_in_root(&live_root, relative)
            .or_else(|_| open_in_root(&live_root, relative))
            .map_err(context(format!("propagation of {}", dest.display())))?;
        let flags = propagation_flags(option).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("propagation option {option:?}"),
            )
        })?;
        nix::mount::mount(
            None::<&str>,
            &fd_path(&target),
            None::<&str>,
            flags,
            None::<&str>,
        )
        .map_err(sys(format!("make {} {option}", dest.display())))?;
    }
    if let Some(dest) = &setup.readonly_cgroup {
        let keep: Vec<PathBuf> = setup
            .keep_writable
            .iter()
            .map(|d| in_root(rootfs, d))
            .collect();
        remount_readonly_below(&in_root(rootfs, dest), &keep)?;
    }
    Ok(())
}

fn in_root(rootfs: &Path, dest: &Path) -> PathBuf {
    rootfs.join(dest.strip_prefix("/").unwrap_or(dest))
}

/// The v1 cgroup tree inside the container, in the tmpfs the spec mounted (prepare put
/// it in place of the `cgroup` mount): one directory per hierarchy named like its host
/// mount point, symlinks for each controller of a comounted hierarchy. A hierarchy whose
/// place the spec already fills (`keep`: podman binds name=systemd there) is left alone.
fn mount_cgroups(rootfs: &Path, cgroup: &CgroupMount, keep: &[PathBuf]) -> io::Result<()> {
    let top = in_root(rootfs, &cgroup.dest);
    let common = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let relative = cgroup
        .cgroup_path
        .strip_prefix("/")
        .unwrap_or(&cgroup.cgroup_path);
    for (host_mount, options) in &cgroup.hierarchies {
        let Some(name) = host_mount.file_name() else {
            continue;
        };
        let target = top.join(name);
        if keep.iter().any(|k| k == &target) {
            continue;
        }
        fs::create_dir_all(&target).map_err(context(format!("create {}", target.display())))?;
        if cgroup.namespaced {
            nix::mount::mount(
                Some("cgroup"),
                &target,
                Some("cgroup"),
                common,
                Some(options.as_str()),
            )
            .map_err(sys(format!(
                "mount cgroup {options} on {}",
                target.display()
            )))?;
        } else {
            let source = host_mount.join(relative);
            nix::mount::mount(
                Some(&source),
                &target,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(sys(format!(
                "bind {} on {}",
                source.display(),
                target.display()
            )))?;
        }
        // cpu -> cpu,cpuacct, as the host has them.
        let name = name.to_string_lossy();
        if name.contains(',') {
            for controller in name.split(',') {
                let link = top.join(controller);
                if fs::symlink_metadata(&link).is_err() {
                    symlink(&*name, &link).map_err(context(format!("link {}", link.display())))?;
                }
            }
        }
    }
    if cgroup.readonly {
        remount_readonly_below(&top, keep)?;
    }
    Ok(())
}

/// Remounts every mount at or below `top` read-only, keeping their other flags, except
/// those at or below a path in `keep`.
fn remount_readonly_below(top: &Path, keep: &[PathBuf]) -> io::Result<()> {
    let mountinfo =
        fs::read_to_string("/proc/self/mountinfo").map_err(context("read /proc/self/mountinfo"))?;
    let mut targets: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
        .filter(|p| p.starts_with(top))
        .filter(|p| !keep.iter().any(|k| p.starts_with(k)))
        .collect();
    targets.sort();
    targets.dedup();
    for target in targets.iter().rev() {
        use nix::sys::statvfs::FsFlags;
        let current = nix::sys::statvfs::statvfs(target)
            .map_err(sys(format!("statvfs {}", target.display())))?;
        let mut flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
        for (have, want) in [
            (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
            (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
            (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
            (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        ] {
            if current.flags().contains(have) {
                flags |= want;
            }
        }
        nix::mount::mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
            .map_err(sys(format!("remount {} read-only", target.display())))?;
    }
    Ok(())
}

fn propagation_flags(option: &str) -> Option<MsFlags> {
    let (recursive, kind) = match option.strip_prefix('r') {
        Some(rest) if rest != "ivate" => (true, rest),
        _ => (false, option),
    };
    let flag = match kind {
        "private" => MsFlags::MS_PRIVATE,
        "slave" => MsFlags::MS_SLAVE,
        "shared" => MsFlags::MS_SHARED,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        _ => return None,
    };
    Some(if recursive {
        flag | MsFlags::MS_REC
    } else {
        flag
    })
}

fn copy_up(rootfs: &Path, live_root: &OwnedFd, destinations: &[PathBuf]) -> io::Result<()> {
    let image_tree = open_tree_clone(rootfs)?;
    for dest in destinations {
        let relative = dest.strip_prefix("/").unwrap_or(dest);
        let source = match open_dir_in_root(&image_tree, relative) {
            Ok(fd) => fd,
            // Nothing in the image under the tmpfs: nothing to copy.
            Err(_) => continue,
        };
        let target = open_dir_in_root(live_root, relative)
            .map_err(context(format!("tmpcopyup {}", dest.display())))?;
        copy_tree(&fd_path(&source), &fd_path(&target))
            .map_err(context(format!("tmpcopyup {}", dest.display())))?;
    }
    Ok(())
}

fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn owned(fd: i32) -> OwnedFd {
    // SAFETY: called only with an fd the kernel just returned to us.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Like `open_dir_in_root` for a non-directory (a bind-mounted file).
fn open_in_root(root: &OwnedFd, relative: &Path) -> io::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(OFlag::O_CLOEXEC | OFlag::O_PATH)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT);
    openat2(root.as_raw_fd(), relative, how)
        .map(owned)
        .map_err(sys(format!("open {}", relative.display())))
}

fn open_tree_clone(path: &Path) -> io::Result<OwnedFd> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    // SAFETY: open_tree(2) with a valid C string; returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c_path.as_ptr(), flags) };
    if fd < 0 {
        return Err(context(format!("open_tree {}", path.display()))(
            io::Error::last_os_error(),
        ));
    }
    Ok(owned(fd as i32))
}

fn open_dir(dir: Option<&OwnedFd>, path: &Path) -> io::Result<OwnedFd> {
    let how = OpenHow::new().flags(OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_PATH);
    let dirfd = dir.map(|d| d.as_raw_fd()).unwrap_or(libc::AT_FDCWD);
    openat2(dirfd, path, how)
        .map(owned)
        .map_err(sys(format!("open {}", path.display())))
}

/// Opens `relative` under `root`, resolving symlinks as if `root` were "/".
fn open_dir_in_root(root: &OwnedFd, relative: &Path) -> io::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_PATH)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT);
    openat2(root.as_raw_fd(), relative, how)
        .map(owned)
        .map_err(sys(format!("open {}", relative.display())))
}

/// Copies the content of `from` into the existing directory `to`, keeping owners,
/// modes, symlinks, device nodes and timestamps.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let meta = fs::symlink_metadata(&src)?;
        let kind = meta.file_type();
        if kind.is_dir() {
            match fs::create_dir(&dst) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            copy_tree(&src, &dst)?;
        } else if kind.is_symlink() {
            symlink(fs::read_link(&src)?, &dst)?;
        } else if kind.is_file() {
            fs::copy(&src, &dst)?;
        } else {
            let file_kind = if kind.is_char_device() {
                SFlag::S_IFCHR
            } else if kind.is_block_device() {
                SFlag::S_IFBLK
            } else if kind.is_fifo() {
                SFlag::S_IFIFO
            } else {
                continue; // sockets belong to a running process, not to the image
            };
            nix::sys::stat::mknod(
                &dst,
                file_kind,
                Mode::from_bits_truncate(meta.mode() & 0o7777),
                meta.rdev(),
            )?;
        }
        std::os::unix::fs::lchown(&dst, Some(meta.uid()), Some(meta.gid()))?;
        if kind.is_file() || kind.is_dir() {
            // After chown, which clears setuid/setgid: the exact mode.
            fs::set_permissions(&dst, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
        set_times(&dst, &meta)?;
    }
    Ok(())
}

fn set_times(path: &Path, meta: &fs::Metadata) -> io::Result<()> {
    use nix::sys::stat::{utimensat, UtimensatFlags};
    use nix::sys::time::TimeSpec;
    let atime = TimeSpec::new(meta.atime(), meta.atime_nsec());
    let mtime = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    utimensat(None, path, &atime, &mtime, UtimensatFlags::NoFollowSymlink)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn propagation_option_flags() {
        assert_eq!(propagation_flags("private"), Some(MsFlags::MS_PRIVATE));
        assert_eq!(
            propagation_flags("rprivate"),
            Some(MsFlags::MS_PRIVATE | MsFlags::MS_REC)
        );
        assert_eq!(
            propagation_flags("rslave"),
            Some(MsFlags::MS_SLAVE | MsFlags::MS_REC)
        );
        assert_eq!(
            propagation_flags("runbindable"),
            Some(MsFlags::MS_UNBINDABLE | MsFlags::MS_REC)
        );
        assert_eq!(propagation_flags("bogus"), None);
    }

    #[test]
    fn arguments_round_trip() {
        let setup = MountSetup {
            rootfs: "/b/rootfs".into(),
            copyup: vec!["/run".into(), "/tmp".into()],
            propagation: vec![("/data".into(), "rprivate".into())],
            cgroup: Some(CgroupMount {
                dest: "/sys/fs/cgroup".into(),
                readonly: true,
                namespaced: false,
                cgroup_path: "/vzrun/x".into(),
                hierarchies: vec![
                    ("/sys/fs/cgroup/cpu".into(), "cpu".into()),
                    ("/sys/fs/cgroup/systemd".into(), "name=systemd".into()),
                ],
            }),
            readonly_cgroup: None,
            keep_writable: vec!["/sys/fs/cgroup/systemd".into()],
        };
        let args: Vec<OsString> = setup.to_args().into_iter().map(OsString::from).collect();
        assert_eq!(MountSetup::from_args(&args).unwrap(), setup);
        assert!(MountSetup::from_args(&["/r".into(), "--bogus".into()]).is_err());
        assert!(MountSetup::from_args(&["/r".into(), "--copyup".into()]).is_err());
    }

    #[test]
    fn copies_files_dirs_symlinks_with_modes() {
        let from = tempfile::tempdir().unwrap();
        let to = tempfile::tempdir().unwrap();
        fs::create_dir(from.path().join("sub")).unwrap();
        fs::write(from.path().join("sub/file"), "data").unwrap();
        fs::set_permissions(
            from.path().join("sub/file"),
            fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        fs::set_permissions(from.path().join("sub"), fs::Permissions::from_mode(0o750)).unwrap();
        symlink("sub/file", from.path().join("link")).unwrap();
        copy_tree(from.path(), to.path()).unwrap();
        assert_eq!(
            fs::read_to_string(to.path().join("sub/file")).unwrap(),
            "data"
        );
        assert_eq!(
            fs::metadata(to.path().join("sub/file")).unwrap().mode() & 0o7777,
            0o640
        );
        assert_eq!(
            fs::metadata(to.path().join("sub")).unwrap().mode() & 0o7777,
            0o750
        );
        assert_eq!(
            fs::read_link(to.path().join("link")).unwrap(),
            Path::new("sub/file")
        );
    }
}
