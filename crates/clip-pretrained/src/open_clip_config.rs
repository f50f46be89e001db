//! `open_clip_config.json`, the file that makes a folder or hub repo a model open_clip can load:
//! `{"model_cfg": <model config>, "preprocess_cfg": {"mean", "std", "interpolation",
//! "resize_mode", …}}` (open_clip 3.3.0 `push_to_hf_hub.py` writes it, `factory.py` reads it).
//!
//! The same preprocessing object is recorded in the metadata of safetensors files that
//! `clip convert` writes, under [`PREPROCESS_METADATA_KEY`], so that evaluating a lone weights
//! file later never silently changes its preprocessing.

use std::path::Path;

use clip_data::PreprocessConfig;
use clip_model::ClipConfig;

use crate::{Error, Result};

/// The safetensors metadata key holding a weights file's `preprocess_cfg` (as JSON text).
pub const PREPROCESS_METADATA_KEY: &str = "open_clip_preprocess_cfg";

/// A parsed `open_clip_config.json`.
#[derive(Debug, Clone)]
pub struct OpenClipConfig {
    /// `model_cfg`.
    pub config: ClipConfig,
    /// `preprocess_cfg`, over open_clip's defaults.
    pub preprocess: PreprocessConfig,
}

fn bad(path: &Path, message: impl Into<String>) -> Error {
    Error::Config { path: path.display().to_string(), message: message.into() }
}

/// Reads an `open_clip_config.json`.
pub fn read_open_clip_config(path: &Path) -> Result<OpenClipConfig> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    parse_open_clip_config(&text).map_err(|e| match e {
        Error::Config { message, .. } => bad(path, message),
        Error::Model(e) => bad(path, e.to_string()),
        Error::Data(e) => bad(path, format!("preprocess_cfg: {e}")),
        other => other,
    })
}

/// Parses the text of an `open_clip_config.json`.
pub fn parse_open_clip_config(text: &str) -> Result<OpenClipConfig> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(Path::new("open_clip_config.json"), e.to_string()))?;
    let model_cfg = json.get("model_cfg").ok_or_else(|| bad(Path::new("open_clip_config.json"), "no model_cfg"))?;
    let config = ClipConfig::from_json(&model_cfg.to_string())?;
    let empty = serde_json::json!({});
    let preprocess_cfg = json.get("preprocess_cfg").unwrap_or(&empty);
    let preprocess = PreprocessConfig::from_open_clip_json(preprocess_cfg, config.vision.image_size() as u32)?;
    Ok(OpenClipConfig { config, preprocess })
}

/// The text of an `open_clip_config.json` for `config` and `preprocess`.
pub fn open_clip_config_json(config: &ClipConfig, preprocess: &PreprocessConfig) -> String {
    let model_cfg: serde_json::Value = serde_json::from_str(&config.to_json()).unwrap_or_default();
    let json = serde_json::json!({ "model_cfg": model_cfg, "preprocess_cfg": preprocess.to_open_clip_json() });
    serde_json::to_string_pretty(&json).unwrap_or_default()
}

/// The preprocessing recorded in a safetensors file's metadata, if any. Files of other formats,
/// and safetensors without the key, give `None` (a malformed file is the weights loader's to
/// report).
pub fn recorded_preprocess(weights: &Path, image_size: u32) -> Result<Option<PreprocessConfig>> {
    let Ok(metadata) = clip_tensor::safetensors::read_safetensors_metadata(weights) else { return Ok(None) };
    let Some(text) = metadata.get(PREPROCESS_METADATA_KEY) else { return Ok(None) };
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(weights, format!("{PREPROCESS_METADATA_KEY}: {e}")))?;
    PreprocessConfig::from_open_clip_json(&json, image_size).map(Some).map_err(|e| bad(weights, format!("{PREPROCESS_METADATA_KEY}: {e}")))
}
