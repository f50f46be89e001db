//! Where samples come from. Two kinds, because they are read differently:
//!
//! - **indexed** sources ([`Indexed`]: CSV/TSV tables, image folders, ImageFolder classification
//!   sets, the built-in dataset) can fetch sample `i` directly, so an epoch is a permutation of
//!   indices and the image files are read by the decode threads themselves;
//! - **streamed** sources ([`ShardSet`]: WebDataset tar shards, local or from `pipe:` commands) are
//!   read front to back, a shard at a time, by reader threads.
//!
//! Both yield [`Record`]s: a stable key, the undecoded image, and a caption or label.

mod arrays;
mod braces;
mod builtin;
mod csv;
mod folder;
mod labelled;
mod npy;
mod parts;
mod shards;
mod tarstream;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use self::arrays::{ArraySource, open_native};
pub use self::builtin::{BuiltinSource, BuiltinTaskSource};
pub use self::csv::{CsvOptions, CsvSource};
pub use self::folder::{ClassificationSet, FolderSource, ImageFolder};
pub use self::labelled::{LabelledSplit, open_labelled};
pub use self::parts::{Part, PartPlan, PartSpan};
pub use self::shards::{ShardSamples, ShardSet, benchmark_dataset_type, benchmark_shards, benchmark_wds};
use crate::preprocess::SourceImage;
use crate::skip::SkipReason;
use crate::{Error, Result};

/// What a sample says about its image.
#[derive(Debug, Clone, PartialEq)]
pub enum Text {
    /// A caption, to be tokenised.
    Caption(String),
    /// A class index.
    Label(i64),
    /// One entry per class, 1 where the class is present (multi-label sets such as VOC2007).
    MultiLabel(Vec<f32>),
    /// Nothing (image-only sources, or a sample whose caption is missing).
    None,
}

/// The undecoded image of a sample.
#[derive(Debug, Clone)]
pub enum Payload {
    /// Encoded bytes already in memory (tar members).
    Bytes(Vec<u8>),
    /// A file to read, on a decode thread.
    File(PathBuf),
    /// An image already in pixels (rendered by the built-in dataset).
    Image(SourceImage),
    /// Nothing usable: the sample is counted as skipped for this reason.
    Skip(SkipReason),
}

/// One sample before decoding.
#[derive(Debug, Clone)]
pub struct Record {
    /// Stable across runs: the WebDataset key with its shard, the file path, or the index.
    pub key: String,
    /// The image.
    pub payload: Payload,
    /// Its caption or label.
    pub text: Text,
    /// The sample's `.json` member as text (WebDataset shards; img2dataset writes the url, the
    /// original size and more there), kept for metadata tables.
    pub json: Option<String>,
}

/// A source whose samples can be fetched by index. Records are fetched on the decode threads, so
/// reading files or rendering happens in parallel.
pub trait Indexed: Send + Sync {
    /// Samples per epoch.
    fn len(&self) -> u64;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Sample `index` (below [`Indexed::len`]) of `epoch`; sources with fixed contents ignore the
    /// epoch, generated ones draw fresh samples for each.
    fn record(&self, epoch: u64, index: u64) -> Record;
}

/// A parsed source, ready for the loader.
#[derive(Clone)]
pub enum Source {
    /// Fetched by index.
    Indexed(Arc<dyn Indexed>),
    /// Streamed from shards.
    Shards(ShardSet),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Indexed(s) => write!(f, "Indexed({} samples)", s.len()),
            Self::Shards(s) => write!(f, "Shards({} shards)", s.len()),
        }
    }
}

/// How to build a [`Source`] from a `SPEC` string: options that the spec does not carry.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// CSV/TSV columns and separator.
    pub csv: CsvOptions,
    /// Seed of the built-in dataset.
    pub builtin_seed: u64,
    /// Samples per epoch of the built-in dataset.
    pub builtin_samples: u64,
    /// Side of the built-in dataset's rendered images.
    pub builtin_image_size: u32,
}

impl Default for SourceOptions {
    fn default() -> Self {
        Self { csv: CsvOptions::default(), builtin_seed: 0, builtin_samples: 10_000, builtin_image_size: 64 }
    }
}

impl Source {
    /// Parses `csv:PATH`, `wds:PATTERN` (brace patterns, several joined with `::`, `pipe:COMMAND`
    /// entries), `folder:DIR` (every image below DIR, no captions), `imagefolder:DIR` (one
    /// sub-folder per class), `clip_benchmark:DIR[@SPLIT]` (CLIP_benchmark's WebDataset layout, split
    /// `test` unless given) or `builtin`.
    pub fn parse(spec: &str, options: &SourceOptions) -> Result<Self> {
        let (kind, rest) = spec.split_once(':').unwrap_or((spec, ""));
        let need = |what: &str| -> Result<()> {
            if rest.is_empty() { Err(Error::Source(format!("source `{spec}` needs {what} after `{kind}:`"))) } else { Ok(()) }
        };
        match kind {
            "builtin" if rest.is_empty() => Ok(Self::Indexed(Arc::new(BuiltinSource::new(
                options.builtin_seed,
                options.builtin_image_size,
                options.builtin_samples,
            )))),
            "csv" => {
                need("a file")?;
                Ok(Self::Indexed(Arc::new(CsvSource::open(rest, &options.csv)?)))
            }
            "folder" => {
                need("a folder")?;
                Ok(Self::Indexed(Arc::new(FolderSource::open(rest)?)))
            }
            "imagefolder" => {
                need("a folder")?;
                Ok(Self::Indexed(Arc::new(ImageFolder::open(rest)?)))
            }
            "wds" => {
                need("a shard pattern")?;
                Ok(Self::Shards(ShardSet::parse(rest)?))
            }
            "clip_benchmark" => {
                need("a folder")?;
                let (dir, split) = rest.rsplit_once('@').unwrap_or((rest, "test"));
                Ok(Self::Shards(benchmark_wds(dir, split)?.0))
            }
            _ => Err(Error::Source(format!(
                "unknown source `{spec}`: expected csv:PATH, wds:PATTERN, folder:DIR, imagefolder:DIR, \
                 clip_benchmark:DIR[@SPLIT] or builtin"
            ))),
        }
    }
}

/// The non-empty lines of a text file, trimmed (class names, templates).
pub(crate) fn read_lines(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    Ok(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect())
}

/// Whether `name` has an image extension this crate decodes.
pub(crate) fn is_image_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["jpg", "jpeg", "png", "webp", "gif"].iter().any(|ext| lower.rsplit_once('.').is_some_and(|(_, e)| e == *ext))
}
