//! `clip tokenize`: UTF-8 lines on stdin, one JSON array of ids per line on stdout, in order.
//!
//! The tokenizer is the model's, as open_clip's `get_tokenizer` picks it: a model config whose
//! `text_cfg.hf_tokenizer_name` names a Hugging Face tokenizer (a local folder, or a hub repo
//! whose `tokenizer.json`, else `spiece.model`, plus `tokenizer_config.json` and
//! `special_tokens_map.json`, come through the hub cache) gets [`HfTokenizer`] with the config's
//! `tokenizer_kwargs`; any other model, or none, OpenAI's BPE. The context length is the flag's,
//! else the config's `text_cfg.context_length`, else 77.

use std::io::{self, BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clip_hub::{Hub, Repo};
use clip_pretrained::ModelName;
use clip_tokenizer::Tokenizer;
use clip_tokenizer::hf::{HfOptions, HfTokenizer};
use serde_json::Value;

use crate::hub::{Downloads, hub};

/// Which model's tokenizer `clip tokenize` uses.
#[derive(Debug, Default)]
pub(crate) struct Choice {
    /// `--model`: a built-in name, `hf-hub:ORG/NAME` or `local-dir:DIR`.
    pub(crate) model: Option<String>,
    /// `--model-config`: an open_clip model-config JSON file.
    pub(crate) model_config: Option<PathBuf>,
    /// `--offline`: the hub cache only.
    pub(crate) offline: bool,
}

/// The tokenizer a model uses.
enum Chosen {
    Clip(&'static Tokenizer),
    Hf(Box<HfTokenizer>),
}

impl Chosen {
    fn tokenize_batch(&self, lines: &[String], context_length: usize) -> Result<Vec<u32>> {
        Ok(match self {
            Chosen::Clip(t) => t.tokenize_batch(lines, context_length)?,
            Chosen::Hf(t) => t.tokenize_batch(lines, context_length)?,
        })
    }
}

/// A model config's `text_cfg` (open_clip JSON), and the folder a `local-dir:` model names.
fn text_cfg(choice: &Choice, hub: &Hub) -> Result<(Value, Option<PathBuf>)> {
    let read = |path: &Path| -> Result<Value> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    };
    let text_of = |config: &Value| config.get("text_cfg").cloned().unwrap_or(Value::Null);
    match (&choice.model, &choice.model_config) {
        (None, Some(path)) => Ok((text_of(&read(path)?), None)),
        (Some(model), None) => match ModelName::parse(model) {
            ModelName::LocalDir(dir) => {
                let config = read(&dir.join("open_clip_config.json"))?;
                Ok((text_of(&config["model_cfg"]), Some(dir)))
            }
            ModelName::HfHub(id) => {
                let mut downloads = Downloads::new("clip tokenize");
                let path = hub
                    .get(&Repo::model(&id), "open_clip_config.json", &mut |p| downloads.event(p))
                    .with_context(|| format!("fetching open_clip_config.json of {id}"))?;
                Ok((text_of(&read(&path)?["model_cfg"]), None))
            }
            ModelName::Builtin(name) => {
                let config = clip_model::ClipConfig::named(&name)?;
                let json: Value = serde_json::from_str(&config.to_json()).context("a preset's JSON")?;
                Ok((text_of(&json), None))
            }
        },
        _ => bail!("give at most one of --model and --model-config"),
    }
}

/// The folder holding tokenizer `name`: a local folder as it is, else the hub repo's tokenizer
/// files in the cache (fetched unless offline). Nothing else of the repo is fetched.
fn tokenizer_dir(name: &str, hub: &Hub) -> Result<PathBuf> {
    let local = Path::new(name);
    if local.is_dir() {
        return Ok(local.to_owned());
    }
    let repo = Repo::model(name);
    let mut downloads = Downloads::new("clip tokenize");
    let mut get = |file: &str| hub.try_get(&repo, file, &mut |p| downloads.event(p)).with_context(|| format!("fetching {file} of {name}"));
    let main = match get("tokenizer.json")? {
        Some(path) => path,
        None => get("spiece.model")?.with_context(|| format!("{name} has neither tokenizer.json nor spiece.model"))?,
    };
    for optional in ["tokenizer_config.json", "special_tokens_map.json"] {
        get(optional)?;
    }
    Ok(main.parent().context("a cached file has a folder")?.to_owned())
}

/// The tokenizer and context length the model calls for (open_clip's `get_tokenizer`).
fn choose(choice: &Choice, context_length: Option<usize>) -> Result<(Chosen, usize)> {
    if choice.model.is_none() && choice.model_config.is_none() {
        return Ok((Chosen::Clip(Tokenizer::get()), context_length.unwrap_or(clip_tokenizer::DEFAULT_CONTEXT_LENGTH)));
    }
    let hub = hub(choice.offline);
    let (text, local_dir) = text_cfg(choice, &hub)?;
    let configured = text.get("context_length").and_then(Value::as_u64).map(|n| n as usize);
    let context_length = context_length.or(configured).unwrap_or(clip_tokenizer::DEFAULT_CONTEXT_LENGTH);
    let kwargs = text.get("tokenizer_kwargs").filter(|v| !v.is_null());
    match text.get("hf_tokenizer_name").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        Some(name) => {
            // open_clip reads a local-dir: model's tokenizer from that folder, whatever it names.
            let dir = match local_dir {
                Some(dir) => dir,
                None => tokenizer_dir(name, &hub)?,
            };
            let options = HfOptions::from_kwargs(kwargs)?;
            let tokenizer = HfTokenizer::from_dir(&dir, options).with_context(|| format!("loading the tokenizer in {}", dir.display()))?;
            Ok((Chosen::Hf(Box::new(tokenizer)), context_length))
        }
        None => {
            if kwargs.and_then(Value::as_object).is_some_and(|m| !m.is_empty()) {
                bail!("tokenizer_kwargs for OpenAI's tokenizer are not supported (it always cleans with `lower`)");
            }
            Ok((Chosen::Clip(Tokenizer::get()), context_length))
        }
    }
}

/// Lines tokenized together on the rayon pool; output stays in input order.
const CHUNK: usize = 4096;

/// `stats`: report lines per second on stderr, timed from after the vocabulary is loaded.
pub(crate) fn run(choice: &Choice, context_length: Option<usize>, stats: bool) -> Result<()> {
    let (tokenizer, context_length) = choose(choice, context_length)?;
    let start = Instant::now();
    let stdin = io::stdin().lock();
    let mut out = BufWriter::new(io::stdout().lock());
    let mut lines: Vec<String> = Vec::with_capacity(CHUNK);
    let mut line_number = 0usize;
    let mut replaced = 0usize;
    let mut reader = stdin;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let read = reader.read_until(b'\n', &mut buf).context("reading stdin")?;
        if read > 0 {
            line_number += 1;
            if buf.last() == Some(&b'\n') {
                buf.pop();
            }
            let text = match String::from_utf8(std::mem::take(&mut buf)) {
                Ok(text) => text,
                Err(err) => {
                    replaced += 1;
                    eprintln!("clip tokenize: warning: line {line_number} is not valid UTF-8; invalid bytes replaced by U+FFFD");
                    String::from_utf8_lossy(err.as_bytes()).into_owned()
                }
            };
            lines.push(text);
        }
        if lines.len() == CHUNK || (read == 0 && !lines.is_empty()) {
            let ids = tokenizer.tokenize_batch(&lines, context_length)?;
            for row in ids.chunks(context_length) {
                write_row(&mut out, row)?;
            }
            lines.clear();
        }
        if read == 0 {
            break;
        }
    }
    out.flush().context("writing stdout")?;
    if stats {
        let seconds = start.elapsed().as_secs_f64();
        eprintln!(
            "clip tokenize: {line_number} lines in {seconds:.3} s ({:.0} lines/s, {} rayon threads), start-up excluded",
            line_number as f64 / seconds,
            rayon::current_num_threads()
        );
    }
    if replaced > 0 {
        eprintln!("clip tokenize: {replaced} of {line_number} lines had invalid UTF-8");
    }
    Ok(())
}

fn write_row(out: &mut impl Write, row: &[u32]) -> io::Result<()> {
    out.write_all(b"[")?;
    for (i, id) in row.iter().enumerate() {
        if i > 0 {
            out.write_all(b", ")?;
        }
        write!(out, "{id}")?;
    }
    out.write_all(b"]\n")
}
