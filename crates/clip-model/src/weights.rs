//! Released weights in any of the layouts people have, turned into open_clip's (= OpenAI's) key
//! layout and loaded strictly:
//!
//! - open_clip / OpenAI-layout safetensors (`open_clip_model.safetensors`);
//! - OpenAI's TorchScript `.pt` archives, BatchNorm statistics and fp16 tensors included (cast to
//!   the model's dtype on load); OpenAI's weights always use QuickGELU;
//! - Hugging Face `CLIPModel` safetensors (`model.safetensors`), whose separate q/k/v projections
//!   are fused into `in_proj_weight` and whose projections are stored transposed;
//! - `torch.save` files, zip or legacy (`open_clip_pytorch_model.bin`, Hugging Face's
//!   `pytorch_model.bin`, open_clip_train's `epoch_N.pt`), in either key layout, read by
//!   clip-tensor's restricted unpickler (torch's `weights_only` allow-list); nothing in them is
//!   executed. A training checkpoint's `state_dict` is taken and the rest (optimizer, scaler,
//!   epoch) ignored; DDP's `module.` prefixes are dropped.
//!
//! A checkpoint of a model with parts not built here (CoCa's captioning decoder) loads through
//! [`load_weights_for`], which sets the keys under those parts' prefixes aside by the config's
//! say-so and reports them; nothing else is lenient.
//!
//! The format is told from the bytes: safetensors by their header; a zip is TorchScript when it
//! has `constants.pkl` or `code/`, torch.save when it has `data.pkl` without them; a pickle
//! (`0x80`, protocol 2–5) is a legacy torch.save file, whose first pickle must be torch's magic
//! number.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use clip_tensor::pickle::Value;
use clip_tensor::safetensors::{KeyReport, load_safetensors_ignoring, load_strict_ignoring, read_safetensors};
use clip_tensor::torch_save::{TorchSave, archive_records};
use clip_tensor::torchscript::read_torchscript;
use tch::Tensor;
use tch::nn::VarStore;

use crate::config::{ClipConfig, ResNetConfig, TextConfig, VisionConfig, VitConfig};
use crate::{Error, Result};

/// The layout a weights file was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsFormat {
    /// Safetensors with open_clip's (= OpenAI's) key names.
    OpenClip,
    /// Safetensors of a Hugging Face `CLIPModel`.
    HuggingFace,
    /// An OpenAI TorchScript archive.
    TorchScript,
    /// A `torch.save` file (zip or legacy), in open_clip's or Hugging Face's key layout: a state
    /// dict, or a training checkpoint holding one.
    TorchSave,
}

impl WeightsFormat {
    /// OpenAI's weights were trained with QuickGELU; a model built otherwise gives wrong features.
    pub fn requires_quick_gelu(self) -> bool {
        self == Self::TorchScript
    }
}

/// Tells the format from the file's bytes (not its name): the first few, for a zip its record
/// names, and for safetensors the key names in the header; nothing is unpickled and tensor data
/// is not read.
pub fn detect_format(path: &Path) -> Result<WeightsFormat> {
    match sniff(path)? {
        Container::Zip => Ok(zip_format(path)),
        Container::Pickle => Ok(WeightsFormat::TorchSave),
        Container::Safetensors => {
            let keys = match safetensors_keys(path) {
                Some(keys) => keys,
                // A malformed header: let the reader say exactly what is wrong.
                None => read_safetensors(path)?.into_iter().map(|(k, _)| k).collect(),
            };
            Ok(layout_of(keys.iter().map(String::as_str)))
        }
    }
}

/// What holds the tensors.
enum Container {
    Zip,
    Pickle,
    Safetensors,
}

fn sniff(path: &Path) -> Result<Container> {
    let mut head = [0u8; 9];
    let io = |source| clip_tensor::Error::Io { path: path.to_path_buf(), source };
    let n = File::open(path).and_then(|mut f| f.read(&mut head)).map_err(io)?;
    let head = &head[..n];
    // Safetensors: an 8-byte little-endian header length, then the JSON header.
    if head.get(8) == Some(&b'{') {
        return Ok(Container::Safetensors);
    }
    if head.starts_with(b"PK\x03\x04") {
        // A zip: TorchScript archives and torch.save checkpoints share it.
        return Ok(Container::Zip);
    }
    if head.first() == Some(&0x80) && head.get(1).is_some_and(|p| (2..=5).contains(p)) {
        // A pickle: a legacy torch.save file (or a bare pickle, which the reader refuses).
        return Ok(Container::Pickle);
    }
    // Anything else: the safetensors reader names the problem.
    Ok(Container::Safetensors)
}

/// The tensor names in a safetensors header, without reading the data; `None` if malformed.
fn safetensors_keys(path: &Path) -> Option<Vec<String>> {
    let mut file = File::open(path).ok()?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).ok()?;
    let len = usize::try_from(u64::from_le_bytes(len)).ok().filter(|&n| n <= 100 << 20)?;
    let mut header = vec![0u8; len];
    file.read_exact(&mut header).ok()?;
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&header).ok()?;
    Some(map.into_iter().map(|(k, _)| k).filter(|k| k != "__metadata__").collect())
}

/// TorchScript archives hold their code and constants; torch.save zips only `data.pkl` and the
/// storages. A zip libtorch cannot list goes to the TorchScript reader, which says what is wrong.
fn zip_format(path: &Path) -> WeightsFormat {
    match archive_records(path) {
        Ok(records)
            if records.iter().any(|r| r == "data.pkl")
                && !records.iter().any(|r| r == "constants.pkl" || r.starts_with("code/")) =>
        {
            WeightsFormat::TorchSave
        }
        _ => WeightsFormat::TorchScript,
    }
}

fn layout_of<'a>(mut keys: impl Iterator<Item = &'a str>) -> WeightsFormat {
    if keys.any(|k| k.starts_with("vision_model.") || k.starts_with("text_model.")) {
        WeightsFormat::HuggingFace
    } else {
        WeightsFormat::OpenClip
    }
}

/// Every tensor of a weights file, under open_clip's key names, on the CPU.
pub fn read_weights(path: &Path) -> Result<(WeightsFormat, Vec<(String, Tensor)>)> {
    match sniff(path)? {
        Container::Zip if zip_format(path) == WeightsFormat::TorchScript => {
            Ok((WeightsFormat::TorchScript, from_torchscript(read_torchscript(path)?)))
        }
        Container::Zip | Container::Pickle => Ok((WeightsFormat::TorchSave, read_torch_save(path)?)),
        Container::Safetensors => {
            let tensors = read_safetensors(path)?;
            match layout_of(tensors.iter().map(|(k, _)| k.as_str())) {
                WeightsFormat::HuggingFace => Ok((WeightsFormat::HuggingFace, from_hugging_face(tensors)?)),
                _ => Ok((WeightsFormat::OpenClip, strip_module_prefix(tensors))),
            }
        }
    }
}

/// Loads a weights file of any supported format into `vs` (built for the matching config):
/// strictly, every key problem reported at once, values cast to the model's dtype. A model built
/// from a config with parts this crate does not build (CoCa's `multimodal_cfg`) loads its
/// checkpoints through [`load_weights_for`].
pub fn load_weights(vs: &VarStore, path: &Path) -> Result<WeightsFormat> {
    load_weights_ignoring(vs, path, &[]).map(|loaded| loaded.format)
}

/// What [`load_weights_for`] loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedWeights {
    /// The file's layout.
    pub format: WeightsFormat,
    /// The keys set aside under the config's [`ClipConfig::unbuilt_prefixes`] (CoCa's
    /// `text_decoder.*`); nothing missing, unexpected or mis-shaped.
    pub keys: KeyReport,
}

/// [`load_weights`] for `vs` built from `config`: a checkpoint's keys under the prefixes of the
/// parts the config has but this crate does not build ([`ClipConfig::unbuilt_prefixes`]: CoCa's
/// captioning decoder, `text_decoder.`) are expected and set aside, and listed in the report;
/// every other key is as strict as ever. Without such parts it is [`load_weights`].
pub fn load_weights_for(vs: &VarStore, config: &ClipConfig, path: &Path) -> Result<LoadedWeights> {
    load_weights_ignoring(vs, path, config.unbuilt_prefixes())
}

/// Safetensors files already under this crate's names are copied from the mapped file into the
/// variables; every other file is read whole, renamed, then copied.
fn load_weights_ignoring(vs: &VarStore, path: &Path, ignored_prefixes: &[&str]) -> Result<LoadedWeights> {
    if matches!(sniff(path)?, Container::Safetensors)
        && let Some(keys) = safetensors_keys(path)
        && layout_of(keys.iter().map(String::as_str)) == WeightsFormat::OpenClip
        && !keys.iter().all(|k| k.starts_with("module."))
    {
        let keys = load_safetensors_ignoring(vs, path, ignored_prefixes)?;
        return Ok(LoadedWeights { format: WeightsFormat::OpenClip, keys });
    }
    let (format, tensors) = read_weights(path)?;
    let keys = load_strict_ignoring(vs, tensors, ignored_prefixes, path)?;
    Ok(LoadedWeights { format, keys })
}

/// The state dict of a torch.save file, under open_clip's names.
fn read_torch_save(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let file = TorchSave::open(path)?;
    let dict = state_dict_of(file.root()).ok_or_else(|| {
        let keys: Vec<String> = match file.root() {
            Value::Dict(items) => items.iter().map(|(k, _)| k.as_str().map_or_else(|| k.kind().to_owned(), |k| format!("{k:?}"))).collect(),
            _ => Vec::new(),
        };
        Error::Config(format!(
            "{}: a torch.save file holding {} [{}], with no state dict (a dict of tensors, or one under \
             \"state_dict\", \"model\" or \"module\")",
            path.display(),
            file.root().kind(),
            keys.join(", ")
        ))
    })?;
    let tensors = strip_module_prefix(file.tensors(dict)?);
    match layout_of(tensors.iter().map(|(k, _)| k.as_str())) {
        WeightsFormat::HuggingFace => from_hugging_face(tensors),
        _ => Ok(tensors),
    }
}

/// A dict whose values are all tensors is a state dict; a training checkpoint (open_clip_train's
/// `epoch_N.pt`, and others') keeps one under `state_dict`, `model` or `module`.
fn state_dict_of(root: &Value) -> Option<&Value> {
    let is_state_dict = |v: &Value| matches!(v, Value::Dict(items) if items.iter().all(|(_, t)| matches!(t, Value::Tensor(_))));
    if is_state_dict(root) {
        return Some(root);
    }
    ["state_dict", "model", "module"].into_iter().filter_map(|key| root.get(key)).find(|v| is_state_dict(v))
}

/// DDP-wrapped checkpoints prefix every key with `module.`.
fn strip_module_prefix(tensors: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
    if !tensors.is_empty() && tensors.iter().all(|(k, _)| k.starts_with("module.")) {
        tensors.into_iter().map(|(k, t)| (k["module.".len()..].to_owned(), t)).collect()
    } else {
        tensors
    }
}

/// OpenAI's archives also hold three integers and, as traced modules may, attention masks: none
/// of them are weights.
fn from_torchscript(tensors: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
    tensors
        .into_iter()
        .filter(|(k, _)| {
            !matches!(k.as_str(), "input_resolution" | "context_length" | "vocab_size") && !k.ends_with("attn_mask")
        })
        .collect()
}

/// Hugging Face `CLIPModel` names → open_clip names (transformers' `convert_clip_original_pytorch_to_hf.py`, inverted).
fn from_hugging_face(tensors: Vec<(String, Tensor)>) -> Result<Vec<(String, Tensor)>> {
    let mut map: BTreeMap<String, Tensor> = tensors.into_iter().collect();
    let mut out = Vec::with_capacity(map.len());
    let mut take = |key: &str| map.remove(key);
    // Fuse each layer's q, k and v into the in-projection, for both towers.
    for (hf_tower, tower) in [("text_model", ""), ("vision_model", "visual.")] {
        for layer in 0.. {
            let hf = format!("{hf_tower}.encoder.layers.{layer}");
            let ours = format!("{tower}transformer.resblocks.{layer}");
            let Some(q) = take(&format!("{hf}.self_attn.q_proj.weight")) else { break };
            let (k, v) = (take(&format!("{hf}.self_attn.k_proj.weight")), take(&format!("{hf}.self_attn.v_proj.weight")));
            let (qb, kb, vb) = (
                take(&format!("{hf}.self_attn.q_proj.bias")),
                take(&format!("{hf}.self_attn.k_proj.bias")),
                take(&format!("{hf}.self_attn.v_proj.bias")),
            );
            let (Some(k), Some(v), Some(qb), Some(kb), Some(vb)) = (k, v, qb, kb, vb) else {
                return Err(Error::Config(format!("{hf}: incomplete q/k/v projections")));
            };
            out.push((format!("{ours}.attn.in_proj_weight"), Tensor::cat(&[q, k, v], 0)));
            out.push((format!("{ours}.attn.in_proj_bias"), Tensor::cat(&[qb, kb, vb], 0)));
            for (hf_name, name) in [
                ("self_attn.out_proj", "attn.out_proj"),
                ("layer_norm1", "ln_1"),
                ("layer_norm2", "ln_2"),
                ("mlp.fc1", "mlp.c_fc"),
                ("mlp.fc2", "mlp.c_proj"),
            ] {
                for param in ["weight", "bias"] {
                    if let Some(t) = take(&format!("{hf}.{hf_name}.{param}")) {
                        out.push((format!("{ours}.{name}.{param}"), t));
                    }
                }
            }
        }
    }
    let renames = [
        ("logit_scale", "logit_scale"),
        ("text_model.embeddings.token_embedding.weight", "token_embedding.weight"),
        ("text_model.embeddings.position_embedding.weight", "positional_embedding"),
        ("text_model.final_layer_norm.weight", "ln_final.weight"),
        ("text_model.final_layer_norm.bias", "ln_final.bias"),
        ("vision_model.embeddings.class_embedding", "visual.class_embedding"),
        ("vision_model.embeddings.patch_embedding.weight", "visual.conv1.weight"),
        ("vision_model.embeddings.position_embedding.weight", "visual.positional_embedding"),
        ("vision_model.pre_layrnorm.weight", "visual.ln_pre.weight"),
        ("vision_model.pre_layrnorm.bias", "visual.ln_pre.bias"),
        ("vision_model.post_layernorm.weight", "visual.ln_post.weight"),
        ("vision_model.post_layernorm.bias", "visual.ln_post.bias"),
    ];
    for (hf, ours) in renames {
        if let Some(t) = map.remove(hf) {
            out.push((ours.to_owned(), t));
        }
    }
    // Hugging Face stores the projections as Linear weights, [out, in]; CLIP right-multiplies.
    for (hf, ours) in [("text_projection.weight", "text_projection"), ("visual_projection.weight", "visual.proj")] {
        if let Some(t) = map.remove(hf) {
            out.push((ours.to_owned(), t.tr().contiguous()));
        }
    }
    // Position ids are an index buffer, not weights; anything else left is reported as unexpected.
    map.retain(|k, _| !k.ends_with("embeddings.position_ids"));
    out.extend(map);
    Ok(out)
}

/// The architecture of an OpenAI-layout state dict, as OpenAI's `build_model` infers it (heads
/// from widths, 64 channels per head). Only for OpenAI-style checkpoints: other head widths need
/// a config.
pub fn infer_config(tensors: &[(String, Tensor)], quick_gelu: bool) -> Result<ClipConfig> {
    let shapes: BTreeMap<&str, Vec<i64>> = tensors.iter().map(|(k, t)| (k.as_str(), t.size())).collect();
    let shape = |key: &str| shapes.get(key).cloned().ok_or_else(|| Error::Config(format!("cannot infer the architecture: no {key}")));
    let distinct = |prefix: &str, part: usize| {
        let mut seen: Vec<&str> = shapes.keys().filter(|k| k.starts_with(prefix)).filter_map(|k| k.split('.').nth(part)).collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len() as i64
    };
    if shapes.keys().any(|k| k.starts_with("visual.trunk.") || k.starts_with("text.")) {
        return Err(Error::Config("cannot infer the architecture of a timm or custom_text model (SigLIP, CoCa, …): give its model config".into()));
    }
    let vision = if shapes.contains_key("visual.proj") {
        let conv = shape("visual.conv1.weight")?;
        let (width, patch) = (conv[0], conv[3]);
        let tokens = shape("visual.positional_embedding")?[0];
        let grid = ((tokens - 1) as f64).sqrt().round() as i64;
        let layers = shapes.keys().filter(|k| k.starts_with("visual.") && k.ends_with(".attn.in_proj_weight")).count() as i64;
        VisionConfig::Vit(VitConfig { image_size: patch * grid, patch_size: patch, width, layers, heads: width / 64, ..VitConfig::default() })
    } else {
        let layers = [1, 2, 3, 4].map(|b| distinct(&format!("visual.layer{b}."), 2));
        let width = shape("visual.layer1.0.conv1.weight")?[0];
        let tokens = shape("visual.attnpool.positional_embedding")?[0];
        let image_size = 32 * ((tokens - 1) as f64).sqrt().round() as i64;
        VisionConfig::ResNet(ResNetConfig { image_size, layers, width, heads: width * 32 / 64 })
    };
    let text_width = shape("ln_final.weight")?[0];
    let text = TextConfig {
        context_length: shape("positional_embedding")?[0],
        vocab_size: shape("token_embedding.weight")?[0],
        width: text_width,
        heads: text_width / 64,
        layers: distinct("transformer.resblocks.", 2),
        ..TextConfig::default()
    };
    let vision_heads = match &vision {
        VisionConfig::Vit(v) => v.heads,
        VisionConfig::ResNet(r) => r.heads,
        VisionConfig::TimmVit(t) => t.heads,
    };
    if text.heads == 0 || vision_heads == 0 || text.width % 64 != 0 {
        return Err(Error::Config(
            "cannot infer the attention heads: the widths are not OpenAI's multiples of 64; give a model config".into(),
        ));
    }
    let init_logit_bias = tensors.iter().any(|(n, _)| n == "logit_bias").then_some(0.0);
    Ok(ClipConfig {
        embed_dim: shape("text_projection")?[1],
        quick_gelu,
        custom_text: false,
        vision,
        text,
        init_logit_scale: None,
        init_logit_bias,
        multimodal_cfg: None,
    })
}
