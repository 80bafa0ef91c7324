//! The OpenVZ layer: CT ids, vzctl's configuration files, templates, the translation of
//! a container's config into an OCI spec, and vzctl's operations on top of the runtime
//! core. Everything that decides (config parsing, translation, init detection) is
//! kernel-free and unit-tested; operations touch the kernel through the runtime core.

pub mod annotations;
pub mod beancounters;
pub mod boot;
pub mod config;
pub mod ct;
pub mod ctid;
pub mod disk;
pub mod env;
pub mod error;
pub mod init;
pub mod list;
pub mod lock;
pub mod ops;
pub mod private;
pub mod resources;
pub mod rootfs;
pub mod supervisor;
pub mod translate;

pub use ctid::Ctid;
pub use env::VzEnv;
pub use error::{ExitCode, VzError, VzResult};
