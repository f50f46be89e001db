//! What a fetch reports while it runs, through a callback the caller supplies: the library never prints.

/// One progress event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// A body transfer begins (again after a [`Progress::Retry`]): `resumed_from` bytes are already on
    /// disk, `total` is the file's size when known.
    Start {
        /// The repo file or URL.
        file: String,
        /// The whole file's size.
        total: Option<u64>,
        /// Bytes kept from an earlier attempt.
        resumed_from: u64,
    },
    /// Bytes received since the previous event.
    Advance(u64),
    /// An attempt failed; the next one follows after a pause.
    Retry {
        /// The attempt that failed (1-based).
        attempt: u32,
        /// Why.
        error: String,
    },
    /// Another process is downloading the same blob; this one waits for it.
    Waiting {
        /// The repo file or URL.
        file: String,
    },
    /// The file was downloaded and verified.
    Done {
        /// The repo file or URL.
        file: String,
    },
    /// The file was already in the cache; nothing was downloaded.
    Cached {
        /// The repo file or URL.
        file: String,
    },
}
