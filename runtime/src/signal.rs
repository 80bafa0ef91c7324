//! Signal names and numbers as runc's users write them, including the real-time range
//! (systemd stops on SIGRTMIN+3), which `nix::sys::signal::Signal` cannot represent.
//! Signals are therefore plain `i32`s here and are sent with raw syscalls.

use crate::error::{Error, Result};

/// glibc reserves 32 and 33 for itself, so user-visible SIGRTMIN is 34.
pub const SIGRTMIN: i32 = 34;
pub const SIGRTMAX: i32 = 64;

const STANDARD: [(&str, i32); 32] = [
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// Parses "9", "KILL", "SIGKILL", "sigterm", "RTMIN+3", "SIGRTMAX-1", "37".
pub fn parse(text: &str) -> Result<i32> {
    let invalid = || Error::InvalidArgument(format!("invalid signal {text:?}"));
    let trimmed = text.trim();
    if let Ok(number) = trimmed.parse::<i32>() {
        return if (1..=SIGRTMAX).contains(&number) {
            Ok(number)
        } else {
            Err(invalid())
        };
    }
    let upper = trimmed.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, number)) = STANDARD.iter().find(|(n, _)| *n == name) {
        return Ok(number);
    }
    let realtime = |base: i32, rest: &str| -> Result<i32> {
        let number = if rest.is_empty() {
            base
        } else if let Some(offset) = rest.strip_prefix('+') {
            base + offset.parse::<i32>().map_err(|_| invalid())?
        } else if let Some(offset) = rest.strip_prefix('-') {
            base - offset.parse::<i32>().map_err(|_| invalid())?
        } else {
            return Err(invalid());
        };
        if (SIGRTMIN..=SIGRTMAX).contains(&number) {
            Ok(number)
        } else {
            Err(invalid())
        }
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return realtime(SIGRTMIN, rest);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return realtime(SIGRTMAX, rest);
    }
    Err(invalid())
}

/// The conventional name, e.g. 15 -> "SIGTERM", 37 -> "SIGRTMIN+3".
pub fn name(number: i32) -> String {
    if let Some((n, _)) = STANDARD.iter().find(|(_, v)| *v == number) {
        return format!("SIG{n}");
    }
    match number {
        SIGRTMIN => "SIGRTMIN".into(),
        SIGRTMAX => "SIGRTMAX".into(),
        n if (SIGRTMIN..SIGRTMAX).contains(&n) => format!("SIGRTMIN+{}", n - SIGRTMIN),
        n => format!("signal {n}"),
    }
}

/// Every signal a foreground `run`/`exec` forwards to the container process: all of them
/// except those the kernel never lets us catch and SIGCHLD, which we handle ourselves.
pub fn forwardable() -> impl Iterator<Item = i32> {
    (1..=SIGRTMAX)
        .filter(|&s| !matches!(s, libc::SIGKILL | libc::SIGSTOP | libc::SIGCHLD | 32 | 33))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_prefixes() {
        assert_eq!(parse("9").unwrap(), 9);
        assert_eq!(parse("KILL").unwrap(), 9);
        assert_eq!(parse("SIGKILL").unwrap(), 9);
        assert_eq!(parse("sigterm").unwrap(), 15);
        assert_eq!(parse("PWR").unwrap(), 30);
        assert_eq!(parse("IOT").unwrap(), 6);
    }

    #[test]
    fn realtime_signals() {
        assert_eq!(parse("RTMIN").unwrap(), 34);
        assert_eq!(parse("SIGRTMIN+3").unwrap(), 37);
        assert_eq!(parse("rtmin+30").unwrap(), 64);
        assert_eq!(parse("SIGRTMAX").unwrap(), 64);
        assert_eq!(parse("RTMAX-1").unwrap(), 63);
        assert_eq!(parse("37").unwrap(), 37);
        assert_eq!(parse("64").unwrap(), 64);
    }

    #[test]
    fn rejects_out_of_range_and_garbage() {
        for bad in [
            "0", "65", "-1", "RTMIN+31", "RTMAX+1", "RTMIN-1", "FOO", "", "SIG", "RTMIN3",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn names_round_trip() {
        for number in 1..=64 {
            if number == 32 || number == 33 {
                continue;
            }
            assert_eq!(parse(&name(number)).unwrap(), number, "{}", name(number));
        }
        assert_eq!(name(37), "SIGRTMIN+3");
    }

    #[test]
    fn forwardable_excludes_uncatchable() {
        let all: Vec<i32> = forwardable().collect();
        assert!(!all.contains(&libc::SIGKILL));
        assert!(!all.contains(&libc::SIGCHLD));
        assert!(all.contains(&37));
        assert!(all.contains(&libc::SIGTERM));
    }
}
