//! vzbuild: OpenVZ OS templates as OCI image layouts.
//!
//! A template is one file, an OCI image layout packed in a tar archive
//! (`oci-archive`), with one layer holding the whole root filesystem. Every
//! OCI tool can read it (`skopeo`, `umoci`, `podman load`, `ctr image import`);
//! `vzctl create` unpacks it into a container's private area.
//!
//! # Library API for `vzctl create`
//!
//! The stable surface is small: [`TemplateCache`] to find a template by
//! `NAME[:VERSION]` (latest version when none is given), [`verify`] to check
//! one completely, and [`unpack`] to extract it atomically with all metadata.
//! Errors carry an [`ErrorKind`] so callers can map them to exit codes
//! ([`ErrorKind::NotFound`] is vzctl's 91).
//!
//! ```no_run
//! use vzbuild::{ErrorKind, TemplateCache, UnpackOptions};
//! use std::path::Path;
//!
//! fn create(ctid: u32, ostemplate: &str) -> i32 {
//!     let cache = TemplateCache::new(vzbuild::DEFAULT_CACHE_DIR);
//!     let result = cache.resolve(ostemplate).and_then(|t| {
//!         let private = format!("/vz/private/{ctid}");
//!         // Checks every digest while extracting; nothing is left on error.
//!         vzbuild::unpack(&t.path, Path::new(&private), &UnpackOptions::default())
//!     });
//!     match result {
//!         Ok(_) => 0,
//!         Err(e) => match e.kind() {
//!             ErrorKind::NotFound => 91,
//!             _ => 1,
//!         },
//!     }
//! }
//! ```

pub mod cache;
pub mod compress;
pub mod detect;
pub mod error;
pub mod image;
pub mod pack;
pub mod profile;
pub mod progress;
pub mod recipe;
pub mod tarfmt;
pub mod unpack;
pub mod util;
pub mod walk;

pub use cache::{TemplateCache, TemplateRef, DEFAULT_CACHE_DIR};
pub use compress::Compression;
pub use error::{Error, ErrorKind, Result};
pub use image::TemplateArchive;
pub use pack::{pack, Output, PackOptions, Packed};
pub use profile::Profile;
pub use unpack::{unpack, UnpackOptions, UnpackReport};
pub use util::compare_versions;

/// Fully verifies the template archive at `path`: `oci-layout`, the index,
/// the manifest and config (digest, size, media type, JSON schema), and the
/// layer (digest and size of the compressed blob, digest of the uncompressed
/// tar against the config's `diff_id`). Returns the opened archive.
pub fn verify(path: &std::path::Path) -> Result<TemplateArchive> {
    let ar = TemplateArchive::open(path)?;
    ar.verify_layer(None)?;
    Ok(ar)
}
