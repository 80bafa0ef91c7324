//! An OpenVZ container's configuration, translated into the OCI spec vzrun runs: a
//! *system* container whose own init is PID 1 on a console, with what systemd expects of
//! a container (systemd.io/CONTAINER_INTERFACE): `container=` in its environment, its
//! own cgroup namespace with a writable cgroup mount, tmpfs on /run and /tmp, a pty as
//! /dev/console, CAP_SYS_BOOT so `reboot`/`poweroff` end the init with SIGHUP/SIGINT.
//! Kernel-free: unit tests check the spec, the integration tests boot it.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde_json::json;

use super::config::ConfigFile;
use super::ctid::Ctid;
use super::init::InitKind;

/// Annotations vzrun puts on (and reads from) OpenVZ containers.
// vzctl's marks on its own bundles. Not `org.openvz.ctid`: that one asks vzrun to take a
// container's private area as the root (annotations.rs), which vzctl's bundles must not do
// (their root is VE_ROOT, where a ploop image is mounted).
pub const ANNOTATION_CTID: &str = "org.openvz.vzctl.ctid";
pub const ANNOTATION_INIT: &str = "org.openvz.vzctl.init";

/// Capabilities of a system container's root. Dropped (not virtualized by namespaces, so
/// they would act on the host): loading modules, raw I/O, setting the clock, MAC policy,
/// the kernel log, wake alarms, suspend blocking, audit control, BPF, perf.
pub const SYSTEM_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_SETFCAP",
    "CAP_CHECKPOINT_RESTORE",
];

pub struct SystemContainer<'a> {
    pub ctid: Ctid,
    pub conf: &'a ConfigFile,
    /// VE_ROOT: the mounted private area.
    pub root: &'a Path,
    pub init: InitKind,
    pub cgroup_path: PathBuf,
}

impl SystemContainer<'_> {
    pub fn hostname(&self) -> String {
        if let Some(h) = self.conf.get("HOSTNAME").filter(|h| !h.is_empty()) {
            return h.to_string();
        }
        std::fs::read_to_string(self.root.join("etc/hostname"))
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_string())
    }

    pub fn spec(&self) -> Spec {
        let caps = SYSTEM_CAPABILITIES;
        let value = json!({
            "ociVersion": "1.2.0",
            "process": {
                "terminal": true,
                "user": {"uid": 0, "gid": 0},
                "args": ["/sbin/init"],
                "env": [
                    "container=vzrun",
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=linux",
                ],
                "cwd": "/",
                "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 20000, "soft": 1024}],
                "noNewPrivileges": false,
            },
            "root": {"path": self.root, "readonly": false},
            "hostname": self.hostname(),
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
                {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "nodev", "mode=1777"]},
                {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
                {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "rw"]},
                {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=755"]},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]},
            ],
            "annotations": {
                ANNOTATION_CTID: self.ctid.to_string(),
                ANNOTATION_INIT: self.init.name(),
            },
            "linux": {
                "cgroupsPath": self.cgroup_path,
                "resources": {"devices": [
                    {"allow": false, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 136, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
                ]},
                "namespaces": [
                    {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
                    {"type": "mount"}, {"type": "cgroup"},
                ],
                "maskedPaths": [
                    "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                    "/sys/firmware",
                ],
                "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sysrq-trigger"],
            },
        });
        serde_json::from_value(value).expect("the system container spec is valid")
    }
}

/// Keeps only the capabilities in `available` (by name): a host whose own bounding set
/// lacks one (this project's CI machines have no CAP_SYS_RESOURCE) cannot grant it, and
/// asking would make the container's capset fail.
pub fn restrict_capabilities(spec: &mut Spec, available: &[String]) -> Vec<String> {
    let mut dropped = Vec::new();
    let Some(mut process) = spec.process().clone() else {
        return dropped;
    };
    let Some(mut caps) = process.capabilities().clone() else {
        return dropped;
    };
    let keep = |set: &Option<oci_spec::runtime::Capabilities>, dropped: &mut Vec<String>| {
        set.as_ref().map(|s| {
            s.iter()
                .filter(|c| {
                    let name = capability_name(c);
                    let ok = available.contains(&name);
                    if !ok && !dropped.contains(&name) {
                        dropped.push(name);
                    }
                    ok
                })
                .copied()
                .collect()
        })
    };
    caps.set_bounding(keep(caps.bounding(), &mut dropped));
    caps.set_effective(keep(caps.effective(), &mut dropped));
    caps.set_permitted(keep(caps.permitted(), &mut dropped));
    caps.set_inheritable(keep(caps.inheritable(), &mut dropped));
    caps.set_ambient(keep(caps.ambient(), &mut dropped));
    process.set_capabilities(Some(caps));
    spec.set_process(Some(process));
    dropped
}

/// "CAP_SYS_ADMIN" (oci-spec displays capabilities without the prefix).
pub fn capability_name(cap: &oci_spec::runtime::Capability) -> String {
    let text = cap.to_string();
    if text.starts_with("CAP_") {
        text
    } else {
        format!("CAP_{text}")
    }
}

/// The capability names in this process' bounding set.
pub fn host_bounding_set() -> Vec<String> {
    caps::read(None, caps::CapSet::Bounding)
        .map(|set| set.iter().map(|c| c.to_string()).collect())
        .unwrap_or_default()
}

/// The cgroup of container CTID.
pub fn cgroup_path(ctid: Ctid) -> PathBuf {
    PathBuf::from(format!("/vz/{ctid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_container_spec_is_valid_and_systemd_ready() {
        let conf = ConfigFile::parse("HOSTNAME=\"ct101.example\"\n").unwrap();
        let ct = SystemContainer {
            ctid: Ctid(101),
            conf: &conf,
            root: Path::new("/vz/root/101"),
            init: InitKind::Systemd,
            cgroup_path: cgroup_path(Ctid(101)),
        };
        let spec = ct.spec();
        crate::spec::validate(&spec).unwrap();
        assert_eq!(spec.hostname().as_deref(), Some("ct101.example"));
        let process = spec.process().as_ref().unwrap();
        assert_eq!(
            process.args().as_ref().unwrap(),
            &vec!["/sbin/init".to_string()]
        );
        assert!(process
            .env()
            .as_ref()
            .unwrap()
            .contains(&"container=vzrun".to_string()));
        assert_eq!(process.terminal(), Some(true));
        let ns: Vec<_> = spec.linux().as_ref().unwrap().namespaces().clone().unwrap();
        assert!(ns
            .iter()
            .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Cgroup));
        let mounts = spec.mounts().as_ref().unwrap();
        for dest in ["/run", "/tmp"] {
            assert!(
                mounts
                    .iter()
                    .any(|m| m.destination() == Path::new(dest)
                        && m.typ().as_deref() == Some("tmpfs"))
            );
        }
        let cgroup = mounts
            .iter()
            .find(|m| m.typ().as_deref() == Some("cgroup"))
            .unwrap();
        assert!(!cgroup
            .options()
            .as_ref()
            .unwrap()
            .contains(&"ro".to_string()));
        let caps = process
            .capabilities()
            .as_ref()
            .unwrap()
            .bounding()
            .clone()
            .unwrap();
        assert!(caps.iter().any(|c| capability_name(c) == "CAP_SYS_BOOT"));
        assert!(!caps.iter().any(|c| capability_name(c) == "CAP_SYS_MODULE"));
        assert_eq!(spec.annotations().as_ref().unwrap()[ANNOTATION_CTID], "101");
    }

    #[test]
    fn capabilities_are_limited_to_what_the_host_has() {
        let conf = ConfigFile::default();
        let ct = SystemContainer {
            ctid: Ctid(1),
            conf: &conf,
            root: Path::new("/r"),
            init: InitKind::Busybox,
            cgroup_path: cgroup_path(Ctid(1)),
        };
        let mut spec = ct.spec();
        let available: Vec<String> = SYSTEM_CAPABILITIES
            .iter()
            .filter(|c| **c != "CAP_SYS_RESOURCE")
            .map(|c| c.to_string())
            .collect();
        let dropped = restrict_capabilities(&mut spec, &available);
        assert_eq!(dropped, vec!["CAP_SYS_RESOURCE".to_string()]);
        let bounding = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap()
            .bounding()
            .clone()
            .unwrap();
        assert_eq!(bounding.len(), SYSTEM_CAPABILITIES.len() - 1);
        // names agree between oci-spec and the caps crate
        assert!(host_bounding_set().iter().all(|c| c.starts_with("CAP_")));
    }
}
