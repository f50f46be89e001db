//! Command-line dispatch. Flags are documented once, in `USAGE`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::{libtorch, run, setup};

const USAGE: &str = "\
usage: cargo xtask <command> [args...]

commands:
  setup [--oracles]    provision libtorch 2.11.0 (idempotent); --oracles also installs the Python
                       reference stack (open_clip, CLIP_benchmark, torchvision, scikit-learn) used by
                       fixture scripts and side-by-side benchmarks
  env                  print the `export` lines that make plain `cargo build` / `cargo test` work
  test [args...]       set up, then run the whole test suite (args go to `cargo test`): unit,
                       integration and doc tests, then every crate's examples and the downstream
                       project (xtask/downstream), the API docs (rustdoc warnings are errors), then
                       the oracle checks where installed
  examples             set up, build and run every example and the downstream project alone
  docs                 set up and build the API docs as `test` checks them
  train [args...]      set up, build `clip` in release mode, run `clip train args...`
  embed [args...]              likewise for `clip embed`
  bench-zeroshot [args...]     likewise for `clip bench-zeroshot`
  bench-linear-probe [args...] likewise for `clip bench-linear-probe`
  doctor                       likewise for `clip doctor`
  parity               set up with the oracles, build `clip`, and compare `clip embed` with
                       open_clip on full-size ViT-B-32 and RN50 (random weights; scripts/parity.py)
  zoo-parity [ARCH...] [--skip-large]
                       likewise for every architecture in the pretrained registry, smallest first
                       (scripts/zoo_parity.py, with clip-model's `features` example for the towers
                       `clip embed` cannot take yet; hours on two cores; --skip-large leaves out
                       architectures of 1e9+ parameters)
  bench-compare [--repeats N] [--threads N] [--only a,b] [--write FILE]
                       set up with the oracles, build `clip` and the benchmark binaries, time the
                       same workloads with clip-rs and the Python reference (tokenizer,
                       preprocessing, embedding, training steps, zero-shot, linear-probe search),
                       alternating, and write medians and ratios into docs/perf.md
                       (benches/scripts/compare.py)
";

/// `clip` subcommands that xtask forwards after building the binary.
const FORWARDED: &[&str] = &["train", "embed", "bench-zeroshot", "bench-linear-probe", "doctor"];

/// The workspace root: xtask's manifest lives one level below it.
fn project_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().map(PathBuf::from).unwrap_or(manifest_dir)
}

pub(crate) fn main() -> Result<ExitCode> {
    let mut args = std::env::args().skip(1);
    let Some(command) = args.next() else {
        eprint!("{USAGE}");
        return Ok(ExitCode::FAILURE);
    };
    let rest: Vec<String> = args.collect();
    let root = project_root();
    match command.as_str() {
        "setup" => {
            let oracles = match rest.as_slice() {
                [] => false,
                [flag] if flag == "--oracles" => true,
                other => bail!("setup takes only --oracles, got {other:?}"),
            };
            setup::ensure(&root, setup::Options { oracles, verbose: true })?;
            Ok(ExitCode::SUCCESS)
        }
        "env" => {
            let torch = libtorch::locate(&root)?;
            println!("export LIBTORCH={}", shell_quote(&torch.root.display().to_string()));
            println!(
                "export LD_LIBRARY_PATH={}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}",
                shell_quote(&torch.lib_dir().display().to_string())
            );
            Ok(ExitCode::SUCCESS)
        }
        "test" => {
            let torch = setup::ensure(&root, setup::Options::quiet())?;
            run::test(&root, &torch, &rest)
        }
        "examples" => {
            let torch = setup::ensure(&root, setup::Options::quiet())?;
            run::examples_and_downstream(&root, &torch)
        }
        "docs" => {
            let torch = setup::ensure(&root, setup::Options::quiet())?;
            run::api_docs(&root, &torch)
        }
        forwarded if FORWARDED.contains(&forwarded) => {
            let torch = setup::ensure(&root, setup::Options::quiet())?;
            let mut clip_args = vec![command.clone()];
            clip_args.extend(rest);
            run::clip(&root, &torch, &clip_args)
        }
        "parity" => {
            let torch = setup::ensure(&root, setup::Options { oracles: true, verbose: false })?;
            run::parity(&root, &torch)
        }
        "zoo-parity" => {
            let torch = setup::ensure(&root, setup::Options { oracles: true, verbose: false })?;
            run::zoo_parity(&root, &torch, &rest)
        }
        "bench-compare" => {
            let torch = setup::ensure(&root, setup::Options { oracles: true, verbose: false })?;
            run::bench_compare(&root, &torch, &rest)
        }
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
}

/// Single-quotes a value for POSIX shells unless it is plainly safe.
fn shell_quote(value: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-:+=,".contains(c);
    if value.chars().all(safe) {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(shell_quote("/opt/torch/lib"), "/opt/torch/lib");
        assert_eq!(shell_quote("/my dir/lib"), "'/my dir/lib'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
