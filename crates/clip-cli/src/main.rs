//! `clip`: the clip-rs command-line tool. The only crate (besides xtask) that prints.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench_data;
mod convert;
mod dist_check;
mod doctor;
mod embed;
mod launch;
mod npy;
mod tokenize;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "clip", version, about = "CLIP in Rust on libtorch: train, embed, evaluate")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure the training data pipeline alone (read, decode, transform, batch; no model).
    BenchData {
        /// csv:PATH, wds:PATTERN, folder:DIR, imagefolder:DIR, clip_benchmark:DIR[@SPLIT] or builtin.
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
    /// Rewrite weights (OpenAI .pt, Hugging Face, open_clip) as open_clip-layout safetensors.
    Convert {
        /// The weights to read.
        input: std::path::PathBuf,
        /// The .safetensors file to write.
        output: std::path::PathBuf,
    },
    /// Write L2-normalised image or text embeddings as a float32 .npy file.
    #[command(group(clap::ArgGroup::new("arch").required(true).args(["model", "model_config"])))]
    #[command(group(clap::ArgGroup::new("input").required(true).args(["images", "texts"])))]
    Embed {
        /// A preset: RN50, RN101, RN50x4, RN50x16, RN50x64, ViT-B-32, ViT-B-16, ViT-L-14, ViT-L-14-336 (and -quickgelu).
        #[arg(long)]
        model: Option<String>,
        /// An open_clip model-config JSON file.
        #[arg(long)]
        model_config: Option<std::path::PathBuf>,
        /// Weights: OpenAI .pt, open_clip or Hugging Face safetensors.
        #[arg(long)]
        weights: Option<std::path::PathBuf>,
        /// Embed with random weights (no --weights).
        #[arg(long)]
        random_init: bool,
        /// A folder: every image file directly in it, in byte order of file name.
        #[arg(long)]
        images: Option<std::path::PathBuf>,
        /// A text file: one text per line.
        #[arg(long)]
        texts: Option<std::path::PathBuf>,
        /// The .npy file to write.
        #[arg(long)]
        out: std::path::PathBuf,
        /// Inputs per forward pass.
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
        /// auto, cpu, cuda or cuda:N.
        #[arg(long, default_value = "auto")]
        device: clip_tensor::device::DeviceSpec,
        /// fp32, or bf16/fp16 autocast.
        #[arg(long, default_value = "fp32")]
        precision: clip_tensor::precision::Precision,
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
        /// Ids per row: start token, text, end token, zero padding.
        #[arg(long, default_value_t = clip_tokenizer::DEFAULT_CONTEXT_LENGTH)]
        context_length: usize,
        /// Print throughput (lines per second, start-up excluded) to stderr at the end.
        #[arg(long)]
        stats: bool,
    },
}

/// Keeps image-sized buffers (decoded photos, batches: megabytes each, allocated and freed hundreds of
/// times a second per decode thread) in the heap. With glibc's defaults each one is a fresh `mmap`,
/// zero-filled page by page on first touch and unmapped when freed; that costs as much as decoding.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::BenchData { source, threads, batch_size, seconds, image_size, json } => {
            bench_data::run(&bench_data::Options { source, threads, batch_size, seconds, image_size, json })
        }
        Command::Convert { input, output } => convert::run(&input, &output),
        Command::Doctor => doctor::run(),
        Command::Embed { model, model_config, weights, random_init, images, texts, out, batch_size, device, precision } => {
            let input = match (images, texts) {
                (Some(dir), None) => Ok(embed::Input::Images(dir)),
                (None, Some(file)) => Ok(embed::Input::Texts(file)),
                _ => Err(anyhow::anyhow!("give exactly one of --images and --texts")),
            };
            input.and_then(|input| {
                embed::run(&embed::Options { model, model_config, weights, random_init, input, out, batch_size, device, precision })
            })
        }
        Command::DistCheck { device, rounds, interval_ms, elements } => dist_check::run(&dist_check::Options {
            device,
            rounds,
            interval: std::time::Duration::from_millis(interval_ms),
            elements,
        }),
        Command::Launch { nproc, master_port, args } => launch::run(nproc, master_port, &args),
        Command::Tokenize { context_length, stats } => tokenize::run(context_length, stats),
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
