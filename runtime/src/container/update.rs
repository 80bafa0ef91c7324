//! `update`: changes the resource limits of a live container. The update is merged into
//! the container's resources (absent fields keep their values), applied to the cgroup and
//! saved, so `state`, later updates and `vzctl set` see what is in force.

use libcgroups::common::{CgroupManager, ControllerOpt};
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};

use crate::cgroups;
use crate::container::load_spec;
use crate::error::{chain_message, Error, Result};
use crate::state::{ContainerState, Status};
use crate::store::{self, ContainerDir, LockMode};
use crate::Runtime;

/// Applies `update` (a partial LinuxResources JSON object) and returns the resources now in force.
pub fn update(rt: &Runtime, id: &str, update: &Value) -> Result<LinuxResources> {
    if !update.is_object() {
        return Err(Error::InvalidArgument(
            "resources must be a JSON object (a LinuxResources)".into(),
        ));
    }
    let dir = ContainerDir::new(&rt.root, id)?;
    let _lock = dir.lock(LockMode::Exclusive)?;
    let state = ContainerState::load(&dir)?;
    let status = state.status();
    if matches!(status, Status::Stopped | Status::Creating) {
        return Err(Error::WrongState {
            id: id.to_string(),
            status,
            action: "update it (container not running)",
        });
    }
    let mut spec = load_spec(&dir)?;
    let mut linux = spec.linux().clone().unwrap_or_default();
    let current = serde_json::to_value(linux.resources().clone().unwrap_or_default())
        .expect("resources serialize");
    let mut merged_value = current;
    merge(&mut merged_value, update);
    let merged: LinuxResources = serde_path_to_error::deserialize(merged_value)
        .map_err(|e| Error::InvalidArgument(format!("resources: {e}")))?;

    // Devices on cgroup v1 are not re-applied: rewriting devices.deny/allow of a live
    // container could briefly deny devices it uses (runc's update leaves them alone too).
    // On v2 the device filter is one eBPF program that every apply replaces (the new one is
    // attached before the old is detached), built from the rules it is given: applying
    // none would shrink the container's devices to the defaults.
    let mut to_apply = merged.clone();
    if !cgroups::Layout::detect().is_unified() || state.systemd_cgroup {
        to_apply.set_devices(None);
    }
    let mut hugetlb = Vec::new();
    if cgroups::hugetlb_is_unified_only() {
        hugetlb = to_apply
            .hugepage_limits()
            .iter()
            .flatten()
            .map(|l| (l.page_size().clone(), l.limit()))
            .collect();
        to_apply.set_hugepage_limits(None);
    }
    let disable_oom_killer = merged
        .memory()
        .as_ref()
        .and_then(|m| m.disable_oom_killer())
        .unwrap_or(false);
    cgroups::manager(&state.cgroup_path, state.systemd_cgroup, id)?
        .apply(&ControllerOpt {
            resources: &to_apply,
            disable_oom_killer,
            oom_score_adj: None,
            freezer_state: None,
        })
        .map_err(|e| Error::Cgroup(chain_message(&e)))?;
    if !hugetlb.is_empty() {
        cgroups::apply_unified_hugetlb(&state.cgroup_path, &hugetlb)?;
    }
    cgroups::apply_v2_swap_off(&state.cgroup_path, state.systemd_cgroup, Some(&to_apply))?;

    linux.set_resources(Some(merged.clone()));
    spec.set_linux(Some(linux));
    let data = serde_json::to_vec(&spec).expect("spec serializes");
    store::write_atomic(&dir.file(store::CONFIG_FILE), &data)?;
    Ok(merged)
}

/// Recursive merge: objects merge key by key, everything else is replaced.
fn merge(base: &mut Value, update: &Value) {
    match (base, update) {
        (Value::Object(b), Value::Object(u)) => {
            for (key, value) in u {
                merge(b.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (slot, value) => *slot = value.clone(),
    }
}

/// The runc `update` flags, as a partial LinuxResources object.
#[derive(Debug, Default, Clone)]
pub struct UpdateFlags {
    pub blkio_weight: Option<u16>,
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_rt_period: Option<u64>,
    pub cpu_rt_runtime: Option<i64>,
    pub cpu_share: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub memory: Option<String>,
    pub memory_reservation: Option<String>,
    pub memory_swap: Option<String>,
    pub kernel_memory: Option<String>,
    pub kernel_memory_tcp: Option<String>,
    pub pids_limit: Option<i64>,
}

impl UpdateFlags {
    pub fn to_resources(&self) -> Result<Value> {
        let mut root = Map::new();
        let mut put = |section: &str, key: &str, value: Value| {
            root.entry(section.to_string())
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("section is an object")
                .insert(key.to_string(), value);
        };
        if let Some(v) = self.blkio_weight {
            put("blockIO", "weight", json!(v));
        }
        if let Some(v) = self.cpu_period {
            put("cpu", "period", json!(v));
        }
        if let Some(v) = self.cpu_quota {
            put("cpu", "quota", json!(v));
        }
        if let Some(v) = self.cpu_rt_period {
            put("cpu", "realtimePeriod", json!(v));
        }
        if let Some(v) = self.cpu_rt_runtime {
            put("cpu", "realtimeRuntime", json!(v));
        }
        if let Some(v) = self.cpu_share {
            put("cpu", "shares", json!(v));
        }
        if let Some(v) = &self.cpuset_cpus {
            put("cpu", "cpus", json!(v));
        }
        if let Some(v) = &self.cpuset_mems {
            put("cpu", "mems", json!(v));
        }
        for (flag, key, text) in [
            ("--memory", "limit", &self.memory),
            (
                "--memory-reservation",
                "reservation",
                &self.memory_reservation,
            ),
            ("--memory-swap", "swap", &self.memory_swap),
            ("--kernel-memory", "kernel", &self.kernel_memory),
            ("--kernel-memory-tcp", "kernelTCP", &self.kernel_memory_tcp),
        ] {
            if let Some(text) = text {
                let bytes = parse_bytes(text)
                    .map_err(|e| Error::InvalidArgument(format!("{flag}: {e}")))?;
                put("memory", key, json!(bytes));
            }
        }
        if let Some(v) = self.pids_limit {
            put("pids", "limit", json!(v));
        }
        Ok(Value::Object(root))
    }
}

/// Sizes like runc (docker's RAMInBytes): "1024", "512k", "64m", "1.5g", "2GiB"; "-1" is unlimited.
pub fn parse_bytes(text: &str) -> std::result::Result<i64, String> {
    let t = text.trim();
    if t == "-1" {
        return Ok(-1);
    }
    let lower = t.to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid size {text:?}"))?;
    let multiplier: f64 = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0_f64.powi(4),
        "p" => 1024.0_f64.powi(5),
        _ => return Err(format!("invalid size {text:?} (unknown unit {unit:?})")),
    };
    let bytes = value * multiplier;
    if !(0.0..9.2e18).contains(&bytes) {
        return Err(format!("size {text:?} is out of range"));
    }
    Ok(bytes as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("1024").unwrap(), 1024);
        assert_eq!(parse_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_bytes("-1").unwrap(), -1);
        for bad in ["", "m", "12x", "-5", "1e"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn merge_keeps_absent_fields() {
        let mut base = json!({"memory": {"limit": 100, "swap": 200}, "pids": {"limit": 5}});
        merge(&mut base, &json!({"memory": {"limit": 50}}));
        assert_eq!(
            base,
            json!({"memory": {"limit": 50, "swap": 200}, "pids": {"limit": 5}})
        );
    }

    #[test]
    fn flags_become_resources() {
        let flags = UpdateFlags {
            memory: Some("32m".into()),
            pids_limit: Some(10),
            cpu_share: Some(512),
            ..Default::default()
        };
        let v = flags.to_resources().unwrap();
        assert_eq!(
            v,
            json!({"memory": {"limit": 33554432}, "pids": {"limit": 10}, "cpu": {"shares": 512}})
        );
        let r: LinuxResources = serde_json::from_value(v).unwrap();
        assert_eq!(r.pids().as_ref().unwrap().limit(), 10);
    }
}
