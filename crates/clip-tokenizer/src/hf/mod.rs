//! open_clip's `HFTokenizer` (open_clip 3.3.0 `tokenizer.py`, over transformers 5.24's
//! `AutoTokenizer`) on Hugging Face's `tokenizers` crate, the Rust core of Python's `tokenizers`.
//!
//! A tokenizer folder holds `tokenizer.json`, read as it is, or only SentencePiece's
//! `spiece.model`, converted here as transformers' `T5Tokenizer` converts it ([`spm`]).
//! `tokenizer_config.json` and `special_tokens_map.json`, where present, name the pad and
//! separator tokens, the padding and truncation sides, and `add_bos_token`/`add_eos_token`.
//!
//! A call does what `HFTokenizer.__call__` does: clean the text ([`Clean`]), encode it with the
//! special tokens, truncate so that the row *with* its special tokens fits the context
//! (transformers' `truncation=True`, longest first), pad to the context length with the
//! tokenizer's pad id, and with `strip_sep_token` set every separator id to 0 (0, not the pad id,
//! as open_clip does).
//!
//! Unlike [`crate::Tokenizer`], the whole text is cleaned and encoded, however long it is.

pub mod spm;

use std::path::Path;

use rayon::prelude::*;
use serde_json::Value;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{PostProcessor, Tokenizer as Core, TruncationDirection};

/// Errors of a Hugging Face tokenizer.
#[derive(Debug, thiserror::Error)]
pub enum HfError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A JSON file is not what it should be.
    #[error("{path}: {message}")]
    Json {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The folder has neither `tokenizer.json` nor `spiece.model`.
    #[error("{0} has neither tokenizer.json nor spiece.model")]
    NoTokenizer(String),
    /// A SentencePiece model this crate cannot convert.
    #[error("spiece.model: {0}")]
    SentencePiece(String),
    /// An error of the `tokenizers` crate.
    #[error("tokenizers: {0}")]
    Tokenizers(String),
    /// An option open_clip's `HFTokenizer` takes that this port does not implement, or a bad value.
    #[error("tokenizer_kwargs: {0}")]
    Kwargs(String),
    /// No pad token is known (transformers refuses to pad then too).
    #[error("the tokenizer has no pad token (tokenizer_config.json names none)")]
    NoPadToken,
    /// A context too short for the special tokens.
    #[error("context length {0} is too short for this tokenizer")]
    ContextLength(usize),
}

fn core_error(err: impl std::fmt::Display) -> HfError {
    HfError::Tokenizers(err.to_string())
}

/// The text cleanup before encoding (`clean` in a model config's `tokenizer_kwargs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Clean {
    /// `whitespace` (HFTokenizer's default): ftfy, HTML unescaping, white space collapsed.
    #[default]
    Whitespace,
    /// `lower`: as `whitespace`, then lower case (what OpenAI's tokenizer does).
    Lower,
    /// `canonicalize` (SigLIP's): as `whitespace`, '_' as a space, ASCII punctuation removed,
    /// lower case.
    Canonicalize,
}

impl Clean {
    /// The cleaned text.
    pub fn apply(self, text: &str) -> String {
        match self {
            Clean::Whitespace => crate::clean::clean_whitespace(text),
            Clean::Lower => crate::clean::clean(text),
            Clean::Canonicalize => crate::clean::clean_canonicalize(text),
        }
    }
}

impl std::str::FromStr for Clean {
    type Err = HfError;
    fn from_str(s: &str) -> Result<Self, HfError> {
        match s {
            "whitespace" => Ok(Clean::Whitespace),
            "lower" => Ok(Clean::Lower),
            "canonicalize" => Ok(Clean::Canonicalize),
            other => Err(HfError::Kwargs(format!("unknown clean function {other:?} (whitespace, lower, canonicalize)"))),
        }
    }
}

/// What a model config's `tokenizer_kwargs` may set, with HFTokenizer's defaults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HfOptions {
    /// The cleanup.
    pub clean: Clean,
    /// Replace separator ids by 0 (CLIPA's BERT tokenizer).
    pub strip_sep_token: bool,
}

impl HfOptions {
    /// From `text_cfg.tokenizer_kwargs` (absent or null: the defaults). Keys open_clip hands on to
    /// transformers (`language`, `tokenizer_mode`, `AutoTokenizer` arguments) are refused rather
    /// than ignored.
    pub fn from_kwargs(kwargs: Option<&Value>) -> Result<Self, HfError> {
        let mut options = HfOptions::default();
        let Some(kwargs) = kwargs.filter(|v| !v.is_null()) else { return Ok(options) };
        let map = kwargs.as_object().ok_or_else(|| HfError::Kwargs(format!("expected an object, got {kwargs}")))?;
        for (key, value) in map {
            match (key.as_str(), value) {
                ("clean", Value::String(s)) => options.clean = s.parse()?,
                ("strip_sep_token", Value::Bool(b)) => options.strip_sep_token = *b,
                (key @ ("clean" | "strip_sep_token"), value) => {
                    return Err(HfError::Kwargs(format!("{key}: unexpected value {value}")));
                }
                (key, _) => return Err(HfError::Kwargs(format!("{key:?} is not supported (only clean and strip_sep_token)"))),
            }
        }
        Ok(options)
    }
}

/// A Hugging Face tokenizer framed as open_clip's `HFTokenizer` frames it.
pub struct HfTokenizer {
    core: Core,
    options: HfOptions,
    pad_id: u32,
    sep_id: Option<u32>,
    pad_left: bool,
    truncate_left: bool,
}

impl std::fmt::Debug for HfTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HfTokenizer").field("options", &self.options).field("pad_id", &self.pad_id).field("sep_id", &self.sep_id).finish()
    }
}

/// A special token's text in a config: a string or an `AddedToken` object.
fn token_text(value: &Value) -> Option<&str> {
    value.as_str().or_else(|| value.get("content").and_then(Value::as_str))
}

fn read_json(path: &Path) -> Result<Option<Value>, HfError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|err| HfError::Json { path: path.display().to_string(), message: err.to_string() }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(HfError::Io { path: path.display().to_string(), source }),
    }
}

/// Default special tokens of the tokenizer classes open_clip's configs name, as transformers'
/// classes define them: (class without `Fast`, token name, text).
const CLASS_DEFAULTS: &[(&str, &str, &str)] = &[
    ("T5Tokenizer", "pad_token", "<pad>"),
    ("T5Tokenizer", "eos_token", "</s>"),
    ("GemmaTokenizer", "pad_token", "<pad>"),
    ("GemmaTokenizer", "eos_token", "<eos>"),
    ("GemmaTokenizer", "bos_token", "<bos>"),
    ("BertTokenizer", "pad_token", "[PAD]"),
    ("BertTokenizer", "sep_token", "[SEP]"),
    ("XLMRobertaTokenizer", "pad_token", "<pad>"),
    ("XLMRobertaTokenizer", "sep_token", "</s>"),
    ("RobertaTokenizer", "pad_token", "<pad>"),
    ("RobertaTokenizer", "sep_token", "</s>"),
    ("NllbTokenizer", "pad_token", "<pad>"),
    ("NllbTokenizer", "sep_token", "</s>"),
];

/// `tokenizer_config.json` merged over `special_tokens_map.json`.
struct Config {
    config: Value,
    special: Value,
    class: String,
}

impl Config {
    fn read(dir: &Path) -> Result<Self, HfError> {
        let config = read_json(&dir.join("tokenizer_config.json"))?.unwrap_or(Value::Null);
        let special = read_json(&dir.join("special_tokens_map.json"))?.unwrap_or(Value::Null);
        let class = config.get("tokenizer_class").and_then(Value::as_str).unwrap_or("").trim_end_matches("Fast").to_owned();
        Ok(Config { config, special, class })
    }

    /// A special token's text: the config, the special-tokens map, then the class default.
    fn token(&self, name: &str) -> Option<&str> {
        if let Some(value) = self.config.get(name) {
            // An explicit null removes the class default.
            return token_text(value);
        }
        self.special.get(name).and_then(token_text).or_else(|| {
            CLASS_DEFAULTS.iter().find(|(class, n, _)| *class == self.class && *n == name).map(|(_, _, text)| *text)
        })
    }

    fn side_is_left(&self, key: &str) -> bool {
        self.config.get(key).and_then(Value::as_str) == Some("left")
    }
}

impl HfTokenizer {
    /// The tokenizer in `dir`: `tokenizer.json` if there is one, else `spiece.model`.
    pub fn from_dir(dir: &Path, options: HfOptions) -> Result<Self, HfError> {
        let config = Config::read(dir)?;
        let json = dir.join("tokenizer.json");
        let spiece = dir.join("spiece.model");
        let core = if json.is_file() {
            let mut core = Core::from_file(&json).map_err(|err| HfError::Json { path: json.display().to_string(), message: err.to_string() })?;
            apply_bos_eos(&mut core, &config)?;
            core
        } else if spiece.is_file() {
            let bytes = std::fs::read(&spiece).map_err(|source| HfError::Io { path: spiece.display().to_string(), source })?;
            if !matches!(config.class.as_str(), "" | "T5Tokenizer") {
                return Err(HfError::SentencePiece(format!(
                    "only T5Tokenizer's conversion is implemented, tokenizer_config.json names {}",
                    config.class
                )));
            }
            let extra_ids = config.config.get("extra_ids").and_then(Value::as_u64).unwrap_or(100) as usize;
            spm::t5_tokenizer(&bytes, extra_ids)?
        } else {
            return Err(HfError::NoTokenizer(dir.display().to_string()));
        };
        Self::new(core, &config, options)
    }

    fn new(mut core: Core, config: &Config, options: HfOptions) -> Result<Self, HfError> {
        let id = |name: &str| config.token(name).and_then(|t| core.token_to_id(t));
        let pad_id = id("pad_token").ok_or(HfError::NoPadToken)?;
        let sep_id = id("sep_token");
        // Padding and truncation are ours, per call; none baked into the file may interfere.
        core.with_padding(None);
        core.with_truncation(None).map_err(core_error)?;
        Ok(HfTokenizer {
            core,
            options,
            pad_id,
            sep_id,
            pad_left: config.side_is_left("padding_side"),
            truncate_left: config.side_is_left("truncation_side"),
        })
    }

    /// The pad id rows are filled with.
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// The separator id, if the tokenizer has a separator token.
    pub fn sep_id(&self) -> Option<u32> {
        self.sep_id
    }

    /// The options it was built with.
    pub fn options(&self) -> HfOptions {
        self.options
    }

    /// The underlying `tokenizers` tokenizer (no padding or truncation set).
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// One row of `context_length` ids, as open_clip's `HFTokenizer([text], context_length)[0]`.
    pub fn tokenize(&self, text: &str, context_length: usize) -> Result<Vec<u32>, HfError> {
        let cleaned = self.options.clean.apply(text);
        let mut encoding = self.core.encode(cleaned.as_str(), false).map_err(core_error)?;
        let specials = self.core.get_post_processor().map_or(0, |p| p.added_tokens(false));
        if specials > context_length {
            return Err(HfError::ContextLength(context_length));
        }
        // transformers' truncation: the text keeps what fits beside the special tokens.
        let direction = if self.truncate_left { TruncationDirection::Left } else { TruncationDirection::Right };
        encoding.truncate(context_length - specials, 0, direction);
        let encoding = self.core.post_process(encoding, None, true).map_err(core_error)?;
        let mut ids = encoding.get_ids().to_vec();
        ids.truncate(context_length);
        if self.options.strip_sep_token
            && let Some(sep) = self.sep_id
        {
            ids.iter_mut().filter(|id| **id == sep).for_each(|id| *id = 0);
        }
        let pad = context_length - ids.len();
        if self.pad_left {
            ids.splice(0..0, std::iter::repeat_n(self.pad_id, pad));
        } else {
            ids.resize(context_length, self.pad_id);
        }
        Ok(ids)
    }

    /// [`HfTokenizer::tokenize`] for many texts on the rayon pool: `texts.len() × context_length`
    /// ids, row-major, in input order.
    pub fn tokenize_batch<S: AsRef<str> + Sync>(&self, texts: &[S], context_length: usize) -> Result<Vec<u32>, HfError> {
        let rows: Vec<Vec<u32>> = texts.par_iter().map(|t| self.tokenize(t.as_ref(), context_length)).collect::<Result<_, _>>()?;
        Ok(rows.concat())
    }
}

/// `add_bos_token`/`add_eos_token` named in `tokenizer_config.json` make transformers rebuild the
/// post-processor as `[bos] $A [eos]` (`update_post_processor`); T5's keeps its own.
fn apply_bos_eos(core: &mut Core, config: &Config) -> Result<(), HfError> {
    let flag = |key: &str| config.config.get(key).map(|v| v.as_bool().unwrap_or(false));
    let (bos, eos) = (flag("add_bos_token"), flag("add_eos_token"));
    if (bos.is_none() && eos.is_none()) || config.class == "T5Tokenizer" {
        return Ok(());
    }
    let mut single = Vec::new();
    let mut special = Vec::new();
    let mut push = |name: &str, at_start: bool, single: &mut Vec<String>| -> Result<(), HfError> {
        let Some(token) = config.token(name) else { return Ok(()) };
        let id = core.token_to_id(token).ok_or_else(|| HfError::Tokenizers(format!("{name} {token:?} is not in the vocabulary")))?;
        if at_start { single.insert(0, token.to_owned()) } else { single.push(token.to_owned()) }
        special.push((token.to_owned(), id));
        Ok(())
    };
    single.push("$A".to_owned());
    if bos == Some(true) {
        push("bos_token", true, &mut single)?;
    }
    if eos == Some(true) {
        push("eos_token", false, &mut single)?;
    }
    let template = TemplateProcessing::builder()
        .try_single(single.join(" "))
        .map_err(core_error)?
        .special_tokens(special)
        .build()
        .map_err(core_error)?;
    core.with_post_processor(Some(template));
    Ok(())
}
