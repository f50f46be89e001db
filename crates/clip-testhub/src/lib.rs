//! A loopback Hugging Face hub for tests: it serves a folder over the hub's file protocol on
//! `127.0.0.1`, and on request cuts connections, corrupts bytes, stalls, ignores ranges or demands a
//! token, while counting every request and byte. It is written on `std::net` by hand (one thread per
//! connection, `Connection: close`) because cutting a body after exactly N bytes is what library servers
//! make hard. Dev-only: no product crate depends on it.
//!
//! The folder: `ROOT/models/{org}/{name}/…` and `ROOT/datasets/{org}/{name}/…`. A file over
//! [`LFS_THRESHOLD`] bytes, or with one of [`LFS_EXTENSIONS`], is an LFS file: its `resolve` URL answers
//! `302` to `http://localhost:{port}/cdn/{sha256}` (another host name for this server), etag its SHA-256.
//! Others are git files, answered in place, etag their git blob id. A repo's commit is a SHA-1 over its
//! sorted paths and their SHA-256, so changing a file changes the commit. Routes and errors: see the
//! `server` module; fault keys name a file as `org/name/path` or `datasets/org/name/path`.
//!
//! # Example
//! ```
//! let root = std::env::temp_dir().join(format!("clip-testhub-doc-{}", std::process::id()));
//! std::fs::create_dir_all(root.join("models/org/name")).unwrap();
//! std::fs::write(root.join("models/org/name/config.json"), "{}").unwrap();
//! let hub = clip_testhub::TestHub::start(&root);
//! assert!(hub.endpoint().starts_with("http://127.0.0.1:")); // what HF_ENDPOINT should be
//! ```

mod repos;
mod server;
mod stats;
mod wire;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub use repos::{FileInfo, LFS_EXTENSIONS, LFS_THRESHOLD, RepoInfo, is_lfs};
pub use stats::{LoggedRequest, Stats};

use server::{Access, Faults, State};

/// A running test hub; dropping it stops the server.
pub struct TestHub {
    addr: SocketAddr,
    state: Arc<State>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestHub {
    /// Serves `root` on `127.0.0.1` at a port the OS picks.
    ///
    /// # Panics
    /// When no loopback port can be bound (a test-harness failure, not a condition to handle).
    pub fn start(root: &Path) -> TestHub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
        let addr = listener.local_addr().expect("the bound address");
        let state = Arc::new(State {
            root: root.to_owned(),
            port: addr.port(),
            faults: Mutex::new(Faults::default()),
            stats: Mutex::new(Stats::default()),
            stall_for: Duration::from_secs(5),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (Arc::clone(&state), Arc::clone(&stop));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let state = Arc::clone(&state);
                    std::thread::spawn(move || state.handle(stream));
                }
            })
        };
        TestHub {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:{port}`: what `HF_ENDPOINT` should be.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The `Host` the CDN route is reached by: `localhost:{port}`.
    pub fn cdn_host(&self) -> String {
        format!("localhost:{}", self.addr.port())
    }

    fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.state.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stats_guard(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.state.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Cuts the connection after `after_bytes` body bytes, for the next `times` body GETs of the file.
    pub fn cut(&self, key: &str, after_bytes: u64, times: u32) {
        self.faults()
            .cuts
            .insert(key.to_owned(), (after_bytes, times));
    }

    /// Serves the file with one byte altered (same length), under its true etag.
    pub fn corrupt(&self, key: &str) {
        self.faults().corrupt.insert(key.to_owned());
    }

    /// Accepts the next `times` requests of the file (HEAD or GET) and then sends nothing for 5 s.
    pub fn stall(&self, key: &str, times: u32) {
        self.faults().stalls.insert(key.to_owned(), times);
    }

    /// Waits `delay` after the response head before each body of the file.
    pub fn delay(&self, key: &str, delay: Duration) {
        self.faults().delays.insert(key.to_owned(), delay);
    }

    /// Answers 200 with the whole file even when a range is asked for.
    pub fn ignore_range(&self, key: &str) {
        self.faults().ignore_range.insert(key.to_owned());
    }

    /// Makes a repo (`org/name` or `datasets/org/name`) need `token`: without one it answers 401
    /// `RepoNotFound` (private) or 401 `GatedRepo` (gated); with another, 401 "Invalid credentials".
    pub fn require_token(&self, repo_key: &str, token: &str, gated: bool) {
        self.faults().access.insert(
            repo_key.to_owned(),
            Access {
                token: token.to_owned(),
                gated,
            },
        );
    }

    /// A copy of the counters.
    pub fn stats(&self) -> Stats {
        self.stats_guard().clone()
    }

    /// Requests with this method whose path contains `needle`.
    pub fn requests(&self, method: &str, needle: &str) -> u64 {
        self.stats_guard()
            .requests
            .iter()
            .filter(|((m, p), _)| m == method && p.contains(needle))
            .map(|(_, n)| n)
            .sum()
    }

    /// Body bytes served for a file key.
    pub fn bytes_served(&self, key: &str) -> u64 {
        self.stats_guard().bytes.get(key).copied().unwrap_or(0)
    }

    /// The request log.
    pub fn log(&self) -> Vec<LoggedRequest> {
        self.stats_guard().log.clone()
    }

    /// Clears the counters and the log (faults stay).
    pub fn reset_stats(&self) {
        *self.stats_guard() = Stats::default();
    }

    /// The repo as served now (`org/name` or `datasets/org/name`).
    pub fn repo(&self, repo_key: &str) -> Option<RepoInfo> {
        repos::scan(&repos::repo_dir(&self.state.root, repo_key))
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
