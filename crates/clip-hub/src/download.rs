//! Moving a body to disk: into `{dest}.incomplete`, resumed with `Range: bytes=N-` after a cut (in the
//! same call, or by the next call when a killed process left the file), restarted from zero when the
//! server ignores the range, verified, synced, then renamed into place. The caller holds the lock.
//!
//! huggingface_hub 2.4.0 writes to a fresh `{etag}.{uuid}.incomplete` per process and restarts cut
//! downloads; keeping one `{etag}.incomplete` under the lock is what lets a multi-GB download survive a
//! killed process.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

use crate::config::HubConfig;
use crate::error::{Error, Result, io};
use crate::http::{Http, Method, backoff, is_transient, join};
use crate::progress::Progress;
use crate::verify::{Expected, verify};

/// Where a body comes from and goes to.
pub(crate) struct Job<'a> {
    /// The body's URL.
    pub(crate) url: &'a str,
    /// The final path; the partial file is this plus `.incomplete`.
    pub(crate) dest: &'a Path,
    /// The expected size, when known.
    pub(crate) size: Option<u64>,
    /// What the bytes must hash to.
    pub(crate) expected: &'a Expected,
    /// The name progress events and errors use.
    pub(crate) label: &'a str,
}

/// Attempts of a body in total, whatever progress they make: a hard bound on the loop.
const MAX_TOTAL_ATTEMPTS: u32 = 100;
/// Redirects followed by a body request (CDNs may redirect once more).
const MAX_REDIRECTS: usize = 5;

/// The outcome of one failed attempt.
enum Failure {
    /// Worth another attempt.
    Transient(String),
    /// Final.
    Fatal(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Fatal(e)
    }
}

/// The partial file of `dest`.
pub(crate) fn incomplete_path(dest: &Path) -> std::path::PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".incomplete");
    dest.with_file_name(name)
}

/// Downloads, verifies and renames into place. On a checksum mismatch the partial file is deleted; when
/// the download had resumed bytes left by an earlier run (which may be what was wrong), it is made once
/// more from the start before the mismatch is reported.
pub(crate) fn download(
    http: &Http,
    config: &HubConfig,
    job: &Job<'_>,
    progress: &mut dyn FnMut(Progress),
) -> Result<()> {
    let inherited = file_len(&incomplete_path(job.dest)) > 0;
    match transfer(http, config, job, progress) {
        Err(Error::Checksum { .. }) if inherited => transfer(http, config, job, progress),
        result => result,
    }
}

/// One download, verified and renamed into place.
fn transfer(
    http: &Http,
    config: &HubConfig,
    job: &Job<'_>,
    progress: &mut dyn FnMut(Progress),
) -> Result<()> {
    let partial = incomplete_path(job.dest);
    let mut fruitless = 0;
    let mut total = 0;
    loop {
        let before = file_len(&partial);
        let failure = match attempt(http, job, &partial, progress) {
            Ok(()) => break,
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Transient(message)) => message,
        };
        total += 1;
        if file_len(&partial) > before {
            fruitless = 0;
        } else {
            fruitless += 1;
        }
        if fruitless >= config.retries.max(1) || total >= MAX_TOTAL_ATTEMPTS {
            return Err(Error::Network {
                url: job.url.to_owned(),
                attempts: total,
                message: failure,
            });
        }
        progress(Progress::Retry {
            attempt: total,
            error: failure,
        });
        std::thread::sleep(backoff(config, fruitless.max(1)));
    }
    if let Err(e) = verify(&partial, job.expected, job.label) {
        let _ = fs::remove_file(&partial);
        return Err(e);
    }
    File::open(&partial)
        .and_then(|f| f.sync_all())
        .map_err(io(&partial))?;
    fs::rename(&partial, job.dest).map_err(io(job.dest))?;
    if let Some(dir) = job.dest.parent() {
        // Makes the rename durable; not every platform can open a folder, and the data is safe anyway.
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map_or(0, |m| m.len())
}

/// One request for the rest of the body, appended to `partial`.
fn attempt(
    http: &Http,
    job: &Job<'_>,
    partial: &Path,
    progress: &mut dyn FnMut(Progress),
) -> std::result::Result<(), Failure> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(partial)
        .map_err(io(partial))?;
    let mut offset = file.metadata().map_err(io(partial))?.len();
    if let Some(size) = job.size {
        if offset == size {
            return Ok(());
        }
        if offset > size {
            file.set_len(0).map_err(io(partial))?;
            offset = 0;
        }
    }
    let mut url = job.url.to_owned();
    let mut redirects = 0;
    let response = loop {
        let range = (offset > 0).then_some(offset);
        let response = http
            .send(Method::Get, &url, range)
            .map_err(Failure::Transient)?;
        match (response.status, response.header("location")) {
            (300..=399, Some(location)) if redirects < MAX_REDIRECTS => {
                url = join(&url, location);
                redirects += 1;
            }
            _ => break response,
        }
    };
    let status = response.status;
    match status {
        206 => {
            let start = response
                .header("content-range")
                .and_then(|r| r.trim().strip_prefix("bytes "))
                .and_then(|r| r.split('-').next())
                .and_then(|s| s.trim().parse::<u64>().ok());
            if start != Some(offset) {
                file.set_len(0).map_err(io(partial))?;
                return Err(Failure::Transient(format!(
                    "the server sent another range than bytes={offset}-"
                )));
            }
        }
        200 => {
            if offset > 0 {
                // The server ignored the range: start over.
                file.set_len(0).map_err(io(partial))?;
                offset = 0;
            }
        }
        416 => {
            file.set_len(0).map_err(io(partial))?;
            return Err(Failure::Transient(format!(
                "the server refused the range bytes={offset}-"
            )));
        }
        s if is_transient(s) => return Err(Failure::Transient(format!("HTTP {s}"))),
        s => {
            let message = response
                .header("x-error-message")
                .unwrap_or("the download was refused")
                .to_owned();
            return Err(Failure::Fatal(Error::Http {
                status: s,
                url,
                message,
            }));
        }
    }
    let size = job.size.or_else(|| {
        let from_range = response
            .header("content-range")
            .and_then(|r| r.rsplit('/').next()?.trim().parse().ok());
        from_range.or_else(|| {
            Some(
                response
                    .header("content-length")?
                    .trim()
                    .parse::<u64>()
                    .ok()?
                    + offset,
            )
        })
    });
    progress(Progress::Start {
        file: job.label.to_owned(),
        total: size,
        resumed_from: offset,
    });
    let mut reader = response.into_reader();
    let mut buf = vec![0u8; 256 * 1024];
    let mut have = offset;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                file.flush().map_err(io(partial))?;
                return Err(Failure::Transient(format!(
                    "the connection broke after {have} bytes: {e}"
                )));
            }
        };
        file.write_all(&buf[..n]).map_err(io(partial))?;
        have += n as u64;
        progress(Progress::Advance(n as u64));
    }
    file.flush().map_err(io(partial))?;
    match size {
        Some(size) if have < size => Err(Failure::Transient(format!(
            "the connection closed after {have} of {size} bytes"
        ))),
        _ => Ok(()),
    }
}
