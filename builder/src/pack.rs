//! `pack`: a root directory in, a template archive out (a file, or a template
//! cache entry), written atomically: a hidden temporary file beside the
//! destination is renamed into place only when complete, and removed on any
//! error, so `list` never sees a partial template.

use crate::cache::TemplateCache;
use crate::compress::{Compression, LayerStats};
use crate::detect::{inspect_root, oci_arch, resolve_in_root};
use crate::error::{Error, Result};
use crate::image::{write_archive, ImageMeta};
use crate::profile::Profile;
use crate::progress::{self, Counters, Progress};
use crate::util::{date_version, rfc3339, validate_name, validate_version};
use crate::walk::{write_tree, WalkOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a packed template goes.
#[derive(Debug, Clone)]
pub enum Output {
    /// This exact file.
    File(PathBuf),
    /// `<cache dir>/<name>/<version>.oci.tar`.
    Cache(PathBuf),
}

/// Options for [`pack`].
#[derive(Debug, Clone)]
pub struct PackOptions {
    /// Template name; default `<distro>-<version>-<arch>[-<flavour>]`.
    pub name: Option<String>,
    /// Template version; default the `YYYYMMDD` of the creation time.
    pub version: Option<String>,
    pub flavour: Option<String>,
    /// Architecture override (OpenVZ style: x86_64, x86, aarch64...).
    pub arch: Option<String>,
    /// `org.opencontainers.image.source`; default `dir:<root's base name>`.
    pub source: Option<String>,
    pub compression: Compression,
    /// Compression threads; 0 = all available cores.
    pub threads: usize,
    /// Creation time and mtime clamp (SOURCE_DATE_EPOCH); default: now, no clamp.
    pub source_date_epoch: Option<i64>,
    pub profile: Profile,
    /// Replace an existing destination.
    pub force: bool,
    /// Progress on stderr: None = when stderr is a terminal.
    pub progress: Option<bool>,
    /// Extra manifest annotations (key=value).
    pub annotations: BTreeMap<String, String>,
}

impl Default for PackOptions {
    fn default() -> Self {
        PackOptions {
            name: None,
            version: None,
            flavour: None,
            arch: None,
            source: None,
            compression: Compression::Gzip(6),
            threads: 0,
            source_date_epoch: None,
            profile: Profile::Template,
            force: false,
            progress: None,
            annotations: BTreeMap::new(),
        }
    }
}

/// The result of [`pack`].
#[derive(Debug, Clone)]
pub struct Packed {
    pub path: PathBuf,
    pub name: String,
    pub version: String,
    pub manifest_digest: String,
    pub layer: LayerStats,
    pub file_size: u64,
    pub entries: u64,
    pub cleaned: Vec<(String, &'static str)>,
    pub skipped: Vec<String>,
    pub annotations: BTreeMap<String, String>,
}

/// Removes a temporary file unless disarmed.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn default_cmd(root: &Path) -> (Vec<String>, Option<String>) {
    let init = root.join("sbin/init");
    if std::fs::symlink_metadata(&init).is_ok() {
        let systemd = resolve_in_root(root, "sbin/init")
            .map(|p| p.to_string_lossy().contains("systemd"))
            .unwrap_or(false);
        // systemd halts cleanly on SIGRTMIN+3.
        let stop = systemd.then(|| "SIGRTMIN+3".to_string());
        return (vec!["/sbin/init".into()], stop);
    }
    (vec!["/bin/sh".into()], None)
}

/// Packs the tree at `root` into a template.
pub fn pack(root: &Path, output: &Output, opts: &PackOptions) -> Result<Packed> {
    let meta =
        std::fs::metadata(root).map_err(|e| Error::io_path("reading root directory", root, e))?;
    if !meta.is_dir() {
        return Err(Error::Invalid(format!(
            "{} is not a directory",
            root.display()
        )));
    }
    // An unreadable root must fail as such, not as "no os-release".
    std::fs::read_dir(root).map_err(|e| Error::io_path("listing", root, e))?;
    let mut info = inspect_root(root)?;
    if let Some(a) = &opts.arch {
        info.arch = Some(a.clone());
    }
    let name = match &opts.name {
        Some(n) => n.clone(),
        None => info.default_name(opts.flavour.as_deref())?,
    };
    validate_name(&name)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let created = opts.source_date_epoch.unwrap_or(now);
    let version = opts
        .version
        .clone()
        .unwrap_or_else(|| date_version(created));
    validate_version(&version)?;
    let arch = info.arch.clone().ok_or_else(|| {
        Error::Invalid("cannot detect the architecture of the root: give --arch".into())
    })?;

    let dest = match output {
        Output::File(p) => p.clone(),
        Output::Cache(dir) => {
            let cache = TemplateCache::new(dir);
            let d = cache.template_dir(&name);
            std::fs::create_dir_all(&d).map_err(|e| Error::io_path("creating", &d, e))?;
            cache.path_for(&name, &version)
        }
    };
    if dest.exists() && !opts.force {
        return Err(Error::Invalid(format!(
            "{} already exists (use --force to replace it, or another --version)",
            dest.display()
        )));
    }
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let fname = dest
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("bad output path {}", dest.display())))?
        .to_string_lossy()
        .to_string();
    // A pack killed by a signal leaves its hidden temporary file behind.
    crate::util::remove_stale(&parent, &format!(".{fname}.tmp-"));
    let tmp = parent.join(format!(".{fname}.tmp-{}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .read(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| Error::io_path("creating", &tmp, e))?;
    let mut guard = TempGuard(Some(tmp.clone()));

    let mut ann: BTreeMap<String, String> = BTreeMap::new();
    let source = opts.source.clone().unwrap_or_else(|| {
        let base = std::fs::canonicalize(root)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
            .unwrap_or_else(|| "rootfs".into());
        format!("dir:{base}")
    });
    ann.insert("org.opencontainers.image.created".into(), rfc3339(created));
    ann.insert("org.opencontainers.image.version".into(), version.clone());
    ann.insert("org.opencontainers.image.ref.name".into(), version.clone());
    ann.insert("org.opencontainers.image.title".into(), name.clone());
    ann.insert("org.opencontainers.image.source".into(), source);
    if let Some(p) = info.os_release.get("PRETTY_NAME") {
        ann.insert("org.opencontainers.image.description".into(), p.clone());
    }
    let t = "io.vzrun.template.";
    ann.insert(format!("{t}name"), name.clone());
    ann.insert(format!("{t}arch"), arch.clone());
    if let Some(f) = opts.flavour.as_ref().filter(|f| !f.is_empty()) {
        ann.insert(format!("{t}flavour"), f.clone());
    }
    ann.insert(
        format!("{t}profile"),
        match opts.profile {
            Profile::Template => "template",
            Profile::KeepAll => "keep-all",
        }
        .into(),
    );
    ann.insert(
        format!("{t}package-manager"),
        info.package_db.as_str().into(),
    );
    ann.insert(
        format!("{t}packages.count"),
        info.packages.len().to_string(),
    );
    ann.insert(format!("{t}packages.sha256"), info.packages_digest());
    for (k, v) in &info.os_release {
        ann.insert(format!("{t}os-release.{k}"), v.clone());
    }
    for (k, v) in &opts.annotations {
        ann.insert(k.clone(), v.clone());
    }
    let (cmd, stop_signal) = default_cmd(root);
    let image_meta = ImageMeta {
        created_epoch: created,
        oci_arch: oci_arch(&arch),
        annotations: ann.clone(),
        cmd,
        stop_signal,
    };
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        opts.threads
    };
    let counters = Arc::new(Counters::default());
    let show = progress::wanted(opts.progress);
    let report;
    let written;
    {
        let c2 = Arc::clone(&counters);
        let _p = Progress::start(
            format!("packing {name}:{version}"),
            None,
            Arc::clone(&counters),
            show,
        );
        let walk_opts = WalkOptions {
            clamp_mtime: opts.source_date_epoch,
            profile: opts.profile,
        };
        let mut rep = None;
        let (_file, w) = write_archive(
            file,
            opts.compression,
            threads,
            &image_meta,
            Some(Arc::clone(&counters)),
            |enc| {
                rep = Some(write_tree(root, enc, &walk_opts, c2)?);
                Ok(())
            },
        )?;
        report = rep.expect("walk ran");
        written = w;
    }
    std::fs::rename(&tmp, &dest).map_err(|e| Error::io_path("renaming into place", &dest, e))?;
    guard.0 = None;
    Ok(Packed {
        path: dest,
        name,
        version,
        manifest_digest: written.manifest_digest,
        layer: written.layer,
        file_size: written.file_size,
        entries: report.entries,
        cleaned: report.cleaned,
        skipped: report.skipped,
        annotations: ann,
    })
}
