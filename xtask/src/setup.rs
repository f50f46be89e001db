//! `cargo xtask setup`: provisions libtorch idempotently.
//!
//! With `LIBTORCH` set, that install is checked and used. Otherwise torch comes from PyPI into the
//! project's `.venv`. A stamp file written last marks a finished install, so a second run only reads
//! two small files; an interrupted or failed run leaves no stamp, and the next run resumes with pip
//! (which skips what is already installed) instead of tripping over a half-made environment.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::libtorch::{self, Libtorch, TORCH_VERSION};

/// What a run installs beyond libtorch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    /// Also install the Python reference stack (fixture scripts, side-by-side benchmarks).
    pub(crate) oracles: bool,
    /// Say what is already in place, not only what is done.
    pub(crate) verbose: bool,
}

impl Options {
    /// For commands that only need libtorch to be there.
    pub(crate) fn quiet() -> Self {
        Self { oracles: false, verbose: false }
    }
}

/// libtorch itself, plus the CUDA headers the c10d NCCL shim compiles against (13.0, torch's CUDA).
const TORCH_REQUIREMENTS: &[&str] =
    &["torch==2.11.0", "nvidia-cuda-crt==13.0.88.*", "nvidia-cuda-cccl==13.0.85.*"];

/// The Python reference implementations our fixtures and benchmarks compare against.
/// `numpy<2.3` and `requests`: CLIP_benchmark 1.6.2 needs both but declares neither bound.
const ORACLE_REQUIREMENTS: &[&str] = &[
    "torch==2.11.0",
    "torchvision==0.26.0",
    "open_clip_torch==3.3.0",
    "clip-benchmark==1.6.2",
    "scikit-learn",
    "scikit-image",
    "transformers",
    "tokenizers",
    "sentencepiece==0.2.3", "protobuf", // clip-tokenizer's HF fixtures: training spiece.model, and transformers reading it
    "requests",
    "numpy<2.3",
    "tensorboard", // its EventAccumulator reads clip train's event files (crates/clip-cli/scripts/tensorboard_check.py)
    "pyarrow==26.0.1", // clip embed's metadata tables read back as pandas and pyarrow read them
];

/// Free space the torch wheel needs while pip downloads and unpacks it (about 5 GB installed).
const TORCH_FREE_BYTES: u64 = 8 << 30;

const STAMP: &str = ".clip-rs-setup";

/// Makes sure libtorch (and, if asked, the oracles) are installed; returns the libtorch to use.
pub(crate) fn ensure(root: &Path, options: Options) -> Result<Libtorch> {
    let torch = if let Some(dir) = std::env::var_os("LIBTORCH") {
        let torch = Libtorch::verify(Path::new(&dir)).context("checking LIBTORCH")?;
        if options.verbose {
            eprintln!("setup: using LIBTORCH={} (torch {TORCH_VERSION})", torch.root.display());
        }
        if options.oracles {
            ensure_venv(root, ORACLE_REQUIREMENTS, options.verbose)?;
        }
        torch
    } else {
        ensure_venv(root, TORCH_REQUIREMENTS, options.verbose)?;
        if options.oracles {
            ensure_venv(root, ORACLE_REQUIREMENTS, options.verbose)?;
        }
        let dir = libtorch::venv_torch(root)
            .context("pip reported success but .venv has no torch/ folder; delete .venv and rerun")?;
        Libtorch::verify(&dir)?
    };
    for package in DEBIAN_PACKAGES {
        ensure_debian_package(package, options.verbose)?;
    }
    Ok(torch)
}

/// Installs `requirements` into `.venv` unless its stamp already lists them all.
fn ensure_venv(root: &Path, requirements: &[&str], verbose: bool) -> Result<()> {
    let venv = libtorch::venv_dir(root);
    let stamp = venv.join(STAMP);
    let done = std::fs::read_to_string(&stamp).unwrap_or_default();
    let missing: Vec<&str> =
        requirements.iter().copied().filter(|req| !done.lines().any(|line| line == *req)).collect();
    if missing.is_empty() {
        if verbose {
            eprintln!("setup: {} already has {}", venv.display(), requirements.join(" "));
        }
        return Ok(());
    }

    check_free_space(root)?;
    let python = venv.join("bin").join("python");
    if !python.exists() {
        create_venv(&venv)?;
    }
    eprintln!(
        "setup: installing {} into {} (torch with its CUDA libraries is about 5 GB; a few minutes)",
        missing.join(" "),
        venv.display()
    );
    let status = Command::new(&python)
        .args(["-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "on"])
        .args(requirements)
        .status()
        .with_context(|| format!("running {} -m pip", python.display()))?;
    if !status.success() {
        bail!(
            "pip failed ({status}) installing {}; common causes: no route to PyPI, a full disk, a \
             proxy. Nothing is marked installed, so rerunning `cargo xtask setup` resumes; \
             `rm -rf {}` starts over",
            requirements.join(" "),
            venv.display()
        );
    }
    if libtorch::venv_torch(root).is_none() {
        bail!("pip finished, but {} has no torch/version.py; `rm -rf` it and rerun", venv.display());
    }
    let mut lines: Vec<&str> = done.lines().collect();
    lines.extend(missing);
    std::fs::write(&stamp, lines.join("\n") + "\n")
        .with_context(|| format!("writing {}", stamp.display()))?;
    eprintln!("setup: done ({})", requirements.join(" "));
    Ok(())
}

fn create_venv(venv: &Path) -> Result<()> {
    let version = Command::new("python3")
        .args(["-c", "import sys; print('%d %d' % sys.version_info[:2])"])
        .output()
        .map_err(|_| {
            anyhow::anyhow!(
                "python3 not found: clip-rs installs libtorch from the torch wheel and needs \
                 Python 3.10 or newer (Debian: `apt-get install python3 python3-venv`), or set \
                 LIBTORCH to an existing libtorch {TORCH_VERSION}"
            )
        })?;
    let text = String::from_utf8_lossy(&version.stdout);
    let parsed: Vec<u32> = text.split_whitespace().filter_map(|n| n.parse().ok()).collect();
    if !matches!(parsed.as_slice(), [3, minor] if *minor >= 10) {
        bail!("python3 is {}; torch {TORCH_VERSION} needs Python 3.10 or newer", text.trim());
    }
    // A folder without bin/python is the remains of a failed creation: start it again.
    if venv.exists() {
        std::fs::remove_dir_all(venv).with_context(|| format!("removing {}", venv.display()))?;
    }
    eprintln!("setup: creating virtual environment {}", venv.display());
    let status = Command::new("python3").arg("-m").arg("venv").arg(venv).status()?;
    if !status.success() {
        // Never leave a venv without pip behind: the next run would take it for a good one.
        let _ = std::fs::remove_dir_all(venv);
        bail!(
            "`python3 -m venv {}` failed ({status}); install the venv module \
             (Debian: `apt-get install python3-venv`) and rerun",
            venv.display()
        );
    }
    Ok(())
}

/// Fails early, with the numbers, rather than letting pip die half-way through a 5 GB install.
fn check_free_space(root: &Path) -> Result<()> {
    let Ok(output) = Command::new("df").arg("-Pk").arg(root).output() else {
        return Ok(()); // No df: let pip report a full disk itself.
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let available_kib = text
        .lines()
        .nth(1)
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|n| n.parse::<u64>().ok());
    if let Some(kib) = available_kib {
        let available = kib * 1024;
        if available < TORCH_FREE_BYTES {
            bail!(
                "only {:.1} GiB free under {}; installing torch needs about {} GiB: free some space \
                 (or set LIBTORCH to an existing libtorch {TORCH_VERSION}) and rerun",
                available as f64 / (1u64 << 30) as f64,
                root.display(),
                TORCH_FREE_BYTES >> 30
            );
        }
    }
    Ok(())
}

/// A Debian package the build or the tests need, installed by `ensure_debian_package` when `marker`
/// (a file it ships) is absent.
struct DebianPackage {
    name: &'static str,
    marker: &'static str,
    why: &'static str,
}

/// Debian packages the build needs: gloo's own headers for the c10d Gloo shim (libtorch ships only
/// c10d's), nasm for libjpeg-turbo's SIMD in the training decode (mozjpeg-sys builds without it,
/// about half as fast), make for jemalloc's build (clip-alloc), and ffmpeg for video sets
/// (clip-eval's `video` runs ffprobe and ffmpeg).
const DEBIAN_PACKAGES: &[DebianPackage] = &[
    DebianPackage { name: "libgloo-dev", marker: "/usr/include/gloo/algorithm.h", why: "gloo headers for the c10d Gloo backend" },
    DebianPackage { name: "nasm", marker: "/usr/bin/nasm", why: "SIMD for the training JPEG decoder" },
    DebianPackage { name: "make", marker: "/usr/bin/make", why: "jemalloc's build, the binaries' allocator" },
    DebianPackage { name: "ffmpeg", marker: "/usr/bin/ffprobe", why: "ffmpeg and ffprobe, which take the middle frame of each clip of a video set" },
];

/// Installs `package` through apt when its marker file is absent and this is root on a Debian-like
/// system; otherwise prints the command to run and goes on (the build degrades or fails with its
/// own message).
fn ensure_debian_package(package: &DebianPackage, verbose: bool) -> Result<()> {
    let DebianPackage { name, marker, why } = package;
    if Path::new(marker).exists() {
        if verbose {
            eprintln!("setup: {name} present ({marker})");
        }
        return Ok(());
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
    let has_apt = Command::new("apt-get").arg("--version").output().is_ok();
    if !(is_root && has_apt) {
        eprintln!("setup: {name} is missing ({why}). Run:\n  sudo apt-get install -y {name}");
        return Ok(());
    }
    eprintln!("setup: installing {name} ({why})");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends", name])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
    };
    if install()?.success() {
        return Ok(());
    }
    // A stale package list is the usual cause; refresh it once and try again.
    Command::new("apt-get").args(["update", "-q"]).status()?;
    if !install()?.success() {
        bail!("`apt-get install {name}` failed; see apt's message above, fix it and rerun");
    }
    Ok(())
}
