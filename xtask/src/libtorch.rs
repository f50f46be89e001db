//! Where libtorch is, and whether it is the version `tch` 0.24 was generated against.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The only libtorch `tch` 0.24 works with; also the torch wheel the GPU machines run.
pub(crate) const TORCH_VERSION: &str = "2.11.0";

/// A libtorch install: a folder with `include/` and `lib/` (a libtorch zip, or a torch wheel's `torch/`).
#[derive(Debug, Clone)]
pub(crate) struct Libtorch {
    pub(crate) root: PathBuf,
}

impl Libtorch {
    pub(crate) fn lib_dir(&self) -> PathBuf {
        self.root.join("lib")
    }

    /// Checks that `root` is a libtorch install of [`TORCH_VERSION`].
    pub(crate) fn verify(root: &Path) -> Result<Self> {
        if !root.join("lib").join("libtorch_cpu.so").exists() {
            bail!(
                "{} is not a libtorch install (no lib/libtorch_cpu.so); point LIBTORCH at a libtorch folder \
                 or at the `torch/` folder of an installed torch=={TORCH_VERSION} wheel",
                root.display()
            );
        }
        let version = read_version(root)?;
        if base_version(&version) != TORCH_VERSION {
            bail!(
                "{} holds torch {version}, but clip-rs needs {TORCH_VERSION} (tch 0.24 is generated against it); \
                 point LIBTORCH at a {TORCH_VERSION} install, or unset LIBTORCH so that `cargo xtask setup` \
                 installs torch=={TORCH_VERSION} into the project's .venv",
                root.display()
            );
        }
        Ok(Self { root: root.to_path_buf() })
    }
}

/// The project's virtual environment, created by `cargo xtask setup`.
pub(crate) fn venv_dir(project_root: &Path) -> PathBuf {
    project_root.join(".venv")
}

/// `torch/` inside the venv's site-packages, whatever the Python version.
pub(crate) fn venv_torch(project_root: &Path) -> Option<PathBuf> {
    let lib = venv_dir(project_root).join("lib");
    let mut found: Vec<PathBuf> = std::fs::read_dir(lib)
        .ok()?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path().join("site-packages").join("torch"))
        .filter(|torch| torch.join("version.py").exists())
        .collect();
    found.sort();
    found.pop()
}

/// The libtorch to use: `LIBTORCH` if set (and right), else the venv's, already set up.
pub(crate) fn locate(project_root: &Path) -> Result<Libtorch> {
    if let Some(root) = std::env::var_os("LIBTORCH") {
        return Libtorch::verify(Path::new(&root)).context("checking LIBTORCH");
    }
    match venv_torch(project_root) {
        Some(root) => Libtorch::verify(&root),
        None => bail!("libtorch is not set up yet: run `cargo xtask setup` (or set LIBTORCH)"),
    }
}

/// The version string of a libtorch install: `build-version` (libtorch zips) or `version.py` (wheels).
fn read_version(root: &Path) -> Result<String> {
    let build_version = root.join("build-version");
    if build_version.exists() {
        let text = std::fs::read_to_string(&build_version)
            .with_context(|| format!("reading {}", build_version.display()))?;
        return Ok(text.trim().to_owned());
    }
    let version_py = root.join("version.py");
    let text = std::fs::read_to_string(&version_py).with_context(|| {
        format!("{} has neither build-version nor version.py to tell its version", root.display())
    })?;
    parse_version_py(&text)
        .map(str::to_owned)
        .with_context(|| format!("no __version__ line in {}", version_py.display()))
}

fn parse_version_py(text: &str) -> Option<&str> {
    text.lines()
        .find_map(|line| line.strip_prefix("__version__ = "))
        .map(|quoted| quoted.trim().trim_matches(|c| c == '\'' || c == '"'))
}

/// `2.11.0+cu130` → `2.11.0`.
fn base_version(version: &str) -> &str {
    version.split_once('+').map_or(version, |(base, _)| base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wheel_version_file() {
        let text = "from typing import Optional\n__version__ = '2.11.0+cu130'\ndebug = False\n";
        assert_eq!(parse_version_py(text), Some("2.11.0+cu130"));
        assert_eq!(base_version("2.11.0+cu130"), "2.11.0");
        assert_eq!(base_version("2.11.0"), "2.11.0");
        assert_eq!(parse_version_py("x = 1\n"), None);
    }

    #[test]
    fn rejects_wrong_version_and_non_libtorch_folders() {
        let dir = std::env::temp_dir().join(format!("xtask-libtorch-{}", std::process::id()));
        let lib = dir.join("lib");
        std::fs::create_dir_all(&lib).unwrap();
        let err = Libtorch::verify(&dir).unwrap_err().to_string();
        assert!(err.contains("not a libtorch install"), "{err}");

        std::fs::write(lib.join("libtorch_cpu.so"), b"").unwrap();
        std::fs::write(dir.join("version.py"), "__version__ = '2.10.0+cpu'\n").unwrap();
        let err = Libtorch::verify(&dir).unwrap_err().to_string();
        assert!(err.contains("holds torch 2.10.0+cpu") && err.contains("needs 2.11.0"), "{err}");

        std::fs::write(dir.join("version.py"), "__version__ = '2.11.0+cpu'\n").unwrap();
        assert!(Libtorch::verify(&dir).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
