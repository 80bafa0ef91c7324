//! The template file: an OCI image layout in one uncompressed tar
//! ("oci-archive"), holding `oci-layout`, `index.json` and three blobs
//! (manifest, config, one layer). Writing streams the layer straight into the
//! archive (its header is patched once the digest is known); reading indexes
//! the archive's entries by seeking, checks every digest, size and media type.

use crate::compress::{hex, Compression, LayerStats, ParallelEncoder};
use crate::error::{Error, Result};
use crate::tarfmt::{self, EntryHeader, Kind};
use crate::util::canonical_json;
use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

pub const MT_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MT_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MT_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MT_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MT_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// What goes into the image besides the layer.
pub struct ImageMeta {
    pub created_epoch: i64,
    pub oci_arch: String,
    pub annotations: BTreeMap<String, String>,
    pub cmd: Vec<String>,
    pub stop_signal: Option<String>,
}

/// Digests of a written archive.
#[derive(Debug, Clone)]
pub struct Written {
    pub manifest_digest: String,
    pub config_digest: String,
    pub layer: LayerStats,
    pub file_size: u64,
}

fn outer_entry(
    w: &mut impl Write,
    name: &str,
    kind: Kind,
    data: &[u8],
    mtime: i64,
) -> io::Result<()> {
    tarfmt::write_header(
        w,
        &EntryHeader {
            path: name.as_bytes(),
            kind,
            mode: if kind == Kind::Dir { 0o755 } else { 0o644 },
            uid: 0,
            gid: 0,
            mtime,
            size: data.len() as u64,
            link: None,
            dev_major: 0,
            dev_minor: 0,
            xattrs: &[],
            sparse_real_size: None,
        },
    )?;
    w.write_all(data)?;
    tarfmt::write_padding(w, data.len() as u64)
}

/// Writes a complete template archive into `file` (at offset 0). The layer
/// tar stream is produced by `write_layer`, which receives the compressing
/// sink.
pub fn write_archive(
    file: File,
    compression: Compression,
    threads: usize,
    meta: &ImageMeta,
    progress: Option<Arc<crate::progress::Counters>>,
    write_layer: impl FnOnce(&mut ParallelEncoder<File>) -> Result<()>,
) -> Result<(File, Written)> {
    let werr = |e: io::Error| Error::io("writing template", e);
    let mut file = file;
    let t = meta.created_epoch;
    outer_entry(&mut file, "oci-layout", Kind::File, OCI_LAYOUT, t).map_err(werr)?;
    outer_entry(&mut file, "blobs", Kind::Dir, b"", t).map_err(werr)?;
    outer_entry(&mut file, "blobs/sha256", Kind::Dir, b"", t).map_err(werr)?;
    let layer_header_at = file.stream_position().map_err(werr)?;
    file.write_all(&[0u8; tarfmt::BLOCK]).map_err(werr)?;

    let mut enc = ParallelEncoder::new(file, compression, threads).map_err(werr)?;
    if let Some(c) = progress {
        // Mirror the encoder's byte counter into the progress display until
        // the encoder and its writer thread are gone.
        let w = Arc::clone(&enc.written);
        std::thread::spawn(move || {
            while Arc::strong_count(&w) > 1 {
                c.out_bytes
                    .store(w.load(Ordering::Relaxed), Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        });
    }
    write_layer(&mut enc)?;
    let (mut file, layer) = enc.finish().map_err(werr)?;
    tarfmt::write_padding(&mut file, layer.compressed_size).map_err(werr)?;

    let config = json!({
        "created": crate::util::rfc3339(t),
        "architecture": meta.oci_arch,
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": meta.cmd,
            "Labels": meta.annotations,
            "StopSignal": meta.stop_signal,
        },
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", layer.diff_id)]},
        "history": [{
            "created": crate::util::rfc3339(t),
            "created_by": format!("vzbuild {} pack", env!("CARGO_PKG_VERSION")),
        }],
    });
    let mut config = config;
    if meta.stop_signal.is_none() {
        config["config"]
            .as_object_mut()
            .expect("object")
            .remove("StopSignal");
    }
    let config_bytes = canonical_json(&config);
    let config_digest = hex(&Sha256::digest(&config_bytes));
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "digest": format!("sha256:{config_digest}"), "size": config_bytes.len()},
        "layers": [{
            "mediaType": compression.media_type(),
            "digest": format!("sha256:{}", layer.digest),
            "size": layer.compressed_size,
        }],
        "annotations": meta.annotations,
    });
    let manifest_bytes = canonical_json(&manifest);
    let manifest_digest = hex(&Sha256::digest(&manifest_bytes));
    let mut index_ann = BTreeMap::new();
    for k in [
        "org.opencontainers.image.ref.name",
        "org.opencontainers.image.created",
        "org.opencontainers.image.title",
        "org.opencontainers.image.version",
    ] {
        if let Some(v) = meta.annotations.get(k) {
            index_ann.insert(k, v.clone());
        }
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MT_INDEX,
        "manifests": [{
            "mediaType": MT_MANIFEST,
            "digest": format!("sha256:{manifest_digest}"),
            "size": manifest_bytes.len(),
            "platform": {"architecture": meta.oci_arch, "os": "linux"},
            "annotations": index_ann,
        }],
    });
    let index_bytes = canonical_json(&index);
    outer_entry(
        &mut file,
        &format!("blobs/sha256/{config_digest}"),
        Kind::File,
        &config_bytes,
        t,
    )
    .map_err(werr)?;
    outer_entry(
        &mut file,
        &format!("blobs/sha256/{manifest_digest}"),
        Kind::File,
        &manifest_bytes,
        t,
    )
    .map_err(werr)?;
    outer_entry(&mut file, "index.json", Kind::File, &index_bytes, t).map_err(werr)?;
    tarfmt::write_end(&mut file).map_err(werr)?;
    let file_size = file.stream_position().map_err(werr)?;
    // Patch the layer's header now that its name (digest) and size are known.
    let mut hdr = Vec::with_capacity(tarfmt::BLOCK);
    tarfmt::write_header(
        &mut hdr,
        &EntryHeader {
            path: format!("blobs/sha256/{}", layer.digest).as_bytes(),
            kind: Kind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: t,
            size: layer.compressed_size,
            link: None,
            dev_major: 0,
            dev_minor: 0,
            xattrs: &[],
            sparse_real_size: None,
        },
    )
    .map_err(werr)?;
    if hdr.len() != tarfmt::BLOCK {
        return Err(Error::Invalid(
            "layer too large for the archive header".into(),
        ));
    }
    file.seek(SeekFrom::Start(layer_header_at)).map_err(werr)?;
    file.write_all(&hdr).map_err(werr)?;
    file.seek(SeekFrom::Start(file_size)).map_err(werr)?;
    Ok((
        file,
        Written {
            manifest_digest,
            config_digest,
            layer,
            file_size,
        },
    ))
}

/// An opened template archive whose index, manifest and config were checked
/// (digests, sizes, media types). The layer is checked while it is read.
#[derive(Debug)]
pub struct TemplateArchive {
    pub path: PathBuf,
    file: File,
    entries: HashMap<String, (u64, u64)>,
    pub manifest_digest: String,
    pub manifest: ImageManifest,
    pub config: ImageConfiguration,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
    /// The layer's (media type, digest hex, size, diff_id hex).
    pub layer_media_type: String,
    pub layer_digest: String,
    pub layer_size: u64,
    pub diff_id: String,
    pub file_size: u64,
}

fn strip_sha256<'a>(path: &Path, what: &str, d: &'a str) -> Result<&'a str> {
    let h = d
        .strip_prefix("sha256:")
        .ok_or_else(|| Error::corrupt(path, format!("{what} digest {d} is not sha256")))?;
    if h.len() != 64
        || !h
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return Err(Error::corrupt(
            path,
            format!("{what} digest {d} is malformed"),
        ));
    }
    Ok(h)
}

impl TemplateArchive {
    /// Opens `path` and checks everything but the layer's content.
    pub fn open(path: &Path) -> Result<Self> {
        let mut file = File::open(path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                Error::NotFound(path.display().to_string())
            } else {
                Error::io_path("opening", path, e)
            }
        })?;
        let file_size = file
            .metadata()
            .map_err(|e| Error::io_path("reading", path, e))?
            .len();
        let mut entries = HashMap::new();
        {
            let mut ar = tar::Archive::new(&mut file);
            let iter = ar
                .entries_with_seek()
                .map_err(|e| Error::corrupt(path, format!("not a tar archive: {e}")))?;
            for ent in iter {
                let ent = ent.map_err(|e| Error::corrupt(path, format!("bad tar entry: {e}")))?;
                if ent.header().entry_type() != tar::EntryType::Regular {
                    continue;
                }
                let name = String::from_utf8_lossy(&ent.path_bytes()).to_string();
                let name = name.trim_start_matches("./").to_string();
                entries.insert(name, (ent.raw_file_position(), ent.size()));
            }
        }
        let mut r = BlobReader {
            path: path.to_path_buf(),
            file,
            entries,
        };
        let m = r.check_metadata()?;
        Ok(TemplateArchive {
            path: r.path,
            file: r.file,
            entries: r.entries,
            manifest_digest: m.manifest_digest,
            manifest: m.manifest,
            config: m.config,
            annotations: m.annotations,
            layer_media_type: m.layer_media_type,
            layer_digest: m.layer_digest,
            layer_size: m.layer_size,
            diff_id: m.diff_id,
            file_size,
        })
    }

    /// Starts reading the layer: decompression and both digests run in a
    /// background thread; the returned stream yields the uncompressed tar.
    pub fn layer_stream(&self, progress: Option<Arc<AtomicU64>>) -> Result<LayerStream> {
        let (off, size) = self.entries[&format!("blobs/sha256/{}", self.layer_digest)];
        let mut f = self
            .file
            .try_clone()
            .map_err(|e| Error::io_path("reading", &self.path, e))?;
        f.seek(SeekFrom::Start(off))
            .map_err(|e| Error::io_path("reading", &self.path, e))?;
        let zstd = self.layer_media_type == MT_LAYER_ZSTD;
        let (tx, rx) = sync_channel::<Vec<u8>>(8);
        let handle = std::thread::spawn(move || -> io::Result<LayerDigests> {
            let mut src = HashingReader {
                inner: f.take(size),
                hash: Sha256::new(),
                count: 0,
                progress,
            };
            let mut out_hash = Sha256::new();
            let mut out_count = 0u64;
            {
                let mut dec: Box<dyn Read> = if zstd {
                    Box::new(zstd::stream::read::Decoder::new(&mut src)?)
                } else {
                    Box::new(flate2::read::MultiGzDecoder::new(&mut src))
                };
                loop {
                    let mut buf = vec![0u8; 256 * 1024];
                    let mut filled = 0;
                    while filled < buf.len() {
                        match dec.read(&mut buf[filled..]) {
                            Ok(0) => break,
                            Ok(n) => filled += n,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => return Err(e),
                        }
                    }
                    if filled == 0 {
                        break;
                    }
                    buf.truncate(filled);
                    out_hash.update(&buf);
                    out_count += filled as u64;
                    if tx.send(buf).is_err() {
                        // The consumer stopped early; keep hashing to the end.
                        let mut sink = io::sink();
                        let mut rest = HashTee {
                            inner: &mut sink,
                            hash: &mut out_hash,
                            count: &mut out_count,
                        };
                        io::copy(&mut dec, &mut rest)?;
                        break;
                    }
                }
            }
            io::copy(&mut src, &mut io::sink())?;
            Ok((
                hex(&src.hash.finalize()),
                src.count,
                hex(&out_hash.finalize()),
                out_count,
            ))
        });
        Ok(LayerStream {
            rx: Some(rx),
            cur: Vec::new(),
            pos: 0,
            handle: Some(handle),
            path: self.path.clone(),
            expect_digest: self.layer_digest.clone(),
            expect_size: self.layer_size,
            expect_diff_id: self.diff_id.clone(),
        })
    }

    /// Reads the whole layer and checks its digest, size and diff_id.
    pub fn verify_layer(&self, progress: Option<Arc<AtomicU64>>) -> Result<u64> {
        let mut s = self.layer_stream(progress)?;
        io::copy(&mut s, &mut io::sink())
            .map_err(|e| Error::corrupt(&self.path, format!("layer: {e}")))?;
        s.finish()
    }

    /// `org.opencontainers.image.ref.name` of the manifest (the version).
    pub fn version(&self) -> Option<&str> {
        self.annotations
            .get("org.opencontainers.image.version")
            .map(String::as_str)
    }
}

struct BlobReader {
    path: PathBuf,
    file: File,
    entries: HashMap<String, (u64, u64)>,
}

struct CheckedMeta {
    manifest_digest: String,
    manifest: ImageManifest,
    config: ImageConfiguration,
    annotations: BTreeMap<String, String>,
    layer_media_type: String,
    layer_digest: String,
    layer_size: u64,
    diff_id: String,
}

impl BlobReader {
    fn read_entry(&mut self, name: &str, limit: u64) -> Result<Vec<u8>> {
        let (off, size) = *self
            .entries
            .get(name)
            .ok_or_else(|| Error::corrupt(&self.path, format!("missing {name}")))?;
        if size > limit {
            return Err(Error::corrupt(
                &self.path,
                format!("{name} is implausibly large ({size} bytes)"),
            ));
        }
        let mut buf = vec![0u8; size as usize];
        self.file
            .seek(SeekFrom::Start(off))
            .and_then(|_| self.file.read_exact(&mut buf))
            .map_err(|e| Error::io_path("reading", &self.path, e))?;
        Ok(buf)
    }

    fn read_blob(&mut self, what: &str, digest: &str, size: u64) -> Result<Vec<u8>> {
        let hexd = strip_sha256(&self.path, what, digest)?.to_string();
        let name = format!("blobs/sha256/{hexd}");
        let data = self.read_entry(&name, 16 << 20)?;
        if data.len() as u64 != size {
            return Err(Error::corrupt(
                &self.path,
                format!(
                    "{what} size is {} bytes, descriptor says {size}",
                    data.len()
                ),
            ));
        }
        let actual = hex(&Sha256::digest(&data));
        if actual != hexd {
            return Err(Error::corrupt(
                &self.path,
                format!("{what} digest mismatch: sha256:{actual} != {digest}"),
            ));
        }
        Ok(data)
    }

    fn check_metadata(&mut self) -> Result<CheckedMeta> {
        let p = self.path.clone();
        let layout = self.read_entry("oci-layout", 4096)?;
        let layout: Value = serde_json::from_slice(&layout)
            .map_err(|e| Error::corrupt(&p, format!("oci-layout: {e}")))?;
        if layout["imageLayoutVersion"] != "1.0.0" {
            return Err(Error::corrupt(
                &p,
                "oci-layout: imageLayoutVersion is not 1.0.0",
            ));
        }
        let index_bytes = self.read_entry("index.json", 1 << 20)?;
        let index = ImageIndex::from_reader(&index_bytes[..])
            .map_err(|e| Error::corrupt(&p, format!("index.json: {e}")))?;
        let desc = match index.manifests().as_slice() {
            [d] => d.clone(),
            [] => return Err(Error::corrupt(&p, "index.json lists no manifest")),
            _ => {
                return Err(Error::corrupt(
                    &p,
                    "index.json lists more than one manifest",
                ))
            }
        };
        if desc.media_type().to_string() != MT_MANIFEST {
            return Err(Error::corrupt(
                &p,
                format!("manifest media type is {}", desc.media_type()),
            ));
        }
        let mdigest = desc.digest().to_string();
        let mbytes = self.read_blob("manifest", &mdigest, desc.size())?;
        let manifest = ImageManifest::from_reader(&mbytes[..])
            .map_err(|e| Error::corrupt(&p, format!("manifest: {e}")))?;
        if let Some(mt) = manifest.media_type() {
            if mt.to_string() != MT_MANIFEST {
                return Err(Error::corrupt(&p, format!("manifest mediaType is {mt}")));
            }
        }
        let cdesc = manifest.config().clone();
        if cdesc.media_type().to_string() != MT_CONFIG {
            return Err(Error::corrupt(
                &p,
                format!("config media type is {}", cdesc.media_type()),
            ));
        }
        let cbytes = self.read_blob("config", cdesc.digest().as_ref(), cdesc.size())?;
        let config = ImageConfiguration::from_reader(&cbytes[..])
            .map_err(|e| Error::corrupt(&p, format!("config: {e}")))?;
        let layer = match manifest.layers().as_slice() {
            [l] => l.clone(),
            _ => return Err(Error::corrupt(&p, "a template has exactly one layer")),
        };
        let lmt = layer.media_type().to_string();
        if lmt != MT_LAYER_GZIP && lmt != MT_LAYER_ZSTD {
            return Err(Error::corrupt(
                &p,
                format!("unsupported layer media type {lmt}"),
            ));
        }
        let ldigest = strip_sha256(&p, "layer", layer.digest().as_ref())?.to_string();
        let (_, lsize) = *self
            .entries
            .get(&format!("blobs/sha256/{ldigest}"))
            .ok_or_else(|| Error::corrupt(&p, format!("missing layer blob sha256:{ldigest}")))?;
        if lsize != layer.size() {
            return Err(Error::corrupt(
                &p,
                format!(
                    "layer blob is {lsize} bytes, manifest says {}",
                    layer.size()
                ),
            ));
        }
        let diff_id = match config.rootfs().diff_ids().as_slice() {
            [d] => strip_sha256(&p, "diff_id", d)?.to_string(),
            _ => return Err(Error::corrupt(&p, "config must list exactly one diff_id")),
        };
        Ok(CheckedMeta {
            annotations: manifest
                .annotations()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            manifest_digest: mdigest,
            manifest,
            config,
            layer_media_type: lmt,
            layer_digest: ldigest,
            layer_size: lsize,
            diff_id,
        })
    }
}

struct HashingReader<R: Read> {
    inner: R,
    hash: Sha256,
    count: u64,
    progress: Option<Arc<AtomicU64>>,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.count += n as u64;
        if let Some(p) = &self.progress {
            p.store(self.count, Ordering::Relaxed);
        }
        Ok(n)
    }
}

struct HashTee<'a, W: Write> {
    inner: &'a mut W,
    hash: &'a mut Sha256,
    count: &'a mut u64,
}

impl<W: Write> Write for HashTee<'_, W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.hash.update(b);
        *self.count += b.len() as u64;
        self.inner.write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// (compressed digest, compressed size, uncompressed digest, uncompressed size).
type LayerDigests = (String, u64, String, u64);

/// The uncompressed layer as a `Read`; [`LayerStream::finish`] checks the
/// digests once everything was read.
pub struct LayerStream {
    rx: Option<Receiver<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
    handle: Option<JoinHandle<io::Result<LayerDigests>>>,
    path: PathBuf,
    expect_digest: String,
    expect_size: u64,
    expect_diff_id: String,
}

impl Read for LayerStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.cur.len() {
            let Some(rx) = &self.rx else { return Ok(0) };
            match rx.recv() {
                Ok(b) => {
                    self.cur = b;
                    self.pos = 0;
                }
                Err(_) => {
                    self.rx = None;
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl LayerStream {
    /// Drains what is left, waits for the reader thread, and compares the
    /// compressed digest and size and the uncompressed digest (diff_id).
    /// Returns the uncompressed size.
    pub fn finish(mut self) -> Result<u64> {
        self.rx.take(); // lets the thread hash the rest without sending it
        let res = self
            .handle
            .take()
            .expect("finish once")
            .join()
            .map_err(|_| Error::corrupt(&self.path, "layer reader panicked"))?;
        let (digest, size, diff_id, usize_) =
            res.map_err(|e| Error::corrupt(&self.path, format!("layer does not decompress: {e}")))?;
        if size != self.expect_size {
            return Err(Error::corrupt(
                &self.path,
                format!("layer is {size} bytes, manifest says {}", self.expect_size),
            ));
        }
        if digest != self.expect_digest {
            return Err(Error::corrupt(
                &self.path,
                format!(
                    "layer digest mismatch: sha256:{digest} != sha256:{}",
                    self.expect_digest
                ),
            ));
        }
        if diff_id != self.expect_diff_id {
            return Err(Error::corrupt(
                &self.path,
                format!(
                    "layer diff_id mismatch: sha256:{diff_id} != sha256:{}",
                    self.expect_diff_id
                ),
            ));
        }
        Ok(usize_)
    }
}
