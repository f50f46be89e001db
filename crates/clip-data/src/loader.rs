//! The loader: a deterministic, parallel, fault-tolerant stream of batches.
//!
//! One pipeline thread walks the epoch's item order (a seeded permutation of indices, or shuffle
//! windows cut from shard readers), hands chunks to a rayon pool of `threads` decode threads
//! (read, decode, transform, tokenise), and assembles the results in order into tensors, sent
//! through a bounded channel `prefetch` batches deep. Every random choice is drawn from a stream
//! addressed by (seed, epoch, rank, ordinal), so batches depend on the seed and epoch only, never
//! on the thread count or timing. Each batch carries the [`Position`] after it: a loader resumed
//! there yields exactly the batches that would have followed. Bad samples are skipped, counted by
//! reason in the batch that follows them, and never stop the epoch unless more than
//! `max_skip_fraction` of what was read is bad.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use clip_tokenizer::TextTokenizer;
use crossbeam::channel::{Receiver, Sender, bounded};
use rand::RngCore;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use tch::Tensor;

use crate::position::{Position, ShardCursor, StreamPosition};
use crate::preprocess::{PreprocessConfig, SourceImage};
use crate::rng::stream_at;
use crate::skip::{SkipCounts, SkipReason};
use crate::source::{Payload, Record, ShardSet, Source, Text};
use crate::transform::{RgbImage, TrainTransform, normalise_into};
use crate::{Error, Result};

/// Tags that keep the loader's random streams apart.
const ORDER: u64 = 1;
const AUGMENT: u64 = 2;
const WINDOW: u64 = 3;
const RESAMPLE: u64 = 4;
const SAMPLE: u64 = 5;

/// The skip fraction is judged once this many items of the epoch have been read (or at its end).
const MIN_ITEMS_FOR_SKIP_CHECK: u64 = 256;

/// Which image transform to apply.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageTransform {
    /// open_clip's training transform (random resized crop).
    Train(TrainTransform),
    /// The exact evaluation preprocessing, with the weights' statistics, interpolation and resize
    /// mode.
    Eval(PreprocessConfig),
}

impl ImageTransform {
    /// Output side in pixels.
    pub fn image_size(&self) -> u32 {
        match self {
            Self::Train(t) => t.image_size,
            Self::Eval(p) => p.image_size,
        }
    }

    /// Normalisation mean and standard deviation.
    fn stats(&self) -> (&[f32; 3], &[f32; 3]) {
        match self {
            Self::Train(t) => (&t.mean, &t.std),
            Self::Eval(p) => (&p.mean, &p.std),
        }
    }
}

/// What to do with the text side of samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextMode {
    /// Captions, tokenised to this context length; samples without one are skipped.
    Tokens {
        /// Tokens per caption.
        context_length: usize,
    },
    /// Class labels; samples without one are skipped.
    Labels,
    /// Multi-label targets (`[B, classes]`, 1 where present); samples without one are skipped.
    MultiLabels,
    /// Captions as text, untokenised (retrieval sets, which hold several per image, one a line);
    /// samples without one are skipped.
    Captions,
    /// Images only.
    Ignore,
}

/// Loader settings. [`LoaderConfig::new`] gives open_clip-like defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct LoaderConfig {
    /// Samples per batch (per rank).
    pub batch_size: usize,
    /// Decode threads.
    pub threads: usize,
    /// Batches assembled ahead of the consumer.
    pub prefetch: usize,
    /// Seed of every order, shuffle and crop.
    pub seed: u64,
    /// Shuffle indices, shards and samples each epoch.
    pub shuffle: bool,
    /// Drop a final short batch.
    pub drop_last: bool,
    /// This process's rank.
    pub rank: usize,
    /// Number of ranks; each sample of an epoch goes to exactly one.
    pub world_size: usize,
    /// Shard readers per rank (streamed sources): the rank's shards are split among them.
    pub workers: usize,
    /// Samples per shuffle window (streamed sources): a window is read, then handed out permuted.
    pub shuffle_window: usize,
    /// Draw shards with replacement (streamed sources), an endless stream cut into epochs by
    /// `samples_per_epoch`.
    pub resampled: bool,
    /// Samples per epoch over all ranks; the epoch ends once this rank has handed out its share
    /// (rounded up). Required with `resampled`.
    pub samples_per_epoch: Option<u64>,
    /// Fail the epoch when more than this fraction of the items read were skipped.
    pub max_skip_fraction: f64,
    /// The image transform.
    pub transform: ImageTransform,
    /// The text side.
    pub text: TextMode,
    /// What tokenises captions with [`TextMode::Tokens`]: the model's tokenizer (OpenAI's BPE by
    /// default).
    pub tokenizer: TextTokenizer,
}

impl LoaderConfig {
    /// Training defaults: shuffled, short batches dropped, one rank, two threads.
    pub fn new(batch_size: usize, transform: ImageTransform, text: TextMode) -> Self {
        Self {
            batch_size,
            threads: 2,
            prefetch: 2,
            seed: 0,
            shuffle: true,
            drop_last: true,
            rank: 0,
            world_size: 1,
            workers: 1,
            shuffle_window: 1000,
            resampled: false,
            samples_per_epoch: None,
            max_skip_fraction: 0.1,
            transform,
            text,
            tokenizer: TextTokenizer::OpenAi,
        }
    }

    fn validate(&self) -> Result<()> {
        let fail = |m: String| Err(Error::Source(m));
        if self.batch_size == 0 || self.threads == 0 || self.prefetch == 0 || self.workers == 0 || self.shuffle_window == 0 {
            return fail("batch_size, threads, prefetch, workers and shuffle_window must be at least 1".into());
        }
        if self.world_size == 0 || self.rank >= self.world_size {
            return fail(format!("rank {} is not below world size {}", self.rank, self.world_size));
        }
        if !(0.0..=1.0).contains(&self.max_skip_fraction) {
            return fail(format!("max_skip_fraction {} is not between 0 and 1", self.max_skip_fraction));
        }
        if let TextMode::Tokens { context_length } = self.text
            && context_length < 2
        {
            return fail(format!("context length {context_length} leaves no room for start and end tokens"));
        }
        match &self.transform {
            ImageTransform::Train(train) => train.validate(),
            ImageTransform::Eval(eval) => eval.validate(),
        }
    }

    fn quota(&self) -> Option<u64> {
        self.samples_per_epoch.map(|n| n.div_ceil(self.world_size as u64))
    }
}

/// One batch, ready for the model.
#[derive(Debug)]
pub struct Batch {
    /// `[B, 3, S, S]` float images.
    pub images: Tensor,
    /// `[B, context]` int64 token ids, with [`TextMode::Tokens`].
    pub texts: Option<Tensor>,
    /// `[B]` int64 class labels with [`TextMode::Labels`]; `[B, classes]` float targets with
    /// [`TextMode::MultiLabels`].
    pub labels: Option<Tensor>,
    /// The captions, with [`TextMode::Captions`] (empty otherwise).
    pub captions: Vec<String>,
    /// The samples' keys, in batch order.
    pub keys: Vec<String>,
    /// What else is known of each sample, in batch order: for metadata tables.
    pub info: Vec<SampleInfo>,
    /// Where to resume to get the batches after this one.
    pub position: Position,
    /// Items read since the previous batch, this batch's samples and the skipped ones included.
    pub consumed: u64,
    /// Skips since the previous batch, by reason.
    pub skipped: SkipCounts,
    /// One seed per sample, in batch order, for randomness the model draws in training (patch
    /// dropout): from the stream addressed by (seed, epoch, the sample's place), as the crop's is,
    /// so it is the same on any number of ranks and after a resume.
    pub seeds: Vec<u64>,
}

/// What a batch records of a sample besides its pixels, whatever the text mode: what a table of
/// metadata beside embeddings needs (`clip embed --source`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleInfo {
    /// The image's `[width, height]` as stored, before any transform (`None` under the training
    /// transform, which decodes inside its crop).
    pub size: Option<[u32; 2]>,
    /// The image file, for sources of files.
    pub path: Option<std::path::PathBuf>,
    /// The sample's caption, if it has one.
    pub caption: Option<String>,
    /// The sample's class label, if it has one.
    pub label: Option<i64>,
    /// The sample's `.json` member (WebDataset), as text.
    pub json: Option<String>,
}

/// A loader over one source; [`Loader::epoch`] and [`Loader::resume`] start a stream of batches.
pub struct Loader {
    source: Source,
    config: LoaderConfig,
    pool: Arc<rayon::ThreadPool>,
}

impl Loader {
    /// Checks the configuration against the source and starts the decode pool.
    pub fn new(source: Source, config: LoaderConfig) -> Result<Self> {
        config.validate()?;
        Self::check(&source, &config)?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads)
            .thread_name(|i| format!("clip-data-{i}"))
            .build()
            .map_err(|e| Error::Loader(e.to_string()))?;
        Ok(Self { source, config, pool: Arc::new(pool) })
    }

    /// A loader over `source` with this one's configuration, sharing its decode threads: streams
    /// of several loaders may run at once (one source after another, the next one starting while
    /// the last batches of the previous are consumed) without more threads than configured.
    pub fn with_source(&self, source: Source) -> Result<Self> {
        Self::check(&source, &self.config)?;
        Ok(Self { source, config: self.config.clone(), pool: Arc::clone(&self.pool) })
    }

    fn check(source: &Source, config: &LoaderConfig) -> Result<()> {
        if config.resampled && (config.quota().is_none() || !matches!(source, Source::Shards(_))) {
            return Err(Error::Source("resampled mode needs a shard source and samples_per_epoch".into()));
        }
        if let Source::Shards(shards) = &source
            && !config.resampled
            && shards.len() < config.world_size
        {
            return Err(Error::Source(format!(
                "{} shards cannot give each of {} ranks a share; use more shards or resampled mode",
                shards.len(),
                config.world_size
            )));
        }
        Ok(())
    }

    /// The configuration.
    pub fn config(&self) -> &LoaderConfig {
        &self.config
    }

    /// The batches of `epoch` from its start.
    pub fn epoch(&self, epoch: u64) -> Result<Batches> {
        self.resume(&Position::start(epoch))
    }

    /// The batches after `position` (taken from a batch of a loader with the same source and
    /// configuration).
    pub fn resume(&self, position: &Position) -> Result<Batches> {
        let items: Box<dyn ItemStream> = match &self.source {
            Source::Indexed(source) => Box::new(IndexedItems::new(source.len(), &self.config, position)),
            Source::Shards(shards) => Box::new(StreamItems::start(shards, &self.config, position)?),
        };
        let (tx, rx) = bounded(self.config.prefetch);
        let stop = Arc::new(AtomicBool::new(false));
        let tail = Arc::new(Mutex::new(Tail::default()));
        let pipeline = Pipeline {
            tail: Arc::clone(&tail),
            decoder: Arc::new(Decoder { source: self.source.clone(), config: self.config.clone(), epoch: position.epoch }),
            pool: Arc::clone(&self.pool),
            emitted: position.emitted,
            stop: Arc::clone(&stop),
        };
        let handle = std::thread::Builder::new()
            .name("clip-data-batches".into())
            .spawn(move || pipeline.run(items, &tx))
            .map_err(|e| Error::Loader(e.to_string()))?;
        Ok(Batches { rx: Some(rx), handle: Some(handle), stop, tail })
    }
}

/// What was read after the last batch of an epoch: skips, and samples of a dropped short batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tail {
    /// Items read after the last batch.
    pub consumed: u64,
    /// Skips among them, by reason.
    pub skipped: SkipCounts,
}

/// The batches of one epoch, in order; dropping it stops the pipeline.
pub struct Batches {
    rx: Option<Receiver<Result<Batch>>>,
    handle: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    tail: Arc<Mutex<Tail>>,
}

impl Batches {
    /// Once the iterator has ended: what the epoch read after its last batch, so that every skip
    /// is reported somewhere (batches carry the ones before them).
    pub fn tail(&self) -> Tail {
        self.tail.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

impl Iterator for Batches {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        match self.rx.as_ref()?.recv() {
            Ok(batch) => Some(batch),
            Err(_) => {
                // The pipeline ended; a panic there is reported rather than read as a short epoch.
                let panicked = self.handle.take().is_some_and(|h| h.join().is_err());
                self.rx = None;
                panicked.then(|| Err(Error::Loader("the batch pipeline panicked".into())))
            }
        }
    }
}

impl Drop for Batches {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.rx = None;
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// An item of the epoch's order, before decoding.
struct Item {
    /// Addresses the item's random crop: its place in the epoch's global order for indexed
    /// sources (the same whatever the number of ranks, so 2 ranks × B see the crops 1 rank × 2B
    /// sees), or (rank, ordinal) for shard streams, whose order depends on the ranks anyway.
    augment: [u64; 2],
    work: Work,
    /// The position after this item (`emitted` filled in by the pipeline).
    next: Position,
}

enum Work {
    Index(u64),
    Record(Record),
}

trait ItemStream: Send {
    fn next_item(&mut self) -> Option<Item>;
}

/// A seeded permutation of `0..len`, dealt to ranks in turn.
struct IndexedItems {
    order: Vec<u64>,
    next: usize,
    epoch: u64,
    rank: u64,
    world_size: u64,
}

impl IndexedItems {
    fn new(len: u64, config: &LoaderConfig, position: &Position) -> Self {
        let mut all: Vec<u64> = (0..len).collect();
        if config.shuffle {
            all.shuffle(&mut stream_at(config.seed, &[ORDER, position.epoch]));
        }
        let order = all.into_iter().skip(config.rank).step_by(config.world_size).collect();
        Self {
            order,
            next: position.consumed as usize,
            epoch: position.epoch,
            rank: config.rank as u64,
            world_size: config.world_size as u64,
        }
    }
}

impl ItemStream for IndexedItems {
    fn next_item(&mut self) -> Option<Item> {
        let index = *self.order.get(self.next)?;
        self.next += 1;
        let consumed = self.next as u64;
        Some(Item {
            augment: [u64::MAX, self.rank + self.world_size * (consumed - 1)],
            work: Work::Index(index),
            next: Position { epoch: self.epoch, consumed, emitted: 0, stream: None },
        })
    }
}

/// The shards one reader reads in an epoch.
#[derive(Clone)]
enum ShardPlan {
    List(Vec<usize>),
    /// Drawn with replacement from `count` shards by a stream keyed on the draw.
    Resampled { count: usize, seed: u64, path: [u64; 3] },
}

impl ShardPlan {
    fn shard(&self, draw: u64) -> Option<usize> {
        match self {
            Self::List(list) => list.get(draw as usize).copied(),
            Self::Resampled { count, seed, path } => {
                use rand::Rng;
                Some(stream_at(*seed, &[RESAMPLE, path[0], path[1], path[2], draw]).random_range(0..*count))
            }
        }
    }
}

struct Window {
    records: Vec<Record>,
    /// The reader's cursor after the window.
    end: ShardCursor,
}

/// Cuts `window`-sized runs of records from a reader's shards, from `cursor` on; `None` at the end.
fn read_windows(shards: ShardSet, plan: ShardPlan, mut cursor: ShardCursor, window: usize, tx: Sender<Option<Window>>) {
    let mut open: Option<crate::source::ShardSamples> = None;
    loop {
        let mut records = Vec::with_capacity(window.min(4096));
        while records.len() < window {
            let samples = match &mut open {
                Some(samples) => samples,
                None => {
                    let Some(shard) = plan.shard(cursor.shard) else { break };
                    let mut samples = shards.open(shard);
                    for _ in 0..cursor.sample {
                        samples.next();
                    }
                    open.insert(samples)
                }
            };
            match samples.next() {
                Some(record) => {
                    records.push(record);
                    cursor.sample += 1;
                }
                None => {
                    open = None;
                    cursor = ShardCursor { shard: cursor.shard + 1, sample: 0 };
                }
            }
        }
        let message = (!records.is_empty()).then_some(Window { records, end: cursor });
        let last = message.is_none();
        if tx.send(message).is_err() || last {
            return;
        }
    }
}

/// Windows taken from the readers in turn, each permuted by its own seeded stream.
struct StreamItems {
    readers: Vec<Receiver<Option<Window>>>,
    active: Vec<bool>,
    cursors: Vec<ShardCursor>,
    window: u64,
    reader: usize,
    /// The current window's records (taken as handed out), next offset and end cursor.
    current: Option<(Vec<Option<Record>>, usize, ShardCursor)>,
    /// Items to drop from the first window (a resumed position inside it).
    skip_first: usize,
    ordinal: u64,
    epoch: u64,
    rank: u64,
    seed: u64,
    shuffle: bool,
}

impl StreamItems {
    fn start(shards: &ShardSet, config: &LoaderConfig, position: &Position) -> Result<Self> {
        let epoch = position.epoch;
        let plans: Vec<ShardPlan> = if config.resampled {
            (0..config.workers)
                .map(|w| ShardPlan::Resampled { count: shards.len(), seed: config.seed, path: [epoch, config.rank as u64, w as u64] })
                .collect()
        } else {
            let mut order: Vec<usize> = (0..shards.len()).collect();
            if config.shuffle {
                order.shuffle(&mut stream_at(config.seed, &[ORDER, epoch]));
            }
            let mine: Vec<usize> = order.into_iter().skip(config.rank).step_by(config.world_size).collect();
            let workers = config.workers.min(mine.len());
            (0..workers).map(|w| ShardPlan::List(mine.iter().skip(w).step_by(workers).copied().collect())).collect()
        };
        let state = match &position.stream {
            Some(s) if s.readers.len() == plans.len() => s.clone(),
            Some(s) => {
                return Err(Error::Source(format!(
                    "the saved position has {} shard readers, this configuration {}",
                    s.readers.len(),
                    plans.len()
                )));
            }
            None => StreamPosition { window: 0, offset: 0, reader: 0, readers: vec![ShardCursor::default(); plans.len()] },
        };
        let mut readers = Vec::with_capacity(plans.len());
        for (w, plan) in plans.into_iter().enumerate() {
            // One window in flight per reader: memory stays bounded by readers × window.
            let (tx, rx) = bounded(1);
            let (shards, cursor, window) = (shards.clone(), state.readers[w], config.shuffle_window);
            std::thread::Builder::new()
                .name(format!("clip-data-shards-{w}"))
                .spawn(move || read_windows(shards, plan, cursor, window, tx))
                .map_err(|e| Error::Loader(e.to_string()))?;
            readers.push(rx);
        }
        Ok(Self {
            active: vec![true; readers.len()],
            readers,
            cursors: state.readers,
            window: state.window,
            reader: state.reader,
            current: None,
            skip_first: state.offset as usize,
            ordinal: position.consumed,
            epoch,
            rank: config.rank as u64,
            seed: config.seed,
            shuffle: config.shuffle,
        })
    }

    /// Receives the next window from the readers in turn; `false` when all have finished.
    fn fetch(&mut self) -> bool {
        let n = self.readers.len();
        for _ in 0..n {
            if self.active[self.reader] {
                if let Ok(Some(window)) = self.readers[self.reader].recv() {
                    let mut records = window.records;
                    if self.shuffle {
                        records.shuffle(&mut stream_at(self.seed, &[WINDOW, self.epoch, self.rank, self.window]));
                    }
                    let offset = std::mem::take(&mut self.skip_first).min(records.len());
                    self.current = Some((records.into_iter().map(Some).collect(), offset, window.end));
                    return true;
                }
                self.active[self.reader] = false;
            }
            self.reader = (self.reader + 1) % n;
        }
        false
    }
}

impl ItemStream for StreamItems {
    fn next_item(&mut self) -> Option<Item> {
        loop {
            if let Some((records, offset, end)) = &mut self.current
                && *offset < records.len()
            {
                let record = records[*offset].take()?;
                *offset += 1;
                let last = *offset == records.len();
                let stream = if last {
                    self.cursors[self.reader] = *end;
                    self.current = None;
                    self.window += 1;
                    self.reader = (self.reader + 1) % self.readers.len();
                    StreamPosition { window: self.window, offset: 0, reader: self.reader, readers: self.cursors.clone() }
                } else {
                    StreamPosition { window: self.window, offset: *offset as u64, reader: self.reader, readers: self.cursors.clone() }
                };
                self.ordinal += 1;
                let next = Position { epoch: self.epoch, consumed: self.ordinal, emitted: 0, stream: Some(stream) };
                return Some(Item { augment: [self.rank, self.ordinal - 1], work: Work::Record(record), next });
            }
            if !self.fetch() {
                return None;
            }
        }
    }
}

/// A decoded, transformed sample, not yet normalised.
struct Ready {
    key: String,
    /// `[size, size, 3]` RGB bytes.
    rgb: Vec<u8>,
    tokens: Option<Vec<u32>>,
    label: Option<i64>,
    targets: Option<Vec<f32>>,
    caption: Option<String>,
    info: SampleInfo,
    seed: u64,
}

struct Pipeline {
    tail: Arc<Mutex<Tail>>,
    decoder: Arc<Decoder>,
    pool: Arc<rayon::ThreadPool>,
    emitted: u64,
    stop: Arc<AtomicBool>,
}

/// What a decode thread needs: shared by the tasks of one epoch.
struct Decoder {
    source: Source,
    config: LoaderConfig,
    epoch: u64,
}

/// Running counts of one epoch.
#[derive(Default)]
struct Counts {
    /// Since the last batch.
    consumed: u64,
    skipped: SkipCounts,
    /// Since the start (of this run of the epoch).
    consumed_total: u64,
    skipped_total: SkipCounts,
}

impl Counts {
    fn too_many(&self, limit: f64, at_end: bool) -> Option<Error> {
        let skipped = self.skipped_total.0.values().sum::<u64>();
        let judged = self.consumed_total >= MIN_ITEMS_FOR_SKIP_CHECK || at_end;
        (judged && self.consumed_total > 0 && skipped as f64 > limit * self.consumed_total as f64).then(|| {
            Error::TooManySkips { skipped, consumed: self.consumed_total, summary: self.skipped_total.to_string(), limit }
        })
    }
}

impl Pipeline {
    fn run(mut self, mut items: Box<dyn ItemStream>, tx: &Sender<Result<Batch>>) {
        if let Err(e) = self.batches(items.as_mut(), tx) {
            let _ = tx.send(Err(e));
        }
    }

    /// Items go to the pool as tasks, up to `in_flight` ahead of the oldest unfinished one, so the
    /// decode threads never wait for a chunk's slowest image or for batch assembly; results are put
    /// back in order before they are batched.
    fn batches(&mut self, items: &mut dyn ItemStream, tx: &Sender<Result<Batch>>) -> Result<()> {
        let config = &self.decoder.config;
        let (batch_size, limit, drop_last) = (config.batch_size, config.max_skip_fraction, config.drop_last);
        let in_flight = (batch_size + 4 * config.threads) as u64;
        let quota = config.quota();
        let (done_tx, done_rx) = crossbeam::channel::unbounded::<(u64, Position, Result<Ready, SkipReason>)>();
        let mut reorder = std::collections::BTreeMap::new();
        let (mut submitted, mut next) = (0u64, 0u64);
        let mut exhausted = false;
        let mut counts = Counts::default();
        let mut pending: Vec<Ready> = Vec::with_capacity(batch_size);
        let mut last_position = None;
        loop {
            if self.stop.load(Ordering::Relaxed) || quota.is_some_and(|q| self.emitted >= q) {
                return Ok(());
            }
            while !exhausted && submitted - next < in_flight {
                match items.next_item() {
                    Some(item) => {
                        let (decoder, done) = (Arc::clone(&self.decoder), done_tx.clone());
                        let seq = submitted;
                        self.pool.spawn(move || {
                            let position = item.next.clone();
                            let _ = done.send((seq, position, decoder.process(item)));
                        });
                        submitted += 1;
                    }
                    None => exhausted = true,
                }
            }
            if next == submitted {
                if let Some(error) = counts.too_many(limit, true) {
                    return Err(error);
                }
                if !pending.is_empty()
                    && !drop_last
                    && let Some(position) = last_position
                {
                    self.emitted += pending.len() as u64;
                    let batch = self.assemble(pending, position, counts.consumed, counts.skipped)?;
                    let _ = tx.send(Ok(batch));
                } else if let Ok(mut tail) = self.tail.lock() {
                    *tail = Tail { consumed: counts.consumed, skipped: counts.skipped };
                }
                return Ok(());
            }
            let (position, result) = loop {
                if let Some(done) = reorder.remove(&next) {
                    break done;
                }
                let (seq, position, result) =
                    done_rx.recv().map_err(|_| Error::Loader("a decode task vanished".into()))?;
                reorder.insert(seq, (position, result));
            };
            next += 1;
            counts.consumed += 1;
            counts.consumed_total += 1;
            match result {
                Ok(ready) => pending.push(ready),
                Err(reason) => {
                    counts.skipped.add(reason);
                    counts.skipped_total.add(reason);
                }
            }
            if let Some(error) = counts.too_many(limit, false) {
                return Err(error);
            }
            last_position = Some(position.clone());
            if pending.len() == batch_size {
                self.emitted += pending.len() as u64;
                let batch = self.assemble(std::mem::take(&mut pending), position, counts.consumed, std::mem::take(&mut counts.skipped))?;
                counts.consumed = 0;
                if tx.send(Ok(batch)).is_err() {
                    return Ok(());
                }
            }
        }
    }
}

impl Decoder {
    /// Reads, decodes and transforms one item on a decode thread.
    fn process(&self, item: Item) -> Result<Ready, SkipReason> {
        let record = match item.work {
            Work::Record(record) => record,
            Work::Index(index) => match &self.source {
                Source::Indexed(source) => source.record(self.epoch, index),
                Source::Shards(_) => unreachable!("indexed items come from indexed sources"),
            },
        };
        if let Payload::Skip(reason) = record.payload {
            return Err(reason);
        }
        let seed = stream_at(self.config.seed, &[SAMPLE, self.epoch, item.augment[0], item.augment[1]]).next_u64();
        let mut info = SampleInfo {
            size: None,
            path: match &record.payload {
                Payload::File(path) => Some(path.clone()),
                _ => None,
            },
            caption: match &record.text {
                Text::Caption(c) => Some(c.clone()),
                _ => None,
            },
            label: match record.text {
                Text::Label(l) => Some(l),
                _ => None,
            },
            json: record.json,
        };
        let (mut tokens, mut label, mut targets, mut caption) = (None, None, None, None);
        match (self.config.text, record.text) {
            (TextMode::Tokens { context_length }, Text::Caption(text)) => {
                tokens = Some(self.config.tokenizer.tokenize(&text, context_length).map_err(|_| SkipReason::MissingCaption)?);
            }
            (TextMode::Labels, Text::Label(l)) => label = Some(l),
            (TextMode::MultiLabels, Text::MultiLabel(t)) => targets = Some(t),
            (TextMode::Captions, Text::Caption(text)) => caption = Some(text),
            (TextMode::Ignore, _) => {}
            _ => return Err(SkipReason::MissingCaption),
        }
        let bytes = match record.payload {
            Payload::Skip(reason) => return Err(reason),
            Payload::Image(image) => {
                let rgb = self.transform(Decoded::Pixels(image), item.augment, &mut info.size)?;
                return Ok(Ready { key: record.key, rgb, tokens, label, targets, caption, info, seed });
            }
            Payload::Bytes(bytes) => bytes,
            Payload::File(path) => std::fs::read(path).map_err(|_| SkipReason::MissingImage)?,
        };
        let rgb = self.transform(Decoded::Encoded(&bytes), item.augment, &mut info.size)?;
        Ok(Ready { key: record.key, rgb, tokens, label, targets, caption, info, seed })
    }

    /// The transformed image as RGB bytes; `size` gets the decoded image's size where the
    /// transform decodes it whole (evaluation).
    fn transform(&self, image: Decoded<'_>, augment: [u64; 2], size: &mut Option<[u32; 2]>) -> Result<Vec<u8>, SkipReason> {
        let skip = |e: Error| SkipReason::of_decode(&e);
        match &self.config.transform {
            ImageTransform::Train(train) => {
                let mut rng = stream_at(self.config.seed, &[AUGMENT, self.epoch, augment[0], augment[1]]);
                match image {
                    Decoded::Encoded(bytes) => train.crop_encoded(bytes, &mut rng),
                    Decoded::Pixels(image) => train.crop_rgb(&RgbImage::from(&image), &mut rng),
                }
                .map_err(skip)
            }
            ImageTransform::Eval(eval) => {
                let image = match image {
                    Decoded::Encoded(bytes) => SourceImage::decode(bytes).map_err(skip)?,
                    Decoded::Pixels(image) => image,
                };
                *size = Some([image.width, image.height]);
                Ok(eval.rgb_u8(&image))
            }
        }
    }

}

impl Pipeline {
    fn assemble(&self, samples: Vec<Ready>, mut position: Position, consumed: u64, skipped: SkipCounts) -> Result<Batch> {
        let config = &self.decoder.config;
        position.emitted = self.emitted;
        let n = samples.len() as i64;
        let size = i64::from(config.transform.image_size());
        let per_image = (3 * size * size) as usize;
        let images = Tensor::empty([n, 3, size, size], (tch::Kind::Float, tch::Device::Cpu));
        // SAFETY: a fresh, contiguous float tensor of n · per_image elements, owned here alone.
        let out = unsafe { std::slice::from_raw_parts_mut(images.data_ptr().cast::<f32>(), samples.len() * per_image) };
        let (mean, std) = config.transform.stats();
        // Normalising straight into the tensor, on the decode pool: one pass over the batch.
        self.pool.install(|| {
            out.par_chunks_mut(per_image).zip(samples.par_iter()).for_each(|(out, s)| normalise_into(&s.rgb, mean, std, out));
        });
        let mut tokens = Vec::new();
        let mut labels = Vec::new();
        let mut keys = Vec::with_capacity(samples.len());
        let mut info = Vec::with_capacity(samples.len());
        let seeds = samples.iter().map(|s| s.seed).collect();
        let mut captions = Vec::new();
        let mut targets = Vec::new();
        let mut width = None;
        for sample in samples {
            tokens.extend(sample.tokens.iter().flatten().map(|&t| i64::from(t)));
            labels.extend(sample.label);
            if let Some(t) = sample.targets {
                if *width.get_or_insert(t.len()) != t.len() {
                    return Err(Error::Source(format!("{}: {} targets where the batch has {width:?}", sample.key, t.len())));
                }
                targets.extend(t);
            }
            captions.extend(sample.caption);
            keys.push(sample.key);
            info.push(sample.info);
        }
        let texts = match config.text {
            TextMode::Tokens { context_length } => Some(Tensor::from_slice(&tokens).view([n, context_length as i64])),
            _ => None,
        };
        let labels = match config.text {
            TextMode::Labels => Some(Tensor::from_slice(&labels)),
            TextMode::MultiLabels => Some(Tensor::from_slice(&targets).view([n, -1])),
            _ => None,
        };
        Ok(Batch { images, texts, labels, captions, keys, info, position, consumed, skipped, seeds })
    }
}

enum Decoded<'a> {
    Encoded(&'a [u8]),
    Pixels(SourceImage),
}
