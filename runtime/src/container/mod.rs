//! Container operations, one file each; the `vzrun` binary only parses and prints.

pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
pub mod hooks;
pub mod kill;
pub mod pause;
pub mod ps;
pub mod query;
pub mod run;
pub mod start;
pub mod update;

use oci_spec::runtime::Spec;

use crate::error::{Error, Result};
use crate::store::{self, ContainerDir};

/// The spec a container was created with (after `prepare`).
pub fn load_spec(dir: &ContainerDir) -> Result<Spec> {
    let path = dir.file(store::CONFIG_FILE);
    let data =
        std::fs::read(&path).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
    serde_json::from_slice(&data).map_err(|e| Error::Damaged {
        id: dir.id.clone(),
        reason: format!("config.json is unreadable: {e}"),
    })
}
