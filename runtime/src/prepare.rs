//! Turns the spec a user gave into the spec libcontainer executes. Every departure
//! from the user's spec is made here, in one place, so it can be read and tested:
//!
//! * `root.path` becomes the canonical absolute rootfs (libcontainer resolves nothing);
//! * a missing `linux.cgroupsPath` becomes `/vzrun/<id>`;
//! * the `tmpcopyup` mount option (podman's systemd mode; not an OCI option, unknown
//!   to libcontainer, which would hand it to the kernel and fail) is removed from the mount,
//!   and mount propagation options (`rprivate`, `rslave`, `shared`...), which libcontainer
//!   parses but never applies, are collected; both are then done by one internal
//!   createContainer hook (`vzrun __mount-setup`, see `copyup`), which runs in the
//!   container's mount namespace after every mount and before pivot_root. Specs that need
//!   neither get no hook (no extra process on the fast path);
//! * `org.openvz.*` resource annotations (`org.openvz.cpuunits`, `org.openvz.ram`, ...:
//!   the `vzctl set` options, with their value syntax; docs/RESOURCES.md) become
//!   `linux.resources` through the same translation vzctl uses, so engines (podman
//!   `--annotation`, containerd) get OpenVZ's limits; they override what the spec says.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{HookBuilder, Hooks, Spec};

use crate::cgroups;
use crate::error::{Error, Result};

/// argv[1] of the internal copy-up hook; hidden from the command line help.
pub const MOUNT_SETUP_HOOK_ARG: &str = "__mount-setup";

/// What the internal mount-setup hook does, passed to it as JSON.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MountSetup {
    /// tmpfs destinations to fill with the image's content.
    #[serde(default)]
    pub copyup: Vec<PathBuf>,
    /// (destination, propagation option) in spec order.
    #[serde(default)]
    pub propagation: Vec<(PathBuf, String)>,
    /// A `cgroup` mount asked to be read-only: libcontainer mounts the hierarchies
    /// below it read-write whatever the options say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly_cgroup: Option<PathBuf>,
}

const PROPAGATION_OPTIONS: &[&str] = &[
    "private",
    "rprivate",
    "slave",
    "rslave",
    "shared",
    "rshared",
    "unbindable",
    "runbindable",
];

pub struct Prepared {
    pub spec: Spec,
    pub cgroup_path: PathBuf,
}

pub fn prepare(mut spec: Spec, id: &str, rootfs: &Path, runtime_exe: &Path) -> Result<Prepared> {
    let mut root = spec.root().clone().expect("validated spec has a root");
    root.set_path(rootfs.to_path_buf());
    spec.set_root(Some(root));

    let mut linux = spec.linux().clone().expect("validated spec has linux");
    let cgroup_path = match linux.cgroups_path() {
        Some(p) if !p.as_os_str().is_empty() => p.clone(),
        _ => cgroups::default_path(id),
    };
    linux.set_cgroups_path(Some(cgroup_path.clone()));
    spec.set_linux(Some(linux));
    crate::openvz::resources::apply_annotations(&mut spec, rootfs)
        .map_err(|e| Error::InvalidArgument(e.message))?;

    let setup = MountSetup {
        copyup: strip_tmpcopyup(&mut spec),
        propagation: propagation_options(&spec),
        readonly_cgroup: readonly_cgroup_mount(&spec),
    };
    if setup != MountSetup::default() {
        let args = vec![
            "vzrun".to_string(),
            MOUNT_SETUP_HOOK_ARG.to_string(),
            rootfs.display().to_string(),
            serde_json::to_string(&setup).expect("mount setup serializes"),
        ];
        let hook = HookBuilder::default()
            .path(runtime_exe)
            .args(args)
            .build()
            .map_err(|e| Error::Container(format!("build mount-setup hook: {e}")))?;
        let mut hooks: Hooks = spec.hooks().clone().unwrap_or_default();
        let mut create_container = hooks.create_container().clone().unwrap_or_default();
        create_container.insert(0, hook);
        hooks.set_create_container(Some(create_container));
        spec.set_hooks(Some(hooks));
    }

    Ok(Prepared { spec, cgroup_path })
}

fn readonly_cgroup_mount(spec: &Spec) -> Option<PathBuf> {
    spec.mounts().iter().flatten().find_map(|m| {
        let readonly = m.options().iter().flatten().any(|o| o == "ro");
        (m.typ().as_deref() == Some("cgroup") && readonly).then(|| m.destination().clone())
    })
}

fn propagation_options(spec: &Spec) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for mount in spec.mounts().iter().flatten() {
        for option in mount.options().iter().flatten() {
            if PROPAGATION_OPTIONS.contains(&option.as_str()) {
                out.push((mount.destination().clone(), option.clone()));
            }
        }
    }
    out
}

/// Removes `tmpcopyup` from tmpfs mounts and returns their destinations.
fn strip_tmpcopyup(spec: &mut Spec) -> Vec<PathBuf> {
    let mut targets = Vec::new();
    let Some(mut mounts) = spec.mounts().clone() else {
        return targets;
    };
    for mount in &mut mounts {
        let Some(options) = mount.options().clone() else {
            continue;
        };
        if !options.iter().any(|o| o == "tmpcopyup") {
            continue;
        }
        let kept: Vec<String> = options.into_iter().filter(|o| o != "tmpcopyup").collect();
        mount.set_options(Some(kept));
        if mount.typ().as_deref() == Some("tmpfs") {
            targets.push(mount.destination().clone());
        }
    }
    spec.set_mounts(Some(mounts));
    targets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    const BASE: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs","readonly":true},
        "process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}},"linux":{},
        "mounts":[{"destination":"/run","type":"tmpfs","source":"tmpfs","options":["nosuid","tmpcopyup","mode=755"]},
                  {"destination":"/proc","type":"proc","source":"proc"}]}"#;

    #[test]
    fn defaults_cgroup_path_and_absolute_root() {
        let p = prepare(
            spec(BASE),
            "c1",
            Path::new("/b/rootfs"),
            Path::new("/usr/bin/vzrun"),
        )
        .unwrap();
        assert_eq!(p.cgroup_path, Path::new("/vzrun/c1"));
        assert_eq!(
            p.spec.linux().as_ref().unwrap().cgroups_path().as_deref(),
            Some(Path::new("/vzrun/c1"))
        );
        let root = p.spec.root().as_ref().unwrap();
        assert_eq!(root.path(), Path::new("/b/rootfs"));
        assert_eq!(root.readonly(), Some(true), "readonly must survive");
    }

    #[test]
    fn keeps_given_cgroup_path() {
        let json = BASE.replace(r#""linux":{}"#, r#""linux":{"cgroupsPath":"/machine/x"}"#);
        let p = prepare(spec(&json), "c1", Path::new("/r"), Path::new("/v")).unwrap();
        assert_eq!(p.cgroup_path, Path::new("/machine/x"));
    }

    #[test]
    fn tmpcopyup_becomes_first_create_container_hook() {
        let json = BASE.replace(
            r#""linux":{}"#,
            r#""linux":{},"hooks":{"createContainer":[{"path":"/bin/user-hook"}]}"#,
        );
        let p = prepare(
            spec(&json),
            "c1",
            Path::new("/b/rootfs"),
            Path::new("/usr/bin/vzrun"),
        )
        .unwrap();
        let run = &p.spec.mounts().as_ref().unwrap()[0];
        assert_eq!(
            run.options().as_ref().unwrap(),
            &vec!["nosuid".to_string(), "mode=755".to_string()]
        );
        let hooks = p
            .spec
            .hooks()
            .as_ref()
            .unwrap()
            .create_container()
            .clone()
            .unwrap();
        assert_eq!(hooks.len(), 2);
        assert_eq!(hooks[0].path(), Path::new("/usr/bin/vzrun"));
        let args = hooks[0].args().as_ref().unwrap();
        assert_eq!(&args[..3], &["vzrun", MOUNT_SETUP_HOOK_ARG, "/b/rootfs"]);
        let setup: MountSetup = serde_json::from_str(&args[3]).unwrap();
        assert_eq!(setup.copyup, vec![PathBuf::from("/run")]);
        assert_eq!(hooks[1].path(), Path::new("/bin/user-hook"));
    }

    #[test]
    fn propagation_options_go_to_the_hook() {
        let json = BASE.replace("\"tmpcopyup\",", "").replace(
            r#"{"destination":"/proc""#,
            r#"{"destination":"/data","type":"bind","source":"/x","options":["rbind","rprivate"]},{"destination":"/proc""#,
        );
        let p = prepare(spec(&json), "c1", Path::new("/r"), Path::new("/v")).unwrap();
        let hooks = p
            .spec
            .hooks()
            .as_ref()
            .unwrap()
            .create_container()
            .clone()
            .unwrap();
        let setup: MountSetup =
            serde_json::from_str(&hooks[0].args().as_ref().unwrap()[3]).unwrap();
        assert!(setup.copyup.is_empty());
        assert_eq!(
            setup.propagation,
            vec![(PathBuf::from("/data"), "rprivate".to_string())]
        );
    }

    #[test]
    fn readonly_cgroup_mount_goes_to_the_hook() {
        let json = BASE.replace("\"tmpcopyup\",", "").replace(
            r#"{"destination":"/proc""#,
            r#"{"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup","options":["nosuid","ro"]},{"destination":"/proc""#,
        );
        let p = prepare(spec(&json), "c1", Path::new("/r"), Path::new("/v")).unwrap();
        let hooks = p
            .spec
            .hooks()
            .as_ref()
            .unwrap()
            .create_container()
            .clone()
            .unwrap();
        let setup: MountSetup =
            serde_json::from_str(&hooks[0].args().as_ref().unwrap()[3]).unwrap();
        assert_eq!(setup.readonly_cgroup, Some(PathBuf::from("/sys/fs/cgroup")));
    }

    #[test]
    fn openvz_annotations_become_resources() {
        let json = BASE.replace(
            r#""linux":{}"#,
            r#""linux":{"resources":{"memory":{"limit":1000000}}},"annotations":{"org.openvz.numproc":"32","org.openvz.cpulimit":"50","org.openvz.ctid":"7"}"#,
        );
        let p = prepare(spec(&json), "c1", Path::new("/r"), Path::new("/v")).unwrap();
        let r = p
            .spec
            .linux()
            .as_ref()
            .unwrap()
            .resources()
            .clone()
            .unwrap();
        assert_eq!(r.pids().as_ref().unwrap().limit(), 32);
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(50_000));
        assert_eq!(
            r.memory().as_ref().unwrap().limit(),
            Some(1_000_000),
            "what no annotation names is kept"
        );
        let bad = BASE.replace(
            r#""linux":{}"#,
            r#""linux":{},"annotations":{"org.openvz.cpuunits":"5"}"#,
        );
        let err = match prepare(spec(&bad), "c1", Path::new("/r"), Path::new("/v")) {
            Err(e) => e,
            Ok(_) => panic!("a bad annotation must be refused"),
        };
        assert!(err.to_string().contains("org.openvz.cpuunits"), "{err}");
    }

    #[test]
    fn no_hook_without_tmpcopyup() {
        let json = BASE.replace("\"tmpcopyup\",", "");
        let p = prepare(spec(&json), "c1", Path::new("/r"), Path::new("/v")).unwrap();
        assert!(p.spec.hooks().is_none());
    }
}
