//! TensorBoard event files (`report_to = ["tensorboard"]`): `OUTPUT/tensorboard/events.out.tfevents.*`,
//! the format TensorBoard's `EventFileLoader` reads, written by hand.
//!
//! A file is a sequence of TFRecords: `u64` length (little-endian), the masked CRC32C of those 8
//! bytes, the payload, the masked CRC32C of the payload (mask: rotate right by 15, add
//! `0xa282ead8`). Each payload is a `tensorflow.Event` protobuf: `wall_time` (1, double), `step`
//! (2, int64), `file_version` (3, string) or `summary` (5: repeated `value` (1) of `tag` (1,
//! string), `simple_value` (2, float)) or `session_log` (6: `status` (1), START = 1).
//!
//! A file begins with `file_version = "brain.Event:2"`. A resumed run starts a new file whose
//! second event is a `SessionLog.START` at the first step it will log: TensorBoard's reader then
//! discards whatever earlier files hold from that step on (its "purge" of orphaned data, as
//! `torch.utils.tensorboard.SummaryWriter(purge_step=…)` does). The trainer also cuts earlier files
//! back to the checkpoint's step ([`truncate_after`]), as it cuts `metrics.jsonl`, so that readers
//! without purge semantics see each step once too.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// CRC-32C (Castagnoli), as TFRecord frames use it.
const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// TFRecord's masked CRC32C of `bytes`.
pub fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = CASTAGNOLI.checksum(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// The file-name prefix TensorBoard looks for.
const PREFIX: &str = "events.out.tfevents.";

/// One event as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// Seconds since the Unix epoch.
    pub wall_time: f64,
    /// The step.
    pub step: i64,
    /// `brain.Event:2` for a file's first event.
    pub file_version: Option<String>,
    /// Whether this is a `SessionLog.START` (a resumed run's purge point).
    pub session_start: bool,
    /// (tag, value) of a summary.
    pub scalars: Vec<(String, f32)>,
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field.
fn bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    varint(out, field << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn encode(wall_time: f64, step: u64, body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    out.push(1 << 3 | 1); // wall_time: fixed64
    out.extend_from_slice(&wall_time.to_le_bytes());
    varint(&mut out, 2 << 3); // step: varint
    varint(&mut out, step);
    body(&mut out);
    out
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let length = (payload.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(payload.len() + 16);
    out.extend_from_slice(&length);
    out.extend_from_slice(&masked_crc(&length).to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&masked_crc(payload).to_le_bytes());
    out
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Appends events to one new event file.
#[derive(Debug)]
pub struct EventWriter {
    file: std::fs::File,
    path: PathBuf,
}

impl EventWriter {
    /// A new event file in `dir` (created if need be), named to sort after every file already
    /// there (TensorBoard reads a folder's files in name order). `purge_from`: the first step a
    /// resumed run will log; earlier files' events from there on are to be discarded.
    pub fn create(dir: &Path, purge_from: Option<u64>) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let newest = event_files(dir)?.iter().filter_map(|p| timestamp(p)).max();
        let seconds = now() as u64;
        let seconds = newest.map_or(seconds, |n| seconds.max(n + 1));
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map_or_else(|_| "localhost".to_owned(), |h| h.trim().to_owned());
        let path = dir.join(format!("{PREFIX}{seconds:010}.{host}.{}.clip-rs", std::process::id()));
        let file = std::fs::OpenOptions::new().create_new(true).append(true).open(&path).map_err(|e| Error::io(&path, e))?;
        let mut writer = Self { file, path };
        let step = purge_from.unwrap_or(0);
        writer.write(&encode(now(), step, |out| bytes_field(out, 3, b"brain.Event:2")))?;
        if purge_from.is_some() {
            writer.write(&encode(now(), step, |out| {
                let mut log = Vec::new();
                varint(&mut log, 1 << 3);
                varint(&mut log, 1); // SessionLog.START
                bytes_field(out, 6, &log);
            }))?;
        }
        Ok(writer)
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One event at `step` with these scalars (stored as float32, as TensorBoard's `simple_value`).
    pub fn scalars(&mut self, step: u64, values: &[(&str, f64)]) -> Result<()> {
        let payload = encode(now(), step, |out| {
            let mut summary = Vec::new();
            for (tag, value) in values {
                let mut v = Vec::new();
                bytes_field(&mut v, 1, tag.as_bytes());
                v.push(2 << 3 | 5); // simple_value: fixed32
                v.extend_from_slice(&(*value as f32).to_le_bytes());
                bytes_field(&mut summary, 1, &v);
            }
            bytes_field(out, 5, &summary);
        });
        self.write(&payload)
    }

    fn write(&mut self, payload: &[u8]) -> Result<()> {
        // One write per record: a crash leaves at most the last record torn.
        self.file.write_all(&frame(payload)).map_err(|e| Error::io(&self.path, e))
    }
}

/// The event files in `dir`, in name order (none if it does not exist).
pub fn event_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut files: Vec<PathBuf> =
        entries.flatten().map(|e| e.path()).filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(PREFIX))).collect();
    files.sort();
    Ok(files)
}

fn timestamp(path: &Path) -> Option<u64> {
    path.file_name()?.to_str()?.strip_prefix(PREFIX)?.split('.').next()?.parse().ok()
}

/// Splits a file's bytes into record payloads, checking both CRCs of each; a torn last record
/// (a crash mid-write) ends the list. Any other damage is an error.
fn records(bytes: &[u8], path: &Path) -> Result<Vec<std::ops::Range<usize>>> {
    let bad = |what: String| Error::Checkpoint(format!("{}: {what}", path.display()));
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if bytes.len() - at < 12 {
            break;
        }
        let header = &bytes[at..at + 8];
        let length = u64::from_le_bytes(header.try_into().expect("8 bytes")) as usize;
        if u32::from_le_bytes(bytes[at + 8..at + 12].try_into().expect("4 bytes")) != masked_crc(header) {
            return Err(bad(format!("record at byte {at}: length CRC mismatch")));
        }
        let start = at + 12;
        let Some(end) = start.checked_add(length).filter(|&e| e + 4 <= bytes.len()) else { break };
        if u32::from_le_bytes(bytes[end..end + 4].try_into().expect("4 bytes")) != masked_crc(&bytes[start..end]) {
            return Err(bad(format!("record at byte {at}: data CRC mismatch")));
        }
        out.push(start..end);
        at = end + 4;
    }
    Ok(out)
}

/// Reads a protobuf varint at `*at`.
fn read_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(value);
        }
    }
    None
}

/// The fields of one protobuf message: (field number, wire type, value bytes or the varint).
fn fields(bytes: &[u8]) -> Option<Vec<(u64, &[u8], u64)>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let key = read_varint(bytes, &mut at)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => out.push((field, &bytes[0..0], read_varint(bytes, &mut at)?)),
            1 => {
                out.push((field, bytes.get(at..at + 8)?, 0));
                at += 8;
            }
            2 => {
                let n = read_varint(bytes, &mut at)? as usize;
                out.push((field, bytes.get(at..at.checked_add(n)?)?, 0));
                at += n;
            }
            5 => {
                out.push((field, bytes.get(at..at + 4)?, 0));
                at += 4;
            }
            _ => return None,
        }
    }
    Some(out)
}

fn decode(payload: &[u8]) -> Option<EventRecord> {
    let mut event = EventRecord { wall_time: 0.0, step: 0, file_version: None, session_start: false, scalars: Vec::new() };
    for (field, bytes, int) in fields(payload)? {
        match field {
            1 => event.wall_time = f64::from_le_bytes(bytes.try_into().ok()?),
            2 => event.step = int as i64,
            3 => event.file_version = Some(String::from_utf8(bytes.to_vec()).ok()?),
            5 => {
                for (_, value, _) in fields(bytes)?.into_iter().filter(|f| f.0 == 1) {
                    let (mut tag, mut simple) = (None, None);
                    for (f, b, _) in fields(value)? {
                        match f {
                            1 => tag = Some(String::from_utf8(b.to_vec()).ok()?),
                            2 => simple = Some(f32::from_le_bytes(b.try_into().ok()?)),
                            _ => {}
                        }
                    }
                    event.scalars.push((tag?, simple?));
                }
            }
            6 => event.session_start = fields(bytes)?.iter().any(|f| f.0 == 1 && f.2 == 1),
            _ => {}
        }
    }
    Some(event)
}

/// Every event of an event file, CRCs checked (a torn last record is left out).
pub fn read_events(path: &Path) -> Result<Vec<EventRecord>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    records(&bytes, path)?
        .into_iter()
        .map(|r| decode(&bytes[r.clone()]).ok_or_else(|| Error::Checkpoint(format!("{}: an event at byte {} does not parse", path.display(), r.start))))
        .collect()
}

/// Cuts every event file in `dir` back to the events at or before `step` (and a torn last record),
/// as a resumed run cuts `metrics.jsonl`. Files are rewritten atomically.
pub fn truncate_after(dir: &Path, step: u64) -> Result<()> {
    for path in event_files(dir)? {
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let ranges = records(&bytes, &path)?;
        let mut kept = Vec::with_capacity(bytes.len());
        for r in &ranges {
            let event = decode(&bytes[r.clone()]).ok_or_else(|| Error::Checkpoint(format!("{}: an event does not parse", path.display())))?;
            if event.step <= step as i64 {
                kept.extend_from_slice(&bytes[r.start - 12..r.end + 4]);
            }
        }
        if kept.is_empty() {
            // A later resume's file, all of it after `step`.
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        } else if kept.len() != bytes.len() {
            clip_tensor::atomic::atomic_write(&path, |f| f.write_all(&kept))?;
        }
    }
    Ok(())
}
