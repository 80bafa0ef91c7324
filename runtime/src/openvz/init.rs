//! Which init a container's OS template boots, and how to stop it gracefully.
//! Detected from the private area's /sbin/init (symlinks resolved inside the root).

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitKind {
    Systemd,
    SysV,
    Busybox,
    /// Some other /sbin/init: stopped with SIGTERM, then killed.
    Other,
}

/// How `vzctl stop` asks an init to shut down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopMethod {
    Signal(i32),
    /// A command run inside the container (sysvinit has no plain "power off" signal).
    Command(Vec<String>),
}

impl InitKind {
    pub fn name(self) -> &'static str {
        match self {
            InitKind::Systemd => "systemd",
            InitKind::SysV => "sysvinit",
            InitKind::Busybox => "busybox",
            InitKind::Other => "other",
        }
    }

    pub fn stop_method(self) -> StopMethod {
        match self {
            // systemd: SIGRTMIN+3 is "halt" (poweroff inside a container).
            InitKind::Systemd => StopMethod::Signal(crate::signal::SIGRTMIN + 3),
            // busybox init: SIGUSR2 = poweroff.
            InitKind::Busybox => StopMethod::Signal(libc::SIGUSR2),
            InitKind::SysV => StopMethod::Command(vec!["/sbin/telinit".into(), "0".into()]),
            InitKind::Other => StopMethod::Signal(libc::SIGTERM),
        }
    }
}

/// Resolves `path` (absolute, inside `root`) following symlinks without leaving `root`.
pub fn resolve_in_root(root: &Path, path: &str) -> Option<PathBuf> {
    let mut current = PathBuf::from("/");
    let mut pending: Vec<String> = path
        .split('/')
        .filter(|c| !c.is_empty())
        .map(String::from)
        .rev()
        .collect();
    let mut hops = 0;
    while let Some(component) = pending.pop() {
        match component.as_str() {
            "." => continue,
            ".." => {
                current.pop();
                continue;
            }
            _ => {}
        }
        let candidate = current.join(&component);
        let on_host = root.join(candidate.strip_prefix("/").unwrap());
        match std::fs::symlink_metadata(&on_host) {
            Ok(meta) if meta.file_type().is_symlink() => {
                hops += 1;
                if hops > 40 {
                    return None;
                }
                let target = std::fs::read_link(&on_host).ok()?;
                if target.is_absolute() {
                    current = PathBuf::from("/");
                }
                for c in target.to_str()?.split('/').filter(|c| !c.is_empty()).rev() {
                    pending.push(c.to_string());
                }
            }
            Ok(_) => current = candidate,
            Err(_) => return None,
        }
    }
    Some(root.join(current.strip_prefix("/").unwrap()))
}

/// Detects the init of the root at `root`; None when it has no /sbin/init.
pub fn detect(root: &Path) -> Option<InitKind> {
    let init = resolve_in_root(root, "/sbin/init")?;
    if !init.is_file() {
        return None;
    }
    let name = init.file_name()?.to_string_lossy().to_string();
    if name == "systemd" || init.to_string_lossy().contains("/systemd/") {
        return Some(InitKind::Systemd);
    }
    if name == "busybox" || is_busybox(&init) {
        return Some(InitKind::Busybox);
    }
    if root.join("etc/inittab").exists() {
        return Some(InitKind::SysV);
    }
    Some(InitKind::Other)
}

fn is_busybox(binary: &Path) -> bool {
    // A hardlinked or copied busybox still carries its name in the binary.
    use std::io::Read;
    let mut head = vec![0u8; 1 << 20];
    let Ok(mut f) = std::fs::File::open(binary) else {
        return false;
    };
    let n = f.read(&mut head).unwrap_or(0);
    head[..n].windows(7).any(|w| w == b"BusyBox")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn detects_by_init_link() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("usr/lib/systemd")).unwrap();
        std::fs::create_dir_all(r.join("usr/sbin")).unwrap();
        std::fs::write(r.join("usr/lib/systemd/systemd"), "ELF").unwrap();
        symlink("usr/sbin", r.join("sbin")).unwrap();
        symlink("../lib/systemd/systemd", r.join("usr/sbin/init")).unwrap();
        assert_eq!(detect(r), Some(InitKind::Systemd));
        assert_eq!(
            resolve_in_root(r, "/sbin/init").unwrap(),
            r.join("usr/lib/systemd/systemd")
        );
    }

    #[test]
    fn busybox_sysv_and_missing() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        assert_eq!(detect(r), None);
        std::fs::create_dir_all(r.join("bin")).unwrap();
        std::fs::create_dir_all(r.join("sbin")).unwrap();
        std::fs::write(r.join("bin/busybox"), "xxBusyBox v1.35").unwrap();
        symlink("/bin/busybox", r.join("sbin/init")).unwrap();
        assert_eq!(detect(r), Some(InitKind::Busybox));
        std::fs::remove_file(r.join("sbin/init")).unwrap();
        std::fs::write(r.join("sbin/init"), "ELF sysvinit").unwrap();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::write(r.join("etc/inittab"), "id:2:initdefault:").unwrap();
        assert_eq!(detect(r), Some(InitKind::SysV));
    }

    #[test]
    fn symlinks_cannot_escape_the_root() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("sbin")).unwrap();
        symlink("../../../../etc/passwd", root.path().join("sbin/init")).unwrap();
        let resolved = resolve_in_root(root.path(), "/sbin/init");
        assert!(resolved.is_none_or(|p| p.starts_with(root.path())));
    }
}
