//! Crash-safe file replacement for weights, checkpoints and anything else a run cannot afford to lose.
//!
//! The new content goes to a temporary file in the target's own directory (a rename across file
//! systems would be a copy, and not atomic), is flushed and fsynced, then renamed over the target,
//! and the directory is fsynced so the rename itself survives a power cut. If anything fails before
//! the rename, the temporary file is removed and the old file is untouched.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Error, Result};

/// Writes `path` atomically: `write` fills the new content; on any error `path` keeps its old content.
pub fn atomic_write<F>(path: &Path, write: F) -> Result<()>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    let io_error = |source| Error::Io { path: path.to_path_buf(), source };
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temp = temp_path(&dir, path);
    let result = write_temp(&temp, write).and_then(|()| fs::rename(&temp, path));
    if let Err(source) = result {
        let _ = fs::remove_file(&temp); // Best effort: it may never have been created.
        return Err(io_error(source));
    }
    File::open(&dir).and_then(|d| d.sync_all()).map_err(io_error)
}

fn write_temp<F>(temp: &Path, write: F) -> io::Result<()>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    let file = OpenOptions::new().write(true).create_new(true).open(temp)?;
    let mut writer = BufWriter::new(file);
    write(&mut writer)?;
    let file = writer.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.sync_all()
}

/// A name in `dir` no other writer (thread or process) uses at the same time.
fn temp_path(dir: &Path, target: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{name}.tmp-{}-{unique}", std::process::id()))
}
