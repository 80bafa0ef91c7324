//! The `tmpcopyup` mount option: a tmpfs mounted over a directory of the image starts
//! with that directory's content (podman's systemd mode needs /run, /tmp, /var/log/journal
//! like that). libcontainer does not know the option, so `prepare` turns it into an
//! internal createContainer hook, which runs this in the container's mount namespace after
//! every mount is in place and before pivot_root.
//!
//! The shadowed content is reached through a detached, non-recursive clone of the rootfs
//! mount (open_tree(OPEN_TREE_CLONE)): it has none of the submounts, so the image's
//! directory shows through, and nothing is mounted anywhere to get it.

use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{Mode, SFlag};

use nix::mount::MsFlags;

use crate::error::{Error, IoContext, Result};
use crate::prepare::MountSetup;

/// Entry point of the hook: `vzrun __mount-setup ROOTFS JSON` (state on stdin is ignored).
pub fn run_hook(rootfs: &Path, setup_json: &str) -> Result<()> {
    let setup: MountSetup = serde_json::from_str(setup_json)
        .map_err(|e| Error::InvalidArgument(format!("mount setup: {e}")))?;
    let mut state = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut state);
    let live_root = open_dir(None, rootfs)?;
    if !setup.copyup.is_empty() {
        copy_up(rootfs, &live_root, &setup.copyup)?;
    }
    for (dest, option) in &setup.propagation {
        let relative = dest.strip_prefix("/").unwrap_or(dest);
        let target = open_dir_in_root(&live_root, relative)
            .or_else(|_| open_in_root(&live_root, relative))
            .map_err(|e| Error::Container(format!("propagation of {}: {e}", dest.display())))?;
        let flags = propagation_flags(option)
            .ok_or_else(|| Error::InvalidArgument(format!("propagation option {option:?}")))?;
        nix::mount::mount(
            None::<&str>,
            &fd_path(&target),
            None::<&str>,
            flags,
            None::<&str>,
        )
        .map_err(|e| Error::sys(format!("make {} {option}", dest.display()), e))?;
    }
    if let Some(dest) = &setup.readonly_cgroup {
        let in_root = |d: &PathBuf| rootfs.join(d.strip_prefix("/").unwrap_or(d));
        let keep: Vec<PathBuf> = setup.keep_writable.iter().map(in_root).collect();
        remount_readonly_below(&in_root(dest), &keep)?;
    }
    Ok(())
}

/// Remounts every mount at or below `top` read-only, keeping their other flags, except
/// those at or below a path in `keep`.
fn remount_readonly_below(top: &Path, keep: &[PathBuf]) -> Result<()> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("read /proc/self/mountinfo", e))?;
    let mut targets: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
        .filter(|p| p.starts_with(top))
        .filter(|p| !keep.iter().any(|k| p.starts_with(k)))
        .collect();
    targets.sort();
    targets.dedup();
    // Children first: a read-only parent would not stop them, but keep the order tidy.
    for target in targets.iter().rev() {
        let current = nix::sys::statvfs::statvfs(target)
            .map_err(|e| Error::sys(format!("statvfs {}", target.display()), e))?;
        let mut flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
        use nix::sys::statvfs::FsFlags;
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
            .map_err(|e| Error::sys(format!("remount {} read-only", target.display()), e))?;
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

fn copy_up(rootfs: &Path, live_root: &OwnedFd, destinations: &[PathBuf]) -> Result<()> {
    let image_tree = open_tree_clone(rootfs)?;
    for dest in destinations {
        let relative = dest.strip_prefix("/").unwrap_or(dest);
        let source = match open_dir_in_root(&image_tree, relative) {
            Ok(fd) => fd,
            // Nothing in the image under the tmpfs: nothing to copy.
            Err(_) => continue,
        };
        let target = open_dir_in_root(live_root, relative)
            .map_err(|e| Error::Container(format!("tmpcopyup {}: {e}", dest.display())))?;
        copy_tree(&fd_path(&source), &fd_path(&target))
            .map_err(|e| Error::Container(format!("tmpcopyup {}: {e}", dest.display())))?;
    }
    Ok(())
}

fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Like `open_dir_in_root` for a non-directory (a bind-mounted file).
fn open_in_root(root: &OwnedFd, relative: &Path) -> Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(OFlag::O_CLOEXEC | OFlag::O_PATH)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT);
    let fd =
        openat2(root.as_raw_fd(), relative, how).ctx(|| format!("open {}", relative.display()))?;
    // SAFETY: openat2 returned a fresh fd that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn open_tree_clone(path: &Path) -> Result<OwnedFd> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::InvalidArgument(format!("path {path:?} contains NUL")))?;
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    // SAFETY: open_tree(2) with a valid C string; returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c_path.as_ptr(), flags) };
    if fd < 0 {
        return Err(Error::io(
            format!("open_tree {}", path.display()),
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn open_dir(dir: Option<&OwnedFd>, path: &Path) -> Result<OwnedFd> {
    let how = OpenHow::new().flags(OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_PATH);
    let dirfd = dir.map(|d| d.as_raw_fd()).unwrap_or(libc::AT_FDCWD);
    let fd = openat2(dirfd, path, how).ctx(|| format!("open {}", path.display()))?;
    // SAFETY: openat2 returned a fresh fd that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens `relative` under `root`, resolving symlinks as if `root` were "/".
fn open_dir_in_root(root: &OwnedFd, relative: &Path) -> Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_PATH)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT);
    let fd =
        openat2(root.as_raw_fd(), relative, how).ctx(|| format!("open {}", relative.display()))?;
    // SAFETY: openat2 returned a fresh fd that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Copies the content of `from` into the existing directory `to`, keeping owners,
/// modes, symlinks, device nodes and timestamps.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let meta = fs::symlink_metadata(&src)?;
        let kind = meta.file_type();
        if kind.is_dir() {
            match fs::create_dir(&dst) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            copy_tree(&src, &dst)?;
            fs::set_permissions(&dst, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        } else if kind.is_symlink() {
            symlink(fs::read_link(&src)?, &dst)?;
        } else if kind.is_file() {
            fs::copy(&src, &dst)?;
            fs::set_permissions(&dst, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
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
            // chown clears setuid/setgid bits: put the exact mode back.
            fs::set_permissions(&dst, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
        set_times(&dst, &meta)?;
    }
    Ok(())
}

fn set_times(path: &Path, meta: &fs::Metadata) -> std::io::Result<()> {
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
