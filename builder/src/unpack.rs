//! Unpacking a template into a directory, for `vzctl create` and
//! `vzbuild unpack`: streaming, digests checked while reading, unsafe paths
//! refused, every attribute restored, and atomic: the tree is built in a
//! hidden directory beside the target and renamed into place only after the
//! layer's digests matched.

use crate::error::{Error, Result};
use crate::image::TemplateArchive;
use crate::progress::{self, Counters, Progress};
use nix::sys::stat::{mknod, Mode, SFlag};
use nix::sys::time::TimeSpec;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Options for [`unpack`].
#[derive(Debug, Clone, Default)]
pub struct UnpackOptions {
    /// Progress on stderr: None = only when stderr is a terminal.
    pub progress: Option<bool>,
}

/// What [`unpack`] did.
#[derive(Debug, Clone)]
pub struct UnpackReport {
    pub target: PathBuf,
    pub entries: u64,
    pub uncompressed_size: u64,
    pub manifest_digest: String,
}

/// Removes the staging directory unless disarmed.
struct StageGuard(Option<PathBuf>);

impl Drop for StageGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

/// Unpacks the template archive at `template` into `target`, which must not
/// exist (or be an empty directory). On any error nothing is left behind.
pub fn unpack(template: &Path, target: &Path, opts: &UnpackOptions) -> Result<UnpackReport> {
    let archive = TemplateArchive::open(template)?;
    unpack_archive(&archive, target, opts)
}

/// Like [`unpack`], for an already opened archive.
pub fn unpack_archive(
    archive: &TemplateArchive,
    target: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackReport> {
    let target_name = target
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("bad target directory {}", target.display())))?;
    let parent = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let parent_meta =
        std::fs::metadata(parent).map_err(|e| Error::io_path("reading", parent, e))?;
    if !parent_meta.is_dir() {
        return Err(Error::Invalid(format!(
            "{} is not a directory",
            parent.display()
        )));
    }
    let replace_empty_dir = match std::fs::symlink_metadata(target) {
        Ok(m) if m.is_dir() => {
            let empty = std::fs::read_dir(target)
                .map_err(|e| Error::io_path("listing", target, e))?
                .next()
                .is_none();
            if !empty {
                return Err(Error::Invalid(format!(
                    "{} exists and is not empty",
                    target.display()
                )));
            }
            true
        }
        Ok(_) => return Err(Error::Invalid(format!("{} exists", target.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(Error::io_path("reading", target, e)),
    };
    let mut stage_name = b".".to_vec();
    stage_name.extend_from_slice(target_name.as_bytes());
    stage_name.extend_from_slice(b".vzbuild-unpack-");
    // An unpack killed by a signal leaves its staging directory behind.
    crate::util::remove_stale(parent, &String::from_utf8_lossy(&stage_name));
    stage_name.extend_from_slice(std::process::id().to_string().as_bytes());
    let stage = parent.join(OsStr::from_bytes(&stage_name));
    std::fs::create_dir(&stage).map_err(|e| Error::io_path("creating", &stage, e))?;
    std::fs::set_permissions(&stage, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::io_path("chmod", &stage, e))?;
    let mut guard = StageGuard(Some(stage.clone()));

    let counters = Arc::new(Counters::default());
    let show = progress::wanted(opts.progress);
    let label = format!(
        "unpacking {}",
        archive
            .annotations
            .get("org.opencontainers.image.title")
            .cloned()
            .unwrap_or_else(|| archive.path.display().to_string())
    );
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (entries, usize_) = {
        let _p = Progress::start(label, Some(archive.layer_size), Arc::clone(&counters), show);
        // Mirror the reader's byte counter into the display's.
        let c2 = Arc::clone(&counters);
        let d2 = Arc::clone(&done);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let mirror = std::thread::spawn(move || {
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                c2.done_bytes.store(
                    d2.load(std::sync::atomic::Ordering::Relaxed),
                    std::sync::atomic::Ordering::Relaxed,
                );
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        });
        let stream = archive.layer_stream(Some(Arc::clone(&done)))?;
        let mut ex = Extractor {
            root: stage.clone(),
            archive_path: archive.path.clone(),
            dirs: HashSet::new(),
            dir_times: Vec::new(),
            buf: vec![0u8; 256 * 1024],
            counters: Arc::clone(&counters),
            entries: 0,
        };
        ex.dirs.insert(Vec::new());
        let mut tar = tar::Archive::new(stream);
        let res = ex.run(&mut tar);
        let stream = tar.into_inner();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = mirror.join();
        // Digest errors take precedence: a corrupt layer explains odd entries.
        let usize_ = stream.finish()?;
        res?;
        ex.apply_dir_times()?;
        (ex.entries, usize_)
    };
    if replace_empty_dir {
        std::fs::remove_dir(target).map_err(|e| Error::io_path("replacing", target, e))?;
    }
    std::fs::rename(&stage, target)
        .map_err(|e| Error::io_path("renaming into place", target, e))?;
    guard.0 = None;
    Ok(UnpackReport {
        target: target.to_path_buf(),
        entries,
        uncompressed_size: usize_,
        manifest_digest: archive.manifest_digest.clone(),
    })
}

struct Extractor {
    root: PathBuf,
    archive_path: PathBuf,
    /// Relative paths of directories this unpack created (or verified to be
    /// real directories): the only places entries may be written into.
    dirs: HashSet<Vec<u8>>,
    dir_times: Vec<(PathBuf, i64)>,
    buf: Vec<u8>,
    counters: Arc<Counters>,
    entries: u64,
}

/// Normalizes an archive path: strips "./" and trailing "/", refuses absolute
/// paths and "..". Returns an empty vector for the root itself.
fn clean_path(raw: &[u8]) -> std::result::Result<Vec<u8>, String> {
    if raw.starts_with(b"/") {
        return Err(format!("absolute path {:?}", String::from_utf8_lossy(raw)));
    }
    if raw.contains(&0) {
        return Err("path with a NUL byte".into());
    }
    let mut parts: Vec<&[u8]> = Vec::new();
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                return Err(format!(
                    "path with '..': {:?}",
                    String::from_utf8_lossy(raw)
                ))
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join(&b'/'))
}

fn split_parent(p: &[u8]) -> (&[u8], &[u8]) {
    match p.iter().rposition(|&b| b == b'/') {
        Some(i) => (&p[..i], &p[i + 1..]),
        None => (b"", p),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Node {
    Dir,
    Symlink,
    Other,
}

struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

fn parse_num<T: std::str::FromStr>(v: &[u8]) -> Option<T> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

impl Extractor {
    fn corrupt(&self, why: impl Into<String>) -> Error {
        Error::corrupt(&self.archive_path, why)
    }

    fn abs(&self, rel: &[u8]) -> PathBuf {
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(OsStr::from_bytes(rel))
        }
    }

    /// Makes sure `dir` (relative) is a real directory created by us,
    /// creating missing parents; refuses to go through anything else.
    fn ensure_dir(&mut self, dir: &[u8]) -> Result<()> {
        if self.dirs.contains(dir) {
            return Ok(());
        }
        let (parent, _) = split_parent(dir);
        let parent = parent.to_vec();
        self.ensure_dir(&parent)?;
        let abs = self.abs(dir);
        match std::fs::symlink_metadata(&abs) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(self.corrupt(format!(
                    "refusing to write through non-directory /{}",
                    String::from_utf8_lossy(dir)
                )))
            }
            Err(_) => {
                std::fs::create_dir(&abs).map_err(|e| Error::io_path("creating", &abs, e))?;
            }
        }
        self.dirs.insert(dir.to_vec());
        Ok(())
    }

    fn run<R: Read>(&mut self, tar: &mut tar::Archive<R>) -> Result<()> {
        let entries = tar
            .entries()
            .map_err(|e| self.corrupt(format!("layer is not a tar stream: {e}")))?;
        for ent in entries {
            let mut ent = ent.map_err(|e| self.corrupt(format!("bad tar entry: {e}")))?;
            self.entry(&mut ent)?;
            self.entries += 1;
            self.counters
                .entries
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }

    fn entry<R: Read>(&mut self, ent: &mut tar::Entry<R>) -> Result<()> {
        let h = ent.header().clone();
        let et = h.entry_type();
        if matches!(et, tar::EntryType::XGlobalHeader) {
            return Ok(());
        }
        let mut meta = Meta {
            mode: h
                .mode()
                .map_err(|e| self.corrupt(format!("bad mode: {e}")))?
                & 0o7777,
            uid: h.uid().map_err(|e| self.corrupt(format!("bad uid: {e}")))? as u32,
            gid: h.gid().map_err(|e| self.corrupt(format!("bad gid: {e}")))? as u32,
            mtime: h
                .mtime()
                .map_err(|e| self.corrupt(format!("bad mtime: {e}")))? as i64,
            xattrs: Vec::new(),
        };
        let mut path_raw = ent.path_bytes().into_owned();
        let mut sparse_real: Option<u64> = None;
        let mut sparse_major = None;
        if let Ok(Some(pax)) = ent.pax_extensions() {
            for ext in pax {
                let ext = ext.map_err(|e| self.corrupt(format!("bad PAX header: {e}")))?;
                let (k, v) = (ext.key_bytes(), ext.value_bytes());
                if let Some(name) = k.strip_prefix(b"SCHILY.xattr.") {
                    meta.xattrs.push((name.to_vec(), v.to_vec()));
                } else {
                    match k {
                        b"uid" => {
                            meta.uid = parse_num(v).ok_or_else(|| self.corrupt("bad PAX uid"))?
                        }
                        b"gid" => {
                            meta.gid = parse_num(v).ok_or_else(|| self.corrupt("bad PAX gid"))?
                        }
                        b"mtime" => {
                            let s = std::str::from_utf8(v).unwrap_or("0");
                            let secs = s.split('.').next().unwrap_or("0");
                            meta.mtime = secs.parse().map_err(|_| self.corrupt("bad PAX mtime"))?;
                        }
                        b"GNU.sparse.name" => path_raw = v.to_vec(),
                        b"GNU.sparse.realsize" => {
                            sparse_real =
                                Some(parse_num(v).ok_or_else(|| self.corrupt("bad sparse size"))?)
                        }
                        b"GNU.sparse.major" => sparse_major = parse_num::<u32>(v),
                        _ => {}
                    }
                }
            }
        }
        if sparse_real.is_some() && sparse_major != Some(1) {
            return Err(self.corrupt("only PAX GNU sparse format 1.0 is supported"));
        }
        let rel =
            clean_path(&path_raw).map_err(|why| self.corrupt(format!("unsafe entry: {why}")))?;
        let abs = self.abs(&rel);
        let (parent, _) = split_parent(&rel);
        if !rel.is_empty() {
            let parent = parent.to_vec();
            self.ensure_dir(&parent)?;
        }
        // An existing entry at this path (duplicate in the archive): a
        // directory may be re-described, anything else is replaced.
        let existing = std::fs::symlink_metadata(&abs).ok();
        if let Some(m) = &existing {
            let dir_over_dir = m.is_dir() && et == tar::EntryType::Directory;
            if !rel.is_empty() && !dir_over_dir {
                if m.is_dir() {
                    return Err(self.corrupt(format!(
                        "entry /{} replaces a directory",
                        String::from_utf8_lossy(&rel)
                    )));
                }
                std::fs::remove_file(&abs).map_err(|e| Error::io_path("replacing", &abs, e))?;
            }
        }
        match et {
            tar::EntryType::Directory => {
                if existing.is_none() {
                    std::fs::create_dir(&abs).map_err(|e| Error::io_path("creating", &abs, e))?;
                }
                self.dirs.insert(rel.clone());
                self.set_meta_path(&abs, &meta, Node::Dir)?;
                self.dir_times.push((abs, meta.mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                if rel.is_empty() {
                    return Err(self.corrupt("a file entry names the root"));
                }
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .mode(0o600)
                    .open(&abs)
                    .map_err(|e| Error::io_path("creating", &abs, e))?;
                match sparse_real {
                    Some(real) => self.write_sparse(ent, &mut f, &abs, real)?,
                    None => self.copy(ent, &mut f, &abs)?,
                }
                self.set_meta_file(&f, &abs, &meta)?;
            }
            tar::EntryType::Symlink => {
                let target = ent
                    .link_name_bytes()
                    .ok_or_else(|| self.corrupt("symlink without a target"))?
                    .into_owned();
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &abs)
                    .map_err(|e| Error::io_path("creating symlink", &abs, e))?;
                self.set_meta_path(&abs, &meta, Node::Symlink)?;
            }
            tar::EntryType::Link => {
                let target = ent
                    .link_name_bytes()
                    .ok_or_else(|| self.corrupt("hardlink without a target"))?
                    .into_owned();
                let trel = clean_path(&target)
                    .map_err(|why| self.corrupt(format!("unsafe hardlink: {why}")))?;
                let (tparent, _) = split_parent(&trel);
                if trel.is_empty() || !self.dirs.contains(tparent) {
                    return Err(self.corrupt(format!(
                        "hardlink /{} points outside the extracted tree",
                        String::from_utf8_lossy(&rel)
                    )));
                }
                let tabs = self.abs(&trel);
                match std::fs::symlink_metadata(&tabs) {
                    Ok(m) if !m.is_dir() => {}
                    _ => {
                        return Err(self.corrupt(format!(
                            "hardlink /{} points to /{}, which is not an extracted file",
                            String::from_utf8_lossy(&rel),
                            String::from_utf8_lossy(&trel)
                        )))
                    }
                }
                std::fs::hard_link(&tabs, &abs)
                    .map_err(|e| Error::io_path("creating hardlink", &abs, e))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let kind = match et {
                    tar::EntryType::Char => SFlag::S_IFCHR,
                    tar::EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let dev = if et == tar::EntryType::Fifo {
                    0
                } else {
                    let maj = h.device_major().ok().flatten().unwrap_or(0);
                    let min = h.device_minor().ok().flatten().unwrap_or(0);
                    nix::sys::stat::makedev(maj as u64, min as u64)
                };
                mknod(&abs, kind, Mode::from_bits_truncate(0o600), dev)
                    .map_err(|e| Error::io_path("creating device node", &abs, e.into()))?;
                self.set_meta_path(&abs, &meta, Node::Other)?;
            }
            other => {
                return Err(self.corrupt(format!(
                    "unsupported entry type {:?} at /{}",
                    other,
                    String::from_utf8_lossy(&rel)
                )))
            }
        }
        Ok(())
    }

    fn copy<R: Read>(&mut self, src: &mut R, f: &mut File, abs: &Path) -> Result<()> {
        loop {
            let n = match src.read(&mut self.buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.corrupt(format!("reading layer: {e}"))),
            };
            f.write_all(&self.buf[..n])
                .map_err(|e| Error::io_path("writing", abs, e))?;
        }
    }

    fn write_sparse<R: Read>(
        &mut self,
        src: &mut R,
        f: &mut File,
        abs: &Path,
        real: u64,
    ) -> Result<()> {
        // PAX 1.0: decimal lines "count", then offset/length pairs, padded
        // to 512 bytes, followed by the data regions back to back.
        let mut map_bytes = Vec::new();
        let mut numbers: Vec<u64> = Vec::new();
        let mut want: Option<usize> = None;
        let mut line = Vec::new();
        let mut block = [0u8; 512];
        'outer: loop {
            src.read_exact(&mut block)
                .map_err(|e| self.corrupt(format!("truncated sparse map: {e}")))?;
            map_bytes.extend_from_slice(&block);
            for &b in block.iter() {
                if b == b'\n' {
                    let n: u64 = parse_num(&line).ok_or_else(|| self.corrupt("bad sparse map"))?;
                    line.clear();
                    if want.is_none() {
                        if n > 1 << 24 {
                            return Err(self.corrupt("sparse map too large"));
                        }
                        want = Some(n as usize * 2);
                    } else {
                        numbers.push(n);
                    }
                    if want == Some(numbers.len()) {
                        break 'outer;
                    }
                } else {
                    line.push(b);
                }
            }
        }
        for pair in numbers.chunks(2) {
            let (off, len) = (pair[0], pair[1]);
            if off.checked_add(len).is_none_or(|end| end > real) {
                return Err(self.corrupt("sparse region beyond the file size"));
            }
            f.seek(SeekFrom::Start(off))
                .map_err(|e| Error::io_path("writing", abs, e))?;
            let mut left = len;
            while left > 0 {
                let n = (self.buf.len() as u64).min(left) as usize;
                src.read_exact(&mut self.buf[..n])
                    .map_err(|e| self.corrupt(format!("truncated sparse data: {e}")))?;
                f.write_all(&self.buf[..n])
                    .map_err(|e| Error::io_path("writing", abs, e))?;
                left -= n as u64;
            }
        }
        f.set_len(real)
            .map_err(|e| Error::io_path("writing", abs, e))?;
        Ok(())
    }

    fn set_meta_file(&self, f: &File, abs: &Path, m: &Meta) -> Result<()> {
        use std::os::fd::AsRawFd;
        // Order matters: chown clears setuid/setgid and file capabilities,
        // so ownership first, then mode, then xattrs, then times.
        std::os::unix::fs::fchown(f, Some(m.uid), Some(m.gid))
            .map_err(|e| Error::io_path("chown", abs, e))?;
        f.set_permissions(std::fs::Permissions::from_mode(m.mode))
            .map_err(|e| Error::io_path("chmod", abs, e))?;
        for (k, v) in &m.xattrs {
            xattr::FileExt::set_xattr(f, OsStr::from_bytes(k), v).map_err(|e| {
                Error::io_path(
                    &format!("setting xattr {} on", String::from_utf8_lossy(k)),
                    abs,
                    e,
                )
            })?;
        }
        let ts = TimeSpec::new(m.mtime, 0);
        nix::sys::stat::futimens(f.as_raw_fd(), &ts, &ts)
            .map_err(|e| Error::io_path("setting times of", abs, e.into()))?;
        Ok(())
    }

    fn set_meta_path(&self, abs: &Path, m: &Meta, kind: Node) -> Result<()> {
        std::os::unix::fs::lchown(abs, Some(m.uid), Some(m.gid))
            .map_err(|e| Error::io_path("chown", abs, e))?;
        if kind != Node::Symlink {
            std::fs::set_permissions(abs, std::fs::Permissions::from_mode(m.mode))
                .map_err(|e| Error::io_path("chmod", abs, e))?;
        }
        for (k, v) in &m.xattrs {
            xattr::set(abs, OsStr::from_bytes(k), v).map_err(|e| {
                Error::io_path(
                    &format!("setting xattr {} on", String::from_utf8_lossy(k)),
                    abs,
                    e,
                )
            })?;
        }
        // Directories get their times at the end, since creating their
        // children changes them.
        if kind != Node::Dir {
            let ts = TimeSpec::new(m.mtime, 0);
            nix::sys::stat::utimensat(
                None,
                abs,
                &ts,
                &ts,
                nix::sys::stat::UtimensatFlags::NoFollowSymlink,
            )
            .map_err(|e| Error::io_path("setting times of", abs, e.into()))?;
        }
        Ok(())
    }

    fn apply_dir_times(&self) -> Result<()> {
        for (p, t) in self.dir_times.iter().rev() {
            let ts = TimeSpec::new(*t, 0);
            nix::sys::stat::utimensat(
                None,
                p,
                &ts,
                &ts,
                nix::sys::stat::UtimensatFlags::NoFollowSymlink,
            )
            .map_err(|e| Error::io_path("setting times of", p, e.into()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::clean_path;

    #[test]
    fn paths_are_normalized_and_checked() {
        assert_eq!(clean_path(b"./etc/passwd").unwrap(), b"etc/passwd");
        assert_eq!(clean_path(b"./").unwrap(), b"");
        assert_eq!(clean_path(b"usr//bin/").unwrap(), b"usr/bin");
        assert!(clean_path(b"/etc/passwd").is_err());
        assert!(clean_path(b"a/../../b").is_err());
        assert!(clean_path(b"..").is_err());
    }
}
