//! Building a model from the command line's `--model` / `--model-config` and `--weights`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clip_model::{ClipConfig, ClipModel, WeightsFormat, weights};
use tch::Device;
use tch::nn::VarStore;

/// Which model, and its weights.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ModelSpec {
    /// A preset: RN50, RN101, RN50x4, RN50x16, RN50x64, ViT-B-32, ViT-B-16, ViT-L-14, ViT-L-14-336 (and -quickgelu).
    #[arg(long)]
    pub(crate) model: Option<String>,
    /// An open_clip model-config JSON file.
    #[arg(long)]
    pub(crate) model_config: Option<PathBuf>,
    /// Weights: OpenAI .pt, open_clip or Hugging Face safetensors.
    #[arg(long)]
    pub(crate) weights: Option<PathBuf>,
}

impl ModelSpec {
    /// The name reports use: the preset, the config file's stem, or for a training run's
    /// `model.json` the run folder's name.
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

    /// Builds the model on `device` and loads the weights; without weights only when
    /// `random_init` says so. `who` prefixes warnings.
    pub(crate) fn build(&self, device: Device, random_init: bool, who: &str) -> Result<(VarStore, ClipModel)> {
        let format = self.weights.as_deref().map(weights::detect_format).transpose()?;
        let mut config = match (&self.model, &self.model_config) {
            (Some(name), None) => ClipConfig::named(name)?,
            (None, Some(path)) => {
                ClipConfig::from_json(&std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?)
                    .with_context(|| format!("model config {}", path.display()))?
            }
            _ => bail!("give exactly one of --model and --model-config"),
        };
        if format.is_some_and(WeightsFormat::requires_quick_gelu) && !config.quick_gelu {
            eprintln!("{who}: warning: OpenAI weights use QuickGELU; building the model with QuickGELU although the config says GELU");
            config.quick_gelu = true;
        }
        let vs = VarStore::new(device);
        let model = ClipModel::new(vs.root(), &config);
        match (&self.weights, random_init) {
            (Some(path), _) => {
                weights::load_weights(&vs, path).with_context(|| format!("loading {}", path.display()))?;
            }
            (None, true) => eprintln!("{who}: warning: random weights (--random-init): the embeddings mean nothing"),
            (None, false) => bail!("no --weights given; pass --random-init to embed with random weights on purpose"),
        }
        Ok((vs, model))
    }
}
