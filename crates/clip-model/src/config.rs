//! Model configs: open_clip's model-config JSON (`embed_dim`, `quick_gelu`, `vision_cfg`,
//! `text_cfg`) parsed strictly, validated once into typed configs, and the presets: every open_clip
//! 3.3.0 config whose towers this crate builds (`data/model_configs.json`, generated from the
//! installed open_clip by `scripts/gen_presets.py`) and the project's tiny models.
//!
//! A `Raw*` mirror takes the JSON as written (unknown keys are errors that name the key), then
//! `TryFrom` resolves it: `layers` as a number means a ViT, as four numbers a ModifiedResNet.

use std::sync::OnceLock;

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

/// open_clip 3.3.0's model configs whose towers this crate builds (plain ViT and ModifiedResNet
/// image towers, open_clip's own text transformer), name → config exactly as open_clip ships them,
/// in open_clip's order: `data/model_configs.json`, written by `scripts/gen_presets.py`.
const OPEN_CLIP_CONFIGS: &str = include_str!("../data/model_configs.json");

/// Presets of this project, not open_clip's: the CPU default of `clip train`, sized to learn the
/// built-in dataset in minutes on two cores (64 px scenes, captions under 16 tokens). `tiny` is a
/// ModifiedResNet with one bottleneck per stage (on the built-in data it learns count and position
/// several times faster than the ViT), width 24 and a 2-layer text tower (width 32 with 4 text
/// layers costs nearly twice as much per step for no faster learning per step); `tiny-vit` is a ViT.
const PROJECT_PRESETS: &[(&str, &str)] = &[
    ("tiny", r#"{"embed_dim":128,"vision_cfg":{"image_size":64,"layers":[1,1,1,1],"width":24,"head_width":24},"text_cfg":{"context_length":16,"vocab_size":49408,"width":128,"heads":4,"layers":2}}"#),
    ("tiny-vit", r#"{"embed_dim":128,"vision_cfg":{"image_size":64,"layers":4,"width":128,"patch_size":8,"head_width":32},"text_cfg":{"context_length":32,"vocab_size":49408,"width":128,"heads":4,"layers":4}}"#),
];

/// A JSON object's members in the order written (serde_json's `Map` sorts them unless a crate in
/// the build turns on `preserve_order`).
struct Ordered(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of model configs")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Ordered, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Ordered(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

/// Every preset, parsed once: open_clip's configs, then the project's.
fn presets() -> &'static [(String, ClipConfig)] {
    static PRESETS: OnceLock<Vec<(String, ClipConfig)>> = OnceLock::new();
    PRESETS.get_or_init(|| {
        let Ordered(configs) = serde_json::from_str(OPEN_CLIP_CONFIGS).expect("data/model_configs.json is checked by the tests");
        let open_clip = configs.into_iter().map(|(name, json)| {
            let config = serde_json::from_value::<RawConfig>(json).map_err(|e| Error::Config(e.to_string())).and_then(ClipConfig::try_from);
            let config = config.unwrap_or_else(|e| panic!("data/model_configs.json: {name}: {e}"));
            (name, config)
        });
        let project = PROJECT_PRESETS.iter().map(|(name, json)| {
            let config = ClipConfig::from_json(json).unwrap_or_else(|e| panic!("preset {name}: {e}"));
            ((*name).to_owned(), config)
        });
        open_clip.chain(project).collect()
    })
}

fn preset(name: &str) -> Option<&'static ClipConfig> {
    presets().iter().find(|(n, _)| n == name).map(|(_, config)| config)
}

impl ClipConfig {
    /// Parses and validates an open_clip model-config JSON.
    pub fn from_json(json: &str) -> Result<Self> {
        let raw: RawConfig = serde_json::from_str(json).map_err(|e| Error::Config(e.to_string()))?;
        raw.try_into()
    }

    /// A preset by open_clip's name (every open_clip 3.3.0 config this crate builds, `ViT-B-32`,
    /// `ViT-H-14-quickgelu`, …, and the project's `tiny` and `tiny-vit`). A name with a config of
    /// its own is that config; otherwise `NAME-quickgelu` is preset `NAME` with QuickGELU.
    pub fn named(name: &str) -> Result<Self> {
        if let Some(config) = preset(name) {
            return Ok(config.clone());
        }
        match name.strip_suffix("-quickgelu").filter(|base| !base.ends_with("-quickgelu")).and_then(preset) {
            Some(config) => Ok(Self { quick_gelu: true, ..config.clone() }),
            None => Err(Error::UnknownModel {
                name: name.to_owned(),
                known: format!("{} (each also as NAME-quickgelu)", presets().iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")),
            }),
        }
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

    /// Every name [`ClipConfig::named`] accepts: each preset, followed by its `-quickgelu` form
    /// where that has no config of its own.
    pub fn preset_names() -> Vec<String> {
        let mut names = Vec::new();
        for (name, _) in presets() {
            names.push(name.clone());
            let quick = format!("{name}-quickgelu");
            if !name.ends_with("-quickgelu") && preset(&quick).is_none() {
                names.push(quick);
            }
        }
        names
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
        // 41 open_clip configs (12 of them `-quickgelu` configs of their own) and the 2 tiny
        // presets; the 17 + 2 plain names without a `-quickgelu` config get one by the suffix rule.
        assert_eq!(presets().len(), 43);
        assert_eq!(ClipConfig::preset_names().len(), 62);
        for name in ClipConfig::preset_names() {
            let config = ClipConfig::named(&name).unwrap();
            assert_eq!(config.quick_gelu, name.ends_with("-quickgelu"), "{name}");
            assert_eq!(ClipConfig::from_json(&config.to_json()).unwrap(), config, "{name}");
        }
    }

    #[test]
    fn open_clip_configs_keep_their_shapes_and_order() {
        let names: Vec<&str> = presets().iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(&names[..3], ["RN50", "RN50-quickgelu", "RN50x4"]);
        assert_eq!(&names[names.len() - 2..], ["tiny", "tiny-vit"]);
        // head_width and mlp_ratio (g: 88 and 4.3637, bigG: 104 and 4.9231).
        for (name, width, heads, layers, ratio) in
            [("ViT-g-14", 1408, 16, 40, 4.3637), ("ViT-bigG-14", 1664, 16, 48, 4.9231), ("ViT-H-14-378", 1280, 16, 32, 4.0)]
        {
            let VisionConfig::Vit(v) = ClipConfig::named(name).unwrap().vision else { panic!("{name}: ViT expected") };
            assert_eq!((v.width, v.heads, v.layers, v.mlp_ratio), (width, heads, layers, ratio), "{name}");
        }
        // A `-quickgelu` name with its own config is that config (here identical to the base but
        // for the flag); one without is the base with QuickGELU.
        let own = ClipConfig::named("ViT-H-14-quickgelu").unwrap();
        assert_eq!(own, ClipConfig { quick_gelu: true, ..ClipConfig::named("ViT-H-14").unwrap() });
        let derived = ClipConfig::named("ViT-B-16-plus-240-quickgelu").unwrap();
        assert_eq!(derived, ClipConfig { quick_gelu: true, ..ClipConfig::named("ViT-B-16-plus-240").unwrap() });
        assert_eq!(derived.vision.image_size(), 240);
        assert!(ClipConfig::named("ViT-B-32-quickgelu-quickgelu").is_err());
    }

    #[test]
    fn malformed_configs_name_the_problem() {
        let err = ClipConfig::named("ViT-SO400M-14-SigLIP").unwrap_err().to_string();
        assert!(err.contains("ViT-SO400M-14-SigLIP") && err.contains("ViT-bigG-14") && err.contains("tiny-vit"), "{err}");
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
