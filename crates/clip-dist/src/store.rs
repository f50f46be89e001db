//! The rendezvous store (c10d `TCPStore`): hosted by rank 0, by `clip launch`, or by torchrun's
//! agent; every rank connects to it.

use std::ffi::{CString, c_int};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{DistConfig, Error, Result, ffi, millis};

/// A connection to (or the host of) a c10d `TCPStore`.
pub struct Store {
    raw: *mut ffi::RawStore,
    addr: String,
    port: u16,
}

// SAFETY: c10d stores are thread-safe; the handle is only freed on drop.
unsafe impl Send for Store {}

impl Drop for Store {
    fn drop(&mut self) {
        // SAFETY: created by clip_dist_store, freed once.
        unsafe { ffi::clip_dist_store_free(self.raw) }
    }
}

impl Store {
    fn open(addr: &str, port: u16, world_size: usize, server: bool, timeout: Duration, prefix: &str) -> Result<Self> {
        let rendezvous = |message: String| Error::Rendezvous { addr: addr.to_owned(), port, message };
        let host = CString::new(addr).map_err(|_| rendezvous("address contains NUL".into()))?;
        let prefix = CString::new(prefix).expect("no NUL");
        let mut raw = std::ptr::null_mut();
        // SAFETY: valid C strings; out-pointer is a local.
        let status = unsafe {
            ffi::clip_dist_store(host.as_ptr(), c_int::from(port), world_size as c_int, c_int::from(server), millis(timeout), prefix.as_ptr(), &mut raw)
        };
        ffi::check(status).map_err(rendezvous)?;
        Ok(Self { raw, addr: addr.to_owned(), port })
    }

    /// Hosts a store on `port` of every interface, for a launcher whose children connect to it
    /// (as torchrun's agent does). Fails at once if the port is taken.
    pub fn host(port: u16, world_size: usize, timeout: Duration) -> Result<Self> {
        Self::open("0.0.0.0", port, world_size, true, timeout, "")
    }

    /// This rank's connection, namespaced as torch's `env://` rendezvous does under an agent
    /// (`/worker/attempt_N`); rank 0 hosts the store unless an agent does.
    pub(crate) fn connect(config: &DistConfig) -> Result<Self> {
        let server = config.rank == 0 && !config.agent_store;
        let prefix = if config.agent_store { format!("/worker/attempt_{}", config.restart_count) } else { String::new() };
        Self::open(&config.master_addr, config.master_port, config.world_size, server, config.timeout, &prefix)
    }

    pub(crate) fn raw(&self) -> *mut ffi::RawStore {
        self.raw
    }

    /// Sets `key` to `value`.
    pub fn set(&self, key: &str, value: &str) -> Result<()> {
        let (k, v) = (CString::new(key).expect("no NUL"), CString::new(value).expect("no NUL"));
        // SAFETY: live handle, valid C strings.
        let status = unsafe { ffi::clip_dist_store_set(self.raw, k.as_ptr(), v.as_ptr()) };
        ffi::check(status).map_err(|message| Error::Rendezvous { addr: self.addr.clone(), port: self.port, message })
    }

    /// Adds `delta` to the counter at `key` and returns its new value (`delta` 0 reads it).
    pub fn add(&self, key: &str, delta: i64) -> Result<i64> {
        let k = CString::new(key).expect("no NUL");
        let mut out = 0;
        // SAFETY: live handle, valid C string, local out-pointer.
        let status = unsafe { ffi::clip_dist_store_add(self.raw, k.as_ptr(), delta, &mut out) };
        ffi::check(status).map_err(|message| Error::Rendezvous { addr: self.addr.clone(), port: self.port, message })?;
        Ok(out)
    }

    /// After a failed collective on `rank`: the ranks whose heartbeat stopped without their
    /// having reported a failure themselves (dead, as opposed to alive and failing too, or blocked
    /// in the same collective). `None` if the store itself is gone.
    pub(crate) fn dead_ranks(&self, rank: usize, world_size: usize) -> Option<Vec<usize>> {
        let failed_key = |r: usize| format!("clip/failed/{r}");
        self.add(&failed_key(rank), 1).ok()?;
        let beats = || (0..world_size).map(|r| self.add(&heartbeat_key(r), 0).ok()).collect::<Option<Vec<i64>>>();
        let before = beats()?;
        std::thread::sleep(HEARTBEAT * 4);
        let after = beats()?;
        let mut dead = Vec::new();
        for r in (0..world_size).filter(|&r| after[r] == before[r]) {
            if self.add(&failed_key(r), 0).ok()? == 0 {
                dead.push(r);
            }
        }
        Some(dead)
    }
}

/// How often each rank bumps its heartbeat counter in the store.
const HEARTBEAT: Duration = Duration::from_millis(500);

fn heartbeat_key(rank: usize) -> String {
    format!("clip/heartbeat/{rank}")
}

/// A thread that bumps this rank's heartbeat counter on its own store connection, so that after a
/// failure the survivors can tell a dead rank from one blocked in the same collective.
pub(crate) struct Heartbeat {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Heartbeat {
    pub(crate) fn start(config: &DistConfig) -> Result<Self> {
        let client = DistConfig { rank: config.rank.max(1), ..config.clone() }; // never the host
        let store = Store::connect(&client)?;
        let key = heartbeat_key(config.rank);
        store.add(&key, 1)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                if store.add(&key, 1).is_err() {
                    return; // The store is gone; failures will say so.
                }
                let until = Instant::now() + HEARTBEAT;
                while Instant::now() < until && !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        });
        Ok(Self { stop, thread: Some(thread) })
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
