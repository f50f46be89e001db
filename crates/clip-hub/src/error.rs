//! The one error type of the crate. Every message is a sentence that names the repo and file concerned
//! and says what to do about it, because these errors end up in front of users who only typed a model name.

use std::path::PathBuf;

use crate::repo::Repo;

/// What went wrong while resolving or fetching a file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Offline mode is on and the file is not in the cache.
    #[error(
        "{file} of the {repo} (revision {rev}) is not in the cache and offline mode is on \
         (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE): unset HF_HUB_OFFLINE, or fetch the file once while online",
        rev = repo.revision
    )]
    Offline {
        /// The repo asked for.
        repo: Repo,
        /// The file asked for.
        file: String,
    },
    /// Offline mode is on and a plain URL's file is not cached with the right hash.
    #[error(
        "{url} is not cached at {} with the expected SHA-256 and offline mode is on (HF_HUB_OFFLINE): \
         unset HF_HUB_OFFLINE, or fetch it once while online",
        path.display()
    )]
    OfflineUrl {
        /// The URL asked for.
        url: String,
        /// Where the file would be cached.
        path: PathBuf,
    },
    /// The hub does not know the repo (or it is private and no valid token was sent).
    #[error(
        "the {repo} was not found on {endpoint}: check its name (org/name) and whether it is a model or a \
         dataset; if it is private, set HF_TOKEN to a token that can read it"
    )]
    RepoNotFound {
        /// The repo asked for.
        repo: Repo,
        /// The hub asked.
        endpoint: String,
    },
    /// The repo exists but has no such file at that revision.
    #[error(
        "{file} does not exist in the {repo} at revision {rev}: check the file name",
        rev = repo.revision
    )]
    EntryNotFound {
        /// The repo asked for.
        repo: Repo,
        /// The file asked for.
        file: String,
    },
    /// The repo exists but has no such branch, tag or commit.
    #[error("the {repo} has no revision {revision}: check the branch, tag or commit name")]
    RevisionNotFound {
        /// The repo asked for.
        repo: Repo,
        /// The revision asked for.
        revision: String,
    },
    /// The repo is gated and the request carried no token with access.
    #[error(
        "the {repo} is gated: accept its terms on its hub page, then set HF_TOKEN (or log in so that \
         $HF_HOME/token exists) with a token of that account"
    )]
    Gated {
        /// The repo asked for.
        repo: Repo,
    },
    /// The hub refused the token that was sent.
    #[error(
        "the hub refused the token sent for the {repo} (HTTP {status}): set HF_TOKEN (or $HF_HOME/token) \
         to a valid token, or unset it for public repos"
    )]
    Unauthorized {
        /// The repo asked for.
        repo: Repo,
        /// The HTTP status (401 or 403).
        status: u16,
    },
    /// Any other HTTP error status.
    #[error("HTTP {status} from {url}: {message}")]
    Http {
        /// The HTTP status.
        status: u16,
        /// The URL requested.
        url: String,
        /// What the server said, if anything.
        message: String,
    },
    /// The server answered, but not like a Hugging Face hub (no commit or etag header).
    #[error(
        "{url} did not answer like a Hugging Face hub ({message}): check HF_ENDPOINT and any proxy settings"
    )]
    BadResponse {
        /// The URL requested.
        url: String,
        /// What was missing or wrong.
        message: String,
    },
    /// The downloaded bytes do not hash to the advertised etag or SHA-256.
    #[error(
        "the downloaded bytes of {file} do not match its {algorithm} {expected} (they hash to {actual}); \
         the partial download was deleted: fetch it again, and if this repeats the server or a proxy is \
         corrupting the transfer"
    )]
    Checksum {
        /// The file concerned.
        file: String,
        /// `sha256` (LFS etags, URLs) or `git blob sha1` (etags of files in git).
        algorithm: &'static str,
        /// The advertised hash.
        expected: String,
        /// The hash of the bytes received.
        actual: String,
    },
    /// The network failed on every attempt.
    #[error(
        "could not fetch {url} after {attempts} attempt(s): {message}; check the connection, \
         HTTPS_PROXY/NO_PROXY and HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use the cache only"
    )]
    Network {
        /// The URL requested.
        url: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last failure.
        message: String,
    },
    /// Another process holds the download lock and its download stopped advancing.
    #[error(
        "another process holds {} and its download has not advanced for {seconds} s: if no other download \
         is running, delete that lock file and retry",
        path.display()
    )]
    LockStalled {
        /// The lock file.
        path: PathBuf,
        /// How long nothing moved.
        seconds: u64,
    },
    /// A file name that cannot be a path inside a repo.
    #[error("{file:?} is not a valid file name inside a repo: {reason}")]
    InvalidFile {
        /// The name given.
        file: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A file system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Wraps an I/O error with the path it concerns.
pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
