//! `ps`: the processes of a container, as pids (json) or as ps(1) lines (table).

use std::process::Command;

use crate::cgroups::Layout;
use crate::error::{Error, IoContext, Result};
use crate::state::ContainerState;
use crate::store::ContainerDir;
use crate::Runtime;

/// Pids of every process in the container's cgroup, sorted.
pub fn pids(rt: &Runtime, id: &str) -> Result<Vec<i32>> {
    let dir = ContainerDir::new(&rt.root, id)?;
    let state = ContainerState::load(&dir)?;
    let mut pids = Layout::detect().procs(&state.cgroup_path);
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

/// Runs `ps ARGS` (default `-ef`) on the host and keeps the header and the container's lines.
pub fn table(rt: &Runtime, id: &str, ps_args: &[String]) -> Result<String> {
    let pids = pids(rt, id)?;
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let output = Command::new("ps")
        .args(&args)
        .output()
        .ctx(|| "run ps".to_string())?;
    if !output.status.success() {
        return Err(Error::Container(format!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    filter_ps_output(&String::from_utf8_lossy(&output.stdout), &pids)
}

fn filter_ps_output(text: &str, pids: &[i32]) -> Result<String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let pid_column = header
        .split_whitespace()
        .position(|c| c == "PID")
        .ok_or_else(|| Error::InvalidArgument("ps output has no PID column".into()))?;
    let mut out = format!("{header}\n");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(pid_column)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_header_and_container_lines() {
        let ps = "UID  PID  PPID  C STIME TTY TIME CMD\nroot 1 0 0 00:00 ? 00:00:01 init\nroot 42 1 0 00:00 ? 00:00:00 sleep 100\n";
        let out = filter_ps_output(ps, &[42]).unwrap();
        assert_eq!(
            out,
            "UID  PID  PPID  C STIME TTY TIME CMD\nroot 42 1 0 00:00 ? 00:00:00 sleep 100\n"
        );
        assert!(filter_ps_output("NOPE\n", &[1]).is_err());
    }
}
