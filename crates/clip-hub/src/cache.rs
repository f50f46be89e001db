//! The cache folder that huggingface_hub shares between Python programs, read and written byte for byte
//! as huggingface_hub 2.4.0 does, with no network code: resolving a file offline is a function of the
//! folder alone.
//!
//! ```text
//! {root}/models--org--name/
//!     blobs/{etag}                      the bytes, named by the hub's etag
//!     snapshots/{commit}/{path}         relative symlink to ../../blobs/{etag} (one more ../ per folder)
//!     refs/{revision}                   the commit hash, no newline
//!     .no_exist/{commit}/{path}         empty: the hub said 404 for this file at this commit
//! {root}/.locks/models--org--name/{etag}.lock
//! {root}/CACHEDIR.TAG
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::env;
use crate::error::{Result, io};
use crate::repo::{Repo, is_commit_hash};

/// What huggingface_hub writes to `CACHEDIR.TAG` (the Cache Directory Tagging Standard).
const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This file is a cache directory tag created by huggingface_hub.\n\
# For information about cache directory tags, see:\n\
#\thttps://bford.info/cachedir/\n";

/// A hub cache root.
#[derive(Clone, Debug)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// The root from `HF_HUB_CACHE`, `HUGGINGFACE_HUB_CACHE` or `$HF_HOME/hub` (see [`env::cache_root`]).
    pub fn from_env() -> Self {
        Cache::new(env::cache_root(&env::process_env))
    }

    /// The cache at `root`.
    pub fn new(root: PathBuf) -> Self {
        Cache { root }
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The repo's folder (`{root}/models--org--name`).
    pub fn repo_dir(&self, repo: &Repo) -> PathBuf {
        self.root.join(repo.folder_name())
    }

    /// The commit the repo's revision resolves to offline: `refs/{revision}` when present, else the
    /// revision itself when it is a commit hash.
    pub fn commit(&self, repo: &Repo) -> Option<String> {
        match fs::read_to_string(self.repo_dir(repo).join("refs").join(&repo.revision)) {
            Ok(commit) => Some(commit),
            Err(_) => is_commit_hash(&repo.revision).then(|| repo.revision.clone()),
        }
    }

    /// The cached file (`snapshots/{commit}/{file}`) of the repo's revision, without any request;
    /// `None` when it is not there (or its symlink is dangling).
    pub fn get(&self, repo: &Repo, file: &str) -> Option<PathBuf> {
        let path = self.snapshot_path(repo, &self.commit(repo)?, file);
        path.is_file().then_some(path)
    }

    /// Whether the cache records that the hub answered 404 for this file at the revision's commit.
    pub fn is_known_missing(&self, repo: &Repo, file: &str) -> bool {
        self.commit(repo)
            .is_some_and(|commit| self.no_exist_path(repo, &commit, file).is_file())
    }

    /// Bytes held by the repo's complete blobs (what `hf cache scan` reports as its size on disk).
    pub fn repo_size(&self, repo: &Repo) -> u64 {
        let Ok(entries) = fs::read_dir(self.repo_dir(repo).join("blobs")) else {
            return 0;
        };
        entries
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().ends_with(".incomplete"))
            .filter_map(|e| e.metadata().ok())
            .filter(fs::Metadata::is_file)
            .map(|m| m.len())
            .sum()
    }

    /// `snapshots/{commit}/{file}`.
    pub fn snapshot_path(&self, repo: &Repo, commit: &str, file: &str) -> PathBuf {
        self.repo_dir(repo)
            .join("snapshots")
            .join(commit)
            .join(file)
    }

    /// `blobs/{etag}`.
    pub fn blob_path(&self, repo: &Repo, etag: &str) -> PathBuf {
        self.repo_dir(repo).join("blobs").join(etag)
    }

    /// `.no_exist/{commit}/{file}`.
    fn no_exist_path(&self, repo: &Repo, commit: &str, file: &str) -> PathBuf {
        self.repo_dir(repo)
            .join(".no_exist")
            .join(commit)
            .join(file)
    }

    /// `{root}/.locks/{repo folder}/{etag}.lock`.
    pub(crate) fn lock_path(&self, repo: &Repo, etag: &str) -> PathBuf {
        self.root
            .join(".locks")
            .join(repo.folder_name())
            .join(format!("{etag}.lock"))
    }

    /// Records `revision -> commit` in `refs/` (atomically), unless the revision is the commit itself or
    /// the ref already says so.
    pub(crate) fn write_ref(&self, repo: &Repo, commit: &str) -> Result<()> {
        if repo.revision == commit {
            return Ok(());
        }
        let path = self.repo_dir(repo).join("refs").join(&repo.revision);
        if fs::read_to_string(&path).is_ok_and(|old| old == commit) {
            return Ok(());
        }
        make_parent(&path)?;
        let tmp = temp_sibling(&path);
        fs::write(&tmp, commit).map_err(io(&tmp))?;
        fs::rename(&tmp, &path).map_err(io(&path))
    }

    /// Records that the hub answered 404 for `file` at `commit`.
    pub(crate) fn mark_missing(&self, repo: &Repo, commit: &str, file: &str) -> Result<()> {
        let path = self.no_exist_path(repo, commit, file);
        make_parent(&path)?;
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        Ok(())
    }

    /// Points `snapshots/{commit}/{file}` at `blobs/{etag}` with a relative symlink, replacing whatever
    /// was there in one rename, so that a reader never sees a half-made link.
    pub(crate) fn link_snapshot(
        &self,
        repo: &Repo,
        commit: &str,
        file: &str,
        etag: &str,
    ) -> Result<PathBuf> {
        let pointer = self.snapshot_path(repo, commit, file);
        let depth = file.split('/').count() + 1;
        let target = PathBuf::from(format!("{}blobs/{etag}", "../".repeat(depth)));
        make_parent(&pointer)?;
        if fs::read_link(&pointer).is_ok_and(|old| old == target) {
            return Ok(pointer);
        }
        let tmp = temp_sibling(&pointer);
        symlink(&target, &tmp).map_err(io(&tmp))?;
        fs::rename(&tmp, &pointer).map_err(io(&pointer))?;
        Ok(pointer)
    }

    /// Writes `CACHEDIR.TAG` at the root if it is missing, as huggingface_hub does (best effort).
    pub(crate) fn tag(&self) {
        let path = self.root.join("CACHEDIR.TAG");
        if !path.exists() {
            let _ = fs::create_dir_all(&self.root).and_then(|()| fs::write(path, CACHEDIR_TAG));
        }
    }
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(windows)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::windows::fs::symlink_file(target, link)
}

/// Creates the folder `path` will live in.
pub(crate) fn make_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) => fs::create_dir_all(dir).map_err(io(dir)),
        None => Ok(()),
    }
}

/// A name beside `path` unique to this process and moment, for write-then-rename.
pub(crate) fn temp_sibling(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.{n}.{nanos:09}.tmp", std::process::id()))
}
