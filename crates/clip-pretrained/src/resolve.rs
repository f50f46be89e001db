//! From what a user types (`--model ViT-B-32 --pretrained openai`, `--model hf-hub:ORG/NAME`,
//! `--model local-dir:DIR`) to a model config, its preprocessing and a weights file, as open_clip's
//! `create_model_and_transforms` resolves them (open_clip 3.3.0 `factory.py`, `pretrained.py`):
//!
//! - a built-in name with a tag: the registry entry decides the architecture, the activation (the
//!   tag decides QuickGELU, not the name), the preprocessing and the files: the hub repo's
//!   safetensors first, then its pickle, then OpenAI's direct URL checked by its SHA-256;
//! - `hf-hub:` and `local-dir:`: `open_clip_config.json` (`model_cfg` + `preprocess_cfg`), then
//!   the weights in open_clip's order of file names; a tag is ignored, as open_clip ignores it.
//!
//! Every file comes through the caller's [`Hub`]: an offline hub resolves from the cache alone.

use std::path::{Path, PathBuf};

use clip_data::PreprocessConfig;
use clip_hub::{Hub, Progress, Repo};
use clip_model::ClipConfig;

use crate::open_clip_config::{OpenClipConfig, read_open_clip_config};
use crate::registry::{self, Pretrained};
use crate::{Error, Result};

/// What `--model` names.
///
/// ```
/// use clip_pretrained::ModelName;
///
/// assert_eq!(ModelName::parse("ViT-B/32"), ModelName::Builtin("ViT-B-32".into()));
/// assert_eq!(ModelName::parse("hf-hub:timm/ViT-B-16-SigLIP"), ModelName::HfHub("timm/ViT-B-16-SigLIP".into()));
/// assert!(ModelName::parse("local-dir:/models/mine").brings_weights());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelName {
    /// A built-in architecture (`ViT-B-32`, `RN50-quickgelu`, …).
    Builtin(String),
    /// `hf-hub:ORG/NAME`: a model repo holding `open_clip_config.json` and weights.
    HfHub(String),
    /// `local-dir:DIR`: a folder laid out as such a repo.
    LocalDir(PathBuf),
}

impl ModelName {
    /// Reads open_clip's schemas; anything else is a built-in name (`/` read as `-`, as open_clip does).
    pub fn parse(model: &str) -> Self {
        if let Some(id) = model.strip_prefix("hf-hub:") {
            Self::HfHub(id.trim_matches('/').to_owned())
        } else if let Some(dir) = model.strip_prefix("local-dir:") {
            Self::LocalDir(PathBuf::from(dir))
        } else {
            Self::Builtin(model.replace('/', "-"))
        }
    }

    /// `hf-hub:` and `local-dir:` models bring their own config and weights (a tag is ignored).
    pub fn brings_weights(&self) -> bool {
        !matches!(self, Self::Builtin(_))
    }
}

/// A model ready to build: architecture, preprocessing and weights.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The name reports use: the built-in name, or the `hf-hub:` / `local-dir:` spec.
    pub name: String,
    /// The pretrained tag, where one was used.
    pub tag: Option<String>,
    /// The architecture, its activation as the weights were trained.
    pub config: ClipConfig,
    /// The evaluation preprocessing that belongs to the weights.
    pub preprocess: PreprocessConfig,
    /// The weights file; `None` for a built-in name without a tag (the caller brings weights).
    pub weights: Option<PathBuf>,
    /// What the caller should tell the user (e.g. a tag overriding the name's activation).
    pub notes: Vec<String>,
}

/// open_clip's weight file names for a repo or folder, in the order it prefers them
/// (`factory.py::_find_checkpoint_in_dir`; a hub repo is asked for the first two, as
/// `pretrained.py::download_pretrained_from_hf` does).
pub const WEIGHT_FILES: &[&str] = &[
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
    "open_clip_pytorch_model.bin",
    "open_clip_pytorch_model.pth",
    "model.safetensors",
    "pytorch_model.bin",
    "pytorch_model.pth",
    "model.pth",
];

/// The files `download_pretrained_from_hf` asks a repo for when no file is named.
const HUB_DEFAULT_FILES: &[&str] = &["open_clip_model.safetensors", "open_clip_pytorch_model.bin"];

/// Where open_clip caches weights fetched from a plain URL (`~/.cache/clip`).
pub fn url_cache_dir() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from(".cache/clip"), |home| PathBuf::from(home).join(".cache").join("clip"))
}

/// Resolves `model` (with `pretrained`, a tag, for built-in names), fetching what is needed
/// through `hub`.
pub fn resolve(model: &str, pretrained: Option<&str>, hub: &Hub, progress: &mut dyn FnMut(Progress)) -> Result<Resolved> {
    match ModelName::parse(model) {
        ModelName::Builtin(name) => match pretrained {
            Some(tag) => resolve_tag(&name, tag, hub, progress),
            None => {
                let config = ClipConfig::named(&name)?;
                let preprocess = PreprocessConfig::openai(config.vision.image_size() as u32);
                Ok(Resolved { name, tag: None, config, preprocess, weights: None, notes: Vec::new() })
            }
        },
        ModelName::HfHub(id) => {
            let repo = Repo::model(&id);
            let config_path = hub.get(&repo, "open_clip_config.json", progress)?;
            let OpenClipConfig { config, preprocess } = read_open_clip_config(&config_path)?;
            let weights = first_in_repo(hub, &repo, HUB_DEFAULT_FILES, progress)?;
            Ok(Resolved { name: model.to_owned(), tag: None, config, preprocess, weights: Some(weights), notes: ignored(pretrained) })
        }
        ModelName::LocalDir(dir) => {
            let OpenClipConfig { config, preprocess } = read_open_clip_config(&dir.join("open_clip_config.json"))?;
            let weights = first_in_dir(&dir)?;
            Ok(Resolved { name: model.to_owned(), tag: None, config, preprocess, weights: Some(weights), notes: ignored(pretrained) })
        }
    }
}

fn ignored(pretrained: Option<&str>) -> Vec<String> {
    pretrained.map(|t| format!("--pretrained {t} ignored: hf-hub: and local-dir: models bring their own weights (as in open_clip)")).into_iter().collect()
}

/// The architecture and preprocessing of a registry entry, without its weights.
pub fn entry_config(entry: &Pretrained) -> Result<(ClipConfig, PreprocessConfig, Vec<String>)> {
    let mut config = ClipConfig::named(&entry.architecture)?;
    let mut notes = Vec::new();
    if entry.quick_gelu != config.quick_gelu {
        notes.push(format!(
            "{}:{} was trained with {}: building {} with it, whatever the name's config says",
            entry.model,
            entry.tag,
            if entry.quick_gelu { "QuickGELU" } else { "GELU" },
            entry.model
        ));
        config.quick_gelu = entry.quick_gelu;
    }
    let preprocess = PreprocessConfig::from_open_clip_json(&entry_preprocess_json(entry), config.vision.image_size() as u32)?;
    Ok((config, preprocess, notes))
}

fn entry_preprocess_json(entry: &Pretrained) -> serde_json::Value {
    serde_json::json!({
        "mean": entry.mean, "std": entry.std, "interpolation": entry.interpolation, "resize_mode": entry.resize_mode,
    })
}

fn resolve_tag(model: &str, tag: &str, hub: &Hub, progress: &mut dyn FnMut(Progress)) -> Result<Resolved> {
    let entry = registry::lookup(model, tag)?;
    let (config, preprocess, notes) = entry_config(entry)?;
    let weights = entry_weights(entry, hub, progress)?;
    Ok(Resolved { name: model.to_owned(), tag: Some(entry.tag.clone()), config, preprocess, weights: Some(weights), notes })
}

/// A registry entry's weights: its hub repo's files in order, else OpenAI's URL (checked by its
/// SHA-256). When both fail, the hub's error is the one reported.
pub fn entry_weights(entry: &Pretrained, hub: &Hub, progress: &mut dyn FnMut(Progress)) -> Result<PathBuf> {
    let hub_result = entry.hf_hub.as_deref().map(|id| {
        let files: Vec<&str> = entry.files.iter().map(String::as_str).collect();
        first_in_repo(hub, &Repo::model(id), &files, progress)
    });
    let hub_error = match hub_result {
        Some(Ok(path)) => return Ok(path),
        Some(Err(e)) => Some(e),
        None => None,
    };
    if let (Some(url), Some(sha256)) = (&entry.url, &entry.sha256) {
        match hub.get_url(url, sha256, &url_cache_dir(), progress) {
            Ok(path) => return Ok(path),
            Err(e) if hub_error.is_none() => return Err(e.into()),
            Err(_) => {}
        }
    }
    Err(hub_error.unwrap_or_else(|| Error::NoWeights { place: format!("{}:{}", entry.model, entry.tag), tried: "no hub repo or URL".into() }))
}

/// The first of `files` the repo has.
fn first_in_repo(hub: &Hub, repo: &Repo, files: &[&str], progress: &mut dyn FnMut(Progress)) -> Result<PathBuf> {
    for file in files {
        if let Some(path) = hub.try_get(repo, file, progress)? {
            return Ok(path);
        }
    }
    Err(Error::NoWeights { place: format!("hub repo {}", repo.id), tried: files.join(", ") })
}

/// open_clip's choice of weights in a folder: the preferred names in order, else any
/// `.safetensors`, `.bin` or `.pth` (safetensors first, then by name).
fn first_in_dir(dir: &Path) -> Result<PathBuf> {
    if let Some(path) = WEIGHT_FILES.iter().map(|f| dir.join(f)).find(|p| p.is_file()) {
        return Ok(path);
    }
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "safetensors" || x == "bin" || x == "pth"))
        .collect();
    found.sort_by_key(|p| (p.extension().is_none_or(|x| x != "safetensors"), p.clone()));
    found.into_iter().next().ok_or_else(|| Error::NoWeights { place: dir.display().to_string(), tried: WEIGHT_FILES.join(", ") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_parse_as_open_clip_reads_them() {
        assert_eq!(ModelName::parse("hf-hub:laion/CLIP-ViT-H-14-laion2B-s32B-b79K"), ModelName::HfHub("laion/CLIP-ViT-H-14-laion2B-s32B-b79K".into()));
        assert_eq!(ModelName::parse("local-dir:./m"), ModelName::LocalDir(PathBuf::from("./m")));
        assert_eq!(ModelName::parse("ViT-B/32"), ModelName::Builtin("ViT-B-32".into()));
    }
}
