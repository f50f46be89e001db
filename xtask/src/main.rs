//! `cargo xtask`: provisions libtorch, then builds and runs `clip` in release mode.
//!
//! Orchestration only (matklad's cargo-xtask pattern): no `clip-*` crate is linked, so this
//! builds in seconds on a machine that has no libtorch yet, which is exactly when it is needed.

// xtask is a binary that talks to its user; the workspace's no-print rule is for libraries.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cli;
mod libtorch;
mod run;
mod setup;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::main() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
