//! Reading and writing files of a container's root from the host, safely: paths resolve
//! as if the container's root were "/" (openat2 RESOLVE_IN_ROOT), so a symlink planted in
//! the container (etc/hostname -> /etc/shadow) can never make vzctl touch a host file.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::Path;

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

fn open_in(root: &Path, path: &str, flags: OFlag, mode: u32) -> std::io::Result<File> {
    let dir = File::open(root)?;
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .mode(Mode::from_bits_truncate(mode))
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(dir.as_raw_fd(), path.trim_start_matches('/'), how)?;
    // SAFETY: openat2 returned a fresh fd that we now own.
    Ok(unsafe { File::from_raw_fd(fd) })
}

pub fn read(root: &Path, path: &str) -> std::io::Result<String> {
    let mut text = String::new();
    open_in(root, path, OFlag::O_RDONLY, 0)?.read_to_string(&mut text)?;
    Ok(text)
}

/// Replaces the content of `path` inside the container (creating it with `mode`).
pub fn write(root: &Path, path: &str, content: &str, mode: u32) -> std::io::Result<()> {
    let mut f = open_in(
        root,
        path,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC,
        mode,
    )?;
    f.write_all(content.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_stay_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "host data").unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::os::unix::fs::symlink(&victim, root.path().join("etc/hostname")).unwrap();
        // The absolute link resolves inside the root, where its target does not exist.
        let err = write(root.path(), "/etc/hostname", "evil", 0o644);
        assert!(err.is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "host data");
        write(root.path(), "/etc/hosts", "127.0.0.1 localhost\n", 0o644).unwrap();
        assert_eq!(
            read(root.path(), "etc/hosts").unwrap(),
            "127.0.0.1 localhost\n"
        );
    }
}
