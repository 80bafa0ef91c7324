//! The few facts about a process the runtime needs, read straight from /proc.
//! A pid alone is not an identity (pids are reused), so every recorded pid is paired
//! with its start time and compared before the runtime trusts or signals it.

use std::fs;

/// What /proc/<pid>/stat says about a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    pub comm: String,
    /// One-letter state: R, S, D, Z, T, t, X, I...
    pub state: char,
    pub ppid: i32,
    /// Clock ticks since boot when the process started (field 22).
    pub start_time: u64,
}

impl ProcStat {
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses the content of /proc/<pid>/stat. The comm field may contain spaces and
/// parentheses, so the fields are located from the *last* ')'.
pub fn parse_stat(content: &str) -> Option<ProcStat> {
    let open = content.find('(')?;
    let close = content.rfind(')')?;
    let comm = content.get(open + 1..close)?.to_string();
    let mut rest = content.get(close + 1..)?.split_ascii_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    // fields 5..=21 are skipped; start time is field 22 (index 19 after the state).
    let start_time = rest.nth(17)?.parse().ok()?;
    Some(ProcStat {
        comm,
        state,
        ppid,
        start_time,
    })
}

pub fn stat(pid: i32) -> Option<ProcStat> {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|c| parse_stat(&c))
}

/// True when `pid` still names the process that started at `start_time` and has not exited.
pub fn is_alive(pid: i32, start_time: Option<u64>) -> bool {
    match stat(pid) {
        Some(s) => !s.is_dead() && start_time.is_none_or(|t| t == s.start_time),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_comm_with_spaces_and_parens() {
        let line = "4242 (youki:[2:INIT] (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.comm, "youki:[2:INIT] (x)");
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.start_time, 987654);
        assert!(!s.is_dead());
    }

    #[test]
    fn zombie_is_dead() {
        let line = "7 (sh) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0 0";
        assert!(parse_stat(line).unwrap().is_dead());
    }

    #[test]
    fn own_process_is_alive_with_matching_start_time() {
        let me = std::process::id() as i32;
        let s = stat(me).unwrap();
        assert!(is_alive(me, Some(s.start_time)));
        assert!(!is_alive(me, Some(s.start_time + 1)));
        assert!(!is_alive(i32::MAX, None));
    }
}
