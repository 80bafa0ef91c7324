//! Two-level disk quota (docs/DISK-QUOTA.md).
//!
//! First level, per container: DISKSPACE (1 KiB blocks) and DISKINODES, each soft:hard,
//! with QUOTATIME as the grace period above soft limits. Where it lives depends on the
//! container's layout (VE_LAYOUT, chosen per VZ root in vz.conf or per container at create):
//!
//! * `simfs`: VE_PRIVATE is a directory on the VZ file system. Its tree carries project id
//!   CTID (inherited by everything created in it) and the limits are project quota limits
//!   of that file system (ext4 with the quota+project features mounted with prjquota, or
//!   XFS mounted with prjquota). A VZ file system without project quota enforcement gets a
//!   clear error as soon as limits are asked for (create, set, start).
//! * `ploop`: VE_PRIVATE holds `root.img`, an ext4 image on a loop device mounted on
//!   VE_ROOT (see `image`). Its capacity follows the hard limits; its own project quota
//!   gives soft/hard/grace, and its user and group quotas the second level.
//!
//! Second level: QUOTAUGIDLIMIT > 0 lets the container's root manage per-user and per-group
//! quotas with the standard tools; ploop only (simfs would count the whole host file system).
//! Limits change live; an image grows live (it never shrinks).

pub mod guard;
pub mod image;
pub mod limits;
pub mod loopdev;
pub mod quota;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use super::config::ConfigFile;
use super::ct::Ct;
use super::ctid::Ctid;
use super::env::VzEnv;
use super::error::{ExitCode, VzError, VzResult};
pub use limits::{Key, Limit, SoftHard};
use quota::QuotaType;

// ---------------------------------------------------------------- layout

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Simfs,
    Ploop,
}

impl Layout {
    pub fn parse(text: &str) -> VzResult<Layout> {
        match text.trim() {
            "simfs" => Ok(Layout::Simfs),
            "ploop" => Ok(Layout::Ploop),
            other => Err(VzError::new(
                ExitCode::InvalidValue,
                format!("layout {other:?}: use simfs (a directory) or ploop (an image)"),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Layout::Simfs => "simfs",
            Layout::Ploop => "ploop",
        }
    }

    /// An existing container's layout, from its config (VE_LAYOUT, written at create;
    /// containers made before it are simfs). Never from what the private area holds: a
    /// simfs container's root could put a crafted `root.img` there.
    pub fn of_conf(conf: &ConfigFile) -> VzResult<Layout> {
        match conf.get("VE_LAYOUT") {
            Some(text) if !text.trim().is_empty() => Layout::parse(text),
            _ => Ok(Layout::Simfs),
        }
    }
}

// ---------------------------------------------------------------- settings

/// A container's disk settings, from its config (and vz.conf's DISK_QUOTA switch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskConfig {
    /// 1 KiB blocks.
    pub space: SoftHard,
    pub inodes: SoftHard,
    /// Grace seconds; None leaves the file system's own.
    pub quotatime: Option<u64>,
    pub ugidlimit: u64,
    /// DISK_QUOTA=no (vz.conf or the container's config) switches the limits off.
    pub first_level: bool,
}

impl Default for DiskConfig {
    fn default() -> Self {
        DiskConfig {
            space: SoftHard::UNLIMITED,
            inodes: SoftHard::UNLIMITED,
            quotatime: None,
            ugidlimit: 0,
            first_level: true,
        }
    }
}

impl DiskConfig {
    pub fn load(env: &VzEnv, conf: &ConfigFile) -> VzResult<DiskConfig> {
        let bad = |key: &str, reason: String| {
            VzError::new(
                ExitCode::InvalidValue,
                format!("invalid {key} in the container's config: {reason}"),
            )
        };
        let mut cfg = DiskConfig::default();
        for key in [Key::DiskSpace, Key::DiskInodes] {
            if let Some(text) = conf.get(key.config_key()).filter(|t| !t.trim().is_empty()) {
                let value =
                    limits::parse_soft_hard(key, text).map_err(|e| bad(key.config_key(), e))?;
                match key {
                    Key::DiskSpace => cfg.space = value,
                    Key::DiskInodes => cfg.inodes = value,
                }
            }
        }
        if let Some(t) = conf.get("QUOTATIME").filter(|t| !t.trim().is_empty()) {
            cfg.quotatime = Some(limits::parse_quotatime(t).map_err(|e| bad("QUOTATIME", e))?);
        }
        if let Some(t) = conf.get("QUOTAUGIDLIMIT").filter(|t| !t.trim().is_empty()) {
            cfg.ugidlimit = limits::parse_ugidlimit(t).map_err(|e| bad("QUOTAUGIDLIMIT", e))?;
        }
        let switch = conf
            .get("DISK_QUOTA")
            .map(str::to_string)
            .or_else(|| env.get("DISK_QUOTA"));
        cfg.first_level = !matches!(switch.as_deref().map(str::trim), Some("no"));
        Ok(cfg)
    }

    /// Writes the disk keys into a config.
    pub fn save(&self, conf: &mut ConfigFile) {
        conf.set("DISKSPACE", &self.space.to_string());
        conf.set("DISKINODES", &self.inodes.to_string());
        if let Some(t) = self.quotatime {
            conf.set("QUOTATIME", &t.to_string());
        }
        conf.set("QUOTAUGIDLIMIT", &self.ugidlimit.to_string());
    }

    /// Whether any first-level limit applies.
    pub fn has_limits(&self) -> bool {
        self.first_level && !(self.space.is_unlimited() && self.inodes.is_unlimited())
    }

    /// What an image must hold for these limits (bytes, inodes).
    fn image_capacity(&self) -> Option<image::Capacity> {
        Some(image::Capacity {
            bytes: self.space.hard.value()? * 1024,
            inodes: self.inodes.hard.value(),
        })
    }
}

/// The changes `vzctl set`/`create` ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskRequest {
    pub space: Option<SoftHard>,
    pub inodes: Option<SoftHard>,
    pub quotatime: Option<u64>,
    pub ugidlimit: Option<u64>,
}

impl DiskRequest {
    /// From the option values as typed; bad values are refused with the reason.
    pub fn parse(
        diskspace: Option<&str>,
        diskinodes: Option<&str>,
        quotatime: Option<&str>,
        quotaugidlimit: Option<&str>,
    ) -> VzResult<DiskRequest> {
        let invalid = |e: String| VzError::new(ExitCode::InvalidValue, e);
        Ok(DiskRequest {
            space: diskspace
                .map(|t| limits::parse_soft_hard(Key::DiskSpace, t))
                .transpose()
                .map_err(invalid)?,
            inodes: diskinodes
                .map(|t| limits::parse_soft_hard(Key::DiskInodes, t))
                .transpose()
                .map_err(invalid)?,
            quotatime: quotatime
                .map(limits::parse_quotatime)
                .transpose()
                .map_err(invalid)?,
            ugidlimit: quotaugidlimit
                .map(limits::parse_ugidlimit)
                .transpose()
                .map_err(invalid)?,
        })
    }

    pub fn is_empty(&self) -> bool {
        *self == DiskRequest::default()
    }

    pub fn apply_to(&self, base: &DiskConfig) -> DiskConfig {
        DiskConfig {
            space: self.space.unwrap_or(base.space),
            inodes: self.inodes.unwrap_or(base.inodes),
            quotatime: self.quotatime.or(base.quotatime),
            ugidlimit: self.ugidlimit.unwrap_or(base.ugidlimit),
            first_level: base.first_level,
        }
    }
}

/// A line about a step that may take a while, on a terminal only.
pub(crate) fn note(message: impl std::fmt::Display) {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        eprintln!("{message}");
    }
}

// ---------------------------------------------------------------- checks

fn quota_error(message: String) -> VzError {
    VzError::new(ExitCode::DiskQuotaFailed, message)
}

/// The nearest existing directory at or above `path` (where a new private area will be).
fn existing_ancestor(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    while !p.exists() {
        match p.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => p = parent.to_path_buf(),
            _ => return PathBuf::from("/"),
        }
    }
    p
}

/// "ext4 /dev/loop0 on /vz": the mount holding `path`, for messages.
pub fn describe_fs(path: &Path) -> String {
    let target = std::fs::canonicalize(existing_ancestor(path)).unwrap_or_default();
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return target.display().to_string();
    };
    let mut best: Option<(PathBuf, String, String)> = None;
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let (Some(point), Some(fstype), Some(source)) =
            (fields.get(4), fields.get(sep + 1), fields.get(sep + 2))
        else {
            continue;
        };
        let point = PathBuf::from(crate::mountinfo::unescape(point));
        if target.starts_with(&point)
            && best
                .as_ref()
                .is_none_or(|(b, _, _)| point.as_os_str().len() >= b.as_os_str().len())
        {
            best = Some((
                point,
                fstype.to_string(),
                crate::mountinfo::unescape(source),
            ));
        }
    }
    match best {
        Some((point, fstype, source)) => format!("{fstype} {source} on {}", point.display()),
        None => target.display().to_string(),
    }
}

/// Fails unless the file system holding `path` enforces project quotas.
fn require_project_quota(path: &Path, ctid: Ctid) -> VzResult<()> {
    let probe = existing_ancestor(path);
    let state = quota::state(&probe, QuotaType::Project).map_err(|e| {
        quota_error(format!(
            "Container {ctid}: cannot read the quota state of {}: {e}",
            probe.display()
        ))
    })?;
    if state.enforcing {
        return Ok(());
    }
    let fs = describe_fs(path);
    let kernel = if fs.starts_with("xfs") {
        if image::kernel_config_option("CONFIG_XFS_QUOTA") == Some(false) {
            " This kernel is built without XFS quota support (CONFIG_XFS_QUOTA)."
        } else {
            ""
        }
    } else if image::kernel_config_option("CONFIG_QFMT_V2") == Some(false) {
        " This kernel is built without quota formats (CONFIG_QFMT_V2): ext4 cannot have quotas here."
    } else {
        ""
    };
    Err(quota_error(format!(
        "Container {ctid}: disk limits on simfs need project quotas, and the VZ file system \
         holding {} ({fs}) does not enforce them: ext4 needs the quota and project features \
         (mkfs.ext4 -O quota,project, or tune2fs -O quota,project while unmounted) and the \
         prjquota mount option; XFS needs the prjquota mount option.{kernel} Use \
         VE_LAYOUT=ploop (an image per container) or DISK_QUOTA=no instead.",
        path.display()
    )))
}

fn ugid_error(message: String) -> VzError {
    VzError::new(ExitCode::UgidQuotaFailed, message)
}

/// Checks that `cfg` can be had for a container of `layout` before anything changes.
/// `image_features` is the existing image's (None: not made yet).
fn check(
    ctid: Ctid,
    layout: Layout,
    private: &Path,
    cfg: &DiskConfig,
    before: Option<&DiskConfig>,
    image_features: Option<image::Features>,
) -> VzResult<()> {
    match layout {
        Layout::Simfs => {
            if cfg.ugidlimit > 0 {
                return Err(ugid_error(format!(
                    "Container {ctid}: QUOTAUGIDLIMIT (per-user and per-group quota inside the \
                     container) needs VE_LAYOUT=ploop: a simfs container's files live on the \
                     host's file system, whose user and group quotas count the whole host, not \
                     one container"
                )));
            }
            if cfg.has_limits() {
                require_project_quota(private, ctid)?;
            }
        }
        Layout::Ploop => {
            if cfg.space.hard.value().is_none() {
                return Err(VzError::new(
                    ExitCode::InvalidValue,
                    format!(
                        "Container {ctid}: VE_LAYOUT=ploop needs a disk size: DISKSPACE's hard \
                         limit (--diskspace SOFT:HARD) sizes the container's image; unlimited is \
                         impossible"
                    ),
                ));
            }
            // (asked only when it matters: the kernel probe may make a test image)
            let quota = || match image_features {
                Some(f) => f.quota,
                None => image::kernel_has_quota(),
            };
            if cfg.ugidlimit > 0 && !quota() {
                let why = if image_features.is_some() {
                    "its image was made without ext4's quota feature (the kernel had no quota support then)"
                } else {
                    "this kernel has no quota format support (CONFIG_QFMT_V2)"
                };
                return Err(ugid_error(format!(
                    "Container {ctid}: QUOTAUGIDLIMIT needs user and group quotas in the \
                     container's image, and {why}"
                )));
            }
            if let (Some(before), false) = (before, image_features.is_some_and(|f| f.quota)) {
                // Without quotas the image's size and inode count are the limits, and an
                // ext4 file system can grow online but not shrink.
                if cfg.space.hard < before.space.hard {
                    return Err(quota_error(format!(
                        "Container {ctid}: cannot lower DISKSPACE's hard limit from {} to {} KiB: \
                         its image has no quotas (the kernel had no quota support at create), so \
                         its size is the limit, and images never shrink",
                        before.space.hard, cfg.space.hard
                    )));
                }
                if cfg.inodes.hard < before.inodes.hard {
                    return Err(quota_error(format!(
                        "Container {ctid}: cannot lower DISKINODES' hard limit from {} to {}: its \
                         image has no quotas, so its inode count is the limit, and images never \
                         shrink",
                        before.inodes.hard, cfg.inodes.hard
                    )));
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- create / destroy

/// Decides a new container's layout and disk settings into its config (the sample's
/// values, then the options) and checks they can be had. Changes nothing on disk.
pub fn prepare_create(
    env: &VzEnv,
    ctid: Ctid,
    conf: &mut ConfigFile,
    layout: Option<&str>,
    request: &DiskRequest,
    private: &Path,
) -> VzResult<Layout> {
    let layout = match layout
        .map(str::to_string)
        .or_else(|| conf.get("VE_LAYOUT").map(str::to_string))
        .or_else(|| env.get("VE_LAYOUT"))
    {
        Some(text) => Layout::parse(&text)?,
        None => Layout::Simfs,
    };
    let cfg = request.apply_to(&DiskConfig::load(env, conf)?);
    check(ctid, layout, private, &cfg, None, None)?;
    conf.set("VE_LAYOUT", layout.name());
    cfg.save(conf);
    Ok(layout)
}

/// Why a new container with vz.conf's defaults could not have first-level disk limits on
/// the VZ file system at `private_base` (None: it can, or DISK_QUOTA=no records them
/// only). vzsplit leaves the limits out of its samples then: they would make every
/// create fail.
pub fn limits_unavailable(env: &VzEnv, private_base: &Path) -> Option<String> {
    let layout = env
        .get("VE_LAYOUT")
        .map_or(Ok(Layout::Simfs), |t| Layout::parse(&t))
        .ok()?;
    if layout == Layout::Ploop
        || matches!(env.get("DISK_QUOTA").as_deref().map(str::trim), Some("no"))
    {
        return None;
    }
    let probe = existing_ancestor(private_base);
    match quota::state(&probe, QuotaType::Project) {
        Ok(state) if state.enforcing => None,
        _ => Some(format!(
            "the VZ file system ({}) does not enforce project quotas, which simfs disk limits \
             need (docs/DISK-QUOTA.md)",
            describe_fs(&probe)
        )),
    }
}

/// Makes a new container's private area from a template, with its disk limits. On
/// failure it removes what it made.
pub fn create_private(
    env: &VzEnv,
    ctid: Ctid,
    conf: &ConfigFile,
    template: &Path,
    private: &Path,
    root: &Path,
) -> VzResult<()> {
    let cfg = DiskConfig::load(env, conf)?;
    let layout = Layout::of_conf(conf)?;
    if let Some(parent) = private.parent() {
        std::fs::create_dir_all(parent).map_err(|e| create_error(parent, e))?;
    }
    let made = match layout {
        Layout::Simfs => create_simfs(ctid, &cfg, template, private),
        Layout::Ploop => create_ploop(ctid, &cfg, template, private, root),
    };
    if let Err(e) = made {
        if let Err(cleanup) = remove_private(ctid, private, root) {
            eprintln!("vzctl: cleaning up after a failed create: {cleanup}");
        }
        return Err(e);
    }
    Ok(())
}

fn create_error(path: &Path, e: impl std::fmt::Display) -> VzError {
    VzError::new(
        ExitCode::CreatePrivateFailed,
        format!("create {}: {e}", path.display()),
    )
}

fn unpack(template: &Path, target: &Path) -> VzResult<()> {
    vzbuild::unpack(template, target, &vzbuild::UnpackOptions::default()).map_err(|e| {
        VzError::new(
            ExitCode::CreatePrivateFailed,
            format!(
                "unpack {} into {}: {e}",
                template.display(),
                target.display()
            ),
        )
    })?;
    Ok(())
}

fn create_simfs(ctid: Ctid, cfg: &DiskConfig, template: &Path, private: &Path) -> VzResult<()> {
    unpack(template, private)?;
    if cfg.has_limits() {
        apply_simfs(ctid, private, cfg)?;
    }
    Ok(())
}

fn create_ploop(
    ctid: Ctid,
    cfg: &DiskConfig,
    template: &Path,
    private: &Path,
    root: &Path,
) -> VzResult<()> {
    let want = cfg.image_capacity().expect("checked: ploop has a size");
    std::fs::create_dir(private).map_err(|e| create_error(private, e))?;
    let quota = image::kernel_has_quota();
    let image_file = image::image_path(private);
    std::fs::create_dir_all(root).map_err(|e| create_error(root, e))?;
    let want = if quota {
        image::with_quota_room(want)
    } else {
        want
    };
    image::create(&image_file, root, want, quota).map_err(|e| create_error(&image_file, e))?;
    let filled = (|| {
        apply_ploop(ctid, &image_file, root, cfg, true)?;
        // Unpack inside the image (a staging directory there: same project, same file
        // system), then move the entries up to its root.
        let staging = root.join(".vzrun-unpack");
        unpack(template, &staging)?;
        move_up(&staging, root).map_err(|e| create_error(root, e))
    })();
    let unmounted = nix::mount::umount2(root, nix::mount::MntFlags::empty())
        .map_err(|e| create_error(root, format!("unmount: {e}")));
    filled?;
    unmounted
}

/// Moves every entry of `staging` into `dir` (its parent), gives `dir` the staging
/// directory's owner, mode and times, and removes `staging`.
fn move_up(staging: &Path, dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(staging)? {
        let entry = entry?;
        std::fs::rename(entry.path(), dir.join(entry.file_name()))?;
    }
    let meta = std::fs::metadata(staging)?;
    std::os::unix::fs::chown(dir, Some(meta.uid()), Some(meta.gid()))?;
    std::fs::set_permissions(dir, meta.permissions())?;
    std::fs::remove_dir(staging)?;
    let times = [
        nix::sys::time::TimeSpec::new(meta.atime(), meta.atime_nsec()),
        nix::sys::time::TimeSpec::new(meta.mtime(), meta.mtime_nsec()),
    ];
    nix::sys::stat::utimensat(
        None,
        dir,
        &times[0],
        &times[1],
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(std::io::Error::from)
}

/// Removes a container's private area with what serves it: the image's loop devices, the
/// project quota limits of a simfs tree, leftovers of an interrupted unpack. VE_ROOT must be
/// unmounted already (the caller's job: it knows whether the container runs).
pub fn remove_private(ctid: Ctid, private: &Path, root: &Path) -> VzResult<()> {
    let delete_error = |path: &Path, e: std::io::Error| {
        VzError::new(
            ExitCode::DeleteFailed,
            format!("remove {}: {e}", path.display()),
        )
    };
    // A create that died with the image mounted left it on VE_ROOT.
    let image_file = image::image_path(private);
    if image_file.exists() && crate::mountinfo::is_mount_point(root) {
        let mounted_from_image = loopdev::find(&image_file).iter().any(|d| {
            loopdev::device_numbers(d)
                .ok()
                .zip(std::fs::metadata(root).ok())
                .is_some_and(|((maj, min), m)| nix::sys::stat::makedev(maj, min) == m.dev())
        });
        if mounted_from_image {
            let _ = nix::mount::umount2(root, nix::mount::MntFlags::MNT_DETACH);
        }
    }
    for device in loopdev::find(&image_file) {
        loopdev::detach(&device).map_err(|e| delete_error(&device, e))?;
    }
    if quota::tree_is_tagged(private, ctid.0) {
        // Project CTID's limits go with the container (usage goes with its files).
        if let Err(e) = quota::set_limits(private, QuotaType::Project, ctid.0, (0, 0), (0, 0)) {
            eprintln!("vzctl: warning: clearing the project quota of container {ctid}: {e}");
        }
    }
    match std::fs::remove_dir_all(private) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(delete_error(private, e)),
    }
    // vzbuild's staging directory of an unpack that was killed: .<name>.vzbuild-unpack-PID
    if let (Some(parent), Some(name)) = (private.parent(), private.file_name()) {
        let prefix = format!(".{}.vzbuild-unpack-", name.to_string_lossy());
        if let Ok(entries) = std::fs::read_dir(parent) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- applying limits

/// Project quota of a simfs tree: tag it once, then the limits and grace.
fn apply_simfs(ctid: Ctid, private: &Path, cfg: &DiskConfig) -> VzResult<()> {
    let id = ctid.0;
    let fail = |what: &str, e: std::io::Error| {
        quota_error(format!(
            "Container {ctid}: {what} on {} ({}): {e}",
            private.display(),
            describe_fs(private)
        ))
    };
    if !cfg.has_limits() {
        // Limits set before: gone. Best effort: none are wanted, nothing to enforce.
        if quota::tree_is_tagged(private, id) {
            if let Err(e) = quota::set_limits(private, QuotaType::Project, id, (0, 0), (0, 0)) {
                eprintln!(
                    "vzctl: warning: {}",
                    fail("remove the project quota limits", e)
                );
            }
        }
        return Ok(());
    }
    require_project_quota(private, ctid)?;
    if !quota::tree_is_tagged(private, id) {
        // Moving the files into the project charges it: no limits until that is done.
        quota::set_limits(private, QuotaType::Project, id, (0, 0), (0, 0))
            .map_err(|e| fail("reset the project quota", e))?;
        note(format_args!(
            "Counting the files of container {ctid} in its project quota..."
        ));
        quota::tag_tree(private, id).map_err(|e| fail("set project ids", e))?;
    }
    set_project_limits(private, id, cfg).map_err(|e| fail("set the project quota", e))
}

fn set_project_limits(path: &Path, id: u32, cfg: &DiskConfig) -> std::io::Result<()> {
    let (space, inodes) = if cfg.first_level {
        (cfg.space, cfg.inodes)
    } else {
        (SoftHard::UNLIMITED, SoftHard::UNLIMITED)
    };
    quota::set_limits(
        path,
        QuotaType::Project,
        id,
        (space.soft.quota_value(), space.hard.quota_value()),
        (inodes.soft.quota_value(), inodes.hard.quota_value()),
    )?;
    if let Some(grace) = cfg.quotatime {
        quota::set_grace(path, QuotaType::Project, grace)?;
    }
    Ok(())
}

/// A mounted image: grow it to the limits, then its own quotas. `may_remount`: nothing
/// but vzctl uses the mount (see image::fit).
fn apply_ploop(
    ctid: Ctid,
    image_file: &Path,
    root: &Path,
    cfg: &DiskConfig,
    may_remount: bool,
) -> VzResult<()> {
    let fail = |what: &str, e: std::io::Error| {
        quota_error(format!(
            "Container {ctid}: {what} ({}): {e}",
            image_file.display()
        ))
    };
    let features = image::features(image_file).map_err(|e| fail("read the image", e))?;
    let Some(mut want) = cfg.image_capacity() else {
        return Err(quota_error(format!(
            "Container {ctid}: DISKSPACE has no hard limit: an image needs a size"
        )));
    };
    if features.quota {
        want = image::with_quota_room(want);
    }
    image::fit(image_file, root, want, may_remount).map_err(|e| fail("grow the image", e))?;
    if !features.quota {
        return Ok(());
    }
    if !quota::tree_is_tagged(root, image::PROJECT_ID) {
        quota::set_limits(root, QuotaType::Project, image::PROJECT_ID, (0, 0), (0, 0))
            .map_err(|e| fail("reset the project quota", e))?;
        quota::tag_tree(root, image::PROJECT_ID).map_err(|e| fail("set project ids", e))?;
    }
    set_project_limits(root, image::PROJECT_ID, cfg).map_err(|e| fail("set the quota", e))?;
    for kind in [QuotaType::User, QuotaType::Group] {
        quota::set_enforcement(root, kind, cfg.ugidlimit > 0)
            .map_err(|e| fail(&format!("switch {} quotas", kind.name()), e))?;
    }
    Ok(())
}

/// An image-backed container's image features (None for simfs).
fn image_features(ctid: Ctid, layout: Layout, private: &Path) -> VzResult<Option<image::Features>> {
    match layout {
        Layout::Ploop => image::features(&image::image_path(private))
            .map(Some)
            .map_err(|e| quota_error(format!("Container {ctid}: {e}"))),
        Layout::Simfs => Ok(None),
    }
}

/// The loop device serving a mounted image.
fn image_device(ctid: Ctid, image_file: &Path) -> VzResult<PathBuf> {
    loopdev::find(image_file).into_iter().next().ok_or_else(|| {
        quota_error(format!(
            "Container {ctid}: no loop device serves {}",
            image_file.display()
        ))
    })
}

// ---------------------------------------------------------------- start

/// At each start, once VE_ROOT is mounted: applies the config's limits (the config is the
/// truth, even when edited by hand) and adds to the spec what the quotas need (the guard,
/// and for the second level the image's device node).
pub fn prepare_boot(env: &VzEnv, ct: &Ct, spec: &mut Spec) -> VzResult<()> {
    let cfg = DiskConfig::load(env, &ct.conf)?;
    let private = ct.private(env);
    let layout = Layout::of_conf(&ct.conf)?;
    let features = image_features(ct.ctid, layout, &private)?;
    check(ct.ctid, layout, &private, &cfg, None, features)?;
    match layout {
        Layout::Simfs => {
            apply_simfs(ct.ctid, &private, &cfg)?;
            if cfg.has_limits() {
                guard::add_quota_guard(spec);
            }
        }
        Layout::Ploop => {
            let root = ct.root(env);
            let image_file = image::image_path(&private);
            // Not yet running: the image may still be remounted to grow it.
            apply_ploop(ct.ctid, &image_file, &root, &cfg, true)?;
            let device = image_device(ct.ctid, &image_file)?;
            if features.is_some_and(|f| f.quota) {
                guard::add_quota_guard(spec);
                if cfg.ugidlimit > 0 {
                    let (major, minor) = loopdev::device_numbers(&device)
                        .map_err(|e| quota_error(format!("{}: {e}", device.display())))?;
                    guard::add_quota_device(spec, &device, major, minor);
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- set

/// A checked change of a container's disk settings.
#[derive(Debug, Clone)]
pub struct DiskPlan {
    /// The config's settings, and with the request: what `--save` writes.
    pub before: DiskConfig,
    pub after: DiskConfig,
    pub layout: Layout,
    pub request: DiskRequest,
}

/// Checks a `vzctl set` request against the container before anything changes.
pub fn plan(env: &VzEnv, ct: &Ct, request: &DiskRequest) -> VzResult<Option<DiskPlan>> {
    if request.is_empty() {
        return Ok(None);
    }
    let before = DiskConfig::load(env, &ct.conf)?;
    let after = request.apply_to(&before);
    let private = ct.private(env);
    let layout = Layout::of_conf(&ct.conf)?;
    let features = image_features(ct.ctid, layout, &private)?;
    check(ct.ctid, layout, &private, &after, Some(&before), features)?;
    Ok(Some(DiskPlan {
        before,
        after,
        layout,
        request: request.clone(),
    }))
}

/// What a plan changes in the kernel: the requested values over the limits in force (a
/// `set` without `--save` changes only what it names, whatever the config says).
fn live_target(plan: &DiskPlan, quota_path: Option<(&Path, u32)>) -> DiskConfig {
    let mut live = plan.before.clone();
    if let Some(current) = quota_path.and_then(|(p, id)| quota::get(p, QuotaType::Project, id).ok())
    {
        let limit = |v: u64| {
            if v == 0 {
                Limit::Unlimited
            } else {
                Limit::Value(v)
            }
        };
        live.space = SoftHard {
            soft: limit(current.block_soft_kb),
            hard: limit(current.block_hard_kb),
        };
        live.inodes = SoftHard {
            soft: limit(current.inode_soft),
            hard: limit(current.inode_hard),
        };
    }
    // The grace period is set only when asked for.
    live.quotatime = None;
    plan.request.apply_to(&live)
}

/// Applies a plan now: simfs limits at once (the host file system is always there); an
/// image live when mounted, else mounted for the change and unmounted again. The second
/// level's device node appears or goes in a running container.
pub fn apply(env: &VzEnv, ct: &Ct, plan: &DiskPlan) -> VzResult<()> {
    let private = ct.private(env);
    match plan.layout {
        Layout::Simfs => {
            let tagged = quota::tree_is_tagged(&private, ct.ctid.0);
            let live = live_target(plan, tagged.then_some((private.as_path(), ct.ctid.0)));
            apply_simfs(ct.ctid, &private, &live)
        }
        Layout::Ploop => {
            let root = ct.root(env);
            let image_file = image::image_path(&private);
            let mounted = ct.is_mounted(env);
            if !mounted {
                std::fs::create_dir_all(&root).map_err(|e| {
                    VzError::new(ExitCode::MountFailed, format!("{}: {e}", root.display()))
                })?;
                image::mount_image(&image_file, &root)
                    .map_err(|e| VzError::new(ExitCode::MountFailed, e.to_string()))?;
            }
            let running = ct.is_running(env);
            let quota = image::features(&image_file).is_ok_and(|f| f.quota)
                && quota::tree_is_tagged(&root, image::PROJECT_ID);
            let live = live_target(plan, quota.then_some((root.as_path(), image::PROJECT_ID)));
            let result = apply_ploop(ct.ctid, &image_file, &root, &live, !running)
                .and_then(|_| image_device(ct.ctid, &image_file))
                .and_then(|device| {
                    if plan.request.ugidlimit.is_some() {
                        if let Some(pid) = ct.runtime_state(env).and_then(|s| s.pid) {
                            live_quota_device(pid, &device, live.ugidlimit > 0)?;
                        }
                    }
                    Ok(())
                });
            if !mounted {
                let _ = nix::mount::umount2(&root, nix::mount::MntFlags::empty());
            }
            result
        }
    }
}

/// Creates or removes the image's device node in a running container's /dev. The path
/// resolves inside the container's root (openat2 RESOLVE_IN_ROOT): a symlink its root
/// planted (`dev -> /etc`) cannot make vzctl create a node on the host.
fn live_quota_device(pid: i32, device: &Path, present: bool) -> VzResult<()> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let name = device.file_name().expect("/dev/loopN");
    let fail = |e: std::io::Error| {
        ugid_error(format!(
            "the second-level quota device {} in the container: {e}",
            device.display()
        ))
    };
    let root = std::fs::File::open(format!("/proc/{pid}/root")).map_err(fail)?;
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let dev = openat2(root.as_raw_fd(), "dev", how).map_err(|e| fail(e.into()))?;
    // SAFETY: openat2 returned a fresh fd that we now own.
    let dev = unsafe { OwnedFd::from_raw_fd(dev) };
    if present {
        let (major, minor) = loopdev::device_numbers(device).map_err(fail)?;
        match nix::sys::stat::mknodat(
            Some(dev.as_raw_fd()),
            name,
            nix::sys::stat::SFlag::S_IFBLK,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            nix::sys::stat::makedev(major, minor),
        ) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
            Err(e) => Err(fail(e.into())),
        }
    } else {
        match nix::unistd::unlinkat(
            Some(dev.as_raw_fd()),
            name,
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        ) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => Ok(()),
            Err(e) => Err(fail(e.into())),
        }
    }
}

// ---------------------------------------------------------------- usage (vzlist)

/// What vzlist shows: usage (None when unknown: no quota and nothing mounted) and limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskUsage {
    pub space_kb: Option<u64>,
    pub inodes: Option<u64>,
    pub space: Option<SoftHard>,
    pub diskinodes: Option<SoftHard>,
}

pub fn usage(env: &VzEnv, ct: &Ct) -> DiskUsage {
    let cfg = DiskConfig::load(env, &ct.conf).ok();
    let mut out = DiskUsage {
        space: cfg.as_ref().map(|c| c.space),
        diskinodes: cfg.as_ref().map(|c| c.inodes),
        ..Default::default()
    };
    let private = ct.private(env);
    let from_quota = |path: &Path, id: u32| {
        quota::get(path, QuotaType::Project, id)
            .ok()
            .map(|u| (u.space_bytes.div_ceil(1024), u.inodes))
    };
    let used = match Layout::of_conf(&ct.conf).unwrap_or(Layout::Simfs) {
        Layout::Simfs => quota::tree_is_tagged(&private, ct.ctid.0)
            .then(|| from_quota(&private, ct.ctid.0))
            .flatten(),
        Layout::Ploop => {
            let root = ct.root(env);
            let image_file = image::image_path(&private);
            if !ct.is_mounted(env) {
                None
            } else if image::features(&image_file).is_ok_and(|f| f.quota) {
                from_quota(&root, image::PROJECT_ID)
            } else {
                nix::sys::statvfs::statvfs(&root).ok().map(|s| {
                    (
                        (s.blocks() - s.blocks_free()) * s.fragment_size() / 1024,
                        s.files() - s.files_free(),
                    )
                })
            }
        }
    };
    if let Some((space, inodes)) = used {
        out.space_kb = Some(space);
        out.inodes = Some(inodes);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> (tempfile::TempDir, VzEnv) {
        let etc = tempfile::tempdir().unwrap();
        let env = VzEnv::load(etc.path()).unwrap();
        (etc, env)
    }

    #[test]
    fn config_round_trip_and_defaults() {
        let (_etc, env) = env();
        let empty = DiskConfig::load(&env, &ConfigFile::default()).unwrap();
        assert_eq!(empty, DiskConfig::default());
        assert!(!empty.has_limits());
        let conf = ConfigFile::parse(
            "DISKSPACE=\"1048576:1153434\"\nDISKINODES=\"200000:220000\"\nQUOTATIME=\"600\"\nQUOTAUGIDLIMIT=\"50\"\n",
        )
        .unwrap();
        let cfg = DiskConfig::load(&env, &conf).unwrap();
        assert_eq!(cfg.space.hard, Limit::Value(1153434));
        assert_eq!(cfg.inodes.soft, Limit::Value(200000));
        assert_eq!(cfg.quotatime, Some(600));
        assert_eq!(cfg.ugidlimit, 50);
        assert!(cfg.has_limits());
        let mut out = ConfigFile::default();
        cfg.save(&mut out);
        assert_eq!(DiskConfig::load(&env, &out).unwrap(), cfg);
        let bad = ConfigFile::parse("DISKSPACE=\"9:1\"\n").unwrap();
        let err = DiskConfig::load(&env, &bad).unwrap_err();
        assert_eq!(err.code, ExitCode::InvalidValue);
        assert!(err.message.contains("DISKSPACE"), "{}", err.message);
    }

    #[test]
    fn disk_quota_switch_from_vz_conf() {
        let etc = tempfile::tempdir().unwrap();
        std::fs::write(etc.path().join("vz.conf"), "DISK_QUOTA=no\n").unwrap();
        let env = VzEnv::load(etc.path()).unwrap();
        let conf = ConfigFile::parse("DISKSPACE=\"100:200\"\n").unwrap();
        let cfg = DiskConfig::load(&env, &conf).unwrap();
        assert!(!cfg.first_level);
        assert!(!cfg.has_limits());
    }

    #[test]
    fn requests_merge_over_the_config() {
        let req = DiskRequest::parse(Some("1G:2G"), None, Some("60"), None).unwrap();
        let merged = req.apply_to(&DiskConfig::default());
        assert_eq!(merged.space.soft, Limit::Value(1 << 20));
        assert_eq!(merged.inodes, SoftHard::UNLIMITED);
        assert_eq!(merged.quotatime, Some(60));
        assert!(DiskRequest::default().is_empty());
        let err = DiskRequest::parse(Some("2G:1G"), None, None, None).unwrap_err();
        assert_eq!(err.code, ExitCode::InvalidValue);
        assert!(err.message.contains("above the hard limit"));
        let err = DiskRequest::parse(None, None, None, Some("-1")).unwrap_err();
        assert!(err.message.contains("negative"));
    }

    #[test]
    fn layouts() {
        assert_eq!(Layout::parse("ploop").unwrap(), Layout::Ploop);
        assert_eq!(Layout::parse(" simfs").unwrap(), Layout::Simfs);
        let err = Layout::parse("zfs").unwrap_err();
        assert!(err.message.contains("simfs") && err.message.contains("ploop"));
        let conf = |t: &str| ConfigFile::parse(t).unwrap();
        assert_eq!(Layout::of_conf(&conf("")).unwrap(), Layout::Simfs);
        assert_eq!(
            Layout::of_conf(&conf("VE_LAYOUT=\"ploop\"\n")).unwrap(),
            Layout::Ploop
        );
        assert!(Layout::of_conf(&conf("VE_LAYOUT=\"x\"\n")).is_err());
    }

    #[test]
    fn checks_before_anything_changes() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("private/101");
        let limited = DiskConfig {
            space: SoftHard {
                soft: Limit::Value(1000),
                hard: Limit::Value(2000),
            },
            ..Default::default()
        };
        // simfs: no second level, ever
        let ugid = DiskConfig {
            ugidlimit: 10,
            ..Default::default()
        };
        let err = check(Ctid(101), Layout::Simfs, &private, &ugid, None, None).unwrap_err();
        assert_eq!(err.code, ExitCode::UgidQuotaFailed);
        assert!(err.message.contains("VE_LAYOUT=ploop"));
        // simfs on a file system without project quota (tmpfs/whatever the temp dir is
        // on, unless it enforces project quotas)
        if !quota::state(dir.path(), QuotaType::Project)
            .unwrap()
            .enforcing
        {
            let err = check(Ctid(101), Layout::Simfs, &private, &limited, None, None).unwrap_err();
            assert_eq!(err.code, ExitCode::DiskQuotaFailed);
            assert!(err.message.contains("prjquota"), "{}", err.message);
        }
        // ploop: needs a size
        let err = check(
            Ctid(101),
            Layout::Ploop,
            &private,
            &DiskConfig::default(),
            None,
            None,
        )
        .unwrap_err();
        assert!(err.message.contains("needs a disk size"));
        // ploop without quotas in the image: no shrinking, no second level
        let no_quota = Some(image::Features {
            quota: false,
            project: false,
        });
        let smaller = DiskConfig {
            space: SoftHard {
                soft: Limit::Value(1000),
                hard: Limit::Value(1500),
            },
            ..Default::default()
        };
        let err = check(
            Ctid(101),
            Layout::Ploop,
            &private,
            &smaller,
            Some(&limited),
            no_quota,
        )
        .unwrap_err();
        assert!(err.message.contains("never shrink"));
        let with_quota = Some(image::Features {
            quota: true,
            project: true,
        });
        check(
            Ctid(101),
            Layout::Ploop,
            &private,
            &smaller,
            Some(&limited),
            with_quota,
        )
        .unwrap();
        let ugid_ploop = DiskConfig {
            ugidlimit: 5,
            ..limited.clone()
        };
        let err = check(
            Ctid(101),
            Layout::Ploop,
            &private,
            &ugid_ploop,
            None,
            no_quota,
        )
        .unwrap_err();
        assert_eq!(err.code, ExitCode::UgidQuotaFailed);
        check(
            Ctid(101),
            Layout::Ploop,
            &private,
            &ugid_ploop,
            None,
            with_quota,
        )
        .unwrap();
    }

    #[test]
    fn describes_the_file_system() {
        let d = describe_fs(Path::new("/proc/self"));
        assert!(d.starts_with("proc "), "{d}");
        let d = describe_fs(Path::new("/nonexistent/deeper"));
        assert!(d.contains(" on /"), "{d}");
    }
}
