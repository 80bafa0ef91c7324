//! Low-level tar writing: ustar headers (built with the `tar` crate's
//! [`tar::Header`]) plus PAX extended headers for everything ustar cannot hold
//! (long or non-ASCII names, big ids, xattrs, sparse maps). Only what is given
//! is written: no user/group names, no atime/ctime, so output depends on the
//! entry's data alone.

use std::io::{self, Write};

pub const BLOCK: usize = 512;
const USTAR_MAX_OCTAL7: u64 = 0o7_777_777;
const USTAR_MAX_OCTAL11: u64 = 0o77_777_777_777;

/// Kind of a tar entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    HardLink,
    Symlink,
    Char,
    Block,
    Dir,
    Fifo,
}

/// Everything written in one entry's header(s).
pub struct EntryHeader<'a> {
    /// Path inside the archive, without a leading "/" (directories without
    /// their trailing slash, which is added here).
    pub path: &'a [u8],
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
    /// Bytes of data that follow the header (for sparse files: map + data).
    pub size: u64,
    pub link: Option<&'a [u8]>,
    pub dev_major: u64,
    pub dev_minor: u64,
    /// Extended attributes, already sorted by name.
    pub xattrs: &'a [(Vec<u8>, Vec<u8>)],
    /// For sparse files: the real file size (PAX GNU sparse 1.0 format).
    pub sparse_real_size: Option<u64>,
}

fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    // A record is "LEN KEY=VALUE\n" where LEN counts the whole record,
    // including its own digits.
    let base = key.len() + value.len() + 3;
    let mut len = base + 1;
    while len != base + len.to_string().len() {
        len = base + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn pad(w: &mut impl Write, len: u64) -> io::Result<()> {
    let rem = (len % BLOCK as u64) as usize;
    if rem != 0 {
        w.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
    }
    Ok(())
}

/// Writes the padding after `len` bytes of entry data.
pub fn write_padding(w: &mut impl Write, len: u64) -> io::Result<()> {
    pad(w, len)
}

/// Writes the end-of-archive marker (two zero blocks).
pub fn write_end(w: &mut impl Write) -> io::Result<()> {
    w.write_all(&[0u8; BLOCK * 2])
}

fn put_bytes(field: &mut [u8], value: &[u8]) {
    field.iter_mut().for_each(|b| *b = 0);
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// Writes the header blocks of one entry (a PAX header first when needed).
pub fn write_header(w: &mut impl Write, e: &EntryHeader) -> io::Result<()> {
    let mut name = e.path.to_vec();
    if e.kind == Kind::Dir && !name.ends_with(b"/") {
        name.push(b'/');
    }
    let mut pax = Vec::new();
    // Sparse files carry their real name in GNU.sparse.name; the ustar name is
    // a placeholder so that readers without sparse support do not overwrite
    // the real file with the encoded map.
    let header_name: Vec<u8> = if e.sparse_real_size.is_some() {
        let (dir, base) = match name.iter().rposition(|&b| b == b'/') {
            Some(i) => (&name[..=i], &name[i + 1..]),
            None => (&b""[..], &name[..]),
        };
        let mut fake = dir.to_vec();
        fake.extend_from_slice(b"GNUSparseFile.0/");
        fake.extend_from_slice(base);
        fake
    } else {
        name.clone()
    };
    let name_fits = header_name.len() <= 100 && header_name.is_ascii();
    if !name_fits && e.sparse_real_size.is_none() {
        pax_record(&mut pax, b"path", &name);
    }
    if let Some(link) = e.link {
        if link.len() > 100 || !link.is_ascii() {
            pax_record(&mut pax, b"linkpath", link);
        }
    }
    if e.uid > USTAR_MAX_OCTAL7 {
        pax_record(&mut pax, b"uid", e.uid.to_string().as_bytes());
    }
    if e.gid > USTAR_MAX_OCTAL7 {
        pax_record(&mut pax, b"gid", e.gid.to_string().as_bytes());
    }
    if e.size > USTAR_MAX_OCTAL11 {
        pax_record(&mut pax, b"size", e.size.to_string().as_bytes());
    }
    if e.mtime < 0 || e.mtime as u64 > USTAR_MAX_OCTAL11 {
        pax_record(&mut pax, b"mtime", e.mtime.to_string().as_bytes());
    }
    if let Some(real) = e.sparse_real_size {
        pax_record(&mut pax, b"GNU.sparse.major", b"1");
        pax_record(&mut pax, b"GNU.sparse.minor", b"0");
        pax_record(&mut pax, b"GNU.sparse.name", &name);
        pax_record(
            &mut pax,
            b"GNU.sparse.realsize",
            real.to_string().as_bytes(),
        );
    }
    for (k, v) in e.xattrs {
        let mut key = b"SCHILY.xattr.".to_vec();
        key.extend_from_slice(k);
        pax_record(&mut pax, &key, v);
    }
    if !pax.is_empty() {
        let mut h = tar::Header::new_ustar();
        {
            let u = h.as_ustar_mut().expect("ustar header");
            put_bytes(&mut u.name, b"././@PaxHeader");
        }
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(pax.len() as u64);
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_cksum();
        w.write_all(h.as_bytes())?;
        w.write_all(&pax)?;
        pad(w, pax.len() as u64)?;
    }

    let mut h = tar::Header::new_ustar();
    {
        let u = h.as_ustar_mut().expect("ustar header");
        if header_name.len() <= 100 {
            put_bytes(&mut u.name, &header_name);
        } else {
            // The PAX path (or GNU.sparse.name) is authoritative; keep the
            // tail, which is the most useful part for old readers.
            put_bytes(&mut u.name, &header_name[header_name.len() - 100..]);
        }
        if let Some(link) = e.link {
            put_bytes(&mut u.linkname, &link[..link.len().min(100)]);
        }
    }
    h.set_mode(e.mode & 0o7777);
    h.set_uid(e.uid.min(USTAR_MAX_OCTAL7));
    h.set_gid(e.gid.min(USTAR_MAX_OCTAL7));
    h.set_mtime(e.mtime.clamp(0, USTAR_MAX_OCTAL11 as i64) as u64);
    h.set_size(if e.size > USTAR_MAX_OCTAL11 {
        0
    } else {
        e.size
    });
    h.set_entry_type(match e.kind {
        Kind::File => tar::EntryType::Regular,
        Kind::HardLink => tar::EntryType::Link,
        Kind::Symlink => tar::EntryType::Symlink,
        Kind::Char => tar::EntryType::Char,
        Kind::Block => tar::EntryType::Block,
        Kind::Dir => tar::EntryType::Directory,
        Kind::Fifo => tar::EntryType::Fifo,
    });
    if matches!(e.kind, Kind::Char | Kind::Block) {
        if e.dev_major > USTAR_MAX_OCTAL7 || e.dev_minor > USTAR_MAX_OCTAL7 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "device number too large for a tar header",
            ));
        }
        h.set_device_major(e.dev_major as u32)?;
        h.set_device_minor(e.dev_minor as u32)?;
    }
    h.set_cksum();
    w.write_all(h.as_bytes())
}

/// Encodes a PAX GNU sparse 1.0 map (decimal lines, padded to a block).
pub fn sparse_map_block(regions: &[(u64, u64)]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(format!("{}\n", regions.len()).as_bytes());
    for (off, len) in regions {
        m.extend_from_slice(format!("{off}\n{len}\n").as_bytes());
    }
    let rem = m.len() % BLOCK;
    if rem != 0 {
        m.resize(m.len() + BLOCK - rem, 0);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        let mut v = Vec::new();
        pax_record(&mut v, b"path", b"a");
        assert_eq!(v, b"9 path=a\n");
        let mut v = Vec::new();
        let long = vec![b'x'; 95];
        pax_record(&mut v, b"path", &long);
        let s = String::from_utf8(v.clone()).unwrap();
        let n: usize = s.split(' ').next().unwrap().parse().unwrap();
        assert_eq!(n, v.len());
    }

    #[test]
    fn sparse_map_is_block_padded() {
        let m = sparse_map_block(&[(0, 10), (4096, 5)]);
        assert_eq!(m.len(), 512);
        assert!(m.starts_with(b"2\n0\n10\n4096\n5\n"));
    }
}
