//! oci-helper: the small static probe that runs inside test containers.
//!
//! It reports what the container process sees (ids, capabilities, limits,
//! namespaces, mounts, tty, fds, files asked for...) as one JSON object, so
//! the host side of the suite can assert on it. std + libc only, linked
//! statically so it runs in a bare busybox root.
//!
//! Usage:
//!   oci-helper report [--out FILE] [--read PATH]... [--write PATH]...
//!                     [--open PATH]... [--stat PATH]... [--ls DIR]... [--hold]
//!   oci-helper exit CODE
//!   oci-helper hold                 sleep until killed
//!   oci-helper signals --out FILE   append each signal number received to FILE
//!   oci-helper count --out FILE     rewrite FILE with an increasing counter every 10 ms
//!   oci-helper hook NAME DIR        record a hook call: DIR/NAME.json holds
//!                                   stdin, args, env and namespaces;
//!                                   NAME is appended to DIR/hooks.order
//! Arguments after `--` are ignored (tests put odd argv entries there).

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let code = match args.get(1).map(String::as_str) {
        Some("report") => report(&args[2..]),
        Some("exit") => args
            .get(2)
            .and_then(|c| c.parse::<i32>().ok())
            .unwrap_or_else(|| die("exit needs a numeric CODE")),
        Some("hold") => hold(),
        Some("signals") => signals(&args[2..]),
        Some("count") => count(&args[2..]),
        Some("hook") => hook(&args[2..]),
        _ => die("usage: oci-helper report|exit|hold|signals|count|hook ..."),
    };
    std::process::exit(code);
}

fn die(msg: &str) -> ! {
    eprintln!("oci-helper: {msg}");
    std::process::exit(111);
}

fn hold() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Writes `data` to `path` through a temporary name so the host never reads
/// a half-written report.
fn write_atomic(path: &str, data: &str) {
    let tmp = format!("{path}.tmp");
    if let Err(e) = std::fs::write(&tmp, data).and_then(|_| std::fs::rename(&tmp, path)) {
        die(&format!("cannot write {path}: {e}"));
    }
}

fn flag_value<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let end = args.iter().position(|a| a == "--").unwrap_or(args.len());
    args[..end]
        .iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

// ---------------------------------------------------------------- JSON out

/// A minimal JSON value: enough to print a report without serde.
enum J {
    Null,
    Bool(bool),
    Num(i128),
    Str(String),
    Arr(Vec<J>),
    Obj(BTreeMap<String, J>),
}

impl J {
    fn write(&self, out: &mut String) {
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Num(n) => {
                let _ = write!(out, "{n}");
            }
            J::Str(s) => {
                out.push('"');
                for c in s.chars() {
                    match c {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\t' => out.push_str("\\t"),
                        c if (c as u32) < 0x20 => {
                            let _ = write!(out, "\\u{:04x}", c as u32);
                        }
                        c => out.push(c),
                    }
                }
                out.push('"');
            }
            J::Arr(v) => {
                out.push('[');
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    x.write(out);
                }
                out.push(']');
            }
            J::Obj(m) => {
                out.push('{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    J::Str(k.clone()).write(out);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

fn s(v: impl Into<String>) -> J {
    J::Str(v.into())
}

fn errno_name(e: &std::io::Error) -> J {
    let code = e.raw_os_error().unwrap_or(0);
    let name = match code {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EACCES => "EACCES",
        libc::EROFS => "EROFS",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::ENXIO => "ENXIO",
        libc::ENODEV => "ENODEV",
        libc::ENOSPC => "ENOSPC",
        libc::EMFILE => "EMFILE",
        _ => "",
    };
    if name.is_empty() {
        s(format!("errno{code}"))
    } else {
        s(name)
    }
}

fn file_or_err(path: &str) -> J {
    match std::fs::read(path) {
        Ok(b) => s(String::from_utf8_lossy(&b).into_owned()),
        Err(e) => {
            let mut m = BTreeMap::new();
            m.insert("error".into(), errno_name(&e));
            J::Obj(m)
        }
    }
}

// ---------------------------------------------------------------- report

fn report(args: &[String]) -> i32 {
    let mut r = BTreeMap::new();
    r.insert("args".into(), J::Arr(std::env::args().map(s).collect()));
    r.insert(
        "env".into(),
        J::Arr(
            std::env::vars_os()
                .map(|(k, v)| s(format!("{}={}", k.to_string_lossy(), v.to_string_lossy())))
                .collect(),
        ),
    );
    r.insert(
        "cwd".into(),
        match std::env::current_dir() {
            Ok(p) => s(p.to_string_lossy().into_owned()),
            Err(e) => errno_name(&e),
        },
    );
    r.insert("pid".into(), J::Num(std::process::id() as i128));
    r.insert("status".into(), proc_status());
    r.insert(
        "oom_score_adj".into(),
        file_or_err("/proc/self/oom_score_adj"),
    );
    r.insert("rlimits".into(), rlimits());
    r.insert("uname".into(), uname());
    r.insert("mountinfo".into(), file_or_err("/proc/self/mountinfo"));
    r.insert("cgroup".into(), file_or_err("/proc/self/cgroup"));
    r.insert("uid_map".into(), file_or_err("/proc/self/uid_map"));
    r.insert("gid_map".into(), file_or_err("/proc/self/gid_map"));
    r.insert("namespaces".into(), namespaces());
    r.insert("tty".into(), tty());
    r.insert("fds".into(), fds());
    r.insert("session_keyring".into(), session_keyring());

    // Probes the host asked for, keyed by path.
    let mut reads = BTreeMap::new();
    let mut writes = BTreeMap::new();
    let mut opens = BTreeMap::new();
    let mut stats = BTreeMap::new();
    let mut lists = BTreeMap::new();
    let mut i = 0;
    while i < args.len() {
        let val = args.get(i + 1).map(String::as_str);
        match (args[i].as_str(), val) {
            ("--read", Some(p)) => {
                reads.insert(p.to_string(), file_or_err(p));
            }
            ("--write", Some(p)) => {
                writes.insert(p.to_string(), probe_write(p));
            }
            ("--open", Some(p)) => {
                opens.insert(p.to_string(), probe_open(p));
            }
            ("--stat", Some(p)) => {
                stats.insert(p.to_string(), probe_stat(p));
            }
            ("--ls", Some(p)) => {
                lists.insert(p.to_string(), probe_ls(p));
            }
            ("--out", Some(_)) => {}
            ("--", _) => break,
            ("--hold", None) | ("--hold", Some(_)) => {
                i += 1;
                continue;
            }
            (other, _) => die(&format!("report: bad argument {other:?}")),
        }
        i += 2;
    }
    r.insert("read".into(), J::Obj(reads));
    r.insert("write".into(), J::Obj(writes));
    r.insert("open".into(), J::Obj(opens));
    r.insert("stat".into(), J::Obj(stats));
    r.insert("ls".into(), J::Obj(lists));

    let mut out = String::new();
    J::Obj(r).write(&mut out);
    out.push('\n');
    match flag_value(args, "--out") {
        Some(path) => write_atomic(path, &out),
        None => {
            let mut so = std::io::stdout().lock();
            if so
                .write_all(out.as_bytes())
                .and_then(|_| so.flush())
                .is_err()
            {
                return 112;
            }
        }
    }
    let end = args.iter().position(|a| a == "--").unwrap_or(args.len());
    if args[..end].iter().any(|a| a == "--hold") {
        hold();
    }
    0
}

fn proc_status() -> J {
    let mut m = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string("/proc/self/status") {
        for line in text.lines() {
            if let Some((k, v)) = line.split_once(':') {
                m.insert(k.trim().to_string(), s(v.trim()));
            }
        }
    }
    J::Obj(m)
}

fn rlimits() -> J {
    let list: [(&str, libc::__rlimit_resource_t); 16] = [
        ("RLIMIT_CPU", libc::RLIMIT_CPU),
        ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
        ("RLIMIT_DATA", libc::RLIMIT_DATA),
        ("RLIMIT_STACK", libc::RLIMIT_STACK),
        ("RLIMIT_CORE", libc::RLIMIT_CORE),
        ("RLIMIT_RSS", libc::RLIMIT_RSS),
        ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
        ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
        ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
        ("RLIMIT_AS", libc::RLIMIT_AS),
        ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS),
        ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING),
        ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
        ("RLIMIT_NICE", libc::RLIMIT_NICE),
        ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
        ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME),
    ];
    let mut m = BTreeMap::new();
    for (name, res) in list {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit only writes into the rlimit we own.
        if unsafe { libc::getrlimit(res, &mut lim) } == 0 {
            let num = |v: libc::rlim_t| {
                if v == libc::RLIM_INFINITY {
                    J::Num(-1)
                } else {
                    J::Num(v as i128)
                }
            };
            m.insert(
                name.to_string(),
                J::Arr(vec![num(lim.rlim_cur), num(lim.rlim_max)]),
            );
        }
    }
    J::Obj(m)
}

fn uname() -> J {
    // SAFETY: utsname is plain old data; all-zero is a valid value.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname only writes into the struct we own.
    if unsafe { libc::uname(&mut u) } != 0 {
        return J::Null;
    }
    let field = |f: &[libc::c_char]| {
        // SAFETY: the kernel NUL-terminates every utsname field.
        let c = unsafe { CStr::from_ptr(f.as_ptr()) };
        s(c.to_string_lossy().into_owned())
    };
    let mut m = BTreeMap::new();
    m.insert("nodename".into(), field(&u.nodename));
    m.insert("domainname".into(), field(&u.domainname));
    J::Obj(m)
}

fn namespaces() -> J {
    namespaces_of("self")
}

fn namespaces_of(pid: &str) -> J {
    let mut m = BTreeMap::new();
    for ns in ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"] {
        if let Ok(target) = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")) {
            m.insert(ns.to_string(), s(target.to_string_lossy().into_owned()));
        }
    }
    J::Obj(m)
}

fn tty() -> J {
    let mut m = BTreeMap::new();
    for fd in 0..3 {
        // SAFETY: isatty only inspects the descriptor number.
        let is = unsafe { libc::isatty(fd) } == 1;
        m.insert(format!("isatty{fd}"), J::Bool(is));
    }
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize into the struct we own.
    if unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) } == 0 {
        m.insert("rows".into(), J::Num(ws.ws_row as i128));
        m.insert("cols".into(), J::Num(ws.ws_col as i128));
    }
    if let Ok(t) = std::fs::read_link("/proc/self/fd/0") {
        m.insert("stdin".into(), s(t.to_string_lossy().into_owned()));
    }
    // SAFETY: getsid/getpgrp take no pointers.
    let (sid, pgrp) = unsafe { (libc::getsid(0), libc::getpgrp()) };
    m.insert("sid".into(), J::Num(sid as i128));
    m.insert("pgrp".into(), J::Num(pgrp as i128));
    // SAFETY: tcgetpgrp only inspects the descriptor.
    let fg = unsafe { libc::tcgetpgrp(0) };
    m.insert("foreground_pgrp".into(), J::Num(fg as i128));
    J::Obj(m)
}

/// Serial of the session keyring (KEYCTL_GET_KEYRING_ID, no create).
fn session_keyring() -> J {
    // SAFETY: keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)
    // takes integers only.
    let r = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            0 as libc::c_long,
            -3 as libc::c_long,
            0 as libc::c_long,
        )
    };
    if r < 0 {
        errno_name(&std::io::Error::last_os_error())
    } else {
        J::Num(r as i128)
    }
}

fn fds() -> J {
    let mut m = BTreeMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let target = std::fs::read_link(e.path())
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            m.insert(name, s(target));
        }
    }
    J::Obj(m)
}

fn probe_write(path: &str) -> J {
    match std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(b"x"))
    {
        Ok(()) => s("ok"),
        Err(e) => errno_name(&e),
    }
}

fn probe_ls(path: &str) -> J {
    match std::fs::read_dir(path) {
        Ok(rd) => {
            let mut names: Vec<String> = rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            J::Arr(names.into_iter().map(s).collect())
        }
        Err(e) => {
            let mut m = BTreeMap::new();
            m.insert("error".into(), errno_name(&e));
            J::Obj(m)
        }
    }
}

fn probe_open(path: &str) -> J {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(_) => s("ok"),
        Err(e) => errno_name(&e),
    }
}

fn probe_stat(path: &str) -> J {
    match std::fs::symlink_metadata(path) {
        Ok(md) => {
            let ft = md.file_type();
            let kind = if ft.is_dir() {
                "dir"
            } else if ft.is_file() {
                "file"
            } else if ft.is_symlink() {
                "symlink"
            } else if ft.is_char_device() {
                "char"
            } else if ft.is_block_device() {
                "block"
            } else if ft.is_fifo() {
                "fifo"
            } else {
                "socket"
            };
            let mut m = BTreeMap::new();
            m.insert("type".into(), s(kind));
            m.insert("mode".into(), J::Num((md.mode() & 0o7777) as i128));
            m.insert("uid".into(), J::Num(md.uid() as i128));
            m.insert("gid".into(), J::Num(md.gid() as i128));
            m.insert("size".into(), J::Num(md.size() as i128));
            let rdev = md.rdev();
            m.insert("major".into(), J::Num(libc::major(rdev) as i128));
            m.insert("minor".into(), J::Num(libc::minor(rdev) as i128));
            J::Obj(m)
        }
        Err(e) => {
            let mut m = BTreeMap::new();
            m.insert("error".into(), errno_name(&e));
            J::Obj(m)
        }
    }
}

// ---------------------------------------------------------------- signals

static SIGNAL_PIPE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let byte = sig as u8;
    let fd = SIGNAL_PIPE.load(std::sync::atomic::Ordering::Relaxed);
    // SAFETY: write(2) is async-signal-safe; the buffer is a local byte.
    unsafe { libc::write(fd, &byte as *const u8 as *const libc::c_void, 1) };
}

/// Records every catchable signal it receives, one number per line, so the
/// host can check `kill` delivered exactly what it was asked to.
fn signals(args: &[String]) -> i32 {
    let out = flag_value(args, "--out").unwrap_or_else(|| die("signals needs --out FILE"));
    let mut fds = [0i32; 2];
    // SAFETY: pipe writes two descriptors into the array we own.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        die("pipe failed");
    }
    SIGNAL_PIPE.store(fds[1], std::sync::atomic::Ordering::Relaxed);
    // SIGRTMIN..SIGRTMAX as the kernel numbers them (glibc reserves 32 and 33).
    let catchable = (1..=64).filter(|&n| !matches!(n, 9 | 19 | 32 | 33));
    for sig in catchable {
        // SAFETY: sigaction is given a zeroed struct with a valid handler.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
    write_atomic(out, "ready\n");
    let mut seen = String::from("ready\n");
    loop {
        let mut b = 0u8;
        // SAFETY: read one byte into a local buffer.
        let n = unsafe { libc::read(fds[0], &mut b as *mut u8 as *mut libc::c_void, 1) };
        if n == 1 {
            let _ = writeln!(seen, "{b}");
            write_atomic(out, &seen);
        }
    }
}

fn count(args: &[String]) -> i32 {
    let out = flag_value(args, "--out").unwrap_or_else(|| die("count needs --out FILE"));
    let mut n: u64 = 0;
    loop {
        write_atomic(out, &format!("{n}\n"));
        n += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn hook(args: &[String]) -> i32 {
    let (Some(name), Some(dir)) = (args.first(), args.get(1)) else {
        die("hook needs NAME DIR");
    };
    let mut data = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut data) {
        die(&format!("reading stdin: {e}"));
    }
    let mut r = BTreeMap::new();
    r.insert(
        "stdin".into(),
        s(String::from_utf8_lossy(&data).into_owned()),
    );
    r.insert("args".into(), J::Arr(std::env::args().map(s).collect()));
    r.insert(
        "env".into(),
        J::Arr(
            std::env::vars_os()
                .map(|(k, v)| s(format!("{}={}", k.to_string_lossy(), v.to_string_lossy())))
                .collect(),
        ),
    );
    r.insert("namespaces".into(), namespaces());
    // The hook's parent is the runtime process that ran it.
    r.insert(
        "parent_namespaces".into(),
        namespaces_of(&std::os::unix::process::parent_id().to_string()),
    );
    let mut out = String::new();
    J::Obj(r).write(&mut out);
    write_atomic(&format!("{dir}/{name}.json"), &out);
    let order = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(format!("{dir}/hooks.order"))
        .and_then(|mut f| f.write_all(format!("{name}\n").as_bytes()));
    if let Err(e) = order {
        die(&format!("appending to {dir}/hooks.order: {e}"));
    }
    0
}
