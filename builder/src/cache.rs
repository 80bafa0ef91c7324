//! The template cache: a directory (default `/vz/template/cache`) holding one
//! sub-directory per template name and one archive per version:
//!
//! ```text
//! /vz/template/cache/debian-12-x86_64-minimal/20250101.oci.tar
//! /vz/template/cache/debian-12-x86_64-minimal/20250301.oci.tar
//! ```
//!
//! Names starting with a dot (temporary files of a pack in progress) are
//! ignored. "latest" is the highest version in [`crate::compare_versions`] order.

use crate::error::{Error, Result};
use crate::image::TemplateArchive;
use crate::util::{compare_versions, validate_name, validate_version};
use std::path::{Path, PathBuf};

/// The default template directory, as in OpenVZ.
pub const DEFAULT_CACHE_DIR: &str = "/vz/template/cache";
/// File name suffix of a template archive.
pub const SUFFIX: &str = ".oci.tar";

/// A template cache directory.
#[derive(Debug, Clone)]
pub struct TemplateCache {
    dir: PathBuf,
}

/// One template found in a cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRef {
    pub name: String,
    pub version: String,
    pub path: PathBuf,
}

impl TemplateCache {
    /// A cache rooted at `dir` (nothing is created or read yet).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        TemplateCache { dir: dir.into() }
    }

    /// The cache's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Directory holding every version of `name`.
    pub fn template_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Path of `name` at `version`.
    pub fn path_for(&self, name: &str, version: &str) -> PathBuf {
        self.dir.join(name).join(format!("{version}{SUFFIX}"))
    }

    /// Versions of `name`, oldest first.
    pub fn versions(&self, name: &str) -> Result<Vec<TemplateRef>> {
        let d = self.template_dir(name);
        let rd = match std::fs::read_dir(&d) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io_path("listing", &d, e)),
        };
        let mut out = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|e| Error::io_path("listing", &d, e))?;
            let fname = ent.file_name().to_string_lossy().to_string();
            if fname.starts_with('.') {
                continue;
            }
            let Some(version) = fname.strip_suffix(SUFFIX) else {
                continue;
            };
            if validate_version(version).is_err() {
                continue;
            }
            out.push(TemplateRef {
                name: name.to_string(),
                version: version.to_string(),
                path: ent.path(),
            });
        }
        out.sort_by(|a, b| compare_versions(&a.version, &b.version));
        Ok(out)
    }

    /// Every template in the cache, by name then version.
    pub fn list(&self) -> Result<Vec<TemplateRef>> {
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io_path("listing", &self.dir, e)),
        };
        let mut names = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|e| Error::io_path("listing", &self.dir, e))?;
            let n = ent.file_name().to_string_lossy().to_string();
            if n.starts_with('.') || validate_name(&n).is_err() || !ent.path().is_dir() {
                continue;
            }
            names.push(n);
        }
        names.sort();
        let mut out = Vec::new();
        for n in names {
            out.extend(self.versions(&n)?);
        }
        Ok(out)
    }

    /// Resolves `NAME` (latest version) or `NAME:VERSION`.
    /// Returns [`Error::NotFound`] when nothing matches.
    pub fn resolve(&self, spec: &str) -> Result<TemplateRef> {
        let (name, version) = match spec.split_once(':') {
            Some((n, v)) if v != "latest" => (n, Some(v)),
            Some((n, _)) => (n, None),
            None => (spec, None),
        };
        validate_name(name)?;
        if let Some(v) = version {
            validate_version(v)?;
            let p = self.path_for(name, v);
            return if p.is_file() {
                Ok(TemplateRef {
                    name: name.into(),
                    version: v.into(),
                    path: p,
                })
            } else {
                Err(Error::NotFound(format!(
                    "{name}:{v} in {}",
                    self.dir.display()
                )))
            };
        }
        self.versions(name)?
            .pop()
            .ok_or_else(|| Error::NotFound(format!("{name} in {}", self.dir.display())))
    }

    /// Opens a resolved template (checks its metadata, not yet the layer).
    pub fn open(&self, spec: &str) -> Result<TemplateArchive> {
        TemplateArchive::open(&self.resolve(spec)?.path)
    }
}
