//! OpenAI CLIP's tokenizer, giving the reference's ids (open_clip's `SimpleTokenizer` with its
//! default `lower` cleaning), in pure Rust and without libtorch.
//!
//! Pipeline, as in the reference: clean the text ([`clean`]: ftfy's `fix_text`, HTML unescaping,
//! whitespace collapse, lower case), split it with the reference's pre-tokenizer pattern, map each
//! piece's UTF-8 bytes to symbols and apply byte-level BPE with the shipped
//! `bpe_simple_vocab_16e6` merges. [`Tokenizer::tokenize`] frames the ids as
//! `[SOT, ids…, EOT, 0…]`; text too long for the context is cut so the last kept position is EOT.
//!
//! Work is bounded by the context length, not the input: encoding stops once the context is full,
//! and a single enormous word is BPE'd on a prefix only.
//!
//! [`hf`] is the other tokenizer open_clip uses: Hugging Face tokenizers (`tokenizer.json`, or a
//! SentencePiece `spiece.model`) behind open_clip's `HFTokenizer` cleaning and framing;
//! [`TextTokenizer`] is either, as a model config chooses.
//!
//! # Example
//! ```
//! use clip_tokenizer::{EOT, SOT, Tokenizer};
//!
//! let row = Tokenizer::get().tokenize("A photo of a cat.", 77)?;
//! assert_eq!(row.len(), 77);
//! assert_eq!(&row[..8], &[SOT, 320, 1125, 539, 320, 2368, 269, EOT]);
//! assert_eq!(Tokenizer::get().decode(&row[1..7]), "a photo of a cat . ");
//! # Ok::<(), clip_tokenizer::Error>(())
//! ```

mod bpe;
mod clean;
pub mod hf;
mod pretokenize;
mod tables;
mod text_tokenizer;

use std::sync::LazyLock;

use rayon::prelude::*;

pub use bpe::{EOT, SOT, VOCAB_SIZE};
pub use clean::clean;
pub use text_tokenizer::TextTokenizer;

/// Padding id (the token `!`, as in the reference).
pub const PAD: u32 = 0;
/// The context length of every released CLIP model.
pub const DEFAULT_CONTEXT_LENGTH: usize = 77;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A context too short to hold the start and end tokens.
    #[error("context length {0} is too short: it must hold at least the start and end tokens (2)")]
    ContextLength(usize),
    /// A Hugging Face tokenizer failed.
    #[error(transparent)]
    Hf(Box<hf::HfError>),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The tokenizer. Cheap to share: [`Tokenizer::get`] returns the one instance, built on first use.
pub struct Tokenizer {
    vocab: bpe::Vocab,
}

static TOKENIZER: LazyLock<Tokenizer> = LazyLock::new(|| Tokenizer { vocab: bpe::Vocab::load() });

impl Tokenizer {
    /// The tokenizer with OpenAI's vocabulary (parsed once, about 50 ms).
    pub fn get() -> &'static Tokenizer {
        &TOKENIZER
    }

    /// BPE ids of `text` after cleaning, without start and end tokens.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.encode_cleaned(&clean(text), usize::MAX)
    }

    /// At most `limit` ids of already cleaned text; stops reading once it has them.
    fn encode_cleaned(&self, cleaned: &str, limit: usize) -> Vec<u32> {
        let mut ids = Vec::new();
        for piece in pretokenize::pieces(cleaned) {
            if ids.len() >= limit {
                break;
            }
            match piece {
                "<start_of_text>" => ids.push(SOT),
                "<end_of_text>" => ids.push(EOT),
                other => ids.extend(self.vocab.bpe_prefix(other.as_bytes(), limit - ids.len())),
            }
        }
        ids.truncate(limit);
        ids
    }

    /// Text of BPE ids, as the reference decodes them: each `</w>` becomes a space, invalid UTF-8
    /// becomes U+FFFD. Ids outside the vocabulary are skipped.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::with_capacity(ids.len() * 4);
        for symbol in ids.iter().filter_map(|&id| self.vocab.symbols.get(id as usize)) {
            bytes.extend(symbol.chars().filter_map(|c| self.vocab.char_to_byte.get(&c)));
        }
        String::from_utf8_lossy(&bytes).replace("</w>", " ")
    }

    /// `[SOT, ids…, EOT]` padded with [`PAD`] to `context_length`; over-long text is truncated so
    /// that the last position holds EOT (open_clip's behaviour).
    pub fn tokenize(&self, text: &str, context_length: usize) -> Result<Vec<u32>> {
        if context_length < 2 {
            return Err(Error::ContextLength(context_length));
        }
        let limit = context_length - 2;
        let mut row = Vec::with_capacity(context_length);
        row.push(SOT);
        // Clean segment by segment, and stop as soon as the part of the text that later segments
        // cannot change already fills the context: work is bounded for any input length.
        for (cleaned, complete) in clean::clean_prefixes(text) {
            let ids = if complete { self.encode_cleaned(&cleaned, limit) } else { self.encode_cleaned(clean::stable_part(&cleaned), limit) };
            if complete || ids.len() >= limit {
                row.extend(ids);
                break;
            }
        }
        row.push(EOT);
        row.resize(context_length, PAD);
        Ok(row)
    }

    /// [`Tokenizer::tokenize`] for many texts on the rayon pool: `texts.len() × context_length`
    /// ids, row-major, in input order.
    pub fn tokenize_batch<S: AsRef<str> + Sync>(&self, texts: &[S], context_length: usize) -> Result<Vec<u32>> {
        if context_length < 2 {
            return Err(Error::ContextLength(context_length));
        }
        let mut out = vec![PAD; texts.len() * context_length];
        out.par_chunks_mut(context_length).zip(texts.par_iter()).try_for_each(|(row, text)| {
            row.copy_from_slice(&self.tokenize(text.as_ref(), context_length)?);
            Ok::<(), Error>(())
        })?;
        Ok(out)
    }
}
