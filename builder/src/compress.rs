//! Parallel, reproducible layer compression.
//!
//! The tar stream is cut into fixed-size chunks (the boundaries depend only on
//! the byte stream, never on timing or the number of threads). Each chunk is
//! compressed on its own by a pool of workers into a complete gzip member
//! (libdeflate) or zstd frame; members/frames are written in order. Concatenated
//! gzip members and zstd frames are standard (RFC 1952 section 2.2, RFC 8878
//! section 3.1), and the same approach is used by eStargz layers. Chunks are
//! hashed as they are handed out (the OCI `diff_id`), and the writer thread
//! hashes the compressed bytes (the blob digest) as they go to disk.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Layer compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// gzip (multi-member), level 1..=12 (libdeflate levels; 6 is the default).
    Gzip(i32),
    /// zstd (multi-frame), level 1..=19 (3 is the default).
    Zstd(i32),
}

impl Compression {
    /// The OCI layer media type.
    pub fn media_type(&self) -> &'static str {
        match self {
            Compression::Gzip(_) => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd(_) => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    fn chunk_size(&self) -> usize {
        match self {
            // gzip's window is 32 KiB: 1 MiB chunks lose almost nothing.
            Compression::Gzip(_) => 1 << 20,
            // zstd's window is larger; 4 MiB chunks keep the ratio close to a
            // single stream while bounding memory.
            Compression::Zstd(_) => 4 << 20,
        }
    }
}

/// Digests and sizes of a finished layer.
#[derive(Debug, Clone)]
pub struct LayerStats {
    /// sha256 of the uncompressed tar (hex).
    pub diff_id: String,
    /// sha256 of the compressed blob (hex).
    pub digest: String,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
}

type Job = (u64, Vec<u8>);
type Done = (u64, io::Result<Vec<u8>>);

enum Coder {
    Gzip(libdeflater::Compressor),
    Zstd(zstd::bulk::Compressor<'static>),
}

impl Coder {
    fn new(c: Compression) -> io::Result<Self> {
        Ok(match c {
            Compression::Gzip(level) => {
                let lvl = libdeflater::CompressionLvl::new(level).map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidInput, "gzip level must be 1..=12")
                })?;
                Coder::Gzip(libdeflater::Compressor::new(lvl))
            }
            Compression::Zstd(level) => {
                let mut z = zstd::bulk::Compressor::new(level)?;
                // No checksum/size variations: keep frames minimal and stable.
                z.include_checksum(false)?;
                z.include_contentsize(true)?;
                Coder::Zstd(z)
            }
        })
    }

    fn compress(&mut self, input: &[u8]) -> io::Result<Vec<u8>> {
        match self {
            Coder::Gzip(c) => {
                let mut out = vec![0u8; c.gzip_compress_bound(input.len())];
                let n = c
                    .gzip_compress(input, &mut out)
                    .map_err(|e| io::Error::other(format!("gzip: {e:?}")))?;
                out.truncate(n);
                Ok(out)
            }
            Coder::Zstd(c) => c.compress(input),
        }
    }
}

/// A `Write` sink that compresses and hashes in parallel, writing the
/// compressed stream to `out`.
pub struct ParallelEncoder<W: Write + Send + 'static> {
    buf: Vec<u8>,
    chunk: usize,
    next_index: u64,
    total_in: u64,
    /// sha256 of the uncompressed stream, updated as chunks are dispatched
    /// (in order, by the producing thread: no extra hand-off or copy).
    diff_hash: Sha256,
    job_tx: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<io::Result<()>>>,
    writer: Option<JoinHandle<io::Result<WriterResult<W>>>>,
    /// Compressed bytes written so far (for progress).
    pub written: Arc<AtomicU64>,
}

impl<W: Write + Send + 'static> ParallelEncoder<W> {
    /// Starts the pipeline with `threads` compression workers (at least 1).
    pub fn new(out: W, compression: Compression, threads: usize) -> io::Result<Self> {
        let threads = threads.max(1);
        let chunk = compression.chunk_size();
        // Validate the level before starting threads.
        Coder::new(compression)?;

        let (job_tx, job_rx) = sync_channel::<Job>(threads);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (done_tx, done_rx) = sync_channel::<Done>(threads);
        let mut workers = Vec::new();
        for _ in 0..threads {
            let rx = Arc::clone(&job_rx);
            let tx = done_tx.clone();
            workers.push(std::thread::spawn(move || -> io::Result<()> {
                let mut coder = Coder::new(compression)?;
                loop {
                    let job = rx.lock().map_err(|_| io::Error::other("poisoned"))?.recv();
                    let Ok((idx, data)) = job else { return Ok(()) };
                    let res = coder.compress(&data);
                    drop(data);
                    if tx.send((idx, res)).is_err() {
                        return Ok(());
                    }
                }
            }));
        }
        drop(done_tx);
        let written = Arc::new(AtomicU64::new(0));
        let written2 = Arc::clone(&written);
        let writer = std::thread::spawn(move || writer_loop(out, done_rx, written2));
        Ok(ParallelEncoder {
            buf: Vec::with_capacity(chunk),
            chunk,
            next_index: 0,
            total_in: 0,
            diff_hash: Sha256::new(),
            job_tx: Some(job_tx),
            workers,
            writer: Some(writer),
            written,
        })
    }

    fn dispatch(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(self.chunk));
        self.diff_hash.update(&data);
        let idx = self.next_index;
        self.next_index += 1;
        let broken = || io::Error::other("compression pipeline stopped");
        if self
            .job_tx
            .as_ref()
            .ok_or_else(broken)?
            .send((idx, data))
            .is_err()
        {
            // A worker or the writer failed: finish() reports the cause.
            return Err(self.shutdown().err().unwrap_or_else(broken));
        }
        Ok(())
    }

    fn shutdown(&mut self) -> io::Result<(W, LayerStats)> {
        self.job_tx.take();
        let mut first_err = None;
        for w in self.workers.drain(..) {
            match w.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(io::Error::other("compression worker panicked"));
                }
            }
        }
        let written = self
            .writer
            .take()
            .ok_or_else(|| io::Error::other("pipeline already finished"))?
            .join()
            .map_err(|_| io::Error::other("writer panicked"))?;
        let (out, digest, n_out) = written?;
        let diff_id = hex(&std::mem::take(&mut self.diff_hash).finalize());
        let n_in = self.total_in;
        if let Some(e) = first_err {
            return Err(e);
        }
        Ok((
            out,
            LayerStats {
                diff_id,
                digest,
                compressed_size: n_out,
                uncompressed_size: n_in,
            },
        ))
    }

    /// Flushes the last chunk, waits for all threads, returns the sink and
    /// the layer's digests.
    pub fn finish(mut self) -> io::Result<(W, LayerStats)> {
        self.dispatch()?;
        self.shutdown()
    }
}

impl<W: Write + Send + 'static> Drop for ParallelEncoder<W> {
    /// On an error path (no `finish`), stop and join the threads rather than
    /// leave them running detached.
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = self.shutdown();
        }
    }
}

impl<W: Write + Send + 'static> Write for ParallelEncoder<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.chunk - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        self.total_in += n as u64;
        if self.buf.len() == self.chunk {
            self.dispatch()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// (sink, compressed digest, compressed size).
type WriterResult<W> = (W, String, u64);

/// Writes compressed chunks in order, hashing them (the blob digest).
fn writer_loop<W: Write>(
    mut out: W,
    rx: Receiver<Done>,
    written: Arc<AtomicU64>,
) -> io::Result<WriterResult<W>> {
    let mut pending: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let mut next = 0u64;
    let mut h = Sha256::new();
    let mut total = 0u64;
    for (idx, res) in rx {
        pending.insert(idx, res?);
        while let Some(data) = pending.remove(&next) {
            out.write_all(&data)?;
            h.update(&data);
            total += data.len() as u64;
            written.store(total, Ordering::Relaxed);
            next += 1;
        }
    }
    if !pending.is_empty() {
        return Err(io::Error::other("compression pipeline lost a chunk"));
    }
    out.flush()?;
    Ok((out, hex(&h.finalize()), total))
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(H[(b >> 4) as usize] as char);
        s.push(H[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn roundtrip(c: Compression) {
        let data: Vec<u8> = (0..5_000_000u32)
            .map(|i| (i % 251) as u8 ^ (i >> 13) as u8)
            .collect();
        let mut enc = ParallelEncoder::new(Vec::new(), c, 3).unwrap();
        enc.write_all(&data).unwrap();
        let (out, stats) = enc.finish().unwrap();
        assert_eq!(stats.uncompressed_size, data.len() as u64);
        assert_eq!(stats.compressed_size, out.len() as u64);
        assert_eq!(stats.diff_id, hex(&Sha256::digest(&data)));
        assert_eq!(stats.digest, hex(&Sha256::digest(&out)));
        let mut back = Vec::new();
        match c {
            Compression::Gzip(_) => {
                flate2::read::MultiGzDecoder::new(&out[..])
                    .read_to_end(&mut back)
                    .unwrap();
            }
            Compression::Zstd(_) => {
                zstd::stream::read::Decoder::new(&out[..])
                    .unwrap()
                    .read_to_end(&mut back)
                    .unwrap();
            }
        }
        assert_eq!(back, data);
        // Same input, different thread count: identical output.
        let mut enc = ParallelEncoder::new(Vec::new(), c, 1).unwrap();
        enc.write_all(&data).unwrap();
        let (out1, _) = enc.finish().unwrap();
        assert_eq!(out, out1);
    }

    #[test]
    fn gzip_roundtrip_and_deterministic() {
        roundtrip(Compression::Gzip(6));
    }

    #[test]
    fn zstd_roundtrip_and_deterministic() {
        roundtrip(Compression::Zstd(3));
    }
}
