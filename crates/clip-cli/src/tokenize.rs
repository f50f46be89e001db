//! `clip tokenize`: UTF-8 lines on stdin, one JSON array of ids per line on stdout, in order.
//!
//! The tokenizer is the model's, as open_clip's `get_tokenizer` picks it: a model config whose
//! `text_cfg.hf_tokenizer_name` names a Hugging Face tokenizer gets it with the config's
//! `tokenizer_kwargs` (`clip_pretrained::tokenizer` fetches it); any other model, or none,
//! OpenAI's BPE. The context length is the flag's, else the config's `text_cfg.context_length`,
//! else 77.

use std::io::{self, BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clip_hub::{Hub, Repo};
use clip_pretrained::ModelName;
use clip_tokenizer::TextTokenizer;
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

/// The tokenizer and context length the model calls for (open_clip's `get_tokenizer`).
fn choose(choice: &Choice, context_length: Option<usize>) -> Result<(TextTokenizer, usize)> {
    if choice.model.is_none() && choice.model_config.is_none() {
        return Ok((TextTokenizer::OpenAi, context_length.unwrap_or(clip_tokenizer::DEFAULT_CONTEXT_LENGTH)));
    }
    let hub = hub(choice.offline);
    let (text, local_dir) = text_cfg(choice, &hub)?;
    let configured = text.get("context_length").and_then(Value::as_u64).map(|n| n as usize);
    let context_length = context_length.or(configured).unwrap_or(clip_tokenizer::DEFAULT_CONTEXT_LENGTH);
    let model = local_dir.map_or_else(|| ModelName::Builtin(String::new()), ModelName::LocalDir);
    let name = text.get("hf_tokenizer_name").and_then(Value::as_str);
    let mut downloads = Downloads::new("clip tokenize");
    let tokenizer = clip_pretrained::choose_tokenizer(&model, name, text.get("tokenizer_kwargs"), &hub, &mut |p| downloads.event(p))?;
    Ok((tokenizer, context_length))
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
