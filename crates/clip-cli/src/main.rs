//! `clip`: the clip-rs command-line tool. The only crate (besides xtask) that prints.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod doctor;
mod tokenize;

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
    /// Report the libtorch in use, CUDA devices, cuDNN, threads and collective backends.
    Doctor,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Doctor => doctor::run(),
        Command::Tokenize { context_length, stats } => tokenize::run(context_length, stats),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("clip: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
