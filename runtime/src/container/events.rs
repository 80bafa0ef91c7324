//! `events`: resource statistics (and OOM notices) in runc's JSON shapes.

use std::time::Duration;

use libcgroups::common::CgroupManager;
use serde_json::{json, Value};

use crate::cgroups;
use crate::error::{chain_message, Error, Result};
use crate::state::{ContainerState, Status};
use crate::store::ContainerDir;
use crate::Runtime;

/// One `{"type":"stats","id":...,"data":{...}}` event.
pub fn stats_event(rt: &Runtime, id: &str) -> Result<Value> {
    let dir = ContainerDir::new(&rt.root, id)?;
    let state = ContainerState::load(&dir)?;
    let status = state.status();
    if matches!(status, Status::Stopped | Status::Creating) {
        return Err(Error::WrongState {
            id: id.to_string(),
            status,
            action: "read its statistics (container not running)",
        });
    }
    let stats = cgroups::manager(&state.cgroup_path, state.systemd_cgroup, id)?
        .stats()
        .map_err(|e| Error::Cgroup(chain_message(&e)))?;
    Ok(json!({"type": "stats", "id": id, "data": runc_stats(&stats)}))
}

/// Prints stats every `interval` (and an `oom` event when the OOM killer struck) until
/// the container stops.
pub fn stream(
    rt: &Runtime,
    id: &str,
    interval: Duration,
    mut emit: impl FnMut(&Value),
) -> Result<()> {
    let mut last_oom_kills = None;
    loop {
        let event = match stats_event(rt, id) {
            Ok(e) => e,
            Err(Error::WrongState { .. }) | Err(Error::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let oom_kills = event["data"]["memory"]["raw"]["oom_kill"].as_u64();
        if let (Some(before), Some(now)) = (last_oom_kills, oom_kills) {
            if now > before {
                emit(&json!({"type": "oom", "id": id}));
            }
        }
        last_oom_kills = oom_kills;
        emit(&event);
        std::thread::sleep(interval);
    }
}

/// Parses runc's interval syntax: "5s", "500ms", "1m", or plain seconds.
pub fn parse_interval(text: &str) -> Result<Duration> {
    let bad = || Error::InvalidArgument(format!("invalid interval {text:?} (e.g. 5s, 500ms)"));
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(bad()),
    };
    if seconds <= 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn runc_stats(s: &libcgroups::stats::Stats) -> Value {
    let entry = |m: &libcgroups::stats::MemoryData| json!({"limit": m.limit, "usage": m.usage, "max": m.max_usage, "failcnt": m.fail_count});
    let blkio = |entries: &Vec<libcgroups::stats::BlkioDeviceStat>| -> Value {
        entries
            .iter()
            .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op_type.clone().unwrap_or_default(), "value": e.value}))
            .collect()
    };
    let hugetlb: serde_json::Map<String, Value> = s
        .hugetlb
        .iter()
        .map(|(size, h)| {
            (
                size.clone(),
                json!({"usage": h.usage, "max": h.max_usage, "failcnt": h.fail_count}),
            )
        })
        .collect();
    json!({
        "cpu": {
            "usage": {
                "total": s.cpu.usage.usage_total,
                "percpu": s.cpu.usage.per_core_usage_total,
                "percpu_kernel": s.cpu.usage.per_core_usage_kernel,
                "percpu_user": s.cpu.usage.per_core_usage_user,
                "kernel": s.cpu.usage.usage_kernel,
                "user": s.cpu.usage.usage_user,
            },
            "throttling": {
                "periods": s.cpu.throttling.periods,
                "throttled_periods": s.cpu.throttling.throttled_periods,
                "throttled_time": s.cpu.throttling.throttled_time,
            },
        },
        "memory": {
            "cache": s.memory.cache,
            "usage": entry(&s.memory.memory),
            "swap": entry(&s.memory.memswap),
            "kernel": entry(&s.memory.kernel),
            "kernelTCP": entry(&s.memory.kernel_tcp),
            "raw": s.memory.stats,
        },
        "pids": {"current": s.pids.current, "limit": s.pids.limit},
        "blkio": {
            "ioServiceBytesRecursive": blkio(&s.blkio.service_bytes),
            "ioServicedRecursive": blkio(&s.blkio.serviced),
            "ioQueuedRecursive": blkio(&s.blkio.queued),
            "ioServiceTimeRecursive": blkio(&s.blkio.service_time),
            "ioWaitTimeRecursive": blkio(&s.blkio.wait_time),
            "ioMergedRecursive": blkio(&s.blkio.merged),
            "ioTimeRecursive": blkio(&s.blkio.time),
            "sectorsRecursive": blkio(&s.blkio.sectors),
        },
        "hugetlb": hugetlb,
        "intel_rdt": {},
        "network_interfaces": null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_interval("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_interval("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_interval("1m").unwrap(), Duration::from_secs(60));
        for bad in ["", "0s", "x", "5d", "-1s"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stats_have_runc_keys() {
        let v = runc_stats(&Default::default());
        for key in ["cpu", "memory", "pids", "blkio", "hugetlb", "intel_rdt"] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert!(v["memory"]["usage"].get("failcnt").is_some());
    }
}
