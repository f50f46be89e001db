//! From files or names to a built model with its weights: the steps [`Clip`](crate::Clip) takes,
//! public for callers that choose the tokenizer themselves or build without weights (the `clip`
//! binary's `--model-config`, `--weights` and `--random-init`).

use std::path::{Path, PathBuf};

use clip_data::PreprocessConfig;
use clip_model::{ClipConfig, ClipModel, weights};
use clip_pretrained::{Resolved, read_open_clip_config, recorded_preprocess};
use tch::Device;
use tch::nn::VarStore;

use crate::{Error, Result};

/// The architecture and preprocessing of a config file, without weights: an open_clip
/// `open_clip_config.json` (`model_cfg` and `preprocess_cfg`, as a hub repo or a training run
/// folder holds), or a bare model config (`ViT-B-32.json`), whose preprocessing is that of an
/// `open_clip_config.json` beside it, else OpenAI's.
///
/// ```
/// let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../clip-cli/tests/fixtures/tiny-hub");
/// let resolved = clip_rs::resolve_config_file(format!("{dir}/open_clip_config.json").as_ref())?;
/// assert_eq!(resolved.config.embed_dim, 16);
/// assert!(resolved.weights.is_none());
/// # Ok::<(), clip_rs::Error>(())
/// ```
pub fn resolve_config_file(path: &Path) -> Result<Resolved> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_owned(), source })?;
    let name = path.display().to_string();
    let wrapped = serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|v| v.get("model_cfg").is_some());
    let (config, preprocess) = if wrapped {
        let read = read_open_clip_config(path)?;
        (read.config, read.preprocess)
    } else {
        let config = ClipConfig::from_json(&text).map_err(|e| Error::Input(format!("model config {name}: {e}")))?;
        let beside = path.with_file_name("open_clip_config.json");
        let preprocess = if beside.is_file() && beside != path {
            read_open_clip_config(&beside)?.preprocess
        } else {
            PreprocessConfig::openai(config.vision.image_size() as u32)
        };
        (config, preprocess)
    };
    Ok(Resolved { name, tag: None, config, preprocess, weights: None, notes: Vec::new() })
}

/// Gives `resolved` the weights file `path`; the preprocessing recorded in it (safetensors
/// metadata written by `clip train` or `clip convert`) replaces the config's. Refused when
/// `resolved` already brings weights (a pretrained tag, `hf-hub:`, `local-dir:`): keep one.
pub fn attach_weights(resolved: &mut Resolved, path: &Path) -> Result<()> {
    if let Some(existing) = &resolved.weights {
        return Err(Error::Input(format!(
            "{} already brings its weights ({}); {} as well is ambiguous: keep one",
            resolved.name,
            existing.display(),
            path.display()
        )));
    }
    if let Some(recorded) = recorded_preprocess(path, resolved.config.vision.image_size() as u32)? {
        resolved.preprocess = recorded;
    }
    resolved.weights = Some(path.to_owned());
    Ok(())
}

/// A model built on a device with its weights (or at random), its evaluation preprocessing, and
/// what the caller should be told.
pub struct LoadedModel {
    vs: VarStore,
    /// The model, in inference mode.
    pub model: ClipModel,
    /// The evaluation preprocessing that belongs to the weights.
    pub preprocess: PreprocessConfig,
    /// The weights file; `None` for a model at random initialisation.
    pub weights: Option<PathBuf>,
    /// Notes for the user: the resolver's, and QuickGELU turned on for OpenAI weights.
    pub notes: Vec<String>,
}

impl LoadedModel {
    /// Builds `resolved` on `device` and loads its weights strictly (every key and shape must
    /// fit). OpenAI weights force QuickGELU, with a note, as they were trained with it.
    pub fn load(resolved: Resolved, device: Device) -> Result<Self> {
        let Resolved { name, mut config, preprocess, weights, mut notes, .. } = resolved;
        let Some(path) = weights else {
            return Err(Error::Input(format!(
                "{name}: no weights: name a pretrained tag (`clip pretrained` lists them), give a weights file, or build it at random with LoadedModel::random"
            )));
        };
        let format = weights::detect_format(&path).map_err(|source| Error::Weights { path: path.clone(), source: Box::new(source) })?;
        if format.requires_quick_gelu() && !config.quick_gelu {
            notes.push(format!("{name}: OpenAI weights use QuickGELU; building the model with QuickGELU although the config says GELU"));
            config.quick_gelu = true;
        }
        let vs = VarStore::new(device);
        let model = ClipModel::for_weights(vs.root(), &config);
        weights::load_weights_for(&vs, &config, &path).map_err(|source| Error::Weights { path: path.clone(), source: Box::new(source) })?;
        Ok(Self { vs, model, preprocess, weights: Some(path), notes })
    }

    /// Builds `resolved` on `device` at random initialisation, ignoring any weights file: for
    /// tests and timing, since its embeddings mean nothing.
    pub fn random(resolved: Resolved, device: Device) -> Self {
        let vs = VarStore::new(device);
        let model = ClipModel::new(vs.root(), &resolved.config);
        Self { vs, model, preprocess: resolved.preprocess, weights: None, notes: resolved.notes }
    }

    /// The device the parameters live on.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// The parameters.
    pub fn var_store(&self) -> &VarStore {
        &self.vs
    }
}
