//! `clip embed --source`: a whole collection embedded in parts, in clip-retrieval's layout
//! (`img_emb/img_emb_N.npy`, `text_emb/text_emb_N.npy`, `metadata/metadata_N.parquet`), through
//! clip-data's parallel loader with the weights' evaluation preprocessing.
//!
//! One part per WebDataset shard, or per `--part-size` samples of the other sources
//! ([`clip_data::source::PartPlan`]). A part is written file by file, each staged and renamed,
//! its metadata table last: a part whose table is there is complete, and a rerun skips it; the
//! files of a part without one are strays of an interrupted run, removed before the part is
//! written again. Under `clip launch` or torchrun each rank takes every WORLD_SIZE-th part from
//! RANK on; a part's rows do not depend on the ranks, so the output equals one process's.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clip_data::source::{Part, PartPlan, PartSpan, Source, SourceOptions};
use clip_data::{Batches, ImageTransform, Loader, LoaderConfig, SkipCounts, TextMode};
use clip_dist::DistConfig;
use clip_tensor::atomic::atomic_write;
use clip_tokenizer::TextTokenizer;
use tch::{Device, Kind, Tensor};

use crate::embed::{Encoder, RunArgs};
use crate::model::ModelSpec;
use crate::progress::{self, Bar, Unit};
use crate::parquet::{Column, Values, json_columns, write_table};

/// Which embeddings to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum What {
    Images,
    Texts,
    Both,
}

impl What {
    fn images(self) -> bool {
        matches!(self, Self::Images | Self::Both)
    }

    fn texts(self) -> bool {
        matches!(self, Self::Texts | Self::Both)
    }
}

/// The embeddings' NumPy type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Dtype {
    Float16,
    Float32,
}

impl Dtype {
    fn kind(self) -> Kind {
        match self {
            Self::Float16 => Kind::Half,
            Self::Float32 => Kind::Float,
        }
    }

    /// NumPy's name for it, in this machine's byte order (the bytes are libtorch's).
    fn descr(self) -> &'static str {
        match (self, cfg!(target_endian = "little")) {
            (Self::Float16, true) => "<f2",
            (Self::Float16, false) => ">f2",
            (Self::Float32, true) => "<f4",
            (Self::Float32, false) => ">f4",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Float16 => "float16",
            Self::Float32 => "float32",
        }
    }
}

/// `clip embed --source`'s options.
pub(crate) struct Options {
    pub(crate) spec: ModelSpec,
    pub(crate) random_init: bool,
    pub(crate) source: String,
    pub(crate) out: PathBuf,
    pub(crate) what: What,
    pub(crate) part_size: u64,
    pub(crate) dtype: Dtype,
    pub(crate) threads: usize,
    pub(crate) progress: bool,
    pub(crate) run: RunArgs,
}

/// Where a part's files go: clip-retrieval's names, the part's index zero-padded to the digits of
/// the part count (`str(i).zfill(int(log10(count)) + 1)`).
struct Layout {
    out: PathBuf,
    width: usize,
}

/// The folders of the layout; `stats/` holds each part's counts.
const FOLDERS: [&str; 4] = ["img_emb", "text_emb", "metadata", "stats"];

impl Layout {
    fn new(out: &Path, parts: usize) -> Self {
        Self { out: out.to_path_buf(), width: parts.to_string().len() }
    }

    fn name(&self, part: &Part) -> String {
        format!("{:0width$}", part.index, width = self.width)
    }

    /// The file of `part` in `folder` (one of [`FOLDERS`]).
    fn file(&self, folder: &str, name: &str) -> PathBuf {
        let file = match folder {
            "img_emb" => format!("img_emb_{name}.npy"),
            "text_emb" => format!("text_emb_{name}.npy"),
            "metadata" => format!("metadata_{name}.parquet"),
            _ => format!("stats_{name}.json"),
        };
        self.out.join(folder).join(file)
    }

    /// The files each folder holds now, listed once; the folders `what` writes to are created.
    fn scan(&self, what: What) -> Result<[BTreeSet<String>; 4]> {
        let mut found: [BTreeSet<String>; 4] = Default::default();
        for (i, (folder, names)) in FOLDERS.iter().zip(&mut found).enumerate() {
            let dir = self.out.join(folder);
            if (i == 0 && !what.images()) || (i == 1 && !what.texts()) {
                if !dir.is_dir() {
                    continue;
                }
            } else {
                std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            }
            for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
                names.insert(entry?.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(found)
    }

    /// Whether the part's table and every file `what` needs are there.
    fn complete(&self, found: &[BTreeSet<String>; 4], name: &str, what: What) -> bool {
        let has = |i: usize| found[i].contains(&file_name(&self.file(FOLDERS[i], name)));
        has(2) && has(3) && (!what.images() || has(0)) && (!what.texts() || has(1))
    }

    /// Removes what an interrupted run left of an unfinished part: its table first (a part is
    /// complete only with every file it needs), then its embeddings, counts and staged files.
    fn clear(&self, found: &[BTreeSet<String>; 4], name: &str) -> Result<()> {
        for i in [2, 0, 1, 3] {
            let target = file_name(&self.file(FOLDERS[i], name));
            let staged = format!(".{target}.tmp-");
            for stray in found[i].iter().filter(|f| **f == target || f.starts_with(&staged)) {
                let path = self.out.join(FOLDERS[i]).join(stray);
                std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            }
        }
        Ok(())
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// What the run's output depends on, kept in `OUT/embed.json`: a rerun into the same folder must
/// agree, or its parts would mix with parts of another source, plan, model or type.
fn manifest(options: &Options, plan: &PartPlan) -> serde_json::Value {
    let indexed = plan.parts().first().is_some_and(|p| matches!(p.span, PartSpan::Indices { .. }));
    let weights = match (&options.spec.pretrained, &options.spec.model, &options.spec.weights) {
        (Some(tag), _, _) => tag.clone(),
        (None, Some(model), _) if clip_pretrained::ModelName::parse(model).brings_weights() => model.clone(),
        (_, _, Some(path)) => path.display().to_string(),
        _ => "random-init".into(),
    };
    serde_json::json!({
        "source": options.source,
        "parts": plan.len(),
        "part_size": indexed.then_some(options.part_size),
        "model": options.spec.name(),
        "weights": weights,
        "dtype": options.dtype.name(),
    })
}

fn check_manifest(out: &Path, expected: &serde_json::Value) -> Result<()> {
    let path = out.join("embed.json");
    match std::fs::read(&path) {
        Ok(bytes) => {
            let found: serde_json::Value = serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display()))?;
            if &found != expected {
                bail!(
                    "{} holds parts of another run ({found}); this one is {expected}: give another --out, or remove the folder",
                    out.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Every rank writes the same bytes; whichever rename lands last is as good as the first.
            let text = serde_json::to_string_pretty(expected)? + "\n";
            atomic_write(&path, |w| w.write_all(text.as_bytes())).with_context(|| format!("writing {}", path.display()))
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

pub(crate) fn run(options: &Options) -> Result<()> {
    if options.run.batch_size == 0 || options.threads == 0 {
        bail!("--batch-size and --threads must be at least 1");
    }
    let (rank, world_size, local_rank) = match DistConfig::from_env()? {
        Some(d) => (d.rank, d.world_size, d.local_rank),
        None => (0, 1, 0),
    };
    let who = if world_size > 1 { format!("clip embed [rank {rank}/{world_size}]") } else { "clip embed".into() };
    let kind = options.source.split(':').next().unwrap_or_default();
    if options.what.texts() && matches!(kind, "folder" | "imagefolder") {
        bail!("--what {:?} needs captions, and a {kind}: source has none", options.what);
    }
    let source = Source::parse(&options.source, &SourceOptions::default()).with_context(|| format!("source {}", options.source))?;
    let plan = PartPlan::new(&source, options.part_size)?;
    if plan.is_empty() {
        bail!("{}: no samples", options.source);
    }
    let layout = Layout::new(&options.out, plan.len());
    std::fs::create_dir_all(&options.out).with_context(|| format!("creating {}", options.out.display()))?;
    check_manifest(&options.out, &manifest(options, &plan))?;
    let found = layout.scan(options.what)?;
    let mine: Vec<Part> = plan.for_rank(rank, world_size).copied().collect();
    let todo: Vec<Part> = mine.iter().filter(|p| !layout.complete(&found, &layout.name(p), options.what)).copied().collect();
    for part in &todo {
        layout.clear(&found, &layout.name(part))?;
    }
    progress::note(&format!(
        "{who}: {} parts in all; {} of this rank's {} to write, {} already complete",
        plan.len(),
        todo.len(),
        mine.len(),
        mine.len() - todo.len()
    ));
    if todo.is_empty() {
        return Ok(());
    }

    let device = match options.run.device.resolve()? {
        Device::Cuda(_) if world_size > 1 => Device::Cuda(local_rank),
        device => device,
    };
    if options.random_init {
        // Random weights must be the same in every rank and every rerun.
        clip_tensor::seed::seed_everything(0);
    }
    let resolved = options.spec.resolve("clip embed")?;
    let text = if options.what.texts() { TextMode::Captions } else { TextMode::Ignore };
    let mut config = LoaderConfig::new(options.run.batch_size, ImageTransform::Eval(resolved.preprocess.clone()), text);
    config.threads = options.threads;
    config.shuffle = false;
    config.drop_last = false;
    config.max_skip_fraction = 1.0;
    config.shuffle_window = options.run.batch_size;
    let base = Loader::new(PartPlan::source(&source, &todo[0])?, config)?;
    let start = |part: &Part| -> Result<Batches> { Ok(base.with_source(PartPlan::source(&source, part)?)?.epoch(0)?) };

    // The first part is decoded while the model is built; the next part's stream starts while
    // this one is read, on the same decode threads, so the model never waits at a part's boundary.
    let mut next = Some(start(&todo[0])?);
    let loaded = ModelSpec::build(resolved, device, options.random_init, "clip embed")?;
    let tokenizer = if options.what.texts() { Some(options.spec.tokenizer(&loaded, "clip embed")?) } else { None };
    let _guard = tch::no_grad_guard();
    let encoder = Encoder { model: &loaded.model, device, precision: options.run.precision };

    let known_total = todo
        .iter()
        .map(|p| match p.span {
            PartSpan::Indices { start, end } => Some(end - start),
            PartSpan::Shard(_) => None,
        })
        .sum::<Option<u64>>();
    // `--progress`: the shared bar (a line every few seconds off a terminal); a line per part
    // either way (none under `--quiet`).
    let mode = if options.progress { progress::mode() } else { progress::Mode::Off };
    let mut progress = Bar::with_mode(mode, who.clone(), known_total, Unit::Count("samples"));
    progress.set_message(format!("parts 0/{}", todo.len()));
    let job = Job { options, encoder: &encoder, tokenizer: tokenizer.as_ref(), source: &source, kind };
    let (mut rows, mut skipped) = (0usize, SkipCounts::default());
    for (i, part) in todo.iter().enumerate() {
        let stream = next.take().context("a part's stream")?;
        next = todo.get(i + 1).map(&start).transpose()?;
        let written = job.embed(part, stream, &mut progress)?;
        written.write(&layout, &layout.name(part), options)?;
        let line = format!("{who}: part {} ({} rows, skipped: {})", layout.name(part), written.rows, written.skipped);
        if mode == progress::Mode::Off { progress::note(&line) } else { progress.println(&line) }
        progress.set_message(format!("parts {}/{}", i + 1, todo.len()));
        rows += written.rows;
        skipped.merge(&written.skipped);
    }
    progress.finish();
    progress::note(&format!("{who}: wrote {} parts, {rows} rows, to {}; skipped: {skipped}", todo.len(), options.out.display()));
    Ok(())
}

/// What every part needs.
struct Job<'a> {
    options: &'a Options,
    encoder: &'a Encoder<'a>,
    tokenizer: Option<&'a TextTokenizer>,
    source: &'a Source,
    kind: &'a str,
}

/// A part, embedded, before it is written.
struct Written {
    images: Vec<u8>,
    texts: Vec<u8>,
    dim: usize,
    rows: usize,
    columns: Vec<Column>,
    read: u64,
    skipped: SkipCounts,
}

impl Job<'_> {
    fn embed(&self, part: &Part, stream: Batches, progress: &mut Bar) -> Result<Written> {
        let what = self.options.what;
        let dim = self.encoder.model.config.embed_dim as usize;
        let shard_prefix = match (self.source, part.span) {
            (Source::Shards(shards), PartSpan::Shard(i)) => Some(format!("{}/", shards.shards()[i])),
            _ => None,
        };
        let (mut images, mut texts) = (Vec::new(), Vec::new());
        let mut meta = Metadata::default();
        let (mut read, mut skipped) = (0u64, SkipCounts::default());
        let mut stream = stream;
        for batch in &mut stream {
            let batch = batch?;
            if what.images() {
                append(&mut images, &self.encoder.features(&batch.images, true)?, self.options.dtype);
            }
            if let Some(tokenizer) = self.tokenizer {
                let ids = clip_eval::zeroshot::token_ids(self.encoder.model, tokenizer, &batch.captions, Device::Cpu)?;
                append(&mut texts, &self.encoder.features(&ids, false)?, self.options.dtype);
            }
            for (key, info) in batch.keys.into_iter().zip(batch.info) {
                let key = match &shard_prefix {
                    Some(prefix) => key.strip_prefix(prefix.as_str()).map(str::to_owned).unwrap_or(key),
                    None => key,
                };
                // clip-retrieval's image_path: the WebDataset key, or the file.
                meta.image_path.push(Some(info.path.as_ref().map_or_else(|| key.clone(), |p| p.display().to_string())));
                meta.key.push(Some(key));
                meta.caption.push(info.caption);
                meta.width.push(info.size.map(|s| i64::from(s[0])));
                meta.height.push(info.size.map(|s| i64::from(s[1])));
                meta.label.push(info.label);
                meta.json.push(info.json);
            }
            read += batch.consumed;
            skipped.merge(&batch.skipped);
            progress.inc(batch.consumed);
        }
        let tail = stream.tail();
        read += tail.consumed;
        skipped.merge(&tail.skipped);
        progress.inc(tail.consumed);
        let rows = meta.key.len();
        Ok(Written { images, texts, dim, rows, columns: meta.columns(self.kind == "imagefolder"), read, skipped })
    }
}

/// Appends `features` (`[n, dim]` float32 on the CPU) as `dtype` bytes.
fn append(out: &mut Vec<u8>, features: &Tensor, dtype: Dtype) {
    let values = features.to_kind(dtype.kind()).contiguous();
    let numel = values.numel();
    let start = out.len();
    out.resize(start + numel * dtype.kind().elt_size_in_bytes(), 0);
    values.copy_data_u8(&mut out[start..], numel);
}

/// The metadata table's columns, row by row.
#[derive(Default)]
struct Metadata {
    key: Vec<Option<String>>,
    image_path: Vec<Option<String>>,
    caption: Vec<Option<String>>,
    width: Vec<Option<i64>>,
    height: Vec<Option<i64>>,
    label: Vec<Option<i64>>,
    json: Vec<Option<String>>,
}

impl Metadata {
    /// key, image_path, caption, width, height, label (ImageFolder sources), then the fields of
    /// the samples' `.json` members whose names these do not take.
    fn columns(self, labels: bool) -> Vec<Column> {
        let text = |name: &str, values| Column { name: name.into(), values: Values::Text(values) };
        let int = |name: &str, values| Column { name: name.into(), values: Values::Int(values) };
        let mut columns = vec![
            text("key", self.key),
            text("image_path", self.image_path),
            text("caption", self.caption),
            int("width", self.width),
            int("height", self.height),
        ];
        if labels {
            columns.push(int("label", self.label));
        }
        let taken: Vec<String> = columns.iter().map(|c| c.name.clone()).chain(["label".to_owned()]).collect();
        let taken: Vec<&str> = taken.iter().map(String::as_str).collect();
        columns.extend(json_columns(&self.json, &taken));
        columns
    }
}

impl Written {
    /// The part's files, each staged and renamed; the table last, as the mark of a complete part.
    fn write(&self, layout: &Layout, name: &str, options: &Options) -> Result<()> {
        let what = options.what;
        if what.images() {
            crate::npy::write(&layout.file("img_emb", name), options.dtype.descr(), &self.images, self.rows, self.dim)?;
        }
        if what.texts() {
            crate::npy::write(&layout.file("text_emb", name), options.dtype.descr(), &self.texts, self.rows, self.dim)?;
        }
        let stats = serde_json::json!({ "rows": self.rows, "read": self.read, "skipped": self.skipped });
        let stats = serde_json::to_string(&stats)? + "\n";
        let path = layout.file("stats", name);
        atomic_write(&path, |w| w.write_all(stats.as_bytes())).with_context(|| format!("writing {}", path.display()))?;
        let table = write_table(&self.columns).context("building the metadata table")?;
        let path = layout.file("metadata", name);
        atomic_write(&path, |w| w.write_all(&table)).with_context(|| format!("writing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_names_have_as_many_digits_as_the_part_count_as_in_clip_retrieval() {
        let part = |index| Part { index, span: PartSpan::Shard(index) };
        for (count, index, name) in [(1, 0, "0"), (9, 8, "8"), (10, 3, "03"), (100, 7, "007"), (1000, 999, "0999")] {
            assert_eq!(Layout::new(Path::new("o"), count).name(&part(index)), name);
        }
        let layout = Layout::new(Path::new("o"), 12);
        assert_eq!(layout.file("img_emb", "03"), Path::new("o/img_emb/img_emb_03.npy"));
        assert_eq!(layout.file("metadata", "03"), Path::new("o/metadata/metadata_03.parquet"));
    }
}
