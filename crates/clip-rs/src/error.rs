//! The crate's error type.

use std::path::PathBuf;

/// What can go wrong loading a model or running it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model name, tag, config or tokenizer could not be resolved (or fetched through the hub).
    #[error(transparent)]
    Pretrained(Box<clip_pretrained::Error>),
    /// A model config the model crate refuses, or weights that do not fit it.
    #[error(transparent)]
    Model(Box<clip_model::Error>),
    /// Weights that could not be loaded into the model.
    #[error("loading {path}: {source}")]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// What the loader said.
        source: Box<clip_model::Error>,
    },
    /// An image file that could not be read or decoded.
    #[error("{path}: {source}")]
    Image {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        source: Box<clip_data::Error>,
    },
    /// A file that could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Tokenising, or a tokenizer that does not belong to the model's text tower.
    #[error(transparent)]
    Eval(Box<clip_eval::Error>),
    /// Autocast could not be set up for the requested precision on this device.
    #[error(transparent)]
    Tensor(#[from] clip_tensor::Error),
    /// A tensor operation failed inside libtorch.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
    /// Arguments that cannot work, with what to give instead.
    #[error("{0}")]
    Input(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<clip_pretrained::Error> for Error {
    fn from(e: clip_pretrained::Error) -> Self {
        Self::Pretrained(Box::new(e))
    }
}

impl From<clip_model::Error> for Error {
    fn from(e: clip_model::Error) -> Self {
        Self::Model(Box::new(e))
    }
}

impl From<clip_eval::Error> for Error {
    fn from(e: clip_eval::Error) -> Self {
        Self::Eval(Box::new(e))
    }
}
