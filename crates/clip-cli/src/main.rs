//! `clip`: the clip-rs command-line tool. The only crate (besides xtask) that prints.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod doctor;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Doctor => doctor::run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("clip: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
