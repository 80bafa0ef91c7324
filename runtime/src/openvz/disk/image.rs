//! The image-backed private area (VE_LAYOUT=ploop): VE_PRIVATE/root.img, a sparse file
//! holding an ext4 file system, attached to a loop device and mounted on VE_ROOT.
//!
//! The file system's capacity (what `df` shows inside) is kept at DISKSPACE's hard limit
//! and its inode count at DISKINODES' hard limit, so the container can never use more of
//! the host than that. When the kernel supports quota formats the image is made with
//! ext4's `quota` and `project` features: its root carries project quota limits (soft,
//! hard, grace: EDQUOT) with a little room above them, and user/group quotas give the
//! second level. Without kernel quota support the capacity itself is the limit (ENOSPC).
//! mkfs.ext4 and resize2fs are run as programs: they are the upstream tools for it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::mount::{mount, MsFlags};

use super::loopdev;

/// The image file's name in VE_PRIVATE.
pub const IMAGE_NAME: &str = "root.img";
/// Project id of every inode in an image (the image is the container's alone).
pub const PROJECT_ID: u32 = 1;

pub fn image_path(private: &Path) -> PathBuf {
    private.join(IMAGE_NAME)
}

/// What an image's superblock says about quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// ext4's `quota` feature: user, group (and project) usage in hidden inodes.
    pub quota: bool,
    pub project: bool,
}

const EXT4_MAGIC: u16 = 0xEF53;
const RO_COMPAT_QUOTA: u32 = 0x100;
const RO_COMPAT_PROJECT: u32 = 0x2000;

/// Reads the ext4 superblock (1024 bytes in): magic and read-only-compatible features.
pub fn features(image: &Path) -> io::Result<Features> {
    let mut file = File::open(image)?;
    let mut sb = [0u8; 1024];
    file.seek(SeekFrom::Start(1024))?;
    file.read_exact(&mut sb)?;
    let magic = u16::from_le_bytes([sb[0x38], sb[0x39]]);
    if magic != EXT4_MAGIC {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} holds no ext4 file system", image.display()),
        ));
    }
    let ro_compat = u32::from_le_bytes([sb[0x64], sb[0x65], sb[0x66], sb[0x67]]);
    Ok(Features {
        quota: ro_compat & RO_COMPAT_QUOTA != 0,
        project: ro_compat & RO_COMPAT_PROJECT != 0,
    })
}

/// What the file system must hold: data capacity in bytes and inodes (None: mkfs's default
/// ratio, which grows with the size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub bytes: u64,
    pub inodes: Option<u64>,
}

/// Room above the quota limits when the image enforces them with quotas, so that the
/// quota (EDQUOT, with grace) and not a full file system (ENOSPC) stops the container.
pub fn with_quota_room(limit: Capacity) -> Capacity {
    Capacity {
        bytes: limit.bytes + (limit.bytes / 64).max(16 << 20),
        inodes: limit.inodes.map(|i| i + (i / 64).max(256)),
    }
}

/// The journal for a file system meant to hold `bytes`: fixed by the wanted capacity (not
/// by the size, as mke2fs would pick it), so that the overhead is the same for every size
/// tried while fitting, 1/64 of the data between 4 and 256 MiB.
fn journal_mb(bytes: u64) -> u64 {
    ((bytes / 64) >> 20).clamp(4, 256)
}

/// Creates a sparse image of `size` bytes with an ext4 file system of at least `inodes`
/// inodes (mkfs's default ratio when None) and a journal of `journal_mb`, with the quota
/// features when `quota`.
pub fn make(
    image: &Path,
    size: u64,
    inodes: Option<u64>,
    journal_mb: u64,
    quota: bool,
) -> io::Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(image)
        .map_err(|e| io::Error::new(e.kind(), format!("create {}: {e}", image.display())))?;
    file.set_len(size)?;
    drop(file);
    let mut mkfs = Command::new("mkfs.ext4");
    mkfs.args(["-q", "-F", "-b", "4096", "-m", "0", "-L", "vzrun-ct"]);
    mkfs.arg("-J").arg(format!("size={journal_mb}"));
    if let Some(inodes) = inodes {
        mkfs.arg("-N").arg(inodes.to_string());
    }
    // (mke2fs takes one -E: the last would win)
    if quota {
        mkfs.args(["-O", "quota,project"]);
        mkfs.args([
            "-E",
            "lazy_itable_init=1,lazy_journal_init=1,quotatype=usrquota:grpquota:prjquota",
        ]);
    } else {
        mkfs.args(["-E", "lazy_itable_init=1,lazy_journal_init=1"]);
    }
    mkfs.arg(image);
    run(mkfs, "mkfs.ext4")
}

/// Creates a new image (which must not exist) whose file system holds `want`, as exactly
/// as ext4 allows, and leaves it mounted on `root`. ext4's overhead (journal, inode
/// tables, bitmaps) is known only after mkfs: each try corrects the size by what the last
/// one missed (the file system is empty: making it again is cheap), and [`fit`] adds what
/// rounding left short.
pub fn create(image: &Path, root: &Path, want: Capacity, quota: bool) -> io::Result<()> {
    if image.exists() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} already exists", image.display()),
        ));
    }
    let journal = journal_mb(want.bytes);
    let inode_bytes = want.inodes.unwrap_or(0) * 256;
    let mut size = round_up(
        want.bytes + inode_bytes + want.bytes / 32 + (journal << 20),
        4096,
    );
    // Close enough: a few blocks over (ext4 counts in whole blocks and groups).
    let tolerance = (want.bytes / 1000).max(256 << 10);
    for attempt in 0..4 {
        make(image, size, want.inodes, journal, quota)?;
        mount_image(image, root)?;
        let have = capacity_of(root)?.bytes;
        if (want.bytes..=want.bytes + tolerance).contains(&have) || attempt == 3 {
            break;
        }
        nix::mount::umount2(root, nix::mount::MntFlags::empty()).map_err(|e| {
            io::Error::new(
                io::Error::from(e).kind(),
                format!("unmount {}: {e}", root.display()),
            )
        })?;
        size = round_up((size + want.bytes).saturating_sub(have), 4096);
    }
    fit(image, root, want, true).map(drop)
}

/// Mount options for an image with these features.
pub fn mount_options(features: Features) -> &'static str {
    // noinit_itable: the kernel would otherwise zero the lazily initialized inode tables
    // in the background, filling the sparse image with zeroes for nothing.
    if features.quota {
        "noinit_itable,usrquota,grpquota,prjquota"
    } else {
        "noinit_itable"
    }
}

/// Attaches the image and mounts it on `root`; returns the loop device (it detaches by
/// itself when unmounted).
pub fn mount_image(image: &Path, root: &Path) -> io::Result<PathBuf> {
    let features = features(image)?;
    let device = loopdev::attach(image)?;
    mount(
        Some(device.path.as_path()),
        root,
        Some("ext4"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(mount_options(features)),
    )
    .map_err(|e| {
        let hint = if features.quota && e == nix::errno::Errno::EINVAL && !kernel_has_quota() {
            ": the image has ext4's quota feature and this kernel has no quota format support (CONFIG_QFMT_V2)"
        } else {
            ""
        };
        io::Error::new(
            io::Error::from(e).kind(),
            format!(
                "mount {} ({}) on {}: {e}{hint}",
                image.display(),
                device.path.display(),
                root.display()
            ),
        )
    })?;
    // Mounts below it stay out of other namespaces' way (as for simfs's bind mount).
    mount(
        None::<&str>,
        root,
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!("make {} private: {e}", root.display()),
        )
    })?;
    // The mount holds the device now; closing ours arms autoclear.
    Ok(device.path.clone())
}

/// Whether this kernel can use ext4 quota files, from its configuration when it tells
/// (/proc/config.gz or /boot/config-*), else by trying a tiny image.
pub fn kernel_has_quota() -> bool {
    if let Some(answer) = kernel_config_option("CONFIG_QFMT_V2") {
        return answer;
    }
    probe_quota().unwrap_or(false)
}

/// Whether the running kernel's configuration sets `option` (y or m); None when the
/// configuration cannot be read.
pub fn kernel_config_option(option: &str) -> Option<bool> {
    let release = nix::sys::utsname::uname().ok()?;
    let boot = PathBuf::from(format!(
        "/boot/config-{}",
        release.release().to_string_lossy()
    ));
    let text = if let Ok(text) = std::fs::read_to_string(&boot) {
        text
    } else {
        let out = Command::new("zcat").arg("/proc/config.gz").output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8(out.stdout).ok()?
    };
    let yes = [format!("{option}=y"), format!("{option}=m")];
    Some(text.lines().any(|l| yes.iter().any(|y| l == y)))
}

/// Makes and mounts a small image with the quota feature in a temporary directory.
fn probe_quota() -> io::Result<bool> {
    let dir = tempfile_dir()?;
    let image = dir.join("probe.img");
    let result = (|| {
        make(&image, 16 << 20, None, 4, true)?;
        let mnt = dir.join("mnt");
        std::fs::create_dir(&mnt)?;
        match mount_image(&image, &mnt) {
            Ok(_) => {
                let _ = nix::mount::umount2(&mnt, nix::mount::MntFlags::MNT_DETACH);
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn tempfile_dir() -> io::Result<PathBuf> {
    let base = std::env::temp_dir();
    for n in 0..100 {
        let dir = base.join(format!(".vzrun-quota-probe-{}-{n}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(
        "no temporary directory for the quota probe",
    ))
}

/// The file system's data capacity (bytes) and inode count. ext4 reports the project
/// quota's limits instead for a directory of an enforced project (what `df` shows inside
/// the container), so project enforcement is off for the moment of the measure.
pub fn capacity_of(root: &Path) -> io::Result<Capacity> {
    use super::quota::{self, QuotaType};
    let enforced = quota::state(root, QuotaType::Project)?.enforcing;
    if enforced {
        quota::set_enforcement(root, QuotaType::Project, false)?;
    }
    let st = nix::sys::statvfs::statvfs(root).map_err(io::Error::from);
    if enforced {
        quota::set_enforcement(root, QuotaType::Project, true)?;
    }
    let st = st?;
    Ok(Capacity {
        bytes: st.blocks() * st.fragment_size(),
        inodes: Some(st.files()),
    })
}

/// Whether this process may grow a mounted ext4 file system (the kernel asks for
/// CAP_SYS_RESOURCE; some hosts' root lacks it).
pub fn can_grow_online() -> bool {
    caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_RESOURCE,
    )
    .unwrap_or(false)
}

/// Grows the image mounted on `root` until its file system holds `want` (never shrinks);
/// returns whether it grew. Online (the file grows sparse, the loop device learns its new
/// size, resize2fs grows the mounted file system) when this process may; otherwise, when
/// `may_remount` (nothing else uses the mount), unmounted: e2fsck, resize2fs on the file,
/// mounted again. Else a clear error.
pub fn fit(image: &Path, root: &Path, want: Capacity, may_remount: bool) -> io::Result<bool> {
    let mut grew = false;
    for _ in 0..8 {
        let have = capacity_of(root)?;
        let have_inodes = have.inodes.unwrap_or(0);
        let byte_deficit = want.bytes.saturating_sub(have.bytes);
        let inode_deficit = want.inodes.map_or(0, |w| w.saturating_sub(have_inodes));
        if byte_deficit == 0 && inode_deficit == 0 {
            return Ok(grew);
        }
        let size = std::fs::metadata(image)?.len();
        // Each byte added brings its share of metadata (the ratio the file system has
        // now); inodes come with size (a fixed number per block group).
        let for_bytes = (byte_deficit as u128 * size as u128 / have.bytes.max(1) as u128) as u64;
        let for_inodes = inode_deficit.saturating_mul(size / have_inodes.max(1));
        let new_size = round_up(size + for_bytes.max(for_inodes), 4096);
        super::note(format_args!(
            "Growing {} to {} MiB...",
            image.display(),
            new_size >> 20
        ));
        if can_grow_online() {
            let device = loopdev::find(image).into_iter().next().ok_or_else(|| {
                io::Error::other(format!("no loop device serves {}", image.display()))
            })?;
            OpenOptions::new()
                .write(true)
                .open(image)?
                .set_len(new_size)?;
            loopdev::refresh_capacity(&device)?;
            let mut resize = Command::new("resize2fs");
            resize.arg(&device);
            run(resize, "resize2fs")?;
        } else if may_remount {
            nix::mount::umount2(root, nix::mount::MntFlags::empty()).map_err(|e| {
                io::Error::new(
                    io::Error::from(e).kind(),
                    format!("unmount {} to grow its image: {e}", root.display()),
                )
            })?;
            let grown = grow_offline(image, new_size);
            // Mounted again whatever happened: the caller expects it mounted.
            mount_image(image, root)?;
            grown?;
        } else {
            return Err(io::Error::other(format!(
                "growing the mounted image {} needs CAP_SYS_RESOURCE (ext4's online \
                 resize), which this host's root does not have: stop the container and \
                 set the limit again (a stopped container's image grows offline)",
                image.display()
            )));
        }
        grew = true;
    }
    Err(io::Error::other(format!(
        "{}: the file system did not reach {} bytes / {:?} inodes after growing",
        image.display(),
        want.bytes,
        want.inodes
    )))
}

/// Grows an unmounted image file to `size` (e2fsck first: resize2fs wants a checked file
/// system).
fn grow_offline(image: &Path, size: u64) -> io::Result<()> {
    let out = Command::new("e2fsck")
        .args(["-f", "-p"])
        .arg(image)
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("run e2fsck: {e} (install e2fsprogs)")))?;
    // 0: clean, 1: errors corrected.
    if !matches!(out.status.code(), Some(0 | 1)) {
        return Err(io::Error::other(format!(
            "e2fsck {} failed ({}): {}",
            image.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout).trim()
        )));
    }
    OpenOptions::new().write(true).open(image)?.set_len(size)?;
    let mut resize = Command::new("resize2fs");
    resize.arg(image);
    run(resize, "resize2fs")
}

fn round_up(n: u64, to: u64) -> u64 {
    n.div_ceil(to) * to
}

fn run(mut command: Command, what: &str) -> io::Result<()> {
    let out = command
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("run {what}: {e} (install e2fsprogs)")))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_room() {
        let c = with_quota_room(Capacity {
            bytes: 100 << 20,
            inodes: Some(1000),
        });
        assert_eq!(c.bytes, (100 << 20) + (16 << 20));
        assert_eq!(c.inodes, Some(1256));
        let big = with_quota_room(Capacity {
            bytes: 64 << 30,
            inodes: None,
        });
        assert_eq!(big.bytes, (64 << 30) + (1 << 30));
        assert_eq!(big.inodes, None);
    }

    #[test]
    fn superblock_features() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain.img");
        let want = Capacity {
            bytes: 16 << 20,
            inodes: Some(2000),
        };
        make(&plain, want.bytes, want.inodes, 4, false).unwrap();
        assert_eq!(
            features(&plain).unwrap(),
            Features {
                quota: false,
                project: false
            }
        );
        let quota = dir.path().join("quota.img");
        make(&quota, want.bytes, want.inodes, 4, true).unwrap();
        assert_eq!(
            features(&quota).unwrap(),
            Features {
                quota: true,
                project: true
            }
        );
        // sparse: mkfs wrote metadata only
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(&quota).unwrap();
        assert!(meta.blocks() * 512 < meta.len() / 2, "{meta:?}");
        let junk = dir.path().join("junk.img");
        std::fs::write(&junk, vec![0u8; 4096]).unwrap();
        assert!(features(&junk).unwrap_err().to_string().contains("no ext4"));
    }
}
