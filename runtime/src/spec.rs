//! Reading and checking a bundle's config.json, with errors that name the file, the
//! field and the problem. Unknown fields are accepted (as runc does) but reported, so a
//! typo in a spec does not silently do nothing.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

pub struct LoadedSpec {
    pub spec: Spec,
    /// Absolute, canonical bundle directory.
    pub bundle: PathBuf,
    /// Absolute, canonical root filesystem.
    pub rootfs: PathBuf,
    /// JSON paths of fields this runtime does not know, e.g. `process.bogus`.
    pub unknown_fields: Vec<String>,
}

/// Loads `<bundle>/config.json` and checks what every container needs.
pub fn load_bundle(bundle: &Path) -> Result<LoadedSpec> {
    let bundle_err = |reason: String| Error::Bundle {
        path: bundle.to_path_buf(),
        reason,
    };
    let bundle_abs = fs::canonicalize(bundle).map_err(|e| {
        bundle_err(match e.kind() {
            std::io::ErrorKind::NotFound => "no such directory".into(),
            _ => e.to_string(),
        })
    })?;
    if !bundle_abs.is_dir() {
        return Err(bundle_err("not a directory".into()));
    }
    let config_path = bundle_abs.join("config.json");
    let data = fs::read(&config_path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => bundle_err("has no config.json".into()),
        _ => Error::io(format!("read {}", config_path.display()), e),
    })?;
    let (spec, unknown_fields) = parse(&data).map_err(|reason| Error::InvalidConfig {
        path: config_path.clone(),
        reason,
    })?;
    validate(&spec).map_err(|reason| Error::InvalidConfig {
        path: config_path.clone(),
        reason,
    })?;
    let root = spec.root().as_ref().expect("validated");
    let rootfs_given = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle_abs.join(root.path())
    };
    let rootfs = fs::canonicalize(&rootfs_given).map_err(|e| Error::InvalidConfig {
        path: config_path.clone(),
        reason: format!("root.path {}: {e}", rootfs_given.display()),
    })?;
    if !rootfs.is_dir() {
        return Err(Error::InvalidConfig {
            path: config_path,
            reason: format!("root.path {} is not a directory", rootfs.display()),
        });
    }
    Ok(LoadedSpec {
        spec,
        bundle: bundle_abs,
        rootfs,
        unknown_fields,
    })
}

/// Parses config.json text, collecting unknown fields instead of failing on them.
/// Errors name the offending field (`process.args: invalid type ...`).
pub fn parse(data: &[u8]) -> std::result::Result<(Spec, Vec<String>), String> {
    let mut value: serde_json::Value =
        serde_json::from_slice(data).map_err(|e| format!("invalid JSON: {e}"))?;
    apply_runc_defaults(&mut value);
    let mut unknown = Vec::new();
    let spec: Spec = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(
        value,
        &mut |path: serde_ignored::Path| unknown.push(field_path(&path)),
    ))
    .map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.into_inner().to_string()
        } else {
            format!("{path}: {}", e.into_inner())
        }
    })?;
    Ok((spec, unknown))
}

/// runc (Go) reads an absent `process.user` as uid 0, gid 0; oci-spec requires it.
fn apply_runc_defaults(value: &mut serde_json::Value) {
    if let Some(process) = value.get_mut("process").and_then(|p| p.as_object_mut()) {
        process
            .entry("user")
            .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
    }
}

/// "process.bogus" (serde_ignored prints Option layers as "?").
fn field_path(path: &serde_ignored::Path) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => join_path(field_path(parent), &index.to_string()),
        Path::Map { parent, key } => join_path(field_path(parent), key),
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => field_path(parent),
    }
}

fn join_path(parent: String, segment: &str) -> String {
    if parent.is_empty() {
        segment.to_string()
    } else {
        format!("{parent}.{segment}")
    }
}

/// The checks runc makes before touching the system, in its words where they exist.
pub fn validate(spec: &Spec) -> std::result::Result<(), String> {
    let version = spec.version();
    if version.is_empty() {
        return Err("ociVersion is required".into());
    }
    match version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok())
    {
        Some(1) => {}
        _ => {
            return Err(format!(
                "ociVersion {version:?} is not supported (need 1.x)"
            ))
        }
    }
    let root = spec.root().as_ref().ok_or("root must be specified")?;
    if root.path().as_os_str().is_empty() {
        return Err("root.path must not be empty".into());
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or("process property must not be empty")?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err("process.args must not be empty".into());
    }
    if !process.cwd().is_absolute() {
        return Err(format!(
            "process.cwd {:?} must be an absolute path",
            process.cwd()
        ));
    }
    let linux = spec
        .linux()
        .as_ref()
        .ok_or("linux section is required for Linux containers")?;
    if let Some(namespaces) = linux.namespaces() {
        let mut seen: Vec<LinuxNamespaceType> = Vec::new();
        for ns in namespaces {
            if seen.contains(&ns.typ()) {
                return Err(format!("namespace {:?} is listed twice", ns.typ()));
            }
            seen.push(ns.typ());
        }
    }
    if let Some(mounts) = spec.mounts() {
        for m in mounts {
            if !m.destination().is_absolute() {
                return Err(format!(
                    "mount destination {:?} must be an absolute path",
                    m.destination()
                ));
            }
        }
    }
    libcontainer::validator::Validator::validate_spec(spec).map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
        "process":{"args":["true"],"cwd":"/","user":{"uid":0,"gid":0}},
        "linux":{"namespaces":[{"type":"mount"},{"type":"pid"}]}}"#;

    fn reason(json: &str) -> String {
        match parse(json.as_bytes()) {
            Err(e) => e,
            Ok((spec, _)) => validate(&spec).expect_err("should be rejected"),
        }
    }

    #[test]
    fn accepts_minimal_spec() {
        let (spec, unknown) = parse(GOOD.as_bytes()).unwrap();
        validate(&spec).unwrap();
        assert!(unknown.is_empty());
    }

    #[test]
    fn missing_user_means_root_like_runc() {
        let json = GOOD.replace(r#","user":{"uid":0,"gid":0}"#, "");
        let (spec, _) = parse(json.as_bytes()).unwrap();
        assert_eq!(spec.process().as_ref().unwrap().user().uid(), 0);
    }

    #[test]
    fn reports_unknown_fields_without_failing() {
        let json = GOOD.replace(r#""cwd":"/""#, r#""cwd":"/","bogus":1"#);
        let (_, unknown) = parse(json.as_bytes()).unwrap();
        assert_eq!(unknown, vec!["process.bogus"]);
        let json = GOOD.replace(r#"{"type":"mount"}"#, r#"{"type":"mount","x":1}"#);
        let (_, unknown) = parse(json.as_bytes()).unwrap();
        assert_eq!(unknown, vec!["linux.namespaces.0.x"]);
    }

    #[test]
    fn clear_errors() {
        assert!(reason(r#"{"ociVersion": "#).starts_with("invalid JSON"));
        assert!(
            reason(r#"{"ociVersion":"1.0.2","process":{"args":"true"}}"#)
                .starts_with("process.args: invalid type")
        );
        assert_eq!(reason("{}"), "ociVersion is required");
        assert!(reason(&GOOD.replace("1.0.2", "2.0.0")).contains("not supported"));
        assert_eq!(
            reason(r#"{"ociVersion":"1.0.2","process":{"args":["x"],"cwd":"/"},"linux":{}}"#),
            "root must be specified"
        );
        assert!(reason(&GOOD.replace(r#"["true"]"#, "[]")).contains("args must not be empty"));
        assert!(reason(&GOOD.replace(r#""cwd":"/""#, r#""cwd":"rel""#)).contains("absolute"));
        assert!(
            reason(&GOOD.replace(r#"{"type":"pid"}"#, r#"{"type":"mount"}"#)).contains("twice")
        );
        assert!(reason(&GOOD.replace(r#""type":"pid""#, r#""type":"foo""#))
            .contains("linux.namespaces"));
    }
}
