//! The crate's error type.

use std::path::PathBuf;

/// Errors from decoding, sources and the loader.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not an image this crate can decode.
    #[error("cannot decode image: {0}")]
    Decode(String),
    /// A decoder panicked on hostile input; the panic was contained.
    #[error("the image decoder panicked on this file")]
    DecoderPanic,
    /// The image has more pixels than allowed (a decompression bomb, or simply too large).
    #[error("image of {width}x{height} pixels exceeds the limit of {limit} pixels")]
    TooLarge {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// Pixel limit.
        limit: u64,
    },
    /// A file or folder could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// What was being read.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A preprocessing configuration (open_clip's `preprocess_cfg`) that cannot be used.
    #[error("{0}")]
    Preprocess(String),
    /// A source specification or its index (CSV header, shard pattern, class folders) is unusable.
    #[error("{0}")]
    Source(String),
    /// More samples were skipped than the configured limit allows.
    #[error(
        "{skipped} of {consumed} samples skipped ({summary}), more than the allowed fraction {limit}; \
         the data is damaged or the source is wrong (raise data.max_skip_fraction to go on anyway)"
    )]
    TooManySkips {
        /// Samples skipped so far this epoch.
        skipped: u64,
        /// Samples read so far this epoch.
        consumed: u64,
        /// Counts by reason.
        summary: String,
        /// The allowed fraction.
        limit: f64,
    },
    /// The loader's worker threads stopped without finishing (a bug; reported, not hung on).
    #[error("the data loader stopped unexpectedly: {0}")]
    Loader(String),
}

impl Error {
    /// An I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
