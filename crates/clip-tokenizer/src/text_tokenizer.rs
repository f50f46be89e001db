//! The tokenizer a model reads, whichever it is: OpenAI's BPE or a Hugging Face tokenizer. Code
//! that turns text into a model's ids (the loader, zero-shot classifiers, `clip embed`) holds one
//! of these, so a SigLIP or CLIPA tower is fed the ids it was trained on.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use crate::hf::{HfError, HfOptions, HfTokenizer};
use crate::{Error, Result, Tokenizer};

/// OpenAI's BPE, or a shared Hugging Face tokenizer. Cheap to clone.
///
/// ```
/// use clip_tokenizer::TextTokenizer;
///
/// let rows = TextTokenizer::OpenAi.tokenize_batch(&["a cat", "a dog"], 8)?; // 2 × 8 ids, row-major
/// assert_eq!(rows.len(), 16);
/// assert_eq!((rows[0], rows[8]), (clip_tokenizer::SOT, clip_tokenizer::SOT));
/// # Ok::<(), clip_tokenizer::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub enum TextTokenizer {
    /// OpenAI's byte-level BPE ([`Tokenizer::get`]).
    #[default]
    OpenAi,
    /// A Hugging Face tokenizer framed as open_clip's `HFTokenizer`.
    Hf(Arc<HfTokenizer>),
}

impl TextTokenizer {
    /// The Hugging Face tokenizer in `dir`, with a model config's `tokenizer_kwargs`.
    pub fn hf_dir(dir: &Path, kwargs: Option<&Value>) -> Result<Self, HfError> {
        Ok(Self::Hf(Arc::new(HfTokenizer::from_dir(dir, HfOptions::from_kwargs(kwargs)?)?)))
    }

    /// One row of `context_length` ids.
    pub fn tokenize(&self, text: &str, context_length: usize) -> Result<Vec<u32>> {
        match self {
            Self::OpenAi => Tokenizer::get().tokenize(text, context_length),
            Self::Hf(t) => Ok(t.tokenize(text, context_length)?),
        }
    }

    /// `texts.len() × context_length` ids, row-major, in input order (on the rayon pool).
    pub fn tokenize_batch<S: AsRef<str> + Sync>(&self, texts: &[S], context_length: usize) -> Result<Vec<u32>> {
        match self {
            Self::OpenAi => Tokenizer::get().tokenize_batch(texts, context_length),
            Self::Hf(t) => Ok(t.tokenize_batch(texts, context_length)?),
        }
    }

    /// Ids the tokenizer can emit (added tokens included): a model whose vocabulary is smaller
    /// cannot read its output.
    pub fn vocab_size(&self) -> usize {
        match self {
            Self::OpenAi => crate::VOCAB_SIZE,
            Self::Hf(t) => t.core().get_vocab_size(true),
        }
    }

    /// What reports call it.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::OpenAi => "OpenAI BPE",
            Self::Hf(_) => "Hugging Face",
        }
    }
}

/// Two handles are equal when they are the same tokenizer (the same shared instance).
impl PartialEq for TextTokenizer {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::OpenAi, Self::OpenAi) => true,
            (Self::Hf(a), Self::Hf(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl From<HfError> for Error {
    fn from(err: HfError) -> Self {
        Error::Hf(Box::new(err))
    }
}
