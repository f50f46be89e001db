//! The crate's error type.

/// Errors from configs and weights.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An open_clip model-config JSON this crate cannot build (malformed, unknown key, bad value).
    #[error("model config: {0}")]
    Config(String),
    /// No preset of that name.
    #[error("unknown model {name:?}; presets: {known}")]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// The preset names.
        known: String,
    },
    /// Weight I/O or a key/shape mismatch.
    #[error(transparent)]
    Tensor(#[from] clip_tensor::Error),
    /// An error raised inside libtorch.
    #[error(transparent)]
    Tch(#[from] tch::TchError),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
