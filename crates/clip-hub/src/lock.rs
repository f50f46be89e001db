//! The per-blob download lock, an exclusive `flock` on `{root}/.locks/{repo}/{etag}.lock`: the same file
//! and the same kind of lock as huggingface_hub's `WeakFileLock` (filelock's `UnixFileLock`), so a Rust
//! and a Python process never download the same blob at once. The lock file is left in place (deleting
//! it would race with a process about to lock it), and the lock is released when the file is closed.
//!
//! Waiting is bounded by progress, not by time: the wait goes on while the holder's download grows, and
//! ends with an error once nothing has moved for the configured stall limit.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::cache::make_parent;
use crate::error::{Error, Result, io};

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct Lock {
    _file: File,
}

/// Takes the lock at `path`. If another process holds it, calls `on_wait` once, then polls; `progress`
/// is read at each poll (e.g. the size of the holder's partial file) and any change restarts the stall
/// clock.
pub(crate) fn acquire(
    path: &Path,
    stall_limit: Duration,
    progress: &dyn Fn() -> u64,
    on_wait: &mut dyn FnMut(),
) -> Result<Lock> {
    make_parent(path)?;
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o664);
    let file = options.open(path).map_err(io(path))?;
    let mut waited = false;
    let mut last = progress();
    let mut since = Instant::now();
    loop {
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => return Ok(Lock { _file: file }),
            Err(fs4::TryLockError::WouldBlock) => {}
            Err(fs4::TryLockError::Error(e)) => return Err(io(path)(e)),
        }
        if !waited {
            waited = true;
            on_wait();
        }
        std::thread::sleep(Duration::from_millis(50));
        let now = progress();
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= stall_limit {
            return Err(Error::LockStalled {
                path: path.to_owned(),
                seconds: stall_limit.as_secs(),
            });
        }
    }
}
