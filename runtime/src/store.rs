//! The on-disk layout of a runtime root and per-container locking.
//!
//! ```text
//! <root>/                      --root (default /run/vzrun), mode 0700
//!   <id>/                      one directory per container, appears atomically
//!     lock                     POSIX record lock: exclusive for changes, shared for exec/kill
//!     state.json               the persisted state (written atomically)
//!     config.json              the spec the container was created with (after preparation)
//!     notify.sock              the waiting init's start socket (until `start`)
//! ```
//!
//! POSIX (fcntl) locks rather than flock/OFD locks because they are not inherited by
//! the container processes libcontainer clones from us: a waiting init must never keep a
//! container locked after `create` returns or dies.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

pub const LOCK_FILE: &str = "lock";
pub const STATE_FILE: &str = "state.json";
pub const CONFIG_FILE: &str = "config.json";
pub const NOTIFY_SOCKET: &str = "notify.sock";
const CREATING_PREFIX: &str = ".creating-";
const MAX_ID_LEN: usize = 200;

/// runc's rule: letters, digits and `_ + - .`, not "." or "..".
pub fn validate_id(id: &str) -> Result<()> {
    let invalid = |reason: &str| Error::InvalidId {
        id: id.to_string(),
        reason: reason.to_string(),
    };
    if id.is_empty() {
        return Err(invalid("it is empty"));
    }
    if id == "." || id == ".." {
        return Err(invalid("it is not a valid file name"));
    }
    if id.len() > MAX_ID_LEN {
        return Err(invalid(&format!("it is longer than {MAX_ID_LEN} bytes")));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.')))
    {
        return Err(invalid(&format!(
            "character {c:?} is not allowed (use letters, digits, '_', '+', '-', '.')"
        )));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Operations that change the container (start, delete, pause, update...).
    Exclusive,
    /// Operations that may run side by side (exec, kill).
    Shared,
}

/// A held per-container lock; released when dropped (closing the only fd releases it).
#[derive(Debug)]
pub struct ContainerLock {
    file: File,
}

impl ContainerLock {
    fn acquire(file: File, mode: LockMode, path: &Path) -> Result<Self> {
        posix_lock(&file, mode, true)
            .map_err(|e| Error::io(format!("lock {}", path.display()), e))?;
        Ok(Self { file })
    }

    /// False once the lock file was unlinked, i.e. the container was deleted while we waited.
    fn still_linked(&self) -> bool {
        self.file.metadata().map(|m| m.nlink() > 0).unwrap_or(false)
    }
}

/// A container directory under the runtime root.
#[derive(Debug, Clone)]
pub struct ContainerDir {
    pub id: String,
    pub path: PathBuf,
}

impl ContainerDir {
    pub fn new(root: &Path, id: &str) -> Result<Self> {
        validate_id(id)?;
        Ok(Self {
            id: id.to_string(),
            path: root.join(id),
        })
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn exists(&self) -> bool {
        self.path.is_dir()
    }

    /// Makes the directory appear atomically with its lock already held, so no other
    /// process can ever observe (or delete) a half-made container: it is built under a
    /// temporary name and renamed into place with RENAME_NOREPLACE.
    pub fn create_locked(&self) -> Result<ContainerLock> {
        let root = self.path.parent().expect("container dir has a parent");
        ensure_root(root)?;
        let staging = root.join(format!(
            "{CREATING_PREFIX}{}-{}",
            self.id,
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&staging);
        fs::DirBuilder::new()
            .mode(0o711)
            .create(&staging)
            .ctx(|| format!("create {}", staging.display()))?;
        let lock = (|| {
            let file = open_lock_file(&staging.join(LOCK_FILE), true)?;
            let lock = ContainerLock::acquire(file, LockMode::Exclusive, &self.path)?;
            rename_noreplace(&staging, &self.path)?;
            Ok(lock)
        })();
        if lock.is_err() {
            let _ = fs::remove_dir_all(&staging);
        }
        lock.map_err(|e| match e {
            Error::Io { source, .. } if source.raw_os_error() == Some(libc::EEXIST) => {
                Error::AlreadyExists(self.id.clone())
            }
            other => other,
        })
    }

    /// Waits for the container's lock. `NotFound` when the container does not exist or
    /// was deleted while we waited.
    pub fn lock(&self, mode: LockMode) -> Result<ContainerLock> {
        let lock_path = self.file(LOCK_FILE);
        let file = match open_lock_file(&lock_path, false) {
            Ok(f) => f,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(if self.exists() {
                    Error::Damaged {
                        id: self.id.clone(),
                        reason: "its lock file is missing".into(),
                    }
                } else {
                    Error::NotFound(self.id.clone())
                });
            }
            Err(e) => return Err(e),
        };
        let lock = ContainerLock::acquire(file, mode, &self.path)?;
        if !lock.still_linked() {
            return Err(Error::NotFound(self.id.clone()));
        }
        Ok(lock)
    }

    /// Removes the directory. Call with the exclusive lock held: waiters then find the
    /// lock file unlinked and report the container as gone.
    pub fn remove(&self, _lock: &ContainerLock) -> Result<()> {
        // Unlink the lock file last-but-one would not matter: waiters check nlink after locking.
        match fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("remove {}", self.path.display()), e)),
        }
    }

    /// Removes leftovers of a `create` that was killed before its directory appeared.
    pub fn remove_stale_staging(&self) {
        let Some(root) = self.path.parent() else {
            return;
        };
        let prefix = format!("{CREATING_PREFIX}{}-", self.id);
        let Ok(entries) = fs::read_dir(root) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(pid) = name.strip_prefix(&prefix) else {
                continue;
            };
            let creator_alive = pid
                .parse::<i32>()
                .map(|p| crate::procfs::stat(p).is_some())
                .unwrap_or(false);
            if !creator_alive {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// A POSIX record lock on the whole of `file`: waits for it, or with `wait` false
/// fails at once with `WouldBlock`. POSIX locks belong to the process and are not
/// inherited by children (unlike flock and OFD locks).
pub fn posix_lock(file: &File, mode: LockMode, wait: bool) -> std::io::Result<()> {
    let kind = match mode {
        LockMode::Exclusive => libc::F_WRLCK,
        LockMode::Shared => libc::F_RDLCK,
    };
    // SAFETY: flock is plain data; zeroed means "whole file from offset 0".
    let mut request: libc::flock = unsafe { std::mem::zeroed() };
    request.l_type = kind as libc::c_short;
    request.l_whence = libc::SEEK_SET as libc::c_short;
    let command = if wait { libc::F_SETLKW } else { libc::F_SETLK };
    loop {
        // SAFETY: fcntl with a valid fd and a pointer to a live flock struct.
        if unsafe { libc::fcntl(file.as_raw_fd(), command, &request) } == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) | Some(libc::EACCES) => {
                return Err(std::io::Error::new(std::io::ErrorKind::WouldBlock, err))
            }
            _ => return Err(err),
        }
    }
}

/// The pid holding a conflicting lock on `file`, if any.
pub fn lock_holder(file: &File) -> Option<i32> {
    // SAFETY: flock is plain data; F_GETLK fills it.
    let mut request: libc::flock = unsafe { std::mem::zeroed() };
    request.l_type = libc::F_WRLCK as libc::c_short;
    request.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: fcntl(F_GETLK) with a valid fd and flock pointer.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut request) };
    (rc == 0 && request.l_type != libc::F_UNLCK as libc::c_short).then_some(request.l_pid)
}

fn open_lock_file(path: &Path, create: bool) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
        .ctx(|| format!("open {}", path.display()))
}

fn rename_noreplace(from: &Path, to: &Path) -> Result<()> {
    nix::fcntl::renameat2(
        None,
        from,
        None,
        to,
        nix::fcntl::RenameFlags::RENAME_NOREPLACE,
    )
    .map_err(|e| Error::io(format!("rename to {}", to.display()), e.into()))
}

/// Creates the runtime root (0700: it holds sockets that start containers).
pub fn ensure_root(root: &Path) -> Result<()> {
    if root.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .ctx(|| format!("create runtime root {}", root.display()))
}

/// Ids of all containers under `root`, sorted. Staging directories are skipped.
pub fn list_ids(root: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("read {}", root.display()), e)),
    };
    let mut ids: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    ids.sort();
    Ok(ids)
}

/// Writes `data` to `path` so that readers see either the old or the new content, never
/// a mix: a sibling temporary file is written, synced and renamed over the target.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)
            .ctx(|| format!("create {}", tmp.display()))?;
        file.write_all(data)
            .ctx(|| format!("write {}", tmp.display()))?;
        file.sync_data().ctx(|| format!("sync {}", tmp.display()))?;
        fs::rename(&tmp, path).ctx(|| format!("rename {} to {}", tmp.display(), path.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_rules() {
        for ok in ["a", "abc-1.2_3+x", "0123456789abcdef"] {
            validate_id(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "a b", "ä", "x:y"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
        assert!(validate_id(&"x".repeat(201)).is_err());
    }

    #[test]
    fn create_is_exclusive_and_lock_sees_deletion() {
        let root = tempfile::tempdir().unwrap();
        let dir = ContainerDir::new(root.path(), "c1").unwrap();
        let lock = dir.create_locked().unwrap();
        assert!(matches!(dir.create_locked(), Err(Error::AlreadyExists(_))));
        assert!(dir.file(LOCK_FILE).exists());
        dir.remove(&lock).unwrap();
        drop(lock);
        assert!(matches!(
            dir.lock(LockMode::Exclusive),
            Err(Error::NotFound(_))
        ));
        assert_eq!(list_ids(root.path()).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn list_skips_staging_and_files() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("b")).unwrap();
        fs::create_dir(root.path().join("a")).unwrap();
        fs::create_dir(root.path().join(".creating-z-1")).unwrap();
        fs::write(root.path().join("file"), "x").unwrap();
        assert_eq!(list_ids(root.path()).unwrap(), vec!["a", "b"]);
    }

    #[test]
    fn atomic_write_replaces_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
