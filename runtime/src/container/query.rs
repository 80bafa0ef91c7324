//! `state` and `list`: read-only views, taken without locks (every file they read is
//! replaced atomically, so they never see a half-written one).

use serde::Serialize;

use crate::error::{Error, Result};
use crate::state::{ContainerState, OciState};
use crate::store::{self, ContainerDir};
use crate::Runtime;

pub fn state(rt: &Runtime, id: &str) -> Result<OciState> {
    let dir = ContainerDir::new(&rt.root, id)?;
    let state = ContainerState::load(&dir)?;
    let status = state.status();
    Ok(state.oci_state(status))
}

/// One row of `list`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListEntry {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: String,
    pub bundle: String,
    pub rootfs: String,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
}

pub fn list(rt: &Runtime) -> Result<Vec<ListEntry>> {
    let mut out = Vec::new();
    for id in store::list_ids(&rt.root)? {
        let dir = ContainerDir::new(&rt.root, &id)?;
        match ContainerState::load(&dir) {
            Ok(state) => {
                let oci = state.oci_state(state.status());
                out.push(ListEntry {
                    oci_version: oci.oci_version,
                    id: oci.id,
                    pid: oci.pid,
                    status: oci.status.to_string(),
                    bundle: oci.bundle.display().to_string(),
                    rootfs: oci.rootfs.display().to_string(),
                    created: oci.created,
                    owner: owner_name(state.owner),
                    annotations: oci.annotations,
                });
            }
            // Deleted while we listed.
            Err(Error::NotFound(_)) => {}
            // A create killed half-way: show it so operators find it and delete it.
            Err(Error::Damaged { .. }) => out.push(ListEntry {
                oci_version: String::new(),
                id,
                pid: 0,
                status: "damaged".into(),
                bundle: String::new(),
                rootfs: String::new(),
                created: String::new(),
                owner: String::new(),
                annotations: Default::default(),
            }),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The owner column: the user name from /etc/passwd, or the uid (never NSS look-ups,
/// which may hang on network directories).
fn owner_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let mut f = line.split(':');
                let name = f.next()?;
                let id: u32 = f.nth(1)?.parse().ok()?;
                (id == uid).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}
