//! The crate's error type.

use std::path::PathBuf;

/// Errors resolving a model name to a config, preprocessing and weights.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A (model, tag) pair the registry does not hold, with the names the user may have meant.
    #[error("{0} (`clip pretrained` lists every pair)")]
    NotFound(#[from] crate::registry::NotFound),
    /// An `open_clip_config.json` (or a weights file's recorded preprocessing) that cannot be used.
    #[error("{path}: {message}")]
    Config {
        /// Where it was read.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// None of a repo's or folder's weight files exists.
    #[error("no weights in {place}: looked for {tried}")]
    NoWeights {
        /// The repo or folder.
        place: String,
        /// The file names tried, in order.
        tried: String,
    },
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A model config the model crate refuses.
    #[error(transparent)]
    Model(#[from] clip_model::Error),
    /// Preprocessing settings the data crate refuses.
    #[error(transparent)]
    Data(#[from] clip_data::Error),
    /// The model's tokenizer cannot be loaded.
    #[error("{0}")]
    Tokenizer(String),
    /// Fetching from the hub failed.
    #[error(transparent)]
    Hub(#[from] clip_hub::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
