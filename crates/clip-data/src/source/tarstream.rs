//! A streaming reader of tar members (ustar, GNU long names, pax `path` records), just enough for
//! WebDataset shards and strict about damage: a member cut short, a partial header or a header
//! whose checksum fails ends the stream with [`Damage`], never with a short member passed on.

use std::io::{ErrorKind, Read};

const BLOCK: usize = 512;

/// The stream is damaged at this point (truncated or garbage); nothing after it can be trusted.
/// `member` names the file whose data was cut, when its header was intact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Damage {
    pub(crate) member: Option<String>,
}

const BROKEN: Damage = Damage { member: None };

/// One regular file of the archive; `bytes` is `None` when it is larger than the caller's limit
/// (its data is skipped unread).
pub(crate) struct Member {
    pub(crate) name: String,
    pub(crate) bytes: Option<Vec<u8>>,
}

pub(crate) struct TarStream<R> {
    reader: R,
    max_member: u64,
    finished: bool,
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` if the stream ended before the first byte.
fn fill<R: Read>(reader: &mut R, buf: &mut [u8]) -> Result<bool, Damage> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(BROKEN),
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Err(BROKEN),
        }
    }
    Ok(true)
}

/// A numeric header field: octal text, or GNU's base-256 for large values.
fn number(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        return Some(field[1..].iter().fold(u64::from(field[0] & 0x7F), |acc, &b| (acc << 8) | u64::from(b)));
    }
    let text = std::str::from_utf8(field).ok()?.trim_matches(|c: char| c == '\0' || c == ' ');
    if text.is_empty() { Some(0) } else { u64::from_str_radix(text, 8).ok() }
}

fn text(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// The `path` record of a pax extended header (`LEN path=VALUE\n` records).
fn pax_path(data: &[u8]) -> Option<String> {
    let mut rest = data;
    while !rest.is_empty() {
        let space = rest.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..space]).ok()?.parse().ok()?;
        let record = rest.get(space + 1..len)?;
        if let Some(value) = record.strip_prefix(b"path=") {
            return Some(String::from_utf8_lossy(value.strip_suffix(b"\n").unwrap_or(value)).into_owned());
        }
        rest = &rest[len..];
    }
    None
}

impl<R: Read> TarStream<R> {
    pub(crate) fn new(reader: R, max_member: u64) -> Self {
        Self { reader, max_member, finished: false }
    }

    pub(crate) fn get_mut(&mut self) -> &mut R {
        &mut self.reader
    }

    /// Reads `size` bytes padded to whole blocks, keeping them if `keep`.
    fn data(&mut self, size: u64, keep: bool) -> Result<Option<Vec<u8>>, Damage> {
        let padded = size.div_ceil(BLOCK as u64) * BLOCK as u64;
        if keep {
            let mut bytes = vec![0u8; padded as usize];
            if !fill(&mut self.reader, &mut bytes)? && padded > 0 {
                return Err(BROKEN);
            }
            bytes.truncate(size as usize);
            return Ok(Some(bytes));
        }
        let copied = std::io::copy(&mut (&mut self.reader).take(padded), &mut std::io::sink()).map_err(|_| BROKEN)?;
        if copied != padded { Err(BROKEN) } else { Ok(None) }
    }

    /// The next regular file, `None` at the end of the archive.
    pub(crate) fn next_member(&mut self) -> Option<Result<Member, Damage>> {
        let result = self.next_inner().transpose();
        if !matches!(result, Some(Ok(_))) {
            self.finished = true;
        }
        result
    }

    fn next_inner(&mut self) -> Result<Option<Member>, Damage> {
        if self.finished {
            return Ok(None);
        }
        let mut long_name: Option<String> = None;
        loop {
            let mut header = [0u8; BLOCK];
            if !fill(&mut self.reader, &mut header)? || header.iter().all(|&b| b == 0) {
                return Ok(None);
            }
            let stored = number(&header[148..156]).ok_or(BROKEN)?;
            let sum: u64 = header.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u64::from(b) }).sum();
            if stored != sum {
                return Err(BROKEN);
            }
            let size = number(&header[124..136]).ok_or(BROKEN)?;
            match header[156] {
                b'L' => long_name = self.data(size, true)?.map(|d| text(&d)),
                b'x' => {
                    let data = self.data(size, true)?.unwrap_or_default();
                    if let Some(path) = pax_path(&data) {
                        long_name = Some(path);
                    }
                }
                b'0' | 0 | b'7' => {
                    let name = long_name.take().unwrap_or_else(|| {
                        let (prefix, name) = (text(&header[345..500]), text(&header[..100]));
                        let ustar = &header[257..262] == b"ustar";
                        if ustar && !prefix.is_empty() { format!("{prefix}/{name}") } else { name }
                    });
                    let keep = size <= self.max_member;
                    let bytes = self.data(size, keep).map_err(|_| Damage { member: Some(name.clone()) })?;
                    return Ok(Some(Member { name, bytes }));
                }
                _ => {
                    // Directories, links, global pax headers: their data (if any) is skipped.
                    self.data(size, false)?;
                    long_name = None;
                }
            }
        }
    }
}
