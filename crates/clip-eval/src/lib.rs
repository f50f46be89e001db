//! Evaluation of CLIP models, by the paper's protocol:
//!
//! - [`registry`]: the paper's 27 datasets, with their class names, prompts, metric and scores;
//! - [`features`]: image features of a labelled split;
//! - [`zeroshot`]: zero-shot classifiers built from prompt ensembles (the built-in tasks too);
//! - [`linear_probe`]: L2-regularised logistic regression by L-BFGS, with the paper's λ search;
//! - [`metrics`]: accuracy, mean per-class recall, 11-point mAP, ROC AUC, recall@k;
//! - [`retrieval`]: zero-shot image-text retrieval, recall@k both ways;
//! - [`report`]: results as JSON, Markdown and CSV;
//! - [`robustness`]: ImageNet against its natural distribution shifts, averaged (§3.3);
//! - [`suite`]: which sets to evaluate and their features, for the benchmark commands.
//!
//! # Example
//! ```
//! use clip_eval::{metrics, zeroshot};
//! use tch::Tensor;
//!
//! assert_eq!(zeroshot::fill("a photo of a {}.", "cat"), "a photo of a cat.");
//! let scores = Tensor::from_slice(&[0.9f32, 0.1, 0.2, 0.8]).view([2, 2]);
//! let labels = Tensor::from_slice(&[0i64, 0]);
//! assert_eq!(metrics::topk_accuracy(&scores, &labels, 1), Some(0.5));
//! ```

pub mod features;
pub mod fetch;
pub mod linear_probe;
pub mod metrics;
pub mod registry;
pub mod report;
pub mod retrieval;
pub mod robustness;
pub mod suite;
pub mod video;
pub mod zeroshot;

/// Errors from evaluation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the data failed.
    #[error(transparent)]
    Data(#[from] clip_data::Error),
    /// Autocast could not be set up.
    #[error(transparent)]
    Tensor(#[from] clip_tensor::Error),
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
