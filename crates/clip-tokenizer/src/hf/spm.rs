//! SentencePiece `.model` files to a `tokenizers` tokenizer, as transformers 5.24 builds
//! `T5Tokenizer` from `spiece.model` (`SentencePieceExtractor` + `T5Converter.convert_from_spm` +
//! `T5Tokenizer.__init__`):
//! - model: Unigram over the pieces and scores in file order, no byte fallback, `unk_id` 2 whatever
//!   the trainer spec says (`T5Tokenizer.__init__` fixes it so: T5's layout is pad, eos, unk), then `extra_ids` sentinels `<extra_id_{N-1}>` … `<extra_id_0>` at score 0;
//! - normalizer: the model's precompiled character map (SentencePiece's own normalization);
//! - pre-tokenizer: white-space split, then Metaspace (`▁`, prepended always, split);
//! - post-processor: `$A </s>`;
//! - added tokens: control pieces (special) and user-defined pieces (not special), `<pad>`,
//!   `</s>`, `<unk>` and the sentinels (special), all matched before normalization.
//!
//! The `.model` protobuf is read by a small reader of our own: only `ModelProto.pieces` (piece,
//! score, type), `trainer_spec` (`model_type`, `unk_id`) and `normalizer_spec`
//! (`precompiled_charsmap`) are needed, which does not justify a protobuf code generator.

use tokenizers::models::unigram::Unigram;
use tokenizers::normalizers::precompiled::Precompiled;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::whitespace::WhitespaceSplit;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

use super::{HfError, core_error};

/// A piece's type (`SentencePiece.Type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PieceType {
    /// 1: an ordinary piece.
    Normal,
    /// 2: the unknown piece.
    Unknown,
    /// 3: a control symbol (`</s>`, `<pad>`).
    Control,
    /// 4: a user-defined symbol, always kept whole.
    UserDefined,
    /// 5: unused.
    Unused,
    /// 6: a byte piece `<0xNN>`.
    Byte,
}

/// What this crate reads of a SentencePiece model.
#[derive(Clone, Debug)]
pub struct SpmModel {
    /// (piece, score, type) in id order.
    pub pieces: Vec<(String, f32, PieceType)>,
    /// `trainer_spec.model_type`: 1 unigram, 2 BPE, 3 word, 4 char.
    pub model_type: u64,
    /// `trainer_spec.unk_id`.
    pub unk_id: usize,
    /// `normalizer_spec.precompiled_charsmap` (empty for identity normalization).
    pub charsmap: Vec<u8>,
}

fn bad(message: &str) -> HfError {
    HfError::SentencePiece(message.to_owned())
}

/// A protobuf wire reader over one message's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
}

/// One field's value.
enum Field<'a> {
    Varint(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
    Other,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, HfError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.bytes.split_first().ok_or_else(|| bad("truncated varint"))?;
            self.bytes = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(bad("varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], HfError> {
        if n > self.bytes.len() {
            return Err(bad("field runs past the end of the file"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    /// The next (field number, value), or `None` at the end.
    fn next(&mut self) -> Result<Option<(u64, Field<'a>)>, HfError> {
        if self.bytes.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Field::Other
            }
            2 => {
                let n = usize::try_from(self.varint()?).map_err(|_| bad("length overflows"))?;
                Field::Bytes(self.take(n)?)
            }
            5 => Field::Fixed32(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"))),
            wire => return Err(bad(&format!("unsupported wire type {wire}"))),
        };
        Ok(Some((key >> 3, field)))
    }
}

impl SpmModel {
    /// Parses a `.model` file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, HfError> {
        let mut model = SpmModel { pieces: Vec::new(), model_type: 1, unk_id: 0, charsmap: Vec::new() };
        let mut top = Reader { bytes };
        while let Some((number, field)) = top.next()? {
            let Field::Bytes(body) = field else { continue };
            let mut inner = Reader { bytes: body };
            match number {
                1 => {
                    let (mut piece, mut score, mut kind) = (String::new(), 0.0f32, 1u64);
                    while let Some((n, f)) = inner.next()? {
                        match (n, f) {
                            (1, Field::Bytes(b)) => piece = String::from_utf8(b.to_vec()).map_err(|_| bad("a piece is not UTF-8"))?,
                            (2, Field::Fixed32(bits)) => score = f32::from_bits(bits),
                            (3, Field::Varint(v)) => kind = v,
                            _ => {}
                        }
                    }
                    let kind = match kind {
                        1 => PieceType::Normal,
                        2 => PieceType::Unknown,
                        3 => PieceType::Control,
                        4 => PieceType::UserDefined,
                        5 => PieceType::Unused,
                        6 => PieceType::Byte,
                        other => return Err(bad(&format!("piece type {other}"))),
                    };
                    model.pieces.push((piece, score, kind));
                }
                2 => {
                    while let Some((n, f)) = inner.next()? {
                        match (n, f) {
                            (3, Field::Varint(v)) => model.model_type = v,
                            (40, Field::Varint(v)) => model.unk_id = v as usize,
                            _ => {}
                        }
                    }
                }
                3 => {
                    while let Some((n, f)) = inner.next()? {
                        if let (2, Field::Bytes(b)) = (n, f) {
                            model.charsmap = b.to_vec();
                        }
                    }
                }
                _ => {}
            }
        }
        if model.pieces.is_empty() {
            return Err(bad("no pieces: not a SentencePiece model"));
        }
        Ok(model)
    }
}

/// The unknown id `T5Tokenizer` sets, not the model's own.
const T5_UNK_ID: usize = 2;

/// transformers' `T5Tokenizer` built from a `spiece.model`'s bytes, with `extra_ids` sentinels.
pub fn t5_tokenizer(bytes: &[u8], extra_ids: usize) -> Result<Tokenizer, HfError> {
    let model = SpmModel::parse(bytes)?;
    if model.model_type != 1 {
        return Err(bad(&format!("model type {} is not unigram (1); only unigram models are converted", model.model_type)));
    }
    let mut vocab: Vec<(String, f64)> = model.pieces.iter().map(|(p, s, _)| (p.clone(), f64::from(*s))).collect();
    let sentinels: Vec<String> = (0..extra_ids).rev().map(|i| format!("<extra_id_{i}>")).collect();
    vocab.extend(sentinels.iter().map(|s| (s.clone(), 0.0)));
    let unigram = Unigram::from(vocab, Some(T5_UNK_ID), false).map_err(core_error)?;
    let mut tokenizer = Tokenizer::new(unigram);
    if !model.charsmap.is_empty() {
        let precompiled = Precompiled::from(&model.charsmap).map_err(|e| bad(&format!("precompiled_charsmap: {e}")))?;
        tokenizer.with_normalizer(Some(precompiled)).map_err(core_error)?;
    }
    let pre: Vec<PreTokenizerWrapper> =
        vec![WhitespaceSplit.into(), Metaspace::new('▁', PrependScheme::Always, true).into()];
    tokenizer.with_pre_tokenizer(Some(Sequence::new(pre)));
    let unnormalized = |text: &str, special: bool| AddedToken::from(text.to_owned(), special).normalized(false);
    let spm_added: Vec<AddedToken> = model
        .pieces
        .iter()
        .filter(|(_, _, t)| matches!(t, PieceType::Control | PieceType::UserDefined))
        .map(|(p, _, t)| unnormalized(p, *t == PieceType::Control))
        .collect();
    let (specials, plain): (Vec<_>, Vec<_>) = spm_added.into_iter().partition(|t| t.special);
    tokenizer.add_special_tokens(specials).map_err(core_error)?;
    tokenizer.add_tokens(plain).map_err(core_error)?;
    let defaults = ["<pad>", "</s>", "<unk>"].map(|t| unnormalized(t, true));
    let defaults: Vec<AddedToken> = defaults.into_iter().filter(|t| tokenizer.token_to_id(&t.content).is_some()).collect();
    tokenizer.add_special_tokens(defaults).map_err(core_error)?;
    tokenizer.add_special_tokens(sentinels.iter().map(|s| unnormalized(s, true))).map_err(core_error)?;
    let eos = tokenizer.token_to_id("</s>").ok_or_else(|| bad("no </s> piece"))?;
    let template = TemplateProcessing::builder()
        .try_single("$A </s>")
        .map_err(core_error)?
        .try_pair("$A </s> $B </s>")
        .map_err(core_error)?
        .special_tokens(vec![("</s>".to_owned(), eos)])
        .build()
        .map_err(core_error)?;
    tokenizer.with_post_processor(Some(template));
    Ok(tokenizer)
}
