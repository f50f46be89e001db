//! WebDataset tar shards: brace patterns joined with `::`, local files (optionally gzipped) and
//! `pipe:COMMAND` sources, streamed member by member (never extracted), members grouped into
//! samples by key (the path up to the first dot of the file name), as WebDataset does.

use std::io::{BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::tarstream::{Damage, TarStream};
use super::{ClassificationSet, Payload, Record, Text, braces, read_lines};
use crate::skip::SkipReason;
use crate::{Error, Result};

/// A tar member larger than this is not read (its sample is skipped as too large).
const MAX_MEMBER_BYTES: u64 = 1 << 30;

/// An ordered list of shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSet {
    shards: Vec<String>,
}

impl ShardSet {
    /// Expands `a-{000..009}.tar::pipe:cat b-{0..3}.tar` into its shards.
    pub fn parse(patterns: &str) -> Result<Self> {
        let mut shards = Vec::new();
        for pattern in patterns.split("::").filter(|p| !p.is_empty()) {
            shards.extend(braces::expand(pattern)?);
        }
        if shards.is_empty() {
            return Err(Error::Source(format!("no shards in `{patterns}`")));
        }
        Ok(Self { shards })
    }

    /// Number of shards.
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// Whether there are none (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    /// The shards as written (paths or `pipe:` commands).
    pub fn shards(&self) -> &[String] {
        &self.shards
    }

    /// The shards at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Self {
        Self { shards: indices.iter().map(|&i| self.shards[i].clone()).collect() }
    }

    /// The samples of shard `index`, streamed.
    pub fn open(&self, index: usize) -> ShardSamples {
        ShardSamples::open(&self.shards[index])
    }
}

/// A shard's byte stream; a `pipe:` command is killed if dropped before its end.
struct ShardStream {
    reader: Box<dyn Read + Send>,
    child: Option<Child>,
}

impl ShardStream {
    fn open(url: &str) -> std::io::Result<Self> {
        if let Some(command) = url.strip_prefix("pipe:") {
            let mut child = Command::new("sh").arg("-c").arg(command).stdout(Stdio::piped()).stdin(Stdio::null()).spawn()?;
            let stdout = child.stdout.take().ok_or_else(|| std::io::Error::other("no stdout"))?;
            return Ok(Self { reader: Box::new(BufReader::with_capacity(1 << 20, stdout)), child: Some(child) });
        }
        let path = url.strip_prefix("file:").unwrap_or(url);
        let file = BufReader::with_capacity(1 << 20, std::fs::File::open(path)?);
        let gzipped = Path::new(path).extension().is_some_and(|e| e == "gz" || e == "tgz");
        let reader: Box<dyn Read + Send> = if gzipped { Box::new(flate2::read::MultiGzDecoder::new(file)) } else { Box::new(file) };
        Ok(Self { reader, child: None })
    }

    /// Whether a `pipe:` command failed (a file always succeeds once opened).
    fn command_failed(&mut self) -> bool {
        self.child.take().is_some_and(|mut child| !child.wait().is_ok_and(|s| s.success()))
    }
}

impl Read for ShardStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.reader.read(buf)
    }
}

impl Drop for ShardStream {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A sample's member: extension and bytes (`None` for a member over the size limit).
type Member = (String, Option<Vec<u8>>);

/// WebDataset's split of a member name into sample key and extension.
fn key_and_extension(name: &str) -> Option<(&str, &str)> {
    let file_start = name.rfind('/').map_or(0, |i| i + 1);
    let dot = name[file_start..].find('.')? + file_start;
    (dot > file_start).then(|| (&name[..dot], &name[dot + 1..]))
}

/// The samples of one shard, in order; a truncated shard ends with one
/// [`SkipReason::TruncatedTar`] record, an unreadable one is a single
/// [`SkipReason::UnreadableShard`] record.
pub struct ShardSamples {
    url: String,
    archive: Option<TarStream<ShardStream>>,
    /// The key of the sample being gathered and its members.
    pending: Option<(String, Vec<Member>)>,
    failure: Option<SkipReason>,
    /// A record to hand out before reading on (the second of two found at once).
    queued: Option<Record>,
    done: bool,
}

impl ShardSamples {
    fn open(url: &str) -> Self {
        let (archive, failure) = match ShardStream::open(url) {
            Ok(stream) => (Some(TarStream::new(stream, MAX_MEMBER_BYTES)), None),
            Err(_) => (None, Some(SkipReason::UnreadableShard)),
        };
        Self { url: url.to_owned(), archive, pending: None, failure, queued: None, done: false }
    }

    fn record(&self, key: &str, members: Vec<Member>) -> Record {
        let mut image = None;
        let mut text = Text::None;
        let mut json = None;
        for (ext, bytes) in members {
            let ext = ext.to_ascii_lowercase();
            let is_image = matches!(ext.as_str(), "jpg" | "jpeg" | "png" | "webp");
            let Some(bytes) = bytes else {
                if is_image && image.is_none() {
                    image = Some(Payload::Skip(SkipReason::TooLarge));
                }
                continue;
            };
            match ext.as_str() {
                _ if is_image => {
                    image.get_or_insert(Payload::Bytes(bytes));
                }
                "txt" => text = Text::Caption(String::from_utf8_lossy(&bytes).into_owned()),
                "json" => {
                    if matches!(text, Text::None)
                        && let Some(caption) = serde_json::from_slice::<serde_json::Value>(&bytes)
                            .ok()
                            .and_then(|v| v.get("caption").and_then(|c| c.as_str()).map(str::to_owned))
                    {
                        text = Text::Caption(caption);
                    }
                    json = Some(String::from_utf8_lossy(&bytes).into_owned());
                }
                "npy" => {
                    if let Some(values) = super::npy::read_vector(&bytes) {
                        text = Text::MultiLabel(values);
                    }
                }
                "cls" => {
                    if let Some(label) = std::str::from_utf8(&bytes).ok().and_then(|s| s.trim().parse().ok()) {
                        text = Text::Label(label);
                    }
                }
                _ => {}
            }
        }
        let payload = image.unwrap_or(Payload::Skip(SkipReason::MissingImage));
        Record { key: format!("{}/{key}", self.url), payload, text, json }
    }

    fn skip_record(&self, reason: SkipReason, key: &str) -> Record {
        Record { key: format!("{}/{key}", self.url), payload: Payload::Skip(reason), text: Text::None, json: None }
    }
}

impl Iterator for ShardSamples {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        if let Some(reason) = self.failure.take() {
            self.done = true;
            return Some(self.skip_record(reason, ""));
        }
        if let Some(record) = self.queued.take() {
            return Some(record);
        }
        if self.done {
            return None;
        }
        loop {
            let archive = self.archive.as_mut()?;
            match archive.next_member() {
                Some(Ok(member)) => {
                    let (name, bytes) = (member.name, member.bytes);
                    let Some((key, ext)) = key_and_extension(&name) else { continue };
                    if key.rsplit('/').next().is_some_and(|k| k.starts_with("__")) {
                        continue;
                    }
                    match &mut self.pending {
                        Some((current, members)) if current == key => members.push((ext.to_owned(), bytes)),
                        _ => {
                            let finished = self.pending.replace((key.to_owned(), vec![(ext.to_owned(), bytes)]));
                            if let Some((key, members)) = finished {
                                return Some(self.record(&key, members));
                            }
                        }
                    }
                }
                Some(Err(Damage { member })) => {
                    self.done = true;
                    let cut_key = member.as_deref().and_then(key_and_extension).map(|(k, _)| k.to_owned());
                    let pending = self.pending.take();
                    return Some(match (pending, cut_key) {
                        // The cut member starts a new sample: the one gathered so far is whole.
                        (Some((key, members)), Some(cut)) if key != cut => {
                            self.queued = Some(self.skip_record(SkipReason::TruncatedTar, &cut));
                            self.record(&key, members)
                        }
                        // The cut member is the gathered sample's, or the header itself is
                        // broken and the gathered sample may have lost members: skipped.
                        (Some((key, _)), _) => self.skip_record(SkipReason::TruncatedTar, &key),
                        (None, cut) => self.skip_record(SkipReason::TruncatedTar, &cut.unwrap_or_default()),
                    });
                }
                None => {
                    self.done = true;
                    if let Some((key, members)) = self.pending.take() {
                        return Some(self.record(&key, members));
                    }
                    let failed = self.archive.as_mut().is_some_and(|a| a.get_mut().command_failed());
                    return failed.then(|| self.skip_record(SkipReason::UnreadableShard, ""));
                }
            }
        }
    }
}

/// The shards of `split` in CLIP_benchmark's WebDataset layout: `DIR/SPLIT/nshards.txt` and
/// `DIR/SPLIT/{0..n-1}.tar` (a missing count is an error, never one shard by default).
pub fn benchmark_shards(dir: impl AsRef<Path>, split: &str) -> Result<ShardSet> {
    let dir = dir.as_ref();
    let nshards_path = dir.join(split).join("nshards.txt");
    let text = std::fs::read_to_string(&nshards_path).map_err(|e| Error::io(&nshards_path, e))?;
    let nshards: usize = text.trim().parse().map_err(|_| Error::Source(format!("{}: not a shard count", nshards_path.display())))?;
    if nshards == 0 {
        return Err(Error::Source(format!("{}: zero shards", nshards_path.display())));
    }
    let shards = (0..nshards).map(|i| dir.join(split).join(format!("{i}.tar")).display().to_string()).collect();
    Ok(ShardSet { shards })
}

/// What `DIR/dataset_type.txt` says a set in CLIP_benchmark's layout holds, lower-cased:
/// `retrieval`, `multilabel`, or `classification` (also when the file is absent, as there).
pub fn benchmark_dataset_type(dir: impl AsRef<Path>) -> String {
    let kind = std::fs::read_to_string(dir.as_ref().join("dataset_type.txt")).unwrap_or_default();
    match kind.trim() {
        "" => "classification".into(),
        kind => kind.to_ascii_lowercase(),
    }
}

/// CLIP_benchmark's WebDataset layout for a classification set: [`benchmark_shards`] with `.cls`
/// labels, `DIR/classnames.txt` and `DIR/zeroshot_classification_templates.txt` (templates with
/// `{c}`).
pub fn benchmark_wds(dir: impl AsRef<Path>, split: &str) -> Result<(ShardSet, ClassificationSet)> {
    let dir = dir.as_ref();
    let shards = benchmark_shards(dir, split)?;
    let classnames = read_lines(&dir.join("classnames.txt"))?;
    let templates_path = dir.join("zeroshot_classification_templates.txt");
    let templates = if templates_path.exists() { read_lines(&templates_path)? } else { Vec::new() };
    Ok((shards, ClassificationSet { classnames, templates }))
}

#[cfg(test)]
mod tests {
    use super::key_and_extension;

    #[test]
    fn keys_as_webdataset_splits_them() {
        assert_eq!(key_and_extension("a/b/000123.jpg"), Some(("a/b/000123", "jpg")));
        assert_eq!(key_and_extension("x.seg.png"), Some(("x", "seg.png")));
        assert_eq!(key_and_extension("dir.v1/noext"), None);
        assert_eq!(key_and_extension(".hidden"), None);
    }
}
