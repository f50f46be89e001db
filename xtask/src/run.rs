//! Building and running the workspace against the provisioned libtorch.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus};

use anyhow::{Context, Result, bail};

use crate::libtorch::Libtorch;

/// `cargo` with `LIBTORCH` set and libtorch's `lib/` first on the loader path.
fn cargo(root: &Path, torch: &Libtorch) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root);
    with_libtorch(&mut cmd, torch);
    cmd
}

fn with_libtorch(cmd: &mut Command, torch: &Libtorch) {
    let mut paths = vec![torch.lib_dir()];
    if let Some(old) = std::env::var_os("LD_LIBRARY_PATH") {
        paths.extend(std::env::split_paths(&old));
    }
    let joined: OsString = std::env::join_paths(paths).unwrap_or_else(|_| torch.lib_dir().into());
    cmd.env("LIBTORCH", &torch.root).env("LD_LIBRARY_PATH", joined);
}

fn exit_code(status: ExitStatus) -> ExitCode {
    match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE, // Killed by a signal.
    }
}

/// Runs the whole test suite in release mode, sharing the build of `target/release/clip` that the
/// CLI tests run.
pub(crate) fn test(root: &Path, torch: &Libtorch, args: &[String]) -> Result<ExitCode> {
    let status = cargo(root, torch)
        .args(["test", "--workspace", "--release"])
        .args(args)
        .status()
        .context("running cargo test")?;
    if !status.success() || !args.is_empty() {
        return Ok(exit_code(status));
    }
    run_steps(root, torch, &[examples, downstream, api_docs, embed_interop, hub_interop, tensorboard_check])
}

/// A step after the tests: its exit code.
type Step = fn(&Path, &Libtorch) -> Result<ExitCode>;

/// Runs `steps` in order; the first that fails ends the run with its code.
fn run_steps(root: &Path, torch: &Libtorch, steps: &[Step]) -> Result<ExitCode> {
    for step in steps {
        let code = step(root, torch)?;
        if code != ExitCode::SUCCESS {
            return Ok(code);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `command` as the step `label`, timed: prints `LABEL: ok (S s{note})`, or `LABEL: FAILED `
/// and what `failed` says of the exit status, and returns the command's exit code.
fn timed(label: &str, command: &mut Command, failed: impl FnOnce(ExitStatus) -> String, note: &str) -> Result<ExitCode> {
    let start = std::time::Instant::now();
    let status = command.status().with_context(|| format!("{label}: running {}", command.get_program().to_string_lossy()))?;
    if !status.success() {
        println!("{label}: FAILED {}", failed(status));
        return Ok(exit_code(status));
    }
    println!("{label}: ok ({:.1} s{note})", start.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

/// The workspace's API docs with rustdoc's warnings as errors (broken or private intra-doc links,
/// bad code blocks), so a doc regression fails the suite. `--release` shares the test build's build
/// scripts (torch-sys compiles its C++ there) instead of running them again in the dev profile.
pub(crate) fn api_docs(root: &Path, torch: &Libtorch) -> Result<ExitCode> {
    let mut command = cargo(root, torch);
    command.args(["doc", "--workspace", "--no-deps", "--release", "--quiet"]).env("RUSTDOCFLAGS", "-D warnings");
    timed("api docs", &mut command, |_| "(rustdoc warnings are errors; see above)".into(), "")
}

/// clip train's TensorBoard event files read by TensorBoard's own EventAccumulator (a short run,
/// then a killed-and-resumed one): only where the oracles (with tensorboard) are installed.
fn tensorboard_check(root: &Path, torch: &Libtorch) -> Result<ExitCode> {
    let clip = target_dir(root).join("release").join("clip");
    oracle_script(root, torch, "tensorboard check", &["tensorboard", "numpy"], "tensorboard_check.py", &[clip])
}

/// The hub cache shared with Python's huggingface_hub and open_clip, both ways, against the
/// loopback hub: only where the oracles are installed (CI's plain setup has neither package).
fn hub_interop(root: &Path, torch: &Libtorch) -> Result<ExitCode> {
    let release = target_dir(root).join("release");
    let binaries = [release.join("clip"), release.join("clip-testhub")];
    oracle_script(root, torch, "hub interop", &["huggingface_hub", "open_clip"], "hub_interop.py", &binaries)
}

/// Runs `crates/clip-cli/scripts/SCRIPT ARGS…` with the venv's Python when it imports `modules`;
/// says `what` was not run otherwise.
fn oracle_script(root: &Path, torch: &Libtorch, what: &str, modules: &[&str], script: &str, args: &[PathBuf]) -> Result<ExitCode> {
    let python = crate::libtorch::venv_dir(root).join("bin").join("python");
    let import = format!("import {}", modules.join(", "));
    let installed = Command::new(&python).args(["-c", &import]).stderr(std::process::Stdio::null()).status().is_ok_and(|s| s.success());
    if !installed {
        println!("{what}: not run ({} not installed: `cargo xtask setup --oracles`)", modules.join(" and "));
        return Ok(ExitCode::SUCCESS);
    }
    let mut command = Command::new(&python);
    command.arg(root.join("crates/clip-cli/scripts").join(script)).args(args);
    with_libtorch(&mut command, torch);
    let status = command.status().with_context(|| format!("running {script}"))?;
    Ok(exit_code(status))
}

/// Builds `target/release/clip` and returns its path.
fn build_clip(root: &Path, torch: &Libtorch) -> Result<PathBuf> {
    build(root, torch, &["--package", "clip-cli", "--bin", "clip"])?;
    Ok(target_dir(root).join("release").join("clip"))
}

/// `cargo build --release` with `args`.
fn build(root: &Path, torch: &Libtorch, args: &[&str]) -> Result<()> {
    let status = cargo(root, torch).args(["build", "--release"]).args(args).status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build --release {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Builds `clip` in release mode and runs it with `args`.
pub(crate) fn clip(root: &Path, torch: &Libtorch, args: &[String]) -> Result<ExitCode> {
    let binary = build_clip(root, torch)?;
    let status = Command::new(&binary)
        .args(args)
        .status()
        .with_context(|| format!("running {}", binary.display()))?;
    Ok(exit_code(status))
}

/// `scripts/<script>` with the project's Python: a fresh release `clip`, then `args`.
fn script_with_clip(root: &Path, torch: &Libtorch, script: &str, args: &[OsString]) -> Result<ExitCode> {
    let binary = build_clip(root, torch)?;
    let python = crate::libtorch::venv_dir(root).join("bin").join("python");
    let status = Command::new(&python)
        .arg(root.join("scripts").join(script))
        .arg(&binary)
        .args(args)
        .status()
        .with_context(|| format!("running {}", python.display()))?;
    Ok(exit_code(status))
}

/// `scripts/parity.py`: full-size ViT-B-32 and RN50 against open_clip.
pub(crate) fn parity(root: &Path, torch: &Libtorch) -> Result<ExitCode> {
    script_with_clip(root, torch, "parity.py", &[target_dir(root).join("parity").into()])
}

/// `scripts/zoo_parity.py`: every architecture of the pretrained registry against open_clip, with
/// clip-model's `features` example for the towers `clip embed` cannot take yet.
pub(crate) fn zoo_parity(root: &Path, torch: &Libtorch, args: &[String]) -> Result<ExitCode> {
    build(root, torch, &["--package", "clip-model", "--example", "features"])?;
    let features = target_dir(root).join("release").join("examples").join("features");
    let mut script_args: Vec<OsString> = vec!["--features".into(), features.into()];
    script_args.extend(args.iter().map(OsString::from));
    script_with_clip(root, torch, "zoo_parity.py", &script_args)
}

/// Builds `clip` and the benchmark binaries, then runs `benches/scripts/compare.py` (ours against
/// the Python reference, alternating), which writes its table into `docs/perf.md`.
pub(crate) fn bench_compare(root: &Path, torch: &Libtorch, args: &[String]) -> Result<ExitCode> {
    build_clip(root, torch)?;
    build(root, torch, &["--package", "clip-benches", "--bin", "bench_model", "--bin", "bench_step"])?;
    let python = crate::libtorch::venv_dir(root).join("bin").join("python");
    let mut cmd = Command::new(&python);
    cmd.arg(root.join("benches").join("scripts").join("compare.py"))
        .arg("--bin")
        .arg(target_dir(root).join("release"))
        .arg("--work")
        .arg(target_dir(root).join("bench-compare"))
        .arg("--write")
        .arg(root.join("docs").join("perf.md"))
        .args(args);
    with_libtorch(&mut cmd, torch);
    let status = cmd.status().with_context(|| format!("running {}", python.display()))?;
    Ok(exit_code(status))
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// `clip embed --source`'s parts read back by pyarrow and numpy, and its rows against open_clip's
/// (crates/clip-cli/scripts/embed_interop.py): only where the oracles are installed.
fn embed_interop(root: &Path, torch: &Libtorch) -> Result<ExitCode> {
    let clip = target_dir(root).join("release").join("clip");
    oracle_script(root, torch, "embed interop", &["pyarrow", "open_clip"], "embed_interop.py", &[clip])
}

/// Every crate's examples, then the downstream project.
pub(crate) fn examples_and_downstream(root: &Path, torch: &Libtorch) -> Result<ExitCode> {
    run_steps(root, torch, &[examples, downstream])
}

/// Runs every example of every crate (`crates/*/examples/*.rs`, built by `cargo test` above; the
/// build here only makes sure), each on committed fixtures: those that take input are given some.
fn examples(root: &Path, torch: &Libtorch) -> Result<ExitCode> {
    build(root, torch, &["--workspace", "--examples"])?;
    let work = target_dir(root).join("examples-run");
    let jpegs = work.join("jpegs");
    std::fs::create_dir_all(&jpegs).with_context(|| format!("creating {}", jpegs.display()))?;
    let photos = root.join("crates/clip-data/tests/fixtures/images");
    std::fs::copy(photos.join("rocket.jpg"), jpegs.join("rocket.jpg")).context("copying rocket.jpg")?;
    let fixtures = root.join("crates/clip-model/tests/fixtures");
    let args = |name: &str| -> Vec<OsString> {
        match name {
            // The towers on open_clip's own inputs (what scripts/zoo_parity.py gives it).
            "features" => vec![
                fixtures.join("tiny-vit.json").into(),
                fixtures.join("tiny-vit.safetensors").into(),
                fixtures.join("tiny-vit.io.safetensors").into(),
                work.join("features.safetensors").into(),
            ],
            "scaled_decode" => vec![jpegs.clone().into(), "--passes".into(), "1".into()],
            _ => Vec::new(),
        }
    };
    let mut names = Vec::new();
    for crate_dir in std::fs::read_dir(root.join("crates")).context("reading crates/")? {
        let Ok(entries) = std::fs::read_dir(crate_dir?.path().join("examples")) else { continue };
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "rs")
                && let Some(stem) = path.file_stem()
            {
                names.push(stem.to_string_lossy().into_owned());
            }
        }
    }
    names.sort();
    let all = std::time::Instant::now();
    for name in &names {
        let binary = target_dir(root).join("release").join("examples").join(name);
        let mut command = Command::new(&binary);
        command.args(args(name)).current_dir(&work).stdout(std::process::Stdio::null());
        with_libtorch(&mut command, torch);
        let code = timed(&format!("example {name}"), &mut command, |s| format!("({s}); run it: {}", binary.display()), "")?;
        if code != ExitCode::SUCCESS {
            return Ok(code);
        }
    }
    println!("{} examples ran in {:.1} s", names.len(), all.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

/// Builds and runs `xtask/downstream`, a project outside the workspace that depends on the crates
/// by path as a user's would (it embeds a text and checks the norm). It shares the workspace's
/// target folder, and starts from the workspace's lock file so that it resolves the same versions.
fn downstream(root: &Path, torch: &Libtorch) -> Result<ExitCode> {
    let dir = root.join("xtask").join("downstream");
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).context("copying Cargo.lock into xtask/downstream")?;
    let mut command = cargo(root, torch);
    command.args(["run", "--release", "--manifest-path"]).arg(dir.join("Cargo.toml")).env("CARGO_TARGET_DIR", target_dir(root));
    timed("downstream project", &mut command, |s| format!("({s})"), ", build included")
}
