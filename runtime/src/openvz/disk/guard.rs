//! What a container's spec needs so that its root cannot lift its own disk limits, and
//! what the second level needs. Kernel-free: edits of the OCI spec, unit-tested.
//!
//! System containers keep CAP_SYS_ADMIN in the initial user namespace, which is enough to
//! rewrite project quotas (quotactl on any open file of the file system) or to move files
//! to another project (FS_IOC_FSSETXATTR). A seccomp filter (default: allow) refuses with
//! EPERM exactly those calls; user and group quotas stay open for the second level.
//! CAP_SYS_RESOURCE is dropped too: the kernel lets its holders write past hard limits.

use std::path::Path;

use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use super::quota;

/// quotactl's and quotactl_fd's command argument is a 32-bit int: only the low half of
/// the register counts, whatever a caller puts above it.
const LOW_32_BITS: u64 = 0xffff_ffff;

/// file_setattr(2) (Linux 6.17) can set project ids too. Listed by name: libcontainer
/// skips names its libseccomp does not know yet (2.5 does not), and the rule takes
/// effect once it does.
const FILE_SETATTR: &str = "file_setattr";

fn masked_eq(index: u32, value: u64) -> Value {
    // libcontainer reads SCMP_CMP_MASKED_EQ as (arg & valueTwo) == value.
    json!({"index": index, "value": value, "valueTwo": LOW_32_BITS, "op": "SCMP_CMP_MASKED_EQ"})
}

/// The seccomp rules (OCI `linux.seccomp.syscalls` entries) of the quota guard.
pub fn seccomp_rules() -> Vec<Value> {
    let deny = |names: &[&str], args: Option<Vec<Value>>| {
        let mut rule = json!({"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM});
        if let Some(args) = args {
            rule["args"] = Value::Array(args);
        }
        rule
    };
    let mut rules = Vec::new();
    for cmd in quota::project_changing_commands() {
        rules.push(deny(&["quotactl"], Some(vec![masked_eq(0, cmd as u64)])));
        rules.push(deny(&["quotactl_fd"], Some(vec![masked_eq(1, cmd as u64)])));
    }
    rules.push(deny(
        &["ioctl"],
        Some(vec![masked_eq(1, quota::FS_IOC_FSSETXATTR)]),
    ));
    rules.push(deny(&[FILE_SETATTR], None));
    rules
}

/// Adds the quota guard to a spec: the seccomp rules (merged into a filter the spec may
/// already have) and no CAP_SYS_RESOURCE.
pub fn add_quota_guard(spec: &mut Spec) {
    edit(spec, |v| {
        let linux = &mut v["linux"];
        if linux.get("seccomp").is_none_or(Value::is_null) {
            linux["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                // Every ABI a container's programs may use: a filter that lacks one kills
                // every process calling through it.
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "syscalls": [],
            });
        }
        let syscalls = &mut linux["seccomp"]["syscalls"];
        if !syscalls.is_array() {
            *syscalls = json!([]);
        }
        let list = syscalls.as_array_mut().expect("made an array");
        list.extend(seccomp_rules());
        if let Some(caps) = v["process"]["capabilities"].as_object_mut() {
            for set in caps.values_mut() {
                if let Some(names) = set.as_array_mut() {
                    names.retain(|c| c != "CAP_SYS_RESOURCE");
                }
            }
        }
    });
}

/// Gives the container the node of its image's block device, for the quota tools of the
/// second level (quotactl(2) names the file system by device). No device cgroup rule
/// comes with it: opening the device stays refused, quotactl only looks it up.
pub fn add_quota_device(spec: &mut Spec, path: &Path, major: u64, minor: u64) {
    edit(spec, |v| {
        let linux = &mut v["linux"];
        if !linux["devices"].is_array() {
            linux["devices"] = json!([]);
        }
        let list = linux["devices"].as_array_mut().expect("made an array");
        list.retain(|d| d["path"] != json!(path));
        list.push(json!({
            "path": path, "type": "b", "major": major, "minor": minor,
            "fileMode": 0o600, "uid": 0, "gid": 0,
        }));
    });
}

fn edit(spec: &mut Spec, change: impl FnOnce(&mut Value)) {
    let mut value = serde_json::to_value(&*spec).expect("a spec serializes");
    change(&mut value);
    *spec = serde_json::from_value(value).expect("the guard keeps the spec valid");
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxSeccompAction, LinuxSeccompOperator};

    fn spec() -> Spec {
        serde_json::from_value(json!({
            "ociVersion": "1.2.0",
            "root": {"path": "/r"},
            "process": {"cwd": "/", "args": ["/sbin/init"], "user": {"uid": 0, "gid": 0},
                "capabilities": {
                    "bounding": ["CAP_SYS_ADMIN", "CAP_SYS_RESOURCE"],
                    "effective": ["CAP_SYS_ADMIN", "CAP_SYS_RESOURCE"],
                    "permitted": ["CAP_SYS_ADMIN", "CAP_SYS_RESOURCE"]}},
            "linux": {"namespaces": [{"type": "mount"}]},
        }))
        .unwrap()
    }

    #[test]
    fn guard_denies_project_quota_changes_and_drops_sys_resource() {
        let mut s = spec();
        add_quota_guard(&mut s);
        crate::spec::validate(&s).unwrap();
        let seccomp = s.linux().as_ref().unwrap().seccomp().clone().unwrap();
        assert_eq!(seccomp.default_action(), LinuxSeccompAction::ScmpActAllow);
        let rules = seccomp.syscalls().clone().unwrap();
        let setquota_project = rules.iter().any(|r| {
            r.names() == &vec!["quotactl".to_string()]
                && r.action() == LinuxSeccompAction::ScmpActErrno
                && r.args().as_ref().unwrap()[0].value() == 0x8000_0802
                && r.args().as_ref().unwrap()[0].value_two() == Some(0xffff_ffff)
                && r.args().as_ref().unwrap()[0].op() == LinuxSeccompOperator::ScmpCmpMaskedEq
        });
        assert!(setquota_project);
        let setquota_user = rules.iter().any(|r| {
            r.args()
                .as_ref()
                .is_some_and(|a| a[0].value() == 0x8000_0800)
        });
        assert!(!setquota_user, "the second level's commands stay allowed");
        assert!(rules.iter().any(|r| r.names() == &vec!["ioctl".to_string()]
            && r.args().as_ref().unwrap()[0].index() == 1
            && r.args().as_ref().unwrap()[0].value() == 0x401c_5820));
        let caps = s
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .clone()
            .unwrap();
        let names: Vec<String> = caps
            .bounding()
            .clone()
            .unwrap()
            .iter()
            .map(crate::openvz::translate::capability_name)
            .collect();
        assert_eq!(names, vec!["CAP_SYS_ADMIN"]);
        // A second call (a reboot reuses nothing, but be safe) only adds rules.
        let before = rules.len();
        add_quota_guard(&mut s);
        let after = s.linux().as_ref().unwrap().seccomp().clone().unwrap();
        assert_eq!(after.syscalls().as_ref().unwrap().len(), before * 2);
    }

    #[test]
    fn device_node_without_cgroup_access() {
        let mut s = spec();
        add_quota_device(&mut s, Path::new("/dev/loop3"), 7, 3);
        add_quota_device(&mut s, Path::new("/dev/loop3"), 7, 3);
        let linux = s.linux().as_ref().unwrap();
        let devices = linux.devices().clone().unwrap();
        assert_eq!(devices.len(), 1);
        assert_eq!(devices[0].major(), 7);
        assert_eq!(devices[0].minor(), 3);
        assert!(linux.resources().is_none(), "no device cgroup rule added");
    }
}
