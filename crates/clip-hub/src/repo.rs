//! Which repo and revision a file comes from, and how that names URLs and cache folders.
//!
//! URLs follow `huggingface_hub.hf_hub_url`: the revision is percent-encoded whole (`refs/pr/1` becomes
//! `refs%2Fpr%2F1`), the file path segment by segment (its `/` kept), the repo id as given. Cache folder
//! names follow `repo_folder_name`: `models--org--name`, `datasets--org--name`.

use std::fmt;

use crate::error::{Error, Result};

/// The kind of repo; the hub keeps models and datasets in separate namespaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RepoType {
    /// A model repo (`https://huggingface.co/org/name`).
    Model,
    /// A dataset repo (`https://huggingface.co/datasets/org/name`).
    Dataset,
}

impl RepoType {
    /// The plural used in cache folder names (`models`, `datasets`).
    fn plural(self) -> &'static str {
        match self {
            RepoType::Model => "models",
            RepoType::Dataset => "datasets",
        }
    }
}

/// A repo at a revision.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Repo {
    /// `org/name` (or a bare `name` for the hub's oldest repos).
    pub id: String,
    /// Model or dataset.
    pub kind: RepoType,
    /// A branch, tag or 40-hex commit; `main` by default.
    pub revision: String,
}

impl Repo {
    /// A repo of the given kind at `main`.
    pub fn new(id: impl Into<String>, kind: RepoType) -> Self {
        Repo {
            id: id.into(),
            kind,
            revision: "main".to_owned(),
        }
    }

    /// A model repo at `main`.
    pub fn model(id: impl Into<String>) -> Self {
        Repo::new(id, RepoType::Model)
    }

    /// A dataset repo at `main`.
    pub fn dataset(id: impl Into<String>) -> Self {
        Repo::new(id, RepoType::Dataset)
    }

    /// The same repo at another revision.
    #[must_use]
    pub fn with_revision(self, revision: impl Into<String>) -> Self {
        Repo {
            revision: revision.into(),
            ..self
        }
    }

    /// The repo's folder in the cache: `models--org--name` or `datasets--org--name`.
    pub fn folder_name(&self) -> String {
        let mut name = self.kind.plural().to_owned();
        for part in self.id.split('/') {
            name.push_str("--");
            name.push_str(part);
        }
        name
    }

    /// The file's `resolve` URL under `endpoint` (no trailing `/`).
    pub fn url(&self, endpoint: &str, file: &str) -> String {
        let prefix = match self.kind {
            RepoType::Model => "",
            RepoType::Dataset => "datasets/",
        };
        format!(
            "{endpoint}/{prefix}{}/resolve/{}/{}",
            self.id,
            quote(&self.revision, false),
            quote(file, true)
        )
    }
}

impl fmt::Display for Repo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            RepoType::Model => "model",
            RepoType::Dataset => "dataset",
        };
        write!(f, "{kind} repo {}", self.id)
    }
}

/// Whether `s` is a full commit hash (40 lower-case hex digits), as huggingface_hub's `REGEX_COMMIT_HASH`.
pub fn is_commit_hash(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Refuses names that would escape the snapshot folder, as huggingface_hub's `_validate_relative_filename`.
pub(crate) fn validate_file(file: &str) -> Result<()> {
    let invalid = |reason| {
        Err(Error::InvalidFile {
            file: file.to_owned(),
            reason,
        })
    };
    if file.is_empty() {
        return invalid("it is empty");
    }
    if file.starts_with('/') || file.starts_with('\\') || file.as_bytes().get(1) == Some(&b':') {
        return invalid("it is an absolute path");
    }
    if file.replace('\\', "/").split('/').any(|part| part == "..") {
        return invalid("it contains `..`");
    }
    if file.split('/').any(str::is_empty) {
        return invalid("it contains an empty path segment");
    }
    Ok(())
}

/// Python's `urllib.parse.quote`: letters, digits and `_.-~` stay, `/` stays when `keep_slash`, every other
/// byte of the UTF-8 becomes `%XX`.
pub(crate) fn quote(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"_.-~".contains(&b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_folders() {
        let repo = Repo::model("org/name");
        assert_eq!(repo.folder_name(), "models--org--name");
        assert_eq!(
            repo.url("https://h", "a b/c+.txt"),
            "https://h/org/name/resolve/main/a%20b/c%2B.txt"
        );
        let ds = Repo::dataset("org/ds").with_revision("refs/pr/1");
        assert_eq!(ds.folder_name(), "datasets--org--ds");
        assert_eq!(
            ds.url("https://h", "test/0.tar"),
            "https://h/datasets/org/ds/resolve/refs%2Fpr%2F1/test/0.tar"
        );
        assert_eq!(quote("é", true), "%C3%A9");
    }

    #[test]
    fn file_names() {
        assert!(validate_file("a/b.txt").is_ok());
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "C:x", "a//b"] {
            assert!(validate_file(bad).is_err(), "{bad}");
        }
        assert!(is_commit_hash(&"a".repeat(40)));
        assert!(!is_commit_hash(&"A".repeat(40)));
        assert!(!is_commit_hash("main"));
    }
}
