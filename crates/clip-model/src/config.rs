//! Model configs: open_clip's model-config JSON (`embed_dim`, `quick_gelu`, `vision_cfg`,
//! `text_cfg`) parsed strictly, validated once into typed configs, and the OpenAI presets.
//!
//! A `Raw*` mirror takes the JSON as written (unknown keys are errors that name the key), then
//! `TryFrom` resolves it: `layers` as a number means a ViT, as four numbers a ModifiedResNet.

use serde::Deserialize;

use crate::{Error, Result};

/// A whole CLIP model.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipConfig {
    /// Width of the shared embedding space.
    pub embed_dim: i64,
    /// QuickGELU (`x·σ(1.702x)`, OpenAI's weights) rather than GELU.
    pub quick_gelu: bool,
    /// The image tower.
    pub vision: VisionConfig,
    /// The text tower.
    pub text: TextConfig,
    /// Initial `logit_scale` (log of the temperature's inverse); `None`: CLIP's ln(1/0.07).
    pub init_logit_scale: Option<f64>,
    /// Initial logit bias; `Some` gives the model a learnable `logit_bias` (SigLIP models).
    pub init_logit_bias: Option<f64>,
}

/// The image tower's family.
#[derive(Debug, Clone, PartialEq)]
pub enum VisionConfig {
    /// A Vision Transformer.
    Vit(VitConfig),
    /// OpenAI's modified ResNet with attention pooling.
    ResNet(ResNetConfig),
}

impl VisionConfig {
    /// Input resolution (square).
    pub fn image_size(&self) -> i64 {
        match self {
            Self::Vit(c) => c.image_size,
            Self::ResNet(c) => c.image_size,
        }
    }
}

/// A Vision Transformer tower.
#[derive(Debug, Clone, PartialEq)]
pub struct VitConfig {
    /// Input resolution (square).
    pub image_size: i64,
    /// Patch side.
    pub patch_size: i64,
    /// Residual width.
    pub width: i64,
    /// Residual blocks.
    pub layers: i64,
    /// Attention heads (`width / head_width`).
    pub heads: i64,
    /// MLP hidden width over residual width.
    pub mlp_ratio: f64,
}

/// A ModifiedResNet tower.
#[derive(Debug, Clone, PartialEq)]
pub struct ResNetConfig {
    /// Input resolution (square, a multiple of 32).
    pub image_size: i64,
    /// Bottleneck blocks in each of the four stages.
    pub layers: [i64; 4],
    /// Stem width; the last stage is `32 · width` wide.
    pub width: i64,
    /// Attention-pooling heads (`32 · width / head_width`).
    pub heads: i64,
}

/// The text tower.
#[derive(Debug, Clone, PartialEq)]
pub struct TextConfig {
    /// Tokens per text.
    pub context_length: i64,
    /// Vocabulary size.
    pub vocab_size: i64,
    /// Residual width.
    pub width: i64,
    /// Attention heads.
    pub heads: i64,
    /// Residual blocks.
    pub layers: i64,
    /// MLP hidden width over residual width.
    pub mlp_ratio: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    embed_dim: i64,
    #[serde(default)]
    quick_gelu: bool,
    #[serde(default)]
    init_logit_scale: Option<f64>,
    #[serde(default)]
    init_logit_bias: Option<f64>,
    vision_cfg: RawVision,
    text_cfg: RawText,
}

#[derive(Deserialize)]
#[serde(untagged, expecting = "vision_cfg.layers: a number (ViT) or four numbers (ModifiedResNet)")]
enum RawLayers {
    Vit(i64),
    ResNet([i64; 4]),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVision {
    image_size: i64,
    layers: RawLayers,
    width: i64,
    #[serde(default)]
    patch_size: Option<i64>,
    #[serde(default = "default_head_width")]
    head_width: i64,
    #[serde(default = "default_mlp_ratio")]
    mlp_ratio: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawText {
    #[serde(default = "default_context_length")]
    context_length: i64,
    #[serde(default = "default_vocab_size")]
    vocab_size: i64,
    #[serde(default = "default_text_width")]
    width: i64,
    #[serde(default = "default_text_heads")]
    heads: i64,
    #[serde(default = "default_text_layers")]
    layers: i64,
    #[serde(default = "default_mlp_ratio")]
    mlp_ratio: f64,
}

// open_clip's CLIPVisionCfg / CLIPTextCfg defaults.
fn default_head_width() -> i64 {
    64
}
fn default_mlp_ratio() -> f64 {
    4.0
}
fn default_context_length() -> i64 {
    77
}
fn default_vocab_size() -> i64 {
    49408
}
fn default_text_width() -> i64 {
    512
}
fn default_text_heads() -> i64 {
    8
}
fn default_text_layers() -> i64 {
    12
}

fn positive(name: &str, value: i64) -> Result<i64> {
    if value > 0 { Ok(value) } else { Err(Error::Config(format!("{name} must be positive, got {value}"))) }
}

fn divides(what: &str, divisor: i64, value: i64) -> Result<()> {
    if value % divisor == 0 {
        Ok(())
    } else {
        Err(Error::Config(format!("{what}: {value} is not a multiple of {divisor}")))
    }
}

impl TryFrom<RawConfig> for ClipConfig {
    type Error = Error;

    fn try_from(raw: RawConfig) -> Result<Self> {
        let v = raw.vision_cfg;
        let image_size = positive("vision_cfg.image_size", v.image_size)?;
        let width = positive("vision_cfg.width", v.width)?;
        let head_width = positive("vision_cfg.head_width", v.head_width)?;
        let vision = match v.layers {
            RawLayers::Vit(layers) => {
                let patch_size = v
                    .patch_size
                    .ok_or_else(|| Error::Config("vision_cfg.patch_size is required for a ViT (layers is a number)".into()))?;
                positive("vision_cfg.patch_size", patch_size)?;
                divides("vision_cfg.image_size over patch_size", patch_size, image_size)?;
                divides("vision_cfg.width over head_width", head_width, width)?;
                VisionConfig::Vit(VitConfig {
                    image_size,
                    patch_size,
                    width,
                    layers: positive("vision_cfg.layers", layers)?,
                    heads: width / head_width,
                    mlp_ratio: v.mlp_ratio,
                })
            }
            RawLayers::ResNet(layers) => {
                if v.patch_size.is_some() {
                    return Err(Error::Config("vision_cfg.patch_size must be null for a ModifiedResNet".into()));
                }
                for (i, &n) in layers.iter().enumerate() {
                    positive(&format!("vision_cfg.layers[{i}]"), n)?;
                }
                divides("vision_cfg.image_size", 32, image_size)?;
                divides("vision_cfg.width · 32 over head_width", head_width, width * 32)?;
                VisionConfig::ResNet(ResNetConfig { image_size, layers, width, heads: width * 32 / head_width })
            }
        };
        let t = raw.text_cfg;
        let text = TextConfig {
            context_length: positive("text_cfg.context_length", t.context_length)?,
            vocab_size: positive("text_cfg.vocab_size", t.vocab_size)?,
            width: positive("text_cfg.width", t.width)?,
            heads: positive("text_cfg.heads", t.heads)?,
            layers: positive("text_cfg.layers", t.layers)?,
            mlp_ratio: t.mlp_ratio,
        };
        divides("text_cfg.width over heads", text.heads, text.width)?;
        for (name, ratio) in [("vision_cfg.mlp_ratio", v.mlp_ratio), ("text_cfg.mlp_ratio", t.mlp_ratio)] {
            if ratio.is_nan() || ratio <= 0.0 {
                return Err(Error::Config(format!("{name} must be positive, got {ratio}")));
            }
        }
        for (name, value) in [("init_logit_scale", raw.init_logit_scale), ("init_logit_bias", raw.init_logit_bias)] {
            if value.is_some_and(|v| !v.is_finite()) {
                return Err(Error::Config(format!("{name} must be finite")));
            }
        }
        Ok(Self {
            embed_dim: positive("embed_dim", raw.embed_dim)?,
            quick_gelu: raw.quick_gelu,
            vision,
            text,
            init_logit_scale: raw.init_logit_scale,
            init_logit_bias: raw.init_logit_bias,
        })
    }
}

/// open_clip's configs of the nine OpenAI models (`src/open_clip/model_configs/*.json`).
const PRESETS: &[(&str, &str)] = &[
    ("RN50", r#"{"embed_dim":1024,"vision_cfg":{"image_size":224,"layers":[3,4,6,3],"width":64,"patch_size":null},"text_cfg":{"context_length":77,"vocab_size":49408,"width":512,"heads":8,"layers":12}}"#),
    ("RN101", r#"{"embed_dim":512,"vision_cfg":{"image_size":224,"layers":[3,4,23,3],"width":64,"patch_size":null},"text_cfg":{"context_length":77,"vocab_size":49408,"width":512,"heads":8,"layers":12}}"#),
    ("RN50x4", r#"{"embed_dim":640,"vision_cfg":{"image_size":288,"layers":[4,6,10,6],"width":80,"patch_size":null},"text_cfg":{"context_length":77,"vocab_size":49408,"width":640,"heads":10,"layers":12}}"#),
    ("RN50x16", r#"{"embed_dim":768,"vision_cfg":{"image_size":384,"layers":[6,8,18,8],"width":96,"patch_size":null},"text_cfg":{"context_length":77,"vocab_size":49408,"width":768,"heads":12,"layers":12}}"#),
    ("RN50x64", r#"{"embed_dim":1024,"vision_cfg":{"image_size":448,"layers":[3,15,36,10],"width":128,"patch_size":null},"text_cfg":{"context_length":77,"vocab_size":49408,"width":1024,"heads":16,"layers":12}}"#),
    ("ViT-B-32", r#"{"embed_dim":512,"vision_cfg":{"image_size":224,"layers":12,"width":768,"patch_size":32},"text_cfg":{"context_length":77,"vocab_size":49408,"width":512,"heads":8,"layers":12}}"#),
    ("ViT-B-16", r#"{"embed_dim":512,"vision_cfg":{"image_size":224,"layers":12,"width":768,"patch_size":16},"text_cfg":{"context_length":77,"vocab_size":49408,"width":512,"heads":8,"layers":12}}"#),
    ("ViT-L-14", r#"{"embed_dim":768,"vision_cfg":{"image_size":224,"layers":24,"width":1024,"patch_size":14},"text_cfg":{"context_length":77,"vocab_size":49408,"width":768,"heads":12,"layers":12}}"#),
    ("ViT-L-14-336", r#"{"embed_dim":768,"vision_cfg":{"image_size":336,"layers":24,"width":1024,"patch_size":14},"text_cfg":{"context_length":77,"vocab_size":49408,"width":768,"heads":12,"layers":12}}"#),
    // Not OpenAI models: the CPU default of `clip train`, sized to learn the built-in dataset in
    // minutes on two cores (64 px scenes, captions under 16 tokens). `tiny` is a ModifiedResNet with
    // one bottleneck per stage (on the built-in data it learns count and position several times
    // faster than the ViT), width 24 and a 2-layer text tower (width 32 with 4 text layers costs
    // nearly twice as much per step for no faster learning per step); `tiny-vit` is a ViT.
    ("tiny", r#"{"embed_dim":128,"vision_cfg":{"image_size":64,"layers":[1,1,1,1],"width":24,"head_width":24},"text_cfg":{"context_length":16,"vocab_size":49408,"width":128,"heads":4,"layers":2}}"#),
    ("tiny-vit", r#"{"embed_dim":128,"vision_cfg":{"image_size":64,"layers":4,"width":128,"patch_size":8,"head_width":32},"text_cfg":{"context_length":32,"vocab_size":49408,"width":128,"heads":4,"layers":4}}"#),
];

impl ClipConfig {
    /// Parses and validates an open_clip model-config JSON.
    pub fn from_json(json: &str) -> Result<Self> {
        let raw: RawConfig = serde_json::from_str(json).map_err(|e| Error::Config(e.to_string()))?;
        raw.try_into()
    }

    /// A preset by open_clip's name: the nine OpenAI models, and each with `-quickgelu`.
    pub fn named(name: &str) -> Result<Self> {
        let (base, quick) = match name.strip_suffix("-quickgelu") {
            Some(base) => (base, true),
            None => (name, false),
        };
        let json = PRESETS.iter().find(|(n, _)| *n == base).map(|(_, json)| *json).ok_or_else(|| Error::UnknownModel {
            name: name.to_owned(),
            known: Self::preset_names().join(", "),
        })?;
        let mut config = Self::from_json(json)?;
        config.quick_gelu |= quick;
        Ok(config)
    }

    /// The config as open_clip model-config JSON (what [`ClipConfig::from_json`] reads).
    pub fn to_json(&self) -> String {
        let vision = match &self.vision {
            VisionConfig::Vit(v) => serde_json::json!({
                "image_size": v.image_size, "layers": v.layers, "width": v.width, "patch_size": v.patch_size,
                "head_width": v.width / v.heads, "mlp_ratio": v.mlp_ratio,
            }),
            VisionConfig::ResNet(r) => serde_json::json!({
                "image_size": r.image_size, "layers": r.layers, "width": r.width, "patch_size": null,
                "head_width": r.width * 32 / r.heads,
            }),
        };
        let t = &self.text;
        let mut json = serde_json::json!({
            "embed_dim": self.embed_dim,
            "quick_gelu": self.quick_gelu,
            "vision_cfg": vision,
            "text_cfg": {"context_length": t.context_length, "vocab_size": t.vocab_size, "width": t.width,
                         "heads": t.heads, "layers": t.layers, "mlp_ratio": t.mlp_ratio},
        });
        for (key, value) in [("init_logit_scale", self.init_logit_scale), ("init_logit_bias", self.init_logit_bias)] {
            if let Some(v) = value {
                json[key] = serde_json::json!(v);
            }
        }
        json.to_string()
    }

    /// Every preset name.
    pub fn preset_names() -> Vec<String> {
        PRESETS.iter().flat_map(|(n, _)| [n.to_string(), format!("{n}-quickgelu")]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_parse_with_openai_shapes() {
        let b32 = ClipConfig::named("ViT-B-32").unwrap();
        assert_eq!(b32.embed_dim, 512);
        assert!(!b32.quick_gelu);
        let VisionConfig::Vit(v) = &b32.vision else { panic!("ViT expected") };
        assert_eq!((v.patch_size, v.width, v.layers, v.heads), (32, 768, 12, 12));
        let rn = ClipConfig::named("RN50-quickgelu").unwrap();
        assert!(rn.quick_gelu);
        let VisionConfig::ResNet(r) = &rn.vision else { panic!("ResNet expected") };
        assert_eq!((r.layers, r.width, r.heads), ([3, 4, 6, 3], 64, 32));
        assert_eq!(ClipConfig::preset_names().len(), 22);
        for name in ClipConfig::preset_names() {
            let config = ClipConfig::named(&name).unwrap();
            assert_eq!(ClipConfig::from_json(&config.to_json()).unwrap(), config, "{name}");
        }
    }

    #[test]
    fn malformed_configs_name_the_problem() {
        let err = ClipConfig::named("ViT-H-14").unwrap_err().to_string();
        assert!(err.contains("ViT-H-14") && err.contains("RN50x64"), "{err}");
        let cases = [
            (r#"{"embed_dim":512,"vision_cfg":{"image_size":224,"layers":12,"width":768,"patch_size":32,"timm_model_name":"x"},"text_cfg":{}}"#, "timm_model_name"),
            (r#"{"embed_dim":512,"vision_cfg":{"image_size":224,"layers":12,"width":768},"text_cfg":{}}"#, "patch_size is required"),
            (r#"{"embed_dim":512,"vision_cfg":{"image_size":225,"layers":12,"width":768,"patch_size":32},"text_cfg":{}}"#, "not a multiple of 32"),
            (r#"{"embed_dim":0,"vision_cfg":{"image_size":224,"layers":12,"width":768,"patch_size":32},"text_cfg":{}}"#, "embed_dim must be positive"),
            (r#"{"embed_dim":512,"vision_cfg":{"image_size":224,"layers":[1,1,1],"width":64},"text_cfg":{}}"#, "layers"),
            (r#"{"embed_dim":512,"vision_cfg":{"image_size":224,"layers":12,"width":768,"patch_size":32},"text_cfg":{"width":100,"heads":8}}"#, "not a multiple of 8"),
            ("not json", "expected"),
        ];
        for (json, needle) in cases {
            let err = ClipConfig::from_json(json).unwrap_err().to_string();
            assert!(err.contains(needle), "{json}: {err}");
        }
    }
}
