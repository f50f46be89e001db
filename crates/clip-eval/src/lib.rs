//! Evaluation of CLIP models. So far: zero-shot classification ([`zeroshot`]), as the paper and
//! open_clip build it (class embeddings averaged over prompt templates), and the built-in tasks.

pub mod zeroshot;

/// Errors from evaluation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Tokenising prompts failed.
    #[error(transparent)]
    Tokenizer(#[from] clip_tokenizer::Error),
    /// A tensor operation failed.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
    /// The classification set is unusable (no classes, no templates, no samples).
    #[error("{0}")]
    Task(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
