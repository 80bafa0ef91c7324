//! Turns the spec a user gave into the spec libcontainer executes. Every departure
//! from the user's spec is made here, in one place, so it can be read and tested:
//!
//! * `root.path` becomes the canonical absolute rootfs (libcontainer resolves nothing);
//! * a missing `linux.cgroupsPath` becomes `/vzrun/<id>`;
//! * the `tmpcopyup` mount option (podman's systemd mode; not an OCI option, unknown
//!   to libcontainer, which would hand it to the kernel and fail) is removed from the mount,
//!   and mount propagation options (`rprivate`, `rslave`, `shared`...), which libcontainer
//!   parses but never applies, are collected; on cgroup v1 hosts the `cgroup` mount is
//!   taken out of the spec (libcontainer cannot mount comounted hierarchies and ignores
//!   `ro`); all of it is then done by one internal createContainer hook, the small
//!   `vzrun-setup` program (see `mountsetup`), which runs in the container's mount
//!   namespace after every mount and before pivot_root. Specs that need none of it get no
//!   hook (no extra process on the fast path);
//! * `org.openvz.*` resource annotations (`org.openvz.cpuunits`, `org.openvz.ram`, ...:
//!   the `vzctl set` options, with their value syntax; docs/RESOURCES.md) become
//!   `linux.resources` through the same translation vzctl uses, so engines (podman
//!   `--annotation`, containerd) get OpenVZ's limits; they override what the spec says.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{HookBuilder, Hooks, Spec};

use crate::cgroups;
use crate::error::{Error, Result};

pub use crate::mountsetup::{CgroupMount, MountSetup};

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
    /// Hugepage limits taken out of the spec because this hybrid host keeps hugetlb in
    /// the unified hierarchy (applied by `create` through `cgroups::apply_unified_hugetlb`).
    pub unified_hugetlb: Vec<(String, i64)>,
}

pub fn prepare(spec: Spec, id: &str, rootfs: &Path, runtime_exe: &Path) -> Result<Prepared> {
    prepare_on(spec, id, rootfs, runtime_exe, cgroups::Layout::detect())
}

/// `prepare` for a given cgroup layout (tests use both kinds).
pub fn prepare_on(
    mut spec: Spec,
    id: &str,
    rootfs: &Path,
    runtime_exe: &Path,
    layout: &cgroups::Layout,
) -> Result<Prepared> {
    let mut root = spec.root().clone().expect("validated spec has a root");
    root.set_path(rootfs.to_path_buf());
    spec.set_root(Some(root));

    let mut linux = spec.linux().clone().expect("validated spec has linux");
    let cgroup_path = match linux.cgroups_path() {
        Some(p) if !p.as_os_str().is_empty() => p.clone(),
        _ => cgroups::default_path(id),
    };
    linux.set_cgroups_path(Some(cgroup_path.clone()));
    let wants_hugepages = linux
        .resources()
        .as_ref()
        .and_then(|r| r.hugepage_limits().as_ref())
        .is_some_and(|l| !l.is_empty());
    let unified_hugetlb =
        if wants_hugepages && !layout.is_unified() && cgroups::hugetlb_is_unified_only() {
            take_hugepage_limits(&mut linux)
        } else {
            Vec::new()
        };
    check_network_controllers(&linux)?;
    spec.set_linux(Some(linux));
    crate::openvz::resources::apply_annotations(&mut spec, rootfs, layout)
        .map_err(|e| Error::InvalidArgument(e.message))?;

    let readonly_cgroup = readonly_cgroup_mount(&spec);
    let cgroup_dest = spec
        .mounts()
        .iter()
        .flatten()
        .find(|m| m.typ().as_deref() == Some("cgroup"))
        .map(|m| m.destination().clone());
    let mut setup = MountSetup {
        rootfs: rootfs.to_path_buf(),
        copyup: strip_tmpcopyup(&mut spec),
        propagation: propagation_options(&spec),
        keep_writable: mounts_below(&spec, cgroup_dest.as_deref()),
        ..Default::default()
    };
    if layout.is_unified() {
        setup.readonly_cgroup = readonly_cgroup;
    } else {
        setup.cgroup = take_v1_cgroup_mount(&mut spec, layout, &cgroup_path);
    }
    if !setup.is_empty() {
        let program = runtime_exe.with_file_name(crate::mountsetup::PROGRAM);
        let mut args = vec![crate::mountsetup::PROGRAM.to_string()];
        args.extend(setup.to_args());
        let hook = HookBuilder::default()
            .path(program)
            .args(args)
            .build()
            .map_err(|e| Error::Container(format!("build mount-setup hook: {e}")))?;
        let mut hooks: Hooks = spec.hooks().clone().unwrap_or_default();
        let mut create_container = hooks.create_container().clone().unwrap_or_default();
        create_container.insert(0, hook);
        hooks.set_create_container(Some(create_container));
        spec.set_hooks(Some(hooks));
    }

    Ok(Prepared {
        spec,
        cgroup_path,
        unified_hugetlb,
    })
}

/// Removes `resources.hugepageLimits` and returns them as (page size, limit).
pub fn take_hugepage_limits(linux: &mut oci_spec::runtime::Linux) -> Vec<(String, i64)> {
    let Some(mut resources) = linux.resources().clone() else {
        return Vec::new();
    };
    let limits: Vec<(String, i64)> = resources
        .hugepage_limits()
        .iter()
        .flatten()
        .map(|l| (l.page_size().clone(), l.limit()))
        .collect();
    resources.set_hugepage_limits(None);
    linux.set_resources(Some(resources));
    limits
}

/// net_cls/net_prio only exist as v1 controllers; hosts often leave them unmounted.
/// Refuse clearly instead of libcgroups' "cgroup required" deep in the create.
fn check_network_controllers(linux: &oci_spec::runtime::Linux) -> Result<()> {
    let Some(network) = linux.resources().as_ref().and_then(|r| r.network().clone()) else {
        return Ok(());
    };
    let layout = cgroups::Layout::detect();
    if layout.is_unified() {
        return Err(Error::InvalidArgument(
            "linux.resources.network (net_cls/net_prio) has no cgroup v2 equivalent on this host"
                .into(),
        ));
    }
    for (wanted, controller) in [
        (network.class_id().is_some(), "net_cls"),
        (network.priorities().is_some(), "net_prio"),
    ] {
        if wanted && !layout.v1.contains_key(controller) {
            return Err(Error::InvalidArgument(format!(
                "linux.resources.network needs the {controller} cgroup controller, which is not mounted on this host \
                 (mount it, e.g. as scripts/install-deps.sh does: mount -t cgroup -o {controller} cgroup /sys/fs/cgroup/{controller})"
            )));
        }
    }
    Ok(())
}

/// On a cgroup v1 host, replaces the spec's `cgroup` mount by its tmpfs and describes the
/// hierarchies vzrun-setup mounts into it: every hierarchy of the host, namespaced when
/// the container has a cgroup namespace.
fn take_v1_cgroup_mount(
    spec: &mut Spec,
    layout: &cgroups::Layout,
    cgroup_path: &Path,
) -> Option<CgroupMount> {
    let mut mounts = spec.mounts().clone()?;
    let index = mounts
        .iter()
        .position(|m| m.typ().as_deref() == Some("cgroup"))?;
    let mount = mounts[index].clone();
    // The tmpfs stays where the cgroup mount was in the mount order, so mounts the spec
    // puts below it (podman's name=systemd bind) still land in it.
    mounts[index] = oci_spec::runtime::MountBuilder::default()
        .destination(mount.destination().clone())
        .typ("tmpfs")
        .source("tmpfs")
        .options(
            ["nosuid", "nodev", "noexec", "relatime", "mode=755"]
                .map(String::from)
                .to_vec(),
        )
        .build()
        .expect("tmpfs mount is valid");
    spec.set_mounts(Some(mounts));
    let namespaced = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Cgroup)
        });
    let mut hierarchies: Vec<(PathBuf, String)> = Vec::new();
    for (controller, mount_point) in &layout.v1 {
        match hierarchies.iter_mut().find(|(m, _)| m == mount_point) {
            Some((_, options)) => {
                options.push(',');
                options.push_str(controller);
            }
            None => hierarchies.push((mount_point.clone(), controller.clone())),
        }
    }
    hierarchies.sort();
    Some(CgroupMount {
        dest: mount.destination().clone(),
        readonly: mount.options().iter().flatten().any(|o| o == "ro"),
        namespaced,
        cgroup_path: cgroup_path.to_path_buf(),
        hierarchies,
    })
}

/// Destinations of the spec's non-cgroup mounts strictly below `top`.
fn mounts_below(spec: &Spec, top: Option<&Path>) -> Vec<PathBuf> {
    let Some(top) = top else { return Vec::new() };
    spec.mounts()
        .iter()
        .flatten()
        .filter(|m| m.typ().as_deref() != Some("cgroup"))
        .map(|m| m.destination().clone())
        .filter(|d| d.starts_with(top) && d != top)
        .collect()
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

    fn hybrid() -> cgroups::Layout {
        cgroups::Layout::parse_mountinfo(
            "25 30 0:22 / /sys/fs/cgroup ro - tmpfs tmpfs ro\n\
             26 25 0:23 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
             27 25 0:24 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n\
             28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
             29 25 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
        )
    }

    fn unified() -> cgroups::Layout {
        cgroups::Layout::parse_mountinfo("25 30 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n")
    }

    fn run(json: &str, layout: &cgroups::Layout) -> Prepared {
        prepare_on(
            spec(json),
            "c1",
            Path::new("/b/rootfs"),
            Path::new("/usr/bin/vzrun"),
            layout,
        )
        .unwrap()
    }

    fn setup_of(p: &Prepared) -> MountSetup {
        let hooks = p
            .spec
            .hooks()
            .as_ref()
            .unwrap()
            .create_container()
            .clone()
            .unwrap();
        assert_eq!(hooks[0].path(), Path::new("/usr/bin/vzrun-setup"));
        let args: Vec<std::ffi::OsString> = hooks[0].args().as_ref().unwrap()[1..]
            .iter()
            .map(Into::into)
            .collect();
        MountSetup::from_args(&args).unwrap()
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
        let p = run(&json, &unified());
        let mounts = p.spec.mounts().as_ref().unwrap();
        assert_eq!(
            mounts[0].options().as_ref().unwrap(),
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
        assert_eq!(hooks[1].path(), Path::new("/bin/user-hook"));
        let setup = setup_of(&p);
        assert_eq!(setup.rootfs, PathBuf::from("/b/rootfs"));
        assert_eq!(setup.copyup, vec![PathBuf::from("/run")]);
    }

    #[test]
    fn propagation_options_go_to_the_hook() {
        let json = BASE.replace("\"tmpcopyup\",", "").replace(
            r#"{"destination":"/proc""#,
            r#"{"destination":"/data","type":"bind","source":"/x","options":["rbind","rprivate"]},{"destination":"/proc""#,
        );
        let setup = setup_of(&run(&json, &unified()));
        assert!(setup.copyup.is_empty());
        assert_eq!(
            setup.propagation,
            vec![(PathBuf::from("/data"), "rprivate".to_string())]
        );
    }

    const CGROUP_RO: &str = r#"{"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup","options":["nosuid","ro"]},{"destination":"/proc""#;

    #[test]
    fn v2_readonly_cgroup_mount_goes_to_the_hook() {
        let json = BASE
            .replace("\"tmpcopyup\",", "")
            .replace(r#"{"destination":"/proc""#, CGROUP_RO);
        let p = run(&json, &unified());
        assert!(
            p.spec
                .mounts()
                .as_ref()
                .unwrap()
                .iter()
                .any(|m| m.typ().as_deref() == Some("cgroup")),
            "libcontainer mounts cgroup2"
        );
        let setup = setup_of(&p);
        assert_eq!(setup.readonly_cgroup, Some(PathBuf::from("/sys/fs/cgroup")));
        assert!(setup.keep_writable.is_empty());
        // podman's systemd mode binds name=systemd read-write below the read-only mount
        let json = json.replace(
            r#"{"destination":"/proc""#,
            r#"{"destination":"/sys/fs/cgroup/systemd","type":"bind","source":"/sys/fs/cgroup/systemd","options":["bind","rw"]},{"destination":"/proc""#,
        );
        let setup = setup_of(&run(&json, &unified()));
        assert_eq!(
            setup.keep_writable,
            vec![PathBuf::from("/sys/fs/cgroup/systemd")]
        );
    }

    #[test]
    fn v1_cgroup_mount_is_made_by_the_hook() {
        let json = BASE
            .replace("\"tmpcopyup\",", "")
            .replace(r#"{"destination":"/proc""#, CGROUP_RO);
        let p = run(&json, &hybrid());
        let mounts = p.spec.mounts().as_ref().unwrap();
        assert!(!mounts.iter().any(|m| m.typ().as_deref() == Some("cgroup")));
        assert!(mounts
            .iter()
            .any(|m| m.destination() == Path::new("/sys/fs/cgroup")
                && m.typ().as_deref() == Some("tmpfs")));
        let cgroup = setup_of(&p).cgroup.unwrap();
        assert!(cgroup.readonly && !cgroup.namespaced);
        assert_eq!(cgroup.cgroup_path, PathBuf::from("/vzrun/c1"));
        let mut options: Vec<String> = cgroup.hierarchies.iter().map(|(_, o)| o.clone()).collect();
        options.iter_mut().for_each(|o| {
            let mut parts: Vec<&str> = o.split(',').collect();
            parts.sort();
            *o = parts.join(",");
        });
        assert_eq!(
            options,
            vec!["cpu,cpuacct", "memory", "name=systemd"],
            "one mount per hierarchy, comounts together"
        );
        let json = json.replace(
            r#""linux":{}"#,
            r#""linux":{"namespaces":[{"type":"cgroup"}]}"#,
        );
        assert!(setup_of(&run(&json, &hybrid())).cgroup.unwrap().namespaced);
    }

    #[test]
    fn openvz_annotations_become_resources() {
        let json = BASE.replace(
            r#""linux":{}"#,
            r#""linux":{"resources":{"memory":{"limit":1000000}}},"annotations":{"org.openvz.numproc":"32","org.openvz.cpulimit":"50","org.openvz.cpuunits":"3000"}"#,
        );
        let resources = |p: &Prepared| {
            p.spec
                .linux()
                .as_ref()
                .unwrap()
                .resources()
                .clone()
                .unwrap()
        };
        let r = resources(&run(&json, &hybrid()));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 32);
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(50_000));
        assert_eq!(r.cpu().as_ref().unwrap().shares(), Some(3072));
        assert_eq!(
            r.memory().as_ref().unwrap().limit(),
            Some(1_000_000),
            "what no annotation names is kept"
        );
        // cgroup v2: the weight itself, through the unified map.
        let r = resources(&run(&json, &unified()));
        assert_eq!(r.unified().as_ref().unwrap()["cpu.weight"], "300");
        assert_eq!(r.cpu().as_ref().unwrap().shares(), None);
        let bad = BASE.replace(
            r#""linux":{}"#,
            r#""linux":{},"annotations":{"org.openvz.cpuunits":"5"}"#,
        );
        let err = match prepare_on(
            spec(&bad),
            "c1",
            Path::new("/r"),
            Path::new("/v"),
            &hybrid(),
        ) {
            Err(e) => e,
            Ok(_) => panic!("a bad annotation must be refused"),
        };
        assert!(err.to_string().contains("org.openvz.cpuunits"), "{err}");
    }

    #[test]
    fn no_hook_without_tmpcopyup() {
        let json = BASE.replace("\"tmpcopyup\",", "");
        assert!(run(&json, &hybrid()).spec.hooks().is_none());
        assert!(run(&json, &unified()).spec.hooks().is_none());
    }
}
