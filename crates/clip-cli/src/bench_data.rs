//! `clip bench-data`: the training pipeline alone (read, decode, random resized crop, tokenise,
//! batch; no model) over a source, to answer "can this machine feed the GPU?".

use std::time::{Duration, Instant};

use anyhow::Result;
use clip_data::source::{Source, SourceOptions};
use clip_data::transform::TrainTransform;
use clip_data::{ImageTransform, Loader, LoaderConfig, SkipCounts, TextMode};

/// What to measure.
pub(crate) struct Options {
    pub(crate) source: String,
    pub(crate) threads: usize,
    pub(crate) batch_size: usize,
    pub(crate) seconds: f64,
    pub(crate) image_size: u32,
    pub(crate) json: bool,
}

pub(crate) fn run(options: &Options) -> Result<()> {
    let source_options = SourceOptions { builtin_image_size: options.image_size, ..SourceOptions::default() };
    let source = Source::parse(&options.source, &source_options)?;
    let kind = options.source.split(':').next().unwrap_or_default();
    let text = match kind {
        "folder" => TextMode::Ignore,
        "imagefolder" | "clip_benchmark" => TextMode::Labels,
        _ => TextMode::Tokens { context_length: clip_tokenizer::DEFAULT_CONTEXT_LENGTH },
    };
    let mut config =
        LoaderConfig::new(options.batch_size, ImageTransform::Train(TrainTransform::open_clip(options.image_size)), text);
    config.threads = options.threads;
    // A benchmark reads whatever it is given: a damaged source is measured and its skips reported.
    config.max_skip_fraction = 1.0;
    let loader = Loader::new(source, config)?;
    let budget = Duration::from_secs_f64(options.seconds);
    let start = Instant::now();
    // Steady state: the clock and the counts start once the first batch is in (thread start-up,
    // first reads and first-touch allocation excluded); skips are counted over the whole run.
    let mut steady: Option<Instant> = None;
    let (mut samples, mut batches, mut consumed, mut epochs) = (0u64, 0u64, 0u64, 0u64);
    let mut first_batch_s = 0.0;
    let mut skipped = SkipCounts::default();
    'epochs: loop {
        let mut any = false;
        let mut stream = loader.epoch(epochs)?;
        for batch in &mut stream {
            let batch = batch?;
            any = true;
            skipped.merge(&batch.skipped);
            match steady {
                None => {
                    first_batch_s = start.elapsed().as_secs_f64();
                    steady = Some(Instant::now());
                }
                Some(_) => {
                    samples += batch.keys.len() as u64;
                    batches += 1;
                    consumed += batch.consumed;
                }
            }
            if start.elapsed() >= budget && batches >= 2 {
                break 'epochs;
            }
        }
        skipped.merge(&stream.tail().skipped);
        epochs += 1;
        if !any {
            anyhow::bail!("the source gave no complete batch of {} in an epoch (skips: {skipped})", options.batch_size);
        }
    }
    let seconds = steady.map_or(0.0, |t| t.elapsed().as_secs_f64());
    let rate = samples as f64 / seconds;
    let per_thread = rate / options.threads as f64;
    if options.json {
        let round = |x: f64, places: i32| (x * 10f64.powi(places)).round() / 10f64.powi(places);
        let reasons: serde_json::Map<String, serde_json::Value> =
            clip_data::SkipReason::ALL.iter().map(|r| (r.name().to_owned(), skipped.get(*r).into())).collect();
        let report = serde_json::json!({
            "source": options.source,
            "threads": options.threads,
            "batch_size": options.batch_size,
            "image_size": options.image_size,
            "seconds": round(seconds, 3),
            "first_batch_s": round(first_batch_s, 3),
            "epochs_started": epochs + 1,
            "batches": batches,
            "samples": samples,
            "consumed": consumed,
            "samples_per_s": round(rate, 1),
            "samples_per_s_per_thread": round(per_thread, 1),
            "skipped": reasons,
        });
        println!("{report}");
    } else {
        println!("source      {}", options.source);
        println!("pipeline    {} decode threads, batch {}, {}px training transform", options.threads, options.batch_size, options.image_size);
        println!("first batch {first_batch_s:.2} s after start");
        println!("steady      {samples} samples in {batches} batches, {seconds:.2} s ({consumed} items read)");
        println!("throughput  {rate:.1} samples/s, {per_thread:.1} samples/s per thread");
        println!("skipped     {skipped}");
    }
    Ok(())
}
