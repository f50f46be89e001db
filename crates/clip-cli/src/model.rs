//! Building a model from the command line: `--model` (a built-in name with `--pretrained TAG`,
//! `hf-hub:ORG/NAME` or `local-dir:DIR`) or `--model-config`, and `--weights`; the preprocessing
//! comes with the weights.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clip_tokenizer::TextTokenizer;
use tch::Device;

use crate::hub::{Downloads, hub};

/// Which model, and its weights.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ModelSpec {
    /// A built-in architecture (ViT-B-32, RN50, ViT-H-14, …; `clip pretrained` lists them),
    /// `hf-hub:ORG/NAME` (a repo with open_clip_config.json) or `local-dir:DIR`.
    #[arg(long)]
    pub(crate) model: Option<String>,
    /// A pretrained tag of --model (openai, laion2b_s34b_b79k, …): fetched from the hub and cached.
    #[arg(long)]
    pub(crate) pretrained: Option<String>,
    /// An open_clip model-config JSON file.
    #[arg(long)]
    pub(crate) model_config: Option<PathBuf>,
    /// Weights: OpenAI .pt, open_clip or Hugging Face safetensors, torch.save .bin/.pt files.
    #[arg(long)]
    pub(crate) weights: Option<PathBuf>,
    /// Use the local cache only, as HF_HUB_OFFLINE=1 does.
    #[arg(long)]
    pub(crate) offline: bool,
}

/// A built model with what came with its weights (the facade's, shared with `clip_rs::Clip`).
pub(crate) type Loaded = clip_rs::LoadedModel;

impl ModelSpec {
    /// The name reports use: the model (with its tag), the config file's stem, or for a training
    /// run's `model.json` the run folder's name.
    pub(crate) fn name(&self) -> String {
        match (&self.model, &self.model_config) {
            (Some(name), _) => name.clone(),
            (None, Some(path)) => {
                let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                let run = path.parent().and_then(|p| p.file_name()).map(|s| s.to_string_lossy().into_owned());
                match run {
                    Some(run) if stem == "model" => run,
                    _ => stem,
                }
            }
            (None, None) => "model".into(),
        }
    }

    /// What the weights are called in reports: the pretrained tag, or the weights file.
    pub(crate) fn weights_name(&self, loaded: &Loaded) -> String {
        match (&self.pretrained, &self.model) {
            (Some(tag), _) => tag.clone(),
            (None, Some(model)) if clip_pretrained::ModelName::parse(model).brings_weights() => model.clone(),
            _ => loaded.weights.as_ref().map(|w| w.display().to_string()).unwrap_or_default(),
        }
    }

    /// Resolves the model (fetching what a tag or `hf-hub:` names), builds it on `device` and
    /// loads the weights; without weights only when `random_init` says so. `who` prefixes
    /// messages.
    pub(crate) fn load(&self, device: Device, random_init: bool, who: &'static str) -> Result<Loaded> {
        Self::build(self.resolve(who)?, device, random_init, who)
    }

    /// The architecture, its preprocessing and its weights file (fetching what a tag or `hf-hub:`
    /// names), before anything is built: what comes with the weights is known from here on.
    pub(crate) fn resolve(&self, who: &'static str) -> Result<clip_pretrained::Resolved> {
        let mut resolved = match (&self.model, &self.model_config) {
            (Some(model), None) => {
                let hub = hub(self.offline);
                let mut downloads = Downloads::new(who);
                clip_pretrained::resolve(model, self.pretrained.as_deref(), &hub, &mut |p| downloads.event(p)).with_context(|| match &self.pretrained {
                    Some(tag) => format!("resolving {model} --pretrained {tag}"),
                    None => format!("resolving {model}"),
                })?
            }
            (None, Some(path)) => clip_rs::resolve_config_file(path)?,
            _ => bail!("give exactly one of --model and --model-config"),
        };
        if let Some(path) = &self.weights {
            if resolved.weights.is_some() {
                bail!("--weights and the weights of --model/--pretrained both given: keep one");
            }
            clip_rs::attach_weights(&mut resolved, path)?;
        }
        Ok(resolved)
    }

    /// Builds `resolved` on `device` and loads its weights; without weights only when
    /// `random_init` says so.
    pub(crate) fn build(resolved: clip_pretrained::Resolved, device: Device, random_init: bool, who: &'static str) -> Result<Loaded> {
        let loaded = match (&resolved.weights, random_init) {
            (Some(_), _) => Loaded::load(resolved, device)?,
            (None, true) => {
                eprintln!("{who}: warning: random weights (--random-init): the embeddings mean nothing");
                Loaded::random(resolved, device)
            }
            (None, false) => bail!("no weights: give --pretrained TAG (`clip pretrained` lists them) or --weights FILE, or --random-init on purpose"),
        };
        for note in &loaded.notes {
            eprintln!("{who}: note: {note}");
        }
        Ok(loaded)
    }

    /// The tokenizer the loaded model's text tower reads (a Hugging Face tokenizer is fetched as
    /// the weights were, or read from the cache with --offline), checked against the tower.
    pub(crate) fn tokenizer(&self, loaded: &Loaded, who: &'static str) -> Result<TextTokenizer> {
        let hub = hub(self.offline);
        let mut downloads = Downloads::new(who);
        let model = self.model.as_deref().unwrap_or_default();
        let tokenizer = clip_pretrained::tokenizer(model, &loaded.model.config.text, &hub, &mut |p| downloads.event(p))?;
        clip_eval::zeroshot::check_tokenizer(&loaded.model.config.text, &tokenizer)?;
        Ok(tokenizer)
    }
}
