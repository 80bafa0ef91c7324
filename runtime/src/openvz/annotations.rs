//! OpenVZ semantics for containers that engines (podman, containerd) start through vzrun,
//! asked for with OCI annotations (`podman run --annotation KEY=VALUE`):
//!
//! | annotation | effect |
//! |---|---|
//! | `org.openvz.private=DIR` | the container's root is DIR, a persistent private area (e.g. one made by `vzctl create`), instead of the engine's image layers; its files outlive the engine's container |
//! | `org.openvz.ctid=CTID` | the same, with DIR = that container's VE_PRIVATE from vzctl's configuration (`$VZCTL_ETC`, default /etc/vz); refused while vzctl runs that container |
//! | `org.openvz.system-container=true` | a system container: its own cgroup namespace with a writable cgroup mount, tmpfs on /run and /tmp, `container=vzrun` in the environment, CAP_SYS_BOOT (so `reboot`/`poweroff` end the init the way a supervisor can tell apart) |
//!
//! The image's command stays the engine's (`podman run IMAGE /sbin/init`).

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde_json::{json, Value};

use super::ct::Ct;
use super::ctid::Ctid;
use super::env::VzEnv;
use crate::error::{Error, Result};

pub const PRIVATE: &str = "org.openvz.private";
pub const CTID: &str = "org.openvz.ctid";
pub const SYSTEM_CONTAINER: &str = "org.openvz.system-container";

/// Applies the annotations to a loaded bundle spec; returns the spec and the rootfs to use.
pub fn apply(spec: Spec, rootfs: PathBuf) -> Result<(Spec, PathBuf)> {
    let annotations = spec.annotations().clone().unwrap_or_default();
    check_known(annotations.keys())?;
    let private = match (annotations.get(PRIVATE), annotations.get(CTID)) {
        (Some(_), Some(_)) => {
            return Err(Error::InvalidArgument(format!(
                "use either {PRIVATE} or {CTID}, not both"
            )))
        }
        (Some(dir), None) => Some(check_private(Path::new(dir))?),
        (None, Some(ctid)) => Some(private_of_ctid(ctid)?),
        (None, None) => None,
    };
    let system = match annotations.get(SYSTEM_CONTAINER).map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(Error::InvalidArgument(format!(
                "{SYSTEM_CONTAINER}={other:?}: use true or false"
            )))
        }
    };
    let mut spec = spec;
    let rootfs = match private {
        Some(dir) => {
            let mut root = spec.root().clone().unwrap_or_default();
            root.set_path(dir.clone());
            root.set_readonly(Some(false));
            spec.set_root(Some(root));
            dir
        }
        None => rootfs,
    };
    if system {
        spec = system_container(spec)?;
    }
    Ok((spec, rootfs))
}

/// Every `org.openvz.*` annotation must be one vzrun knows: a misspelt limit silently
/// ignored would leave a container unlimited.
fn check_known<'a>(names: impl Iterator<Item = &'a String>) -> Result<()> {
    use super::resources::{ANNOTATION_OPTIONS, ANNOTATION_PREFIX};
    use super::translate::{ANNOTATION_CTID, ANNOTATION_INIT};
    for name in names {
        let Some(option) = name.strip_prefix(ANNOTATION_PREFIX) else {
            continue;
        };
        if [
            PRIVATE,
            CTID,
            SYSTEM_CONTAINER,
            ANNOTATION_CTID,
            ANNOTATION_INIT,
        ]
        .contains(&name.as_str())
            || ANNOTATION_OPTIONS.contains(&option)
        {
            continue;
        }
        let hint = if ["diskspace", "diskinodes", "quotatime", "quotaugidlimit"].contains(&option) {
            format!(
                "disk quotas belong to a vzctl container's private area: create one with \
                 `vzctl create CTID --diskspace ...` and run it with {CTID}=CTID"
            )
        } else {
            format!(
                "known: {PRIVATE}, {CTID}, {SYSTEM_CONTAINER}, and {ANNOTATION_PREFIX}{{{}}}",
                ANNOTATION_OPTIONS.join(",")
            )
        };
        return Err(Error::InvalidArgument(format!(
            "unknown annotation {name}: {hint}"
        )));
    }
    Ok(())
}

fn check_private(dir: &Path) -> Result<PathBuf> {
    let canonical = std::fs::canonicalize(dir)
        .map_err(|e| Error::InvalidArgument(format!("{PRIVATE}={}: {e}", dir.display())))?;
    if !canonical.join("bin").exists()
        && !canonical.join("usr").exists()
        && !canonical.join("sbin").exists()
    {
        return Err(Error::InvalidArgument(format!(
            "{PRIVATE}={}: not a root filesystem (no bin, sbin or usr)",
            dir.display()
        )));
    }
    Ok(canonical)
}

fn private_of_ctid(text: &str) -> Result<PathBuf> {
    let env =
        VzEnv::from_environment().map_err(|e| Error::InvalidArgument(format!("{CTID}: {e}")))?;
    let ctid = Ctid::resolve(text, &env.etc)
        .map_err(|e| Error::InvalidArgument(format!("{CTID}={text}: {e}")))?;
    let ct =
        Ct::load(&env, ctid).map_err(|e| Error::InvalidArgument(format!("{CTID}={text}: {e}")))?;
    if !ct.exists {
        return Err(Error::InvalidArgument(format!(
            "{CTID}={text}: container {ctid} does not exist"
        )));
    }
    if ct.is_running(&env) {
        return Err(Error::InvalidArgument(format!(
            "{CTID}={text}: container {ctid} is running under vzctl; stop it first"
        )));
    }
    if super::disk::Layout::of_conf(&ct.conf).ok() == Some(super::disk::Layout::Ploop) {
        return Err(Error::InvalidArgument(format!(
            "{CTID}={text}: container {ctid} keeps its files in an image (VE_LAYOUT=ploop), \
             which only vzctl mounts; use a simfs container"
        )));
    }
    check_private(&ct.private(&env))
}

/// What a system container needs that an application container spec may lack.
fn system_container(spec: Spec) -> Result<Spec> {
    let mut value = serde_json::to_value(&spec).expect("spec serializes");
    // cgroup namespace
    let namespaces = value["linux"]["namespaces"].as_array_mut();
    if let Some(ns) = namespaces {
        if !ns.iter().any(|n| n["type"] == "cgroup") {
            ns.push(json!({"type": "cgroup"}));
        }
    }
    // writable cgroup mount; tmpfs /run and /tmp
    let mounts = value["mounts"]
        .as_array_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    let mut mounts: Vec<Value> = mounts
        .into_iter()
        .map(|mut m| {
            if m["type"] == "cgroup" {
                if let Some(opts) = m["options"].as_array_mut() {
                    opts.retain(|o| o != "ro");
                    opts.push(json!("rw"));
                }
            }
            m
        })
        .collect();
    for dest in ["/run", "/tmp"] {
        if !mounts.iter().any(|m| m["destination"] == dest) {
            mounts.push(json!({"destination": dest, "type": "tmpfs", "source": "tmpfs",
                               "options": ["nosuid", "nodev", if dest == "/tmp" { "mode=1777" } else { "mode=755" }]}));
        }
    }
    if !mounts.iter().any(|m| m["type"] == "cgroup") {
        mounts.push(
            json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                           "options": ["nosuid", "noexec", "nodev", "relatime", "rw"]}),
        );
    }
    value["mounts"] = Value::Array(mounts);
    // container= and CAP_SYS_BOOT
    if let Some(env) = value["process"]["env"].as_array_mut() {
        if !env
            .iter()
            .any(|e| e.as_str().is_some_and(|s| s.starts_with("container=")))
        {
            env.push(json!("container=vzrun"));
        }
    }
    for set in ["bounding", "effective", "permitted"] {
        if let Some(caps) = value["process"]["capabilities"][set].as_array_mut() {
            if !caps.iter().any(|c| c == "CAP_SYS_BOOT") {
                caps.push(json!("CAP_SYS_BOOT"));
            }
        }
    }
    let spec: Spec = serde_json::from_value(value)
        .map_err(|e| Error::Container(format!("system-container spec: {e}")))?;
    debug_assert!(spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_none_or(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Cgroup)));
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn podman_like(annotations: Value) -> Spec {
        serde_json::from_value(json!({
            "ociVersion": "1.0.2",
            "root": {"path": "/overlay/merged", "readonly": false},
            "process": {"args": ["/sbin/init"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                        "env": ["PATH=/bin"],
                        "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}},
            "mounts": [{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid"]}],
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]},
            "annotations": annotations,
        }))
        .unwrap()
    }

    #[test]
    fn private_area_replaces_the_image_root() {
        let private = tempfile::tempdir().unwrap();
        std::fs::create_dir(private.path().join("bin")).unwrap();
        let spec = podman_like(json!({PRIVATE: private.path()}));
        let (spec, rootfs) = apply(spec, "/overlay/merged".into()).unwrap();
        assert_eq!(rootfs, private.path().canonicalize().unwrap());
        assert_eq!(spec.root().as_ref().unwrap().path(), &rootfs);
        let empty = tempfile::tempdir().unwrap();
        assert!(apply(podman_like(json!({PRIVATE: empty.path()})), "/x".into()).is_err());
        assert!(apply(podman_like(json!({PRIVATE: "/nonexistent"})), "/x".into()).is_err());
    }

    #[test]
    fn system_container_additions() {
        let (spec, _) = apply(podman_like(json!({SYSTEM_CONTAINER: "true"})), "/r".into()).unwrap();
        let v = serde_json::to_value(&spec).unwrap();
        assert!(v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "cgroup"));
        let cg = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["type"] == "cgroup")
            .unwrap();
        assert!(!cg["options"].as_array().unwrap().iter().any(|o| o == "ro"));
        assert!(v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["destination"] == "/run"));
        assert!(v["process"]["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "container=vzrun"));
        assert!(v["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "CAP_SYS_BOOT"));
        assert!(apply(podman_like(json!({SYSTEM_CONTAINER: "yes"})), "/r".into()).is_err());
        // A misspelt or unsupported org.openvz.* annotation is refused, naming it.
        let err = apply(podman_like(json!({"org.openvz.rma": "1G"})), "/r".into())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("org.openvz.rma") && err.contains("org.openvz.{numproc"),
            "{err}"
        );
        let err = apply(
            podman_like(json!({"org.openvz.diskspace": "1G"})),
            "/r".into(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("vzctl create"), "{err}");
        assert!(apply(
            podman_like(json!({"org.openvz.ram": "64M", "org.other": "x"})),
            "/r".into()
        )
        .is_ok());
        let (plain, root) = apply(podman_like(json!({})), "/r".into()).unwrap();
        assert_eq!(root, PathBuf::from("/r"));
        assert_eq!(
            serde_json::to_value(&plain).unwrap()["mounts"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
}
