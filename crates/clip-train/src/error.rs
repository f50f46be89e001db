//! The crate's error type.

/// Errors from training.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is malformed; the message names the key (and line, for files).
    #[error("config: {0}")]
    Config(String),
    /// A file of the run folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A checkpoint is missing, incomplete or does not match the configuration.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// Too many consecutive steps had a non-finite loss or gradient.
    #[error(
        "{count} consecutive steps had a non-finite loss or gradient (last at step {step}); stopping. \\
         The last good checkpoint is intact: lower optim.lr or raise optim.warmup, then --resume latest"
    )]
    Diverged {
        /// Consecutive bad steps.
        count: u32,
        /// The last of them.
        step: u64,
    },
    /// From the model crate.
    #[error(transparent)]
    Model(#[from] clip_model::Error),
    /// From the data crate.
    #[error(transparent)]
    Data(#[from] clip_data::Error),
    /// From the collectives.
    #[error(transparent)]
    Dist(#[from] clip_dist::Error),
    /// From evaluation.
    #[error(transparent)]
    Eval(#[from] clip_eval::Error),
    /// From tensor glue.
    #[error(transparent)]
    Tensor(#[from] clip_tensor::Error),
    /// From libtorch.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

impl Error {
    pub(crate) fn io(path: impl Into<std::path::PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
