//! Walks a root directory in a fixed order (depth first, names sorted by
//! bytes) and writes it as a tar stream, keeping every attribute a system
//! container needs: numeric owners, full modes, hardlinks, device numbers,
//! FIFOs, symlinks as they are, xattrs (file capabilities, POSIX ACLs as their
//! `system.posix_acl_*` xattrs, `user.*`), sparse files (PAX GNU sparse 1.0),
//! long and non-ASCII names (PAX). The tree is never held in memory: only one
//! directory listing per level and the (device, inode) of files with more
//! than one link.

use crate::error::{Error, Result};
use crate::profile::{Action, Profile};
use crate::progress::Counters;
use crate::tarfmt::{self, EntryHeader, Kind};
use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Options for writing a tree as a tar stream.
pub struct WalkOptions {
    /// mtimes later than this are clamped to it (SOURCE_DATE_EPOCH).
    pub clamp_mtime: Option<i64>,
    pub profile: Profile,
}

/// What was written, and what the profile left out.
#[derive(Debug, Default)]
pub struct WalkReport {
    pub entries: u64,
    /// (path, what was done) for everything the profile removed or emptied.
    pub cleaned: Vec<(String, &'static str)>,
    /// Sockets and other entries that tar cannot carry.
    pub skipped: Vec<String>,
}

struct Walker<'a, W: Write> {
    out: &'a mut W,
    opts: &'a WalkOptions,
    links: HashMap<(u64, u64), Vec<u8>>,
    report: WalkReport,
    progress: Arc<Counters>,
    buf: Vec<u8>,
}

/// Writes the tree under `root` as an uncompressed tar stream into `out`.
pub fn write_tree<W: Write>(
    root: &Path,
    out: &mut W,
    opts: &WalkOptions,
    progress: Arc<Counters>,
) -> Result<WalkReport> {
    let meta = std::fs::symlink_metadata(root).map_err(|e| Error::io_path("reading", root, e))?;
    if !meta.is_dir() {
        return Err(Error::Invalid(format!(
            "{} is not a directory",
            root.display()
        )));
    }
    // Fail early on an unreadable root instead of producing an empty layer.
    std::fs::read_dir(root).map_err(|e| Error::io_path("listing", root, e))?;
    let mut w = Walker {
        out,
        opts,
        links: HashMap::new(),
        report: WalkReport::default(),
        progress,
        buf: vec![0u8; 256 * 1024],
    };
    w.entry(b".", root, &meta)?;
    w.dir(b"", root)?;
    tarfmt::write_end(w.out).map_err(|e| Error::io("writing layer", e))?;
    Ok(w.report)
}

fn xattrs_of(path: &Path) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let names = match xattr::list(path) {
        Ok(n) => n,
        // Filesystems without xattr support simply have none.
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(Error::io_path("listing xattrs of", path, e)),
    };
    let mut out = Vec::new();
    for n in names {
        match xattr::get(path, &n) {
            Ok(Some(v)) => out.push((n.as_bytes().to_vec(), v)),
            Ok(None) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENODATA) => {}
            Err(e) => return Err(Error::io_path("reading xattrs of", path, e)),
        }
    }
    out.sort();
    Ok(out)
}

/// Data regions of a file with holes, via SEEK_DATA/SEEK_HOLE. Returns None
/// when the file is one contiguous data region.
fn data_regions(f: &File, size: u64) -> io::Result<Option<Vec<(u64, u64)>>> {
    use nix::unistd::{lseek, Whence};
    use std::os::fd::AsRawFd;
    let fd = f.as_raw_fd();
    let mut regions = Vec::new();
    let mut pos: i64 = 0;
    let size = size as i64;
    while pos < size {
        let start = match lseek(fd, pos, Whence::SeekData) {
            Ok(s) => s,
            Err(nix::errno::Errno::ENXIO) => break, // only a hole remains
            Err(e) => return Err(e.into()),
        };
        if start >= size {
            break;
        }
        let end = lseek(fd, start, Whence::SeekHole)
            .map_err(io::Error::from)?
            .min(size);
        regions.push((start as u64, (end - start) as u64));
        pos = end;
    }
    lseek(fd, 0, Whence::SeekSet).map_err(io::Error::from)?;
    if regions.len() == 1 && regions[0] == (0, size as u64) {
        return Ok(None);
    }
    // GNU convention: a file ending in a hole gets a final empty region.
    if regions.last().map(|(o, l)| o + l) != Some(size as u64) {
        regions.push((size as u64, 0));
    }
    Ok(Some(regions))
}

impl<W: Write> Walker<'_, W> {
    fn write_err(e: io::Error) -> Error {
        Error::io("writing layer", e)
    }

    fn dir(&mut self, rel: &[u8], abs: &Path) -> Result<()> {
        let rd = std::fs::read_dir(abs).map_err(|e| Error::io_path("listing", abs, e))?;
        let mut names: Vec<std::ffi::OsString> = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|e| Error::io_path("listing", abs, e))?;
            names.push(ent.file_name());
        }
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let mut child_rel = rel.to_vec();
            if !child_rel.is_empty() {
                child_rel.push(b'/');
            }
            child_rel.extend_from_slice(name.as_bytes());
            let child_abs = abs.join(&name);
            let meta = std::fs::symlink_metadata(&child_abs)
                .map_err(|e| Error::io_path("reading", &child_abs, e))?;
            match self.opts.profile.classify(&child_rel, &meta) {
                Action::Keep => {
                    self.entry(&child_rel, &child_abs, &meta)?;
                    if meta.is_dir() {
                        self.dir(&child_rel, &child_abs)?;
                    }
                }
                Action::Empty(why) => {
                    self.report
                        .cleaned
                        .push((format!("/{}", String::from_utf8_lossy(&child_rel)), why));
                    self.empty_file(&child_rel, &child_abs, &meta)?;
                }
                Action::Drop(why) => {
                    self.report
                        .cleaned
                        .push((format!("/{}", String::from_utf8_lossy(&child_rel)), why));
                }
            }
        }
        Ok(())
    }

    fn mtime(&self, meta: &Metadata) -> i64 {
        let m = meta.mtime();
        match self.opts.clamp_mtime {
            Some(c) if m > c => c,
            _ => m,
        }
    }

    fn header(&mut self, h: &EntryHeader) -> Result<()> {
        tarfmt::write_header(self.out, h).map_err(Self::write_err)?;
        self.report.entries += 1;
        self.progress.entries.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn empty_file(&mut self, rel: &[u8], abs: &Path, meta: &Metadata) -> Result<()> {
        let xattrs = xattrs_of(abs)?;
        self.header(&EntryHeader {
            path: rel,
            kind: Kind::File,
            mode: meta.mode(),
            uid: meta.uid() as u64,
            gid: meta.gid() as u64,
            mtime: self.mtime(meta),
            size: 0,
            link: None,
            dev_major: 0,
            dev_minor: 0,
            xattrs: &xattrs,
            sparse_real_size: None,
        })
    }

    fn entry(&mut self, rel: &[u8], abs: &Path, meta: &Metadata) -> Result<()> {
        let ft = meta.file_type();
        if ft.is_socket() {
            let p = format!("/{}", String::from_utf8_lossy(rel));
            eprintln!("vzbuild: warning: skipping socket {p}");
            self.report.skipped.push(p);
            return Ok(());
        }
        let mtime = self.mtime(meta);
        let mut h = EntryHeader {
            path: rel,
            kind: Kind::File,
            mode: meta.mode(),
            uid: meta.uid() as u64,
            gid: meta.gid() as u64,
            mtime,
            size: 0,
            link: None,
            dev_major: 0,
            dev_minor: 0,
            xattrs: &[],
            sparse_real_size: None,
        };
        if ft.is_dir() {
            let xattrs = xattrs_of(abs)?;
            h.kind = Kind::Dir;
            h.path = if rel == b"." { b"./" } else { rel };
            h.xattrs = &xattrs;
            return self.header(&h);
        }
        if ft.is_symlink() {
            let target =
                std::fs::read_link(abs).map_err(|e| Error::io_path("reading link", abs, e))?;
            let xattrs = xattrs_of(abs)?;
            h.kind = Kind::Symlink;
            h.link = Some(target.as_os_str().as_bytes());
            h.xattrs = &xattrs;
            return self.header(&h);
        }
        // Hardlinks: the first path in walk order carries the data, later
        // ones are link entries pointing to it.
        if !ft.is_dir() && meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = self.links.get(&key).cloned() {
                h.kind = Kind::HardLink;
                h.link = Some(&first);
                return self.header(&h);
            }
            self.links.insert(key, rel.to_vec());
        }
        let xattrs = xattrs_of(abs)?;
        h.xattrs = &xattrs;
        if ft.is_char_device() || ft.is_block_device() {
            let rdev = meta.rdev();
            h.kind = if ft.is_char_device() {
                Kind::Char
            } else {
                Kind::Block
            };
            h.dev_major = nix::sys::stat::major(rdev);
            h.dev_minor = nix::sys::stat::minor(rdev);
            return self.header(&h);
        }
        if ft.is_fifo() {
            h.kind = Kind::Fifo;
            return self.header(&h);
        }
        if !ft.is_file() {
            let p = format!("/{}", String::from_utf8_lossy(rel));
            eprintln!("vzbuild: warning: skipping unsupported file type {p}");
            self.report.skipped.push(p);
            return Ok(());
        }
        let size = meta.len();
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NOATIME)
            .open(abs)
            .or_else(|_| {
                std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(abs)
            })
            .map_err(|e| Error::io_path("opening", abs, e))?;
        let sparse = if size > 0 && meta.blocks() * 512 < size {
            data_regions(&f, size).map_err(|e| Error::io_path("mapping holes of", abs, e))?
        } else {
            None
        };
        match sparse {
            None => {
                h.size = size;
                self.header(&h)?;
                self.copy_data(&mut f, abs, 0, size)?;
                tarfmt::write_padding(self.out, size).map_err(Self::write_err)?;
            }
            Some(regions) => {
                let map = tarfmt::sparse_map_block(&regions);
                let data: u64 = regions.iter().map(|r| r.1).sum();
                h.size = map.len() as u64 + data;
                h.sparse_real_size = Some(size);
                self.header(&h)?;
                self.out.write_all(&map).map_err(Self::write_err)?;
                for (off, len) in regions {
                    self.copy_data(&mut f, abs, off, len)?;
                }
                tarfmt::write_padding(self.out, data).map_err(Self::write_err)?;
            }
        }
        Ok(())
    }

    fn copy_data(&mut self, f: &mut File, abs: &Path, offset: u64, len: u64) -> Result<()> {
        use std::io::Seek;
        if offset != 0 {
            f.seek(io::SeekFrom::Start(offset))
                .map_err(|e| Error::io_path("reading", abs, e))?;
        }
        let mut left = len;
        while left > 0 {
            let want = (self.buf.len() as u64).min(left) as usize;
            let n = match f.read(&mut self.buf[..want]) {
                Ok(0) => {
                    return Err(Error::Invalid(format!(
                        "{} shrank while being packed (expected {} more bytes)",
                        abs.display(),
                        left
                    )))
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io_path("reading", abs, e)),
            };
            self.out
                .write_all(&self.buf[..n])
                .map_err(Self::write_err)?;
            self.progress
                .done_bytes
                .fetch_add(n as u64, Ordering::Relaxed);
            left -= n as u64;
        }
        Ok(())
    }
}
