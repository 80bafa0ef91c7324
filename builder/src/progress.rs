//! A one-line progress display on stderr, shown only when stderr is a
//! terminal (quiet otherwise, e.g. in CI logs).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Counters a long operation updates; the display reads them.
#[derive(Default)]
pub struct Counters {
    pub done_bytes: AtomicU64,
    pub entries: AtomicU64,
    pub out_bytes: AtomicU64,
}

/// The running display; stops (and clears its line) when dropped.
pub struct Progress {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

/// Whether progress should be shown: `Some(x)` forces it, `None` means
/// "when stderr is a terminal".
pub fn wanted(force: Option<bool>) -> bool {
    force.unwrap_or_else(|| std::io::stderr().is_terminal())
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

impl Progress {
    /// Starts a display labelled `label`; `total` (bytes) gives a percentage.
    pub fn start(label: String, total: Option<u64>, c: Arc<Counters>, show: bool) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        if !show {
            return Progress { stop, handle: None };
        }
        let stop2 = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut err = std::io::stderr();
            while !stop2.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                let done = c.done_bytes.load(Ordering::Relaxed);
                let secs = t0.elapsed().as_secs_f64().max(0.001);
                let mut line = format!("\r{label}: {:.1} MiB", mib(done));
                if let Some(t) = total.filter(|t| *t > 0) {
                    line.push_str(&format!(
                        " / {:.1} MiB ({:.0}%)",
                        mib(t),
                        100.0 * done as f64 / t as f64
                    ));
                }
                let ents = c.entries.load(Ordering::Relaxed);
                if ents > 0 {
                    line.push_str(&format!(", {ents} entries"));
                }
                let out = c.out_bytes.load(Ordering::Relaxed);
                if out > 0 {
                    line.push_str(&format!(", {:.1} MiB written", mib(out)));
                }
                line.push_str(&format!(", {:.0} MiB/s   ", mib(done) / secs));
                let _ = err.write_all(line.as_bytes());
                let _ = err.flush();
            }
            let _ = err.write_all(b"\r\x1b[K");
            let _ = err.flush();
        });
        Progress {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
