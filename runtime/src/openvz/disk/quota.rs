//! The kernel's disk quota interface, through quotactl_fd(2) (Linux 5.14+: any open file of
//! the file system names it, no device node needed), and project ids on inodes
//! (FS_IOC_FSGETXATTR / FS_IOC_FSSETXATTR), the same on ext4 and XFS.

use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstatat, Mode, SFlag};
use nix::unistd::{fchownat, Gid, Uid};

/// Which ids a quota counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaType {
    User = 0,
    Group = 1,
    Project = 2,
}

impl QuotaType {
    pub fn name(self) -> &'static str {
        match self {
            QuotaType::User => "user",
            QuotaType::Group => "group",
            QuotaType::Project => "project",
        }
    }
}

// Sub-commands (linux/quota.h, linux/dqblk_xfs.h) and QCMD's encoding.
const Q_QUOTAON: u32 = 0x800002;
const Q_QUOTAOFF: u32 = 0x800003;
const Q_SETINFO: u32 = 0x800006;
const Q_GETQUOTA: u32 = 0x800007;
const Q_SETQUOTA: u32 = 0x800008;
const Q_XGETQSTATV: u32 = (b'X' as u32) << 8 | 8;
/// ext4's quota files inside the file system ("hidden" quota, the `quota` feature).
const QFMT_VFS_V1: u64 = 4;

pub fn qcmd(subcmd: u32, kind: QuotaType) -> u32 {
    (subcmd << 8) | kind as u32
}

/// Commands that change project quotas, or switch any quota kind off/on the XFS way
/// (Q_XQUOTAOFF takes its kinds from flags, not from the command): what a container's
/// root must not run (see `guard`). Encoded as for the first argument of quotactl.
pub fn project_changing_commands() -> Vec<u32> {
    let xqm = |n: u32| ((b'X' as u32) << 8) | n;
    let mut commands: Vec<u32> = [Q_QUOTAON, Q_QUOTAOFF, Q_SETINFO, Q_SETQUOTA, xqm(4)]
        .into_iter()
        .map(|c| qcmd(c, QuotaType::Project))
        .collect();
    // Q_XQUOTAON, Q_XQUOTAOFF, Q_XQUOTARM: whatever the kind in the command.
    for kind in [QuotaType::User, QuotaType::Group, QuotaType::Project] {
        for n in [1, 2, 6] {
            commands.push(qcmd(xqm(n), kind));
        }
    }
    commands
}

/// struct if_dqinfo
#[repr(C)]
#[derive(Default)]
struct IfDqinfo {
    bgrace: u64,
    igrace: u64,
    flags: u32,
    valid: u32,
}
const IIF_BGRACE: u32 = 1;
const IIF_IGRACE: u32 = 2;

/// struct fs_qfilestatv
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct FsQfilestatv {
    ino: u64,
    nblks: u64,
    nextents: u32,
    pad: u32,
}

/// struct fs_quota_statv
#[repr(C)]
#[derive(Default)]
struct FsQuotaStatv {
    version: i8,
    pad1: u8,
    flags: u16,
    incoredqs: u32,
    uquota: FsQfilestatv,
    gquota: FsQfilestatv,
    pquota: FsQfilestatv,
    btimelimit: i32,
    itimelimit: i32,
    rtbtimelimit: i32,
    bwarnlimit: u16,
    iwarnlimit: u16,
    rtbwarnlimit: u16,
    pad3: u16,
    pad4: u32,
    pad2: [u64; 7],
}
const FS_QSTATV_VERSION1: i8 = 1;

fn quotactl_fd(fd: RawFd, cmd: u32, id: u32, addr: *mut libc::c_void) -> io::Result<()> {
    // SAFETY: quotactl_fd(2) with a valid fd and, per command, a pointer to the matching
    // kernel structure owned by the caller (or null where the command takes none).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_quotactl_fd,
            fd,
            cmd as libc::c_uint,
            id as libc::c_uint,
            addr,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Whether a file system accounts and enforces a kind of quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuotaState {
    pub accounting: bool,
    pub enforcing: bool,
}

/// The quota state of `kind` on the file system holding `path`. ENOSYS (no quotactl_fd)
/// and file systems without a quota interface read as "off".
pub fn state(path: &Path, kind: QuotaType) -> io::Result<QuotaState> {
    let file = File::open(path)?;
    let mut statv = FsQuotaStatv {
        version: FS_QSTATV_VERSION1,
        ..Default::default()
    };
    match quotactl_fd(
        file.as_raw_fd(),
        qcmd(Q_XGETQSTATV, kind),
        0,
        &mut statv as *mut FsQuotaStatv as *mut libc::c_void,
    ) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOSYS | libc::ENOTTY | libc::EOPNOTSUPP | libc::ENOENT | libc::ESRCH)
            ) =>
        {
            return Ok(QuotaState::default())
        }
        Err(e) => return Err(e),
    }
    // FS_QUOTA_{U,G,P}DQ_{ACCT,ENFD}
    let (acct, enfd) = match kind {
        QuotaType::User => (1, 2),
        QuotaType::Group => (4, 8),
        QuotaType::Project => (16, 32),
    };
    Ok(QuotaState {
        accounting: statv.flags & acct != 0,
        enforcing: statv.flags & enfd != 0,
    })
}

/// Usage and limits of one id: space in bytes, limits in 1 KiB blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub space_bytes: u64,
    pub inodes: u64,
    pub block_soft_kb: u64,
    pub block_hard_kb: u64,
    pub inode_soft: u64,
    pub inode_hard: u64,
}

pub fn get(path: &Path, kind: QuotaType, id: u32) -> io::Result<Usage> {
    let file = File::open(path)?;
    // SAFETY: dqblk is plain old data; all-zero is a valid value.
    let mut q: libc::dqblk = unsafe { std::mem::zeroed() };
    quotactl_fd(
        file.as_raw_fd(),
        qcmd(Q_GETQUOTA, kind),
        id,
        &mut q as *mut libc::dqblk as *mut libc::c_void,
    )?;
    Ok(Usage {
        space_bytes: q.dqb_curspace,
        inodes: q.dqb_curinodes,
        block_soft_kb: q.dqb_bsoftlimit,
        block_hard_kb: q.dqb_bhardlimit,
        inode_soft: q.dqb_isoftlimit,
        inode_hard: q.dqb_ihardlimit,
    })
}

/// Sets the block (KiB) and inode limits of one id; 0 = no limit.
pub fn set_limits(
    path: &Path,
    kind: QuotaType,
    id: u32,
    blocks_kb: (u64, u64),
    inodes: (u64, u64),
) -> io::Result<()> {
    let file = File::open(path)?;
    // SAFETY: dqblk is plain old data; all-zero is a valid value.
    let mut q: libc::dqblk = unsafe { std::mem::zeroed() };
    q.dqb_bsoftlimit = blocks_kb.0;
    q.dqb_bhardlimit = blocks_kb.1;
    q.dqb_isoftlimit = inodes.0;
    q.dqb_ihardlimit = inodes.1;
    q.dqb_valid = libc::QIF_LIMITS;
    quotactl_fd(
        file.as_raw_fd(),
        qcmd(Q_SETQUOTA, kind),
        id,
        &mut q as *mut libc::dqblk as *mut libc::c_void,
    )
}

/// Sets the grace periods (seconds) of a quota kind on a whole file system.
pub fn set_grace(path: &Path, kind: QuotaType, seconds: u64) -> io::Result<()> {
    let file = File::open(path)?;
    let mut info = IfDqinfo {
        bgrace: seconds,
        igrace: seconds,
        flags: 0,
        valid: IIF_BGRACE | IIF_IGRACE,
    };
    quotactl_fd(
        file.as_raw_fd(),
        qcmd(Q_SETINFO, kind),
        0,
        &mut info as *mut IfDqinfo as *mut libc::c_void,
    )
}

/// Switches enforcement of a quota kind on or off on an ext4 file system with the quota
/// feature (its usage stays accounted either way).
pub fn set_enforcement(path: &Path, kind: QuotaType, on: bool) -> io::Result<()> {
    let file = File::open(path)?;
    let current = state(path, kind)?;
    if current.enforcing == on {
        return Ok(());
    }
    let (cmd, id) = if on {
        (Q_QUOTAON, QFMT_VFS_V1 as u32)
    } else {
        (Q_QUOTAOFF, 0)
    };
    quotactl_fd(file.as_raw_fd(), qcmd(cmd, kind), id, std::ptr::null_mut())
}

// ---------------------------------------------------------------- project ids

/// struct fsxattr
#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct FsXattr {
    pub xflags: u32,
    pub extsize: u32,
    pub nextents: u32,
    pub projid: u32,
    pub cowextsize: u32,
    pub pad: [u8; 8],
}
pub const FS_XFLAG_PROJINHERIT: u32 = 0x200;

nix::ioctl_read!(fs_ioc_fsgetxattr, b'X', 31, FsXattr);
nix::ioctl_write_ptr!(fs_ioc_fssetxattr, b'X', 32, FsXattr);

/// FS_IOC_FSSETXATTR's request number (for the guard's seccomp rule).
pub const FS_IOC_FSSETXATTR: u64 = 0x401c_5820;

pub fn get_project(fd: RawFd) -> io::Result<FsXattr> {
    let mut attr = FsXattr::default();
    // SAFETY: FS_IOC_FSGETXATTR fills the fsxattr we pass.
    unsafe { fs_ioc_fsgetxattr(fd, &mut attr) }.map_err(io::Error::from)?;
    Ok(attr)
}

/// Gives the inode behind `fd` project `id`; directories also pass it on to new entries.
pub fn set_project(fd: RawFd, id: u32, directory: bool) -> io::Result<()> {
    let mut attr = get_project(fd)?;
    if attr.projid == id && (!directory || attr.xflags & FS_XFLAG_PROJINHERIT != 0) {
        return Ok(());
    }
    attr.projid = id;
    if directory {
        attr.xflags |= FS_XFLAG_PROJINHERIT;
    }
    // SAFETY: FS_IOC_FSSETXATTR reads the fsxattr we pass.
    unsafe { fs_ioc_fssetxattr(fd, &attr) }.map_err(io::Error::from)?;
    Ok(())
}

/// Whether `dir` is already the top of a tree of project `id`.
pub fn tree_is_tagged(dir: &Path, id: u32) -> bool {
    File::open(dir)
        .and_then(|f| get_project(f.as_raw_fd()))
        .is_ok_and(|a| a.projid == id && a.xflags & FS_XFLAG_PROJINHERIT != 0)
}

/// What tagging a tree did.
#[derive(Debug, Default, Clone, Copy)]
pub struct TagReport {
    pub tagged: u64,
    /// Symlinks, device nodes, FIFOs and sockets: the ioctl cannot reach them, so they
    /// were made again (same target/device, owner, mode, times, xattrs) inside the tagged
    /// directory, which gives them its project, and renamed over the old ones.
    pub recreated: u64,
}

/// New inodes of symlinks and special files with several names, by old (device, inode):
/// the directory and name of the first one made again.
type Links = HashMap<(u64, u64), (OwnedFd, Vec<u8>)>;

/// Gives every inode under `root` (same file system only) project `id`, directories with
/// the inherit flag so that everything created later is counted too. Walks by file
/// descriptor without following symlinks: a running container cannot redirect the walk.
pub fn tag_tree(root: &Path, id: u32) -> io::Result<TagReport> {
    let dir = open_dir(libc::AT_FDCWD, root.as_os_str())?;
    let dev = nix::sys::stat::fstat(dir.as_raw_fd())
        .map_err(io::Error::from)?
        .st_dev;
    let mut report = TagReport::default();
    let mut links = HashMap::new();
    // Nodes made again get their exact mode from mknod (no umask), not from a chmod that
    // would follow a symlink swapped in meanwhile.
    let umask = nix::sys::stat::umask(Mode::empty());
    let tagged = tag_dir(dir, dev, id, &mut report, &mut links);
    nix::sys::stat::umask(umask);
    tagged.map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", root.display())))?;
    Ok(report)
}

fn open_dir(at: RawFd, name: &OsStr) -> io::Result<OwnedFd> {
    let fd = openat(
        Some(at),
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(io::Error::from)?;
    // SAFETY: openat returned a fresh fd that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn tag_dir(
    dir: OwnedFd,
    dev: u64,
    id: u32,
    report: &mut TagReport,
    links: &mut Links,
) -> io::Result<()> {
    // The directory first: entries made meanwhile inherit the project.
    set_project(dir.as_raw_fd(), id, true)?;
    report.tagged += 1;
    let names: Vec<Vec<u8>> = {
        let dup = nix::unistd::dup(dir.as_raw_fd()).map_err(io::Error::from)?;
        let mut stream = nix::dir::Dir::from_fd(dup).map_err(io::Error::from)?;
        stream
            .iter()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_bytes().to_vec())
            .filter(|n| n != b"." && n != b"..")
            .collect()
    };
    for name in names {
        let os = OsStr::from_bytes(&name);
        let st = match fstatat(
            Some(dir.as_raw_fd()),
            os,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(st) => st,
            Err(nix::errno::Errno::ENOENT) => continue,
            Err(e) => {
                return Err(io::Error::new(
                    io::Error::from(e).kind(),
                    path_msg(&name, e),
                ))
            }
        };
        if st.st_dev != dev {
            continue; // a mount point: another file system
        }
        let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
        let result = if kind == SFlag::S_IFDIR {
            match open_dir(dir.as_raw_fd(), os) {
                Ok(sub) => tag_dir(sub, dev, id, report, links).map_err(|e| {
                    io::Error::new(e.kind(), format!("{}/{e}", String::from_utf8_lossy(&name)))
                }),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
                Err(e) => Err(e),
            }
        } else if kind == SFlag::S_IFREG {
            tag_file(dir.as_raw_fd(), os, id).map(|_| report.tagged += 1)
        } else {
            recreate(dir.as_raw_fd(), &name, &st, links).map(|_| report.recreated += 1)
        };
        if let Err(e) = result {
            if e.raw_os_error() == Some(libc::ENOENT) {
                continue; // removed meanwhile (a running container)
            }
            return Err(e);
        }
    }
    Ok(())
}

fn path_msg(name: &[u8], e: impl std::fmt::Display) -> String {
    format!("{}: {e}", String::from_utf8_lossy(name))
}

fn tag_file(dir: RawFd, name: &OsStr, id: u32) -> io::Result<()> {
    let fd = openat(
        Some(dir),
        name,
        OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io::Error::new(io::Error::from(e).kind(), path_msg(name.as_bytes(), e)))?;
    // SAFETY: openat returned a fresh fd that we now own.
    let file = unsafe { File::from_raw_fd(fd) };
    set_project(file.as_raw_fd(), id, false)
        .map_err(|e| io::Error::new(e.kind(), path_msg(name.as_bytes(), e)))
}

/// Makes a symlink or special file again under a temporary name in `dir` (a tagged
/// directory: the new inode gets its project) and renames it over the original.
fn recreate(dir: RawFd, name: &[u8], st: &libc::stat, links: &mut Links) -> io::Result<()> {
    let fail = |e: nix::errno::Errno| io::Error::new(io::Error::from(e).kind(), path_msg(name, e));
    let temp = format!(".vzrun-tag-{}-{}", std::process::id(), st.st_ino);
    let temp_c = CString::new(temp.clone()).expect("no NUL");
    let name_c = CString::new(name).map_err(|_| io::Error::other("NUL in a file name"))?;
    let key = (st.st_dev, st.st_ino);
    // Another name of an inode already made again (its count has dropped by then):
    // link to the new inode.
    if let Some((first_dir, first)) = links.get(&key) {
        let first_c = CString::new(first.clone()).expect("no NUL");
        link_at(first_dir.as_raw_fd(), &first_c, dir, &temp_c).map_err(fail)?;
        return rename_at(dir, &temp_c, &name_c).map_err(fail);
    }
    let kind = st.st_mode & libc::S_IFMT;
    if kind == libc::S_IFLNK {
        let target = nix::fcntl::readlinkat(Some(dir), OsStr::from_bytes(name)).map_err(fail)?;
        nix::unistd::symlinkat(target.as_os_str(), Some(dir), temp.as_str()).map_err(fail)?;
    } else {
        // SAFETY: mknodat(2) with a NUL-terminated name; the mode and device come from
        // the original's lstat.
        let rc = unsafe { libc::mknodat(dir, temp_c.as_ptr(), st.st_mode, st.st_rdev) };
        if rc < 0 {
            return Err(io::Error::new(
                io::Error::last_os_error().kind(),
                format!(
                    "{}: mknod: {}",
                    String::from_utf8_lossy(name),
                    io::Error::last_os_error()
                ),
            ));
        }
    }
    let done = (|| -> io::Result<()> {
        fchownat(
            Some(dir),
            temp.as_str(),
            Some(Uid::from_raw(st.st_uid)),
            Some(Gid::from_raw(st.st_gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(fail)?;
        copy_xattrs(dir, &name_c, &temp_c)?;
        let times = [
            nix::sys::time::TimeSpec::new(st.st_atime, st.st_atime_nsec),
            nix::sys::time::TimeSpec::new(st.st_mtime, st.st_mtime_nsec),
        ];
        nix::sys::stat::utimensat(
            Some(dir),
            temp.as_str(),
            &times[0],
            &times[1],
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .map_err(fail)?;
        rename_at(dir, &temp_c, &name_c).map_err(fail)
    })();
    if done.is_err() {
        let _ = nix::unistd::unlinkat(
            Some(dir),
            temp.as_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
    } else if st.st_nlink > 1 {
        let dir_fd = nix::unistd::dup(dir).map_err(io::Error::from)?;
        // SAFETY: dup returned a fresh fd that we now own.
        links.insert(
            key,
            (unsafe { OwnedFd::from_raw_fd(dir_fd) }, name.to_vec()),
        );
    }
    done
}

fn link_at(from_dir: RawFd, from: &CStr, to_dir: RawFd, to: &CStr) -> nix::Result<()> {
    // SAFETY: linkat(2) with NUL-terminated names relative to open directories.
    let rc = unsafe { libc::linkat(from_dir, from.as_ptr(), to_dir, to.as_ptr(), 0) };
    nix::errno::Errno::result(rc).map(drop)
}

fn rename_at(dir: RawFd, from: &CStr, to: &CStr) -> nix::Result<()> {
    // SAFETY: renameat(2) with NUL-terminated names relative to an open directory.
    let rc = unsafe { libc::renameat(dir, from.as_ptr(), dir, to.as_ptr()) };
    nix::errno::Errno::result(rc).map(drop)
}

/// Copies the extended attributes (security labels, ACLs) of `from` to `to`, both in
/// `dir`, without following symlinks: through /proc/self/fd paths of the directory.
fn copy_xattrs(dir: RawFd, from: &CStr, to: &CStr) -> io::Result<()> {
    let base = format!("/proc/self/fd/{dir}/");
    let path = |name: &CStr| {
        let mut p = base.as_bytes().to_vec();
        p.extend_from_slice(name.to_bytes());
        CString::new(p).expect("no NUL")
    };
    let (src, dst) = (path(from), path(to));
    let mut names = vec![0u8; 4096];
    // SAFETY: llistxattr(2) into a buffer of the given size.
    let n = unsafe { libc::llistxattr(src.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOTSUP) => Ok(()),
            _ => Err(e),
        };
    }
    names.truncate(n as usize);
    for attr in names.split(|b| *b == 0).filter(|a| !a.is_empty()) {
        let attr_c = CString::new(attr).expect("split at NUL");
        let mut value = vec![0u8; 65536];
        // SAFETY: lgetxattr(2) into a buffer of the given size.
        let len = unsafe {
            libc::lgetxattr(
                src.as_ptr(),
                attr_c.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        if len < 0 {
            continue;
        }
        // SAFETY: lsetxattr(2) with the value just read.
        let rc = unsafe {
            libc::lsetxattr(
                dst.as_ptr(),
                attr_c.as_ptr(),
                value.as_ptr().cast(),
                len as usize,
                0,
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            // user.* xattrs are not allowed on symlinks and special files: never present.
            if e.raw_os_error() != Some(libc::EPERM) {
                return Err(io::Error::new(
                    e.kind(),
                    format!("copy xattr {}: {e}", String::from_utf8_lossy(attr)),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_encoding() {
        assert_eq!(qcmd(Q_SETQUOTA, QuotaType::Project), 0x8000_0802);
        assert_eq!(qcmd(Q_GETQUOTA, QuotaType::User), 0x8000_0700);
        let denied = project_changing_commands();
        assert!(denied.contains(&0x8000_0802)); // Q_SETQUOTA, project
        assert!(denied.contains(&0x8000_0602)); // Q_SETINFO, project
        assert!(denied.contains(&0x0058_0200)); // Q_XQUOTAOFF, user kind
        assert!(!denied.contains(&0x8000_0800)); // Q_SETQUOTA, user: the second level's
        assert!(!denied.contains(&qcmd(Q_GETQUOTA, QuotaType::Project)));
    }

    #[test]
    fn kernel_struct_sizes() {
        assert_eq!(std::mem::size_of::<FsXattr>(), 28);
        assert_eq!(std::mem::size_of::<IfDqinfo>(), 24);
        assert_eq!(std::mem::size_of::<FsQuotaStatv>(), 160);
        assert_eq!(std::mem::size_of::<libc::dqblk>(), 72);
        // _IOW('X', 32, struct fsxattr)
        assert_eq!(
            nix::request_code_write!(b'X', 32, std::mem::size_of::<FsXattr>()) as u64,
            FS_IOC_FSSETXATTR
        );
    }

    /// XFS keeps project ids without any quota: a loop-mounted one shows the tagging.
    #[test]
    fn tagging_reaches_every_inode() {
        use std::os::unix::fs::{symlink, MetadataExt};
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("xfs.img");
        File::create(&img).unwrap().set_len(320 << 20).unwrap();
        let made = std::process::Command::new("mkfs.xfs")
            .args(["-q", "-f"])
            .arg(&img)
            .status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipped: no mkfs.xfs");
            return;
        }
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let device = super::super::loopdev::attach(&img).unwrap();
        nix::mount::mount(
            Some(device.path.as_path()),
            &mnt,
            Some("xfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .unwrap();
        drop(device);
        // Unmounted (and the loop device with it) even when an assertion fails.
        struct Unmount<'a>(&'a Path);
        impl Drop for Unmount<'_> {
            fn drop(&mut self) {
                let _ = nix::mount::umount2(self.0, nix::mount::MntFlags::MNT_DETACH);
            }
        }
        let _unmount = Unmount(&mnt);
        let check = || -> io::Result<()> {
            let t = mnt.join("tree");
            std::fs::create_dir_all(t.join("sub/deeper"))?;
            std::fs::write(t.join("sub/file"), b"data")?;
            std::fs::hard_link(t.join("sub/file"), t.join("file-link"))?;
            symlink("sub/file", t.join("link"))?;
            std::fs::hard_link(t.join("link"), t.join("link2"))?;
            std::fs::hard_link(t.join("link"), t.join("sub/deeper/link3"))?;
            nix::unistd::mkfifo(&t.join("fifo"), Mode::from_bits_truncate(0o640))?;
            nix::sys::stat::mknod(
                &t.join("null"),
                SFlag::S_IFCHR,
                Mode::from_bits_truncate(0o666),
                nix::sys::stat::makedev(1, 3),
            )?;
            std::os::unix::fs::lchown(t.join("link"), Some(1234), Some(5678))?;
            let before = std::fs::symlink_metadata(t.join("null"))?;
            let report = tag_tree(&t, 4242)?;
            assert!(tree_is_tagged(&t, 4242));
            assert_eq!(report.tagged, 5, "3 directories, 1 file (2 names)");
            assert_eq!(report.recreated, 5, "symlink (3 names), fifo, device");
            for path in ["sub", "sub/deeper", "sub/file", "file-link"] {
                let f = File::open(t.join(path))?;
                assert_eq!(get_project(f.as_raw_fd())?.projid, 4242, "{path}");
            }
            let link = std::fs::symlink_metadata(t.join("link"))?;
            assert_eq!(std::fs::read_link(t.join("link"))?, Path::new("sub/file"));
            assert_eq!((link.uid(), link.gid()), (1234, 5678));
            assert_eq!(
                link.ino(),
                std::fs::symlink_metadata(t.join("link2"))?.ino()
            );
            let link3 = std::fs::symlink_metadata(t.join("sub/deeper/link3"))?;
            assert_eq!((link.ino(), link.nlink()), (link3.ino(), 3));
            let null = std::fs::symlink_metadata(t.join("null"))?;
            assert_eq!((null.mode(), null.rdev()), (before.mode(), before.rdev()));
            assert_eq!(null.mtime(), before.mtime());
            // The made-again inodes are in the project: moving them inside it works
            // (a rename across projects fails with EXDEV).
            std::fs::rename(t.join("link"), t.join("sub/link"))?;
            std::fs::rename(t.join("null"), t.join("sub/deeper/null"))?;
            std::fs::hard_link(t.join("fifo"), t.join("sub/fifo"))?;
            // New entries inherit the project.
            std::fs::write(t.join("sub/new"), b"x")?;
            let f = File::open(t.join("sub/new"))?;
            assert_eq!(get_project(f.as_raw_fd())?.projid, 4242);
            Ok(())
        };
        check().unwrap();
    }

    #[test]
    fn tmpfs_has_no_quota_interface() {
        // /dev/shm is tmpfs here: no project quota (and no error either).
        let st = state(Path::new("/dev/shm"), QuotaType::Project).unwrap();
        assert!(!st.enforcing);
    }
}
