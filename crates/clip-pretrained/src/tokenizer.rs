//! The tokenizer a model reads, as open_clip's `get_tokenizer` picks it (open_clip 3.3.0
//! `factory.py`, `tokenizer.py`): a text config naming `hf_tokenizer_name` gets that Hugging Face
//! tokenizer with the config's `tokenizer_kwargs`; any other, OpenAI's BPE.
//!
//! The name is a local folder, or a hub repo whose `tokenizer.json` (else `spiece.model`), with
//! `tokenizer_config.json` and `special_tokens_map.json` where present, come through the caller's
//! hub, so an offline hub answers from the cache (open_clip goes online regardless, #968). A
//! `local-dir:` model reads its tokenizer from its own folder, whatever the config names, as
//! open_clip does.

use std::path::PathBuf;

use clip_hub::{Hub, Progress, Repo};
use clip_model::TextConfig;
use clip_tokenizer::TextTokenizer;
use serde_json::Value;

use crate::resolve::ModelName;
use crate::{Error, Result};

/// The tokenizer files fetched from a repo, besides the tokenizer itself (each optional).
const TOKENIZER_EXTRAS: &[&str] = &["tokenizer_config.json", "special_tokens_map.json"];

/// The tokenizer for `model` (what `--model` says) whose text tower is `text`.
pub fn tokenizer(model: &str, text: &TextConfig, hub: &Hub, progress: &mut dyn FnMut(Progress)) -> Result<TextTokenizer> {
    choose_tokenizer(&ModelName::parse(model), text.hf_tokenizer_name.as_deref(), text.tokenizer_kwargs.as_ref(), hub, progress)
}

/// [`tokenizer`] from a text config's raw `hf_tokenizer_name` and `tokenizer_kwargs`, for configs
/// read as JSON (which may hold towers clip-model does not build).
pub fn choose_tokenizer(
    model: &ModelName,
    hf_tokenizer_name: Option<&str>,
    kwargs: Option<&Value>,
    hub: &Hub,
    progress: &mut dyn FnMut(Progress),
) -> Result<TextTokenizer> {
    let kwargs = kwargs.filter(|v| !v.is_null());
    let Some(name) = hf_tokenizer_name.filter(|n| !n.is_empty()) else {
        if kwargs.and_then(Value::as_object).is_some_and(|m| !m.is_empty()) {
            return Err(Error::Tokenizer("tokenizer_kwargs for OpenAI's tokenizer are not supported (it always cleans with `lower`)".into()));
        }
        return Ok(TextTokenizer::OpenAi);
    };
    let dir = match model {
        ModelName::LocalDir(dir) => dir.clone(),
        _ => tokenizer_dir(name, hub, progress)?,
    };
    TextTokenizer::hf_dir(&dir, kwargs).map_err(|e| Error::Tokenizer(format!("the tokenizer in {}: {e}", dir.display())))
}

/// The folder holding tokenizer `name`: a local folder as it is, else the hub repo's tokenizer
/// files in the cache (fetched unless the hub is offline). Nothing else of the repo is fetched.
pub fn tokenizer_dir(name: &str, hub: &Hub, progress: &mut dyn FnMut(Progress)) -> Result<PathBuf> {
    let local = std::path::Path::new(name);
    if local.is_dir() {
        return Ok(local.to_owned());
    }
    let repo = Repo::model(name);
    let main = match hub.try_get(&repo, "tokenizer.json", progress)? {
        Some(path) => path,
        None => hub
            .try_get(&repo, "spiece.model", progress)?
            .ok_or_else(|| Error::Tokenizer(format!("hub repo {name} has neither tokenizer.json nor spiece.model")))?,
    };
    for extra in TOKENIZER_EXTRAS {
        hub.try_get(&repo, extra, progress)?;
    }
    Ok(main.parent().expect("a cached file lies in a snapshot folder").to_owned())
}
