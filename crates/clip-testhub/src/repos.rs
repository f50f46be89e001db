//! The served folder: `ROOT/models/{id}/…` and `ROOT/datasets/{id}/…`, hashed on every request so that
//! a test that changes a file sees a new commit at once. The folders are small; hashing is cheap.

use std::fs;
use std::path::{Path, PathBuf};

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Files at most this size without a weight or archive extension are served as git files; the others
/// as LFS files (302 to the CDN route).
pub const LFS_THRESHOLD: u64 = 1024;

/// Extensions always served as LFS files, whatever their size.
pub const LFS_EXTENSIONS: &[&str] = &[
    "safetensors",
    "bin",
    "pt",
    "pth",
    "ckpt",
    "tar",
    "npy",
    "npz",
    "gz",
    "zip",
    "onnx",
    "msgpack",
    "h5",
];

/// One file of a repo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// The path inside the repo, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the bytes, hex (an LFS file's etag).
    pub sha256: String,
    /// Git blob id, hex (a git file's etag).
    pub git_sha1: String,
    /// Whether it is served as an LFS file.
    pub lfs: bool,
}

/// A repo as served now.
#[derive(Clone, Debug)]
pub struct RepoInfo {
    /// Its deterministic commit: SHA-1 over the sorted paths and their SHA-256.
    pub commit: String,
    /// Its files, sorted by path.
    pub files: Vec<FileInfo>,
}

/// Hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Git's blob id of `bytes`.
pub(crate) fn git_blob_id(bytes: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", bytes.len()).as_bytes());
    h.update(bytes);
    hex(&h.finalize())
}

/// Whether a file of this path and size is served as LFS.
pub fn is_lfs(path: &str, size: u64) -> bool {
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    size > LFS_THRESHOLD || LFS_EXTENSIONS.contains(&ext.as_str())
}

/// The folder of a repo key (`org/name` for a model, `datasets/org/name` for a dataset).
pub(crate) fn repo_dir(root: &Path, key: &str) -> PathBuf {
    match key.strip_prefix("datasets/") {
        Some(id) => root.join("datasets").join(id),
        None => root.join("models").join(key),
    }
}

/// Scans a repo folder; `None` when it does not exist.
pub(crate) fn scan(dir: &Path) -> Option<RepoInfo> {
    if !dir.is_dir() {
        return None;
    }
    let mut files = Vec::new();
    walk(dir, "", &mut files);
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let mut h = Sha1::new();
    for f in &files {
        h.update(format!("{}\0{}\n", f.path, f.sha256).as_bytes());
    }
    Some(RepoInfo {
        commit: hex(&h.finalize()),
        files,
    })
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<FileInfo>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let full = entry.path();
        if full.is_dir() {
            walk(&full, &path, out);
        } else if let Ok(bytes) = fs::read(&full) {
            let size = bytes.len() as u64;
            out.push(FileInfo {
                sha256: hex(&Sha256::digest(&bytes)),
                git_sha1: git_blob_id(&bytes),
                lfs: is_lfs(&path, size),
                path,
                size,
            });
        }
    }
}

/// All repo keys under the root (for the CDN route, which looks files up by SHA-256).
pub(crate) fn all_repo_dirs(root: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for (kind, prefix) in [("models", ""), ("datasets", "datasets/")] {
        let base = root.join(kind);
        let Ok(orgs) = fs::read_dir(&base) else {
            continue;
        };
        for org in orgs.flatten().filter(|e| e.path().is_dir()) {
            let org_name = org.file_name().to_string_lossy().into_owned();
            let names: Vec<_> = fs::read_dir(org.path())
                .map(|r| r.flatten().collect())
                .unwrap_or_default();
            for name in names.into_iter().filter(|e| e.path().is_dir()) {
                let key = format!("{prefix}{org_name}/{}", name.file_name().to_string_lossy());
                out.push((key, name.path()));
            }
        }
    }
    out
}
