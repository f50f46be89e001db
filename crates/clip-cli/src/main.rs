//! `clip`: the clip-rs command-line tool. The only crate (besides xtask) that prints.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod bench_data;
mod classify;
mod convert;
mod dist_check;
mod doctor;
mod embed;
mod embed_source;
mod hub;
mod launch;
mod model;
mod npy;
mod parquet;
mod plot;
mod pretrained;
mod progress;
mod tokenize;
mod train;
mod wait_policy;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use clip_alloc as _; // jemalloc under every allocation of the process (see clip-alloc).

#[derive(Debug, Parser)]
#[command(name = "clip", version, about = "CLIP in Rust on libtorch: train, embed, evaluate")]
struct Cli {
    /// No progress bars, progress lines or notices on stderr; results are still printed, and
    /// warnings and errors still shown.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure the training data pipeline alone (read, decode, transform, batch; no model).
    BenchData {
        /// csv:PATH, wds:PATTERN, folder:DIR, imagefolder:DIR, `clip_benchmark:DIR[@SPLIT]` or builtin.
        #[arg(long)]
        source: String,
        /// Decode threads.
        #[arg(long, default_value_t = std::thread::available_parallelism().map_or(1, |n| n.get()))]
        threads: usize,
        /// Samples per batch.
        #[arg(long, default_value_t = 256)]
        batch_size: usize,
        /// How long to run.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Output side of the training transform.
        #[arg(long, default_value_t = 224)]
        image_size: u32,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Zero-shot classification by the paper's protocol: the built-in tasks, registry datasets under
    /// the data root, custom folders. With no model: the newest training checkpoint.
    BenchZeroshot {
        #[command(flatten)]
        bench: BenchArgs,
    },
    /// The paper's linear probe (L-BFGS, λ searched on validation) and few-shot probes.
    BenchLinearProbe {
        #[command(flatten)]
        bench: BenchArgs,
        /// Few-shot probes: examples per class (comma-separated; 0 for none).
        #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16")]
        few_shot: Vec<usize>,
        /// Seeds per few-shot k.
        #[arg(long, default_value_t = 3)]
        seeds: u64,
        /// Fraction of train held out for the λ search when a set has no validation split.
        #[arg(long, default_value_t = 0.2)]
        validation_fraction: f64,
        /// Save each set's train, validation and test features to DIR/NAME.safetensors.
        #[arg(long)]
        save_features: Option<std::path::PathBuf>,
    },
    /// Zero-shot classification of your own images: each image's most probable --labels
    /// (softmax over the labels; a SigLIP model's own per-label sigmoid, as it was trained).
    #[command(group(clap::ArgGroup::new("arch").required(true).args(["model", "model_config"])))]
    Classify {
        #[command(flatten)]
        spec: model::ModelSpec,
        /// The labels, comma-separated: --labels "dog,cat,a diagram".
        #[arg(long)]
        labels: String,
        /// seed ("a photo of a {}."), imagenet (the paper's 80 prompts), none (the labels as
        /// given), or a file of templates, one per line, with {} where the label goes.
        #[arg(long, default_value = "seed")]
        templates: String,
        /// Labels shown per image, most probable first.
        #[arg(long, default_value_t = 5)]
        top: usize,
        /// One JSON object per image: {"file", "top": [{"label", "prob"}, …]}.
        #[arg(long)]
        json: bool,
        /// Image files, or folders (every image directly in them).
        #[arg(required = true, value_name = "IMAGE|DIR")]
        inputs: Vec<std::path::PathBuf>,
        #[command(flatten)]
        run: embed::RunArgs,
    },
    /// Rewrite weights (OpenAI .pt, Hugging Face, open_clip) as open_clip-layout safetensors.
    Convert {
        /// The weights to read.
        input: std::path::PathBuf,
        /// The .safetensors file to write.
        output: std::path::PathBuf,
    },
    /// Write L2-normalised embeddings: of a folder's images or a file's texts as one float32 .npy
    /// file, or of a whole collection (--source) in parts, in clip-retrieval's layout
    /// (docs/embed.md).
    #[command(group(clap::ArgGroup::new("arch").required(true).args(["model", "model_config"])))]
    #[command(group(clap::ArgGroup::new("input").required(true).args(["images", "texts", "source"])))]
    Embed {
        #[command(flatten)]
        spec: model::ModelSpec,
        /// Embed with random weights (no --weights).
        #[arg(long)]
        random_init: bool,
        /// A folder: every image file directly in it, in byte order of file name.
        #[arg(long)]
        images: Option<std::path::PathBuf>,
        /// A text file: one text per line.
        #[arg(long)]
        texts: Option<std::path::PathBuf>,
        /// A collection: wds:PATTERN (WebDataset shards, brace patterns, `::`, pipe:), csv:PATH
        /// (open_clip's filepath/title columns), folder:DIR (every image below DIR) or
        /// imagefolder:DIR (DIR/CLASS/IMAGE). Written in parts to --out DIR: one per shard, or
        /// per --part-size samples; finished parts are skipped on a rerun; ranks of clip launch
        /// or torchrun share the parts.
        #[arg(long)]
        source: Option<String>,
        /// The .npy file to write (--images, --texts), or the output folder (--source):
        /// img_emb/img_emb_N.npy, text_emb/text_emb_N.npy, metadata/metadata_N.parquet.
        #[arg(long)]
        out: std::path::PathBuf,
        /// With --source: the embeddings to write (texts are the samples' captions).
        #[arg(long, value_enum, default_value = "images", requires = "source")]
        what: embed_source::What,
        /// With --source: samples per part, for sources other than WebDataset shards (one part
        /// per shard).
        #[arg(long, default_value_t = 1_000_000, requires = "source")]
        part_size: u64,
        /// With --source: the embeddings' type (clip-retrieval writes float16).
        #[arg(long, value_enum, default_value = "float16", requires = "source")]
        dtype: embed_source::Dtype,
        /// With --source: decode threads.
        #[arg(long, default_value_t = std::thread::available_parallelism().map_or(1, |n| n.get()), requires = "source")]
        threads: usize,
        /// With --source: a bar with samples/s and ETA (a line every few seconds when stderr is
        /// not a terminal).
        #[arg(long, requires = "source")]
        progress: bool,
        #[command(flatten)]
        run: embed::RunArgs,
    },
    /// List the pretrained (model, tag) pairs clip-rs builds: parameters, and whether cached.
    Pretrained {
        /// Only this model's tags.
        #[arg(long)]
        model: Option<String>,
        /// One JSON object per pair.
        #[arg(long)]
        json: bool,
    },
    /// Redraw the curves of training runs from their metrics.jsonl (several runs: overlaid).
    Plot {
        /// Run folders (each with a metrics.jsonl).
        #[arg(required = true, value_name = "RUN")]
        runs: Vec<std::path::PathBuf>,
        /// The PNG to write (default for one run: RUN/curves.png; required for several).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Fetch weights (MODEL:TAG, hf-hub:ORG/NAME) or datasets into the cache; runs nothing.
    Pull {
        /// MODEL:TAG (e.g. ViT-B-32:openai) or hf-hub:ORG/NAME.
        specs: Vec<String>,
        /// A benchmark dataset: a registry name (its CLIP_benchmark repo) or hf-hub:ORG/NAME (repeatable).
        #[arg(long = "dataset", value_name = "NAME")]
        datasets: Vec<String>,
        /// The dataset splits to fetch.
        #[arg(long, value_delimiter = ',', default_value = "test")]
        splits: Vec<String>,
        /// Check the cache only, as HF_HUB_OFFLINE=1 does.
        #[arg(long)]
        offline: bool,
    },
    /// Report the libtorch in use, CUDA devices, cuDNN, threads and collective backends.
    Doctor,
    /// Check a distributed job's collectives (rendezvous, all-reduce, all-gather with gradient).
    DistCheck {
        /// Device: auto, cpu, cuda (NCCL, one GPU per local rank).
        #[arg(long, default_value = "cpu")]
        device: clip_tensor::device::DeviceSpec,
        /// How many rounds to run.
        #[arg(long, default_value_t = 1)]
        rounds: usize,
        /// Pause between rounds, in milliseconds.
        #[arg(long, default_value_t = 0)]
        interval_ms: u64,
        /// Elements all-reduced per round.
        #[arg(long, default_value_t = 1 << 20)]
        elements: i64,
    },
    /// Run N ranks of a clip subcommand on this machine (as torchrun does).
    Launch {
        /// Number of ranks.
        #[arg(long)]
        nproc: usize,
        /// Rendezvous port (default: a free one).
        #[arg(long)]
        master_port: Option<u16>,
        /// The clip subcommand and its arguments, after `--`.
        #[arg(last = true, required = true)]
        args: Vec<String>,
    },
    /// Train a CLIP model (with no arguments: a tiny model on the built-in dataset, on the CPU).
    Train {
        /// A TOML configuration (docs/config.md); every key has a default.
        #[arg(long)]
        config: Option<std::path::PathBuf>,
        /// Override a key: --set optim.lr=5e-4 (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Continue a run: `latest` (of the configured output folder) or a checkpoint folder.
        #[arg(long)]
        resume: Option<String>,
    },
    /// Tokenize UTF-8 lines from stdin; write one JSON array of ids per line to stdout.
    Tokenize {
        /// Ids per row (default: the model config's context length, else 77).
        #[arg(long)]
        context_length: Option<usize>,
        /// The model whose tokenizer to use: a built-in name, hf-hub:ORG/NAME or local-dir:DIR
        /// (default: OpenAI's BPE).
        #[arg(long, conflicts_with = "model_config")]
        model: Option<String>,
        /// An open_clip model-config JSON file whose tokenizer to use (`text_cfg.hf_tokenizer_name`).
        #[arg(long)]
        model_config: Option<std::path::PathBuf>,
        /// Use the local cache only, as HF_HUB_OFFLINE=1 does.
        #[arg(long)]
        offline: bool,
        /// Print throughput (lines per second, start-up excluded) to stderr at the end.
        #[arg(long)]
        stats: bool,
    },
}

/// What both benchmark commands take.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("arch").args(["model", "model_config"])))]
struct BenchArgs {
    #[command(flatten)]
    spec: model::ModelSpec,
    /// Where training runs are (the newest checkpoint is used when no model is named).
    #[arg(long, default_value = "runs")]
    runs: std::path::PathBuf,
    /// Registry datasets are looked for in DATA_ROOT/NAME/.
    #[arg(long, default_value = "data")]
    data_root: std::path::PathBuf,
    /// Registry names, `builtin`, `builtin/TASK`, or folders (CLIP_benchmark layout or ImageFolder
    /// with classnames.txt); default: the built-in tasks and every registry set found.
    #[arg(long, value_delimiter = ',')]
    datasets: Vec<String>,
    /// Output folder for results.json, results.md and results.csv.
    #[arg(long, default_value = "results")]
    out: std::path::PathBuf,
    /// Images per forward pass.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Decode threads.
    #[arg(long, default_value_t = std::thread::available_parallelism().map_or(1, |n| n.get()))]
    threads: usize,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: clip_tensor::device::DeviceSpec,
    /// fp32, or bf16/fp16 autocast.
    #[arg(long, default_value = "fp32")]
    precision: clip_tensor::precision::Precision,
}

impl BenchArgs {
    fn options(self, task: bench::Task) -> bench::Options {
        bench::Options {
            spec: self.spec,
            runs: self.runs,
            data_root: self.data_root,
            datasets: self.datasets,
            out: self.out,
            batch_size: self.batch_size,
            threads: self.threads,
            device: self.device,
            precision: self.precision,
            task,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    progress::set_quiet(cli.quiet);
    let result = match cli.command {
        Command::BenchData { source, threads, batch_size, seconds, image_size, json } => {
            bench_data::run(&bench_data::Options { source, threads, batch_size, seconds, image_size, json })
        }
        Command::BenchZeroshot { bench } => bench::run(bench.options(bench::Task::ZeroShot)),
        Command::BenchLinearProbe { bench, few_shot, seeds, validation_fraction, save_features } => {
            let few_shot = few_shot.into_iter().filter(|&k| k > 0).collect();
            let probe = clip_eval::suite::ProbeOptions { few_shot, seeds, ..Default::default() };
            let task = bench::ProbeTask { probe, validation_fraction, save_features };
            bench::run(bench.options(bench::Task::LinearProbe(task)))
        }
        Command::Classify { spec, labels, templates, top, json, inputs, run } => {
            classify::run(&classify::Options { spec, labels, templates, top, json, inputs, run })
        }
        Command::Convert { input, output } => convert::run(&input, &output),
        Command::Doctor => doctor::run(),
        Command::Plot { runs, out } => plot::run(&runs, out.as_deref()),
        Command::Pretrained { model, json } => pretrained::list(model.as_deref(), json),
        Command::Pull { specs, datasets, splits, offline } => pretrained::pull(&specs, &datasets, &splits, offline),
        Command::Embed { spec, random_init, images, texts, source, out, what, part_size, dtype, threads, progress, run } => {
            match (images, texts, source) {
                (Some(dir), None, None) => embed::run(&embed::Options { spec, random_init, input: embed::Input::Images(dir), out, run }),
                (None, Some(file), None) => embed::run(&embed::Options { spec, random_init, input: embed::Input::Texts(file), out, run }),
                (None, None, Some(source)) => embed_source::run(&embed_source::Options {
                    spec,
                    random_init,
                    source,
                    out,
                    what,
                    part_size,
                    dtype,
                    threads,
                    progress,
                    run,
                }),
                _ => Err(anyhow::anyhow!("give exactly one of --images, --texts and --source")),
            }
        }
        Command::DistCheck { device, rounds, interval_ms, elements } => dist_check::run(&dist_check::Options {
            device,
            rounds,
            interval: std::time::Duration::from_millis(interval_ms),
            elements,
        }),
        Command::Launch { nproc, master_port, args } => launch::run(nproc, master_port, &args),
        Command::Tokenize { context_length, model, model_config, offline, stats } => {
            tokenize::run(&tokenize::Choice { model, model_config, offline }, context_length, stats)
        }
        Command::Train { config, set, resume } => train::run(config, &set, resume.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("clip: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
