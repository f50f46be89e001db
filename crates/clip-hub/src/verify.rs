//! Checking downloaded bytes against what the hub advertised. An LFS etag is the file's SHA-256; the etag
//! of a file kept in git is its git blob id, `sha1("blob {len}\0" + bytes)`, cheap enough to check too,
//! so corruption of small files (configs, tokenizers) is caught as well. huggingface_hub checks neither.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result, io};

/// What the bytes must hash to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Expected {
    /// A SHA-256, hex.
    Sha256(String),
    /// A git blob id (SHA-1 of the git object), hex.
    GitBlob(String),
    /// An etag of neither form (some mirrors): nothing to check but the size.
    Unknown,
}

impl Expected {
    /// What a hub etag promises: 64 hex digits are a SHA-256, 40 a git blob id.
    pub(crate) fn from_etag(etag: &str) -> Self {
        let hex = etag.bytes().all(|b| b.is_ascii_hexdigit());
        match etag.len() {
            64 if hex => Expected::Sha256(etag.to_ascii_lowercase()),
            40 if hex => Expected::GitBlob(etag.to_ascii_lowercase()),
            _ => Expected::Unknown,
        }
    }
}

/// Hex of a digest.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Feeds the file at `path` to `update`.
fn read_all(path: &Path, update: &mut dyn FnMut(&[u8])) -> Result<()> {
    let mut file = File::open(path).map_err(io(path))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            return Ok(());
        }
        update(&buf[..n]);
    }
}

/// The SHA-256 of a file, hex.
pub(crate) fn sha256_file(path: &Path) -> Result<String> {
    let mut hasher = Sha256::new();
    read_all(path, &mut |b| hasher.update(b))?;
    Ok(hex(&hasher.finalize()))
}

/// The git blob id of a file, hex.
fn git_blob_file(path: &Path) -> Result<String> {
    let len = std::fs::metadata(path).map_err(io(path))?.len();
    let mut hasher = Sha1::new();
    hasher.update(format!("blob {len}\0").as_bytes());
    read_all(path, &mut |b| hasher.update(b))?;
    Ok(hex(&hasher.finalize()))
}

/// Checks the file at `path` (named `label` in errors) against `expected`.
pub(crate) fn verify(path: &Path, expected: &Expected, label: &str) -> Result<()> {
    let (algorithm, want, actual) = match expected {
        Expected::Sha256(want) => ("sha256", want, sha256_file(path)?),
        Expected::GitBlob(want) => ("git blob sha1", want, git_blob_file(path)?),
        Expected::Unknown => return Ok(()),
    };
    if &actual == want {
        Ok(())
    } else {
        Err(Error::Checksum {
            file: label.to_owned(),
            algorithm,
            expected: want.clone(),
            actual,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_blob_id_matches_git() {
        // `printf 'hello\n' | git hash-object --stdin`
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello\n").unwrap();
        assert_eq!(
            git_blob_file(&path).unwrap(),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
        assert_eq!(
            sha256_file(&path).unwrap(),
            "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
        );
        assert_eq!(
            Expected::from_etag("ce013625030ba8dba906f756967f9e9ca394464a"),
            Expected::GitBlob("ce013625030ba8dba906f756967f9e9ca394464a".into())
        );
        assert_eq!(Expected::from_etag("abc-1"), Expected::Unknown);
    }
}
