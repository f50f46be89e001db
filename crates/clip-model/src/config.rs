//! Model configs: open_clip's model-config JSON (`embed_dim`, `quick_gelu`, `vision_cfg`,
//! `text_cfg`, CoCa's `multimodal_cfg` kept but not built) parsed strictly, validated once into
//! typed configs, and the presets: every open_clip 3.3.0 config whose towers this crate builds
//! (`data/model_configs.json`, generated from the installed open_clip by `scripts/gen_presets.py`,
//! whose mirror of this parser also writes the configs left out, which the tests refuse) and the
//! project's tiny models.
//!
//! A `Raw*` mirror takes the JSON as written (unknown keys are errors that name the key), then
//! `TryFrom` resolves it: `layers` as a number means a ViT, as four numbers a ModifiedResNet.

use std::sync::OnceLock;

use serde::Deserialize;

use crate::{Error, Result};

/// A whole CLIP model.
///
/// ```
/// let config = clip_model::ClipConfig::named("ViT-B-32")?;
/// assert_eq!((config.embed_dim, config.vision.image_size(), config.text.context_length), (512, 224, 77));
/// let json = config.to_json(); // open_clip's model-config JSON, read back by from_json
/// assert_eq!(clip_model::ClipConfig::from_json(&json)?, config);
/// # Ok::<(), clip_model::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ClipConfig {
    /// Width of the shared embedding space.
    pub embed_dim: i64,
    /// QuickGELU (`x·σ(1.702x)`, OpenAI's weights) rather than GELU, in open_clip's own towers
    /// (a timm tower's activation is its own, as in open_clip).
    pub quick_gelu: bool,
    /// open_clip's `custom_text`: the text tower's keys sit under `text.` rather than at the root
    /// (`CustomTextCLIP`; SigLIP, CoCa). A `multimodal_cfg` implies it, as open_clip's CoCa has
    /// them there whatever the flag says.
    pub custom_text: bool,
    /// The image tower.
    pub vision: VisionConfig,
    /// The text tower.
    pub text: TextConfig,
    /// Initial `logit_scale` (log of the temperature's inverse); `None`: CLIP's ln(1/0.07).
    pub init_logit_scale: Option<f64>,
    /// Initial logit bias; `Some` gives the model a learnable `logit_bias` (SigLIP models).
    pub init_logit_bias: Option<f64>,
    /// CoCa's `multimodal_cfg`: the captioning decoder, not built. Kept as written so that
    /// [`ClipConfig::to_json`] gives it back, and so that loading weights expects the decoder's
    /// keys (`text_decoder.*`) and sets them aside ([`ClipConfig::unbuilt_prefixes`]).
    pub multimodal_cfg: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The image tower's family.
#[derive(Debug, Clone, PartialEq)]
pub enum VisionConfig {
    /// open_clip's Vision Transformer.
    Vit(VitConfig),
    /// OpenAI's modified ResNet with attention pooling.
    ResNet(ResNetConfig),
    /// timm's VisionTransformer as open_clip's `TimmModel` wraps it (`visual.trunk.*`).
    TimmVit(TimmVitConfig),
}

impl VisionConfig {
    /// Input resolution (square).
    pub fn image_size(&self) -> i64 {
        match self {
            Self::Vit(c) => c.image_size,
            Self::ResNet(c) => c.image_size,
            Self::TimmVit(c) => c.image_size,
        }
    }

    /// The fraction of patch tokens dropped in training (0 for a ModifiedResNet, which has none).
    pub fn patch_dropout(&self) -> f64 {
        match self {
            Self::Vit(c) => c.patch_dropout,
            Self::ResNet(_) => 0.0,
            Self::TimmVit(c) => c.patch_dropout,
        }
    }

    /// Sets the training-time patch dropout (open_clip's `force_patch_dropout`); an error for a
    /// ModifiedResNet, or outside `[0, 1)`.
    pub fn set_patch_dropout(&mut self, p: f64) -> Result<()> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::Config(format!("patch dropout must be in [0, 1), got {p}")));
        }
        match self {
            Self::Vit(c) => c.patch_dropout = p,
            Self::TimmVit(c) => c.patch_dropout = p,
            Self::ResNet(_) if p == 0.0 => {}
            Self::ResNet(_) => return Err(Error::Config("a ModifiedResNet has no patch tokens to drop".into())),
        }
        Ok(())
    }

    /// The tokens patch dropout chooses among (the patches; a ViT's class token is always kept),
    /// `None` for a ModifiedResNet.
    pub fn patch_tokens(&self) -> Option<i64> {
        match self {
            Self::Vit(c) => Some((c.image_size / c.patch_size).pow(2)),
            Self::ResNet(_) => None,
            Self::TimmVit(c) => Some((c.image_size / c.patch_size).pow(2)),
        }
    }
}

/// GELU's form, open_clip's `act_kwargs` (`{"approximate": "tanh"}`: SigLIP2's text tower).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GeluApproximate {
    /// Exact, `x·Φ(x)`.
    #[default]
    None,
    /// The tanh approximation.
    Tanh,
}

/// What open_clip's ViT pools (`vision_cfg.pool_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VitPool {
    /// The class token.
    #[default]
    Tok,
    /// The mean of the other tokens (CLIPA).
    Avg,
}

/// CoCa's attentional pooler over the image tokens (`attentional_pool`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionalPoolConfig {
    /// Learnt queries (`attn_pooler_queries`).
    pub queries: i64,
    /// Heads (`attn_pooler_heads`).
    pub heads: i64,
}

/// An open_clip Vision Transformer tower.
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
    /// LayerNorm before the transformer (`no_ln_pre` turns it off: CLIPA).
    pub ln_pre: bool,
    /// What is pooled.
    pub pool: VitPool,
    /// `ln_post` after pooling rather than on every token (CLIPA; ignored with an attentional pool,
    /// as in open_clip).
    pub final_ln_after_pool: bool,
    /// CoCa's attentional pooler, `ln_post` and pooling then act on its outputs.
    pub attentional_pool: Option<AttentionalPoolConfig>,
    /// LayerScale's initial value (`ls_1.gamma`, `ls_2.gamma`), `None`: no LayerScale.
    pub ls_init_value: Option<f64>,
    /// open_clip returns the tokens too; features are the same, so this is only kept.
    pub output_tokens: bool,
    /// LayerNorm eps (`norm_kwargs`).
    pub norm_eps: f64,
    /// GELU's form (`act_kwargs`).
    pub gelu: GeluApproximate,
    /// The fraction of patch tokens dropped in training (`patch_dropout`, FLIP): the class token
    /// and `max(1, ⌊patches · (1 − p)⌋)` patches are kept; 0: off. Inference never drops.
    pub patch_dropout: f64,
}

impl Default for VitConfig {
    /// open_clip's `CLIPVisionCfg` defaults.
    fn default() -> Self {
        Self {
            image_size: 224,
            patch_size: 16,
            width: 768,
            layers: 12,
            heads: 12,
            mlp_ratio: 4.0,
            ln_pre: true,
            pool: VitPool::Tok,
            final_ln_after_pool: false,
            attentional_pool: None,
            ls_init_value: None,
            output_tokens: false,
            norm_eps: 1e-5,
            gelu: GeluApproximate::None,
            patch_dropout: 0.0,
        }
    }
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

/// timm's VisionTransformer in a SigLIP configuration: no class token, the latent-query attention
/// pool (`global_pool='map'`), no head (`timm_proj: "none"`), LayerNorm eps 1e-6. The sizes come
/// from the timm model name ([`TimmVitConfig::named`]), as in timm.
#[derive(Debug, Clone, PartialEq)]
pub struct TimmVitConfig {
    /// timm's model name (`vit_base_patch16_siglip_224`, …).
    pub model_name: String,
    /// Input resolution (square; the model's own).
    pub image_size: i64,
    /// Patch side.
    pub patch_size: i64,
    /// Residual width (`embed_dim` in timm).
    pub width: i64,
    /// Residual blocks (`depth`).
    pub layers: i64,
    /// Attention heads (`num_heads`), also the attention pool's.
    pub heads: i64,
    /// MLP hidden width over residual width (blocks and the attention pool's MLP).
    pub mlp_ratio: f64,
    /// GELU's form (`act_layer='gelu_tanh'` in some SigLIP2 towers).
    pub gelu: GeluApproximate,
    /// open_clip's head dropout `timm_drop`: with `timm_proj: "none"` there is no head, and open_clip
    /// builds no dropout layer for it, so the value is only kept.
    pub timm_drop: f64,
    /// The fraction of patch tokens dropped in training (`patch_dropout`, passed to timm as
    /// `patch_drop_rate`; there is no class token, so every token may be dropped); 0: off.
    pub patch_dropout: f64,
}

/// Which token's features the text tower pools (`text_cfg.pool_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TextPool {
    /// The highest id of each row (OpenAI's end-of-text token, 49407).
    #[default]
    Argmax,
    /// The first position.
    First,
    /// The last position (SigLIP, CLIPA).
    Last,
    /// The first occurrence of `eos_id` (MetaCLIP 2); position 0 if there is none, as in open_clip.
    Eos,
}

/// The text projection (`text_cfg.proj_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TextProjection {
    /// `text_projection`, a `[width, embed_dim]` matrix, or a `nn.Linear` with `proj_bias`.
    #[default]
    Linear,
    /// None: the pooled features are the output (width must be `embed_dim`).
    None,
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
    /// Causal attention (`no_causal_mask` turns it off: SigLIP, CLIPA).
    pub causal: bool,
    /// What is pooled.
    pub pool: TextPool,
    /// The end-of-text id [`TextPool::Eos`] looks for.
    pub eos_id: i64,
    /// The padding id; it matters only with `embed_cls`, whose mask hides padding.
    pub pad_id: i64,
    /// The projection.
    pub projection: TextProjection,
    /// The projection is an `nn.Linear` with a bias (`text_projection.weight`/`.bias`).
    pub proj_bias: bool,
    /// CoCa's class embedding `cls_emb`, appended after the text and pooled.
    pub embed_cls: bool,
    /// LayerScale's initial value, `None`: no LayerScale.
    pub ls_init_value: Option<f64>,
    /// open_clip returns the tokens too; features are the same, so this is only kept.
    pub output_tokens: bool,
    /// LayerNorm eps (`norm_kwargs`).
    pub norm_eps: f64,
    /// GELU's form (`act_kwargs`).
    pub gelu: GeluApproximate,
    /// The Hugging Face tokenizer the model uses (`hf_tokenizer_name`), kept for the tokenizer.
    pub hf_tokenizer_name: Option<String>,
    /// The tokenizer's options (`tokenizer_kwargs`), kept as written for the tokenizer.
    pub tokenizer_kwargs: Option<serde_json::Value>,
}

impl Default for TextConfig {
    /// open_clip's `CLIPTextCfg` defaults.
    fn default() -> Self {
        Self {
            context_length: 77,
            vocab_size: 49408,
            width: 512,
            heads: 8,
            layers: 12,
            mlp_ratio: 4.0,
            causal: true,
            pool: TextPool::Argmax,
            eos_id: 2,
            pad_id: 0,
            projection: TextProjection::Linear,
            proj_bias: false,
            embed_cls: false,
            ls_init_value: None,
            output_tokens: false,
            norm_eps: 1e-5,
            gelu: GeluApproximate::None,
            hf_tokenizer_name: None,
            tokenizer_kwargs: None,
        }
    }
}

/// A string option of open_clip's configs read into an enum; a value this crate does not build is
/// an error naming the key and the values it takes.
macro_rules! string_option {
    ($raw:ident => $ty:ty, $key:literal, { $($name:literal => $value:expr),+ $(,)? }) => {
        #[derive(Deserialize)]
        #[serde(try_from = "String")]
        struct $raw($ty);

        impl TryFrom<String> for $raw {
            type Error = String;
            fn try_from(s: String) -> std::result::Result<Self, String> {
                match s.as_str() {
                    $($name => Ok(Self($value)),)+
                    other => Err(format!(concat!($key, ": {:?} is not built here (", $($name, " "),+, ")"), other)),
                }
            }
        }
    };
}

string_option!(RawVitPool => VitPool, "vision_cfg.pool_type", { "tok" => VitPool::Tok, "avg" => VitPool::Avg });
string_option!(RawTextPool => TextPool, "text_cfg.pool_type", {
    "argmax" => TextPool::Argmax, "first" => TextPool::First, "last" => TextPool::Last, "eos" => TextPool::Eos,
});
string_option!(RawTextProjection => TextProjection, "text_cfg.proj_type", { "linear" => TextProjection::Linear, "none" => TextProjection::None });
string_option!(RawApproximate => GeluApproximate, "act_kwargs.approximate", { "none" => GeluApproximate::None, "tanh" => GeluApproximate::Tanh });

/// `act_kwargs`: GELU's keyword arguments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawActKwargs {
    approximate: RawApproximate,
}

/// `norm_kwargs`: LayerNorm's keyword arguments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNormKwargs {
    eps: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    embed_dim: i64,
    #[serde(default)]
    quick_gelu: bool,
    #[serde(default)]
    custom_text: bool,
    #[serde(default)]
    init_logit_scale: Option<f64>,
    #[serde(default)]
    init_logit_bias: Option<f64>,
    #[serde(default)]
    multimodal_cfg: Option<serde_json::Value>,
    vision_cfg: RawVision,
    text_cfg: RawText,
}

#[derive(Deserialize)]
#[serde(untagged, expecting = "vision_cfg.layers: a number (ViT) or four numbers (ModifiedResNet)")]
enum RawLayers {
    Vit(i64),
    ResNet([i64; 4]),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawVision {
    image_size: Option<i64>,
    layers: Option<RawLayers>,
    width: Option<i64>,
    patch_size: Option<i64>,
    head_width: Option<i64>,
    mlp_ratio: Option<f64>,
    ls_init_value: Option<f64>,
    no_ln_pre: Option<bool>,
    pool_type: Option<RawVitPool>,
    final_ln_after_pool: Option<bool>,
    attentional_pool: Option<serde_json::Value>,
    attn_pooler_queries: Option<i64>,
    attn_pooler_heads: Option<i64>,
    output_tokens: Option<bool>,
    act_kwargs: Option<RawActKwargs>,
    norm_kwargs: Option<RawNormKwargs>,
    patch_dropout: Option<f64>,
    timm_model_name: Option<String>,
    timm_model_pretrained: Option<bool>,
    timm_pool: Option<String>,
    timm_proj: Option<String>,
    timm_proj_bias: Option<bool>,
    timm_drop: Option<f64>,
    timm_drop_path: Option<f64>,
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
    #[serde(default)]
    no_causal_mask: bool,
    #[serde(default)]
    pool_type: Option<RawTextPool>,
    #[serde(default)]
    eos_id: Option<i64>,
    #[serde(default)]
    pad_id: Option<i64>,
    #[serde(default)]
    proj_type: Option<RawTextProjection>,
    #[serde(default)]
    proj_bias: bool,
    #[serde(default)]
    embed_cls: bool,
    #[serde(default)]
    ls_init_value: Option<f64>,
    #[serde(default)]
    output_tokens: bool,
    #[serde(default)]
    act_kwargs: Option<RawActKwargs>,
    #[serde(default)]
    norm_kwargs: Option<RawNormKwargs>,
    #[serde(default)]
    hf_tokenizer_name: Option<String>,
    #[serde(default)]
    tokenizer_kwargs: Option<serde_json::Value>,
}

// open_clip's CLIPTextCfg defaults.
fn default_mlp_ratio() -> f64 {
    4.0
}
fn default_context_length() -> i64 {
    TextConfig::default().context_length
}
fn default_vocab_size() -> i64 {
    TextConfig::default().vocab_size
}
fn default_text_width() -> i64 {
    TextConfig::default().width
}
fn default_text_heads() -> i64 {
    TextConfig::default().heads
}
fn default_text_layers() -> i64 {
    TextConfig::default().layers
}

fn positive(name: &str, value: i64) -> Result<i64> {
    if value > 0 { Ok(value) } else { Err(Error::Config(format!("{name} must be positive, got {value}"))) }
}

fn positive_f64(name: &str, value: f64) -> Result<f64> {
    if value.is_finite() && value > 0.0 { Ok(value) } else { Err(Error::Config(format!("{name} must be positive, got {value}"))) }
}

fn divides(what: &str, divisor: i64, value: i64) -> Result<()> {
    if value % divisor == 0 {
        Ok(())
    } else {
        Err(Error::Config(format!("{what}: {value} is not a multiple of {divisor}")))
    }
}

fn gelu_of(section: &str, kwargs: Option<RawActKwargs>, quick_gelu: bool) -> Result<GeluApproximate> {
    match kwargs {
        None => Ok(GeluApproximate::None),
        // open_clip passes them to QuickGELU, which takes none.
        Some(_) if quick_gelu => Err(Error::Config(format!("{section}.act_kwargs: QuickGELU takes no arguments (quick_gelu is set)"))),
        Some(k) => Ok(k.approximate.0),
    }
}

fn eps_of(section: &str, kwargs: Option<RawNormKwargs>, default: f64) -> Result<f64> {
    kwargs.map_or(Ok(default), |k| positive_f64(&format!("{section}.norm_kwargs.eps"), k.eps))
}

/// Keys given that the tower being built does not read, named in one error.
fn none_of(tower: &str, keys: &[(&str, bool)]) -> Result<()> {
    let given: Vec<&str> = keys.iter().filter(|(_, set)| *set).map(|(k, _)| *k).collect();
    if given.is_empty() {
        Ok(())
    } else {
        Err(Error::Config(format!("vision_cfg.{}: not read for {tower}", given.join(", vision_cfg."))))
    }
}

fn timm_vision(v: RawVision, name: String) -> Result<VisionConfig> {
    none_of("a timm tower (timm_model_name fixes the architecture)", &[
        ("layers", v.layers.is_some()),
        ("width", v.width.is_some()),
        ("patch_size", v.patch_size.is_some()),
        ("head_width", v.head_width.is_some()),
        ("mlp_ratio", v.mlp_ratio.is_some()),
        ("ls_init_value", v.ls_init_value.is_some()),
        ("no_ln_pre", v.no_ln_pre.is_some()),
        ("pool_type", v.pool_type.is_some()),
        ("final_ln_after_pool", v.final_ln_after_pool.is_some()),
        ("attentional_pool", v.attentional_pool.is_some()),
        ("attn_pooler_queries", v.attn_pooler_queries.is_some()),
        ("attn_pooler_heads", v.attn_pooler_heads.is_some()),
        ("output_tokens", v.output_tokens.is_some()),
        ("act_kwargs", v.act_kwargs.is_some()),
        ("norm_kwargs", v.norm_kwargs.is_some()),
    ])?;
    let mut c = TimmVitConfig::named(&name)
        .ok_or_else(|| Error::Config(format!("vision_cfg.timm_model_name: {name:?} is not built here ({})", TimmVitConfig::NAMES.join(", "))))?;
    if v.timm_model_pretrained == Some(true) {
        return Err(Error::Config("vision_cfg.timm_model_pretrained: timm's ImageNet weights are not fetched; load the model's own weights".into()));
    }
    // open_clip's defaults are "avg" and "linear": other heads than SigLIP's.
    if v.timm_pool.as_deref() != Some("map") {
        return Err(Error::Config(format!("vision_cfg.timm_pool: {:?} is not built here (map)", v.timm_pool.as_deref().unwrap_or("avg"))));
    }
    if v.timm_proj.as_deref() != Some("none") {
        return Err(Error::Config(format!("vision_cfg.timm_proj: {:?} is not built here (none)", v.timm_proj.as_deref().unwrap_or("linear"))));
    }
    if v.timm_proj_bias == Some(true) {
        return Err(Error::Config("vision_cfg.timm_proj_bias: there is no projection (timm_proj is none)".into()));
    }
    // Stochastic depth changes training; the model here has no dropout of any kind.
    if v.timm_drop_path.is_some_and(|p| p != 0.0) {
        return Err(Error::Config("vision_cfg.timm_drop_path: stochastic depth is not built here (0 or null)".into()));
    }
    c.timm_drop = v.timm_drop.unwrap_or(0.0);
    c.patch_dropout = patch_dropout_of(v.patch_dropout)?;
    if !(0.0..1.0).contains(&c.timm_drop) {
        return Err(Error::Config(format!("vision_cfg.timm_drop must be in [0, 1), got {}", c.timm_drop)));
    }
    if let Some(size) = v.image_size
        && size != c.image_size
    {
        // open_clip does not pass the size to timm, whose model takes only its own.
        return Err(Error::Config(format!("vision_cfg.image_size: {name} takes {} px, not {size}", c.image_size)));
    }
    Ok(VisionConfig::TimmVit(c))
}

fn open_clip_vision(v: RawVision, quick_gelu: bool) -> Result<VisionConfig> {
    none_of("open_clip's own towers (no timm_model_name)", &[
        ("timm_model_pretrained", v.timm_model_pretrained.is_some()),
        ("timm_pool", v.timm_pool.is_some()),
        ("timm_proj", v.timm_proj.is_some()),
        ("timm_proj_bias", v.timm_proj_bias.is_some()),
        ("timm_drop", v.timm_drop.is_some()),
        ("timm_drop_path", v.timm_drop_path.is_some()),
    ])?;
    let image_size = positive("vision_cfg.image_size", v.image_size.unwrap_or(224))?;
    let width = positive("vision_cfg.width", v.width.ok_or_else(|| Error::Config("vision_cfg.width is required".into()))?)?;
    let head_width = positive("vision_cfg.head_width", v.head_width.unwrap_or(64))?;
    let layers = v.layers.ok_or_else(|| Error::Config("vision_cfg.layers is required".into()))?;
    match layers {
        RawLayers::Vit(layers) => {
            let patch_size = v
                .patch_size
                .ok_or_else(|| Error::Config("vision_cfg.patch_size is required for a ViT (layers is a number)".into()))?;
            positive("vision_cfg.patch_size", patch_size)?;
            divides("vision_cfg.image_size over patch_size", patch_size, image_size)?;
            divides("vision_cfg.width over head_width", head_width, width)?;
            let attentional_pool = match v.attentional_pool {
                Some(serde_json::Value::Bool(true)) => {
                    let heads = positive("vision_cfg.attn_pooler_heads", v.attn_pooler_heads.unwrap_or(8))?;
                    Some(AttentionalPoolConfig { queries: positive("vision_cfg.attn_pooler_queries", v.attn_pooler_queries.unwrap_or(256))?, heads })
                }
                // open_clip's untested two-pooler forms (`attn_pool_contrastive`), in no config.
                Some(other) if !other.is_boolean() => {
                    return Err(Error::Config(format!(
                        "vision_cfg.attentional_pool: {other} is not built (true or false; open_clip's \"parallel\" and \"cascade\" poolers are not)"
                    )));
                }
                _ => {
                    none_of("a ViT without attentional_pool", &[
                        ("attn_pooler_queries", v.attn_pooler_queries.is_some()),
                        ("attn_pooler_heads", v.attn_pooler_heads.is_some()),
                    ])?;
                    None
                }
            };
            let defaults = VitConfig::default();
            Ok(VisionConfig::Vit(VitConfig {
                image_size,
                patch_size,
                width,
                layers: positive("vision_cfg.layers", layers)?,
                heads: width / head_width,
                mlp_ratio: positive_f64("vision_cfg.mlp_ratio", v.mlp_ratio.unwrap_or(4.0))?,
                ln_pre: !v.no_ln_pre.unwrap_or(false),
                pool: v.pool_type.map_or(defaults.pool, |p| p.0),
                final_ln_after_pool: v.final_ln_after_pool.unwrap_or(false),
                attentional_pool,
                ls_init_value: v.ls_init_value.map(|x| finite("vision_cfg.ls_init_value", x)).transpose()?,
                output_tokens: v.output_tokens.unwrap_or(false),
                norm_eps: eps_of("vision_cfg", v.norm_kwargs, defaults.norm_eps)?,
                gelu: gelu_of("vision_cfg", v.act_kwargs, quick_gelu)?,
                patch_dropout: patch_dropout_of(v.patch_dropout)?,
            }))
        }
        RawLayers::ResNet(layers) => {
            none_of("a ModifiedResNet", &[
                ("mlp_ratio", v.mlp_ratio.is_some_and(|r| r != 4.0)),
                ("ls_init_value", v.ls_init_value.is_some()),
                ("no_ln_pre", v.no_ln_pre.is_some()),
                ("pool_type", v.pool_type.is_some()),
                ("final_ln_after_pool", v.final_ln_after_pool.is_some()),
                ("attentional_pool", v.attentional_pool.is_some()),
                ("attn_pooler_queries", v.attn_pooler_queries.is_some()),
                ("attn_pooler_heads", v.attn_pooler_heads.is_some()),
                ("output_tokens", v.output_tokens.is_some()),
                ("act_kwargs", v.act_kwargs.is_some()),
                ("norm_kwargs", v.norm_kwargs.is_some()),
                // open_clip's ModifiedResNet has no tokens to drop (it ignores the key).
                ("patch_dropout", v.patch_dropout.is_some_and(|p| p != 0.0)),
            ])?;
            if v.patch_size.is_some() {
                return Err(Error::Config("vision_cfg.patch_size must be null for a ModifiedResNet".into()));
            }
            for (i, &n) in layers.iter().enumerate() {
                positive(&format!("vision_cfg.layers[{i}]"), n)?;
            }
            divides("vision_cfg.image_size", 32, image_size)?;
            divides("vision_cfg.width · 32 over head_width", head_width, width * 32)?;
            Ok(VisionConfig::ResNet(ResNetConfig { image_size, layers, width, heads: width * 32 / head_width }))
        }
    }
}

/// `vision_cfg.patch_dropout`, in `[0, 1)` as open_clip's `PatchDropout` asserts.
fn patch_dropout_of(value: Option<f64>) -> Result<f64> {
    match value.unwrap_or(0.0) {
        p if (0.0..1.0).contains(&p) => Ok(p),
        p => Err(Error::Config(format!("vision_cfg.patch_dropout must be in [0, 1), got {p}"))),
    }
}

fn finite(name: &str, value: f64) -> Result<f64> {
    if value.is_finite() { Ok(value) } else { Err(Error::Config(format!("{name} must be finite"))) }
}

fn text(t: RawText, quick_gelu: bool) -> Result<TextConfig> {
    let defaults = TextConfig::default();
    let pool = t.pool_type.map_or(defaults.pool, |p| p.0);
    if t.eos_id.is_some() && pool != TextPool::Eos {
        return Err(Error::Config("text_cfg.eos_id: read only with pool_type \"eos\"".into()));
    }
    let text = TextConfig {
        context_length: positive("text_cfg.context_length", t.context_length)?,
        vocab_size: positive("text_cfg.vocab_size", t.vocab_size)?,
        width: positive("text_cfg.width", t.width)?,
        heads: positive("text_cfg.heads", t.heads)?,
        layers: positive("text_cfg.layers", t.layers)?,
        mlp_ratio: positive_f64("text_cfg.mlp_ratio", t.mlp_ratio)?,
        causal: !t.no_causal_mask,
        pool,
        eos_id: t.eos_id.unwrap_or(defaults.eos_id),
        pad_id: t.pad_id.unwrap_or(defaults.pad_id),
        projection: t.proj_type.map_or(defaults.projection, |p| p.0),
        proj_bias: t.proj_bias,
        embed_cls: t.embed_cls,
        ls_init_value: t.ls_init_value.map(|x| finite("text_cfg.ls_init_value", x)).transpose()?,
        output_tokens: t.output_tokens,
        norm_eps: eps_of("text_cfg", t.norm_kwargs, defaults.norm_eps)?,
        gelu: gelu_of("text_cfg", t.act_kwargs, quick_gelu)?,
        hf_tokenizer_name: t.hf_tokenizer_name,
        tokenizer_kwargs: t.tokenizer_kwargs,
    };
    divides("text_cfg.width over heads", text.heads, text.width)?;
    if text.embed_cls && text.pool != TextPool::Argmax {
        // open_clip pools the class embedding then, whatever pool_type says.
        return Err(Error::Config("text_cfg.pool_type: embed_cls pools the class embedding; leave pool_type unset".into()));
    }
    if text.proj_bias && text.projection == TextProjection::None {
        return Err(Error::Config("text_cfg.proj_bias: there is no projection (proj_type is none)".into()));
    }
    Ok(text)
}

impl TryFrom<RawConfig> for ClipConfig {
    type Error = Error;

    fn try_from(raw: RawConfig) -> Result<Self> {
        let embed_dim = positive("embed_dim", raw.embed_dim)?;
        let vision = match raw.vision_cfg.timm_model_name.clone() {
            Some(name) => timm_vision(raw.vision_cfg, name)?,
            None => open_clip_vision(raw.vision_cfg, raw.quick_gelu)?,
        };
        let text = text(raw.text_cfg, raw.quick_gelu)?;
        if text.projection == TextProjection::None && text.width != embed_dim {
            return Err(Error::Config(format!("text_cfg.proj_type none: the width {} must be embed_dim {embed_dim}", text.width)));
        }
        if let VisionConfig::TimmVit(v) = &vision
            && v.width != embed_dim
        {
            return Err(Error::Config(format!("vision_cfg.timm_proj none: {}'s width {} must be embed_dim {embed_dim}", v.model_name, v.width)));
        }
        let multimodal_cfg = match raw.multimodal_cfg {
            None => None,
            Some(serde_json::Value::Object(map)) => Some(map),
            Some(other) => return Err(Error::Config(format!("multimodal_cfg: an object (CoCa's decoder config) expected, got {other}"))),
        };
        // open_clip's CoCa keeps its text tower under `text.` whatever `custom_text` says.
        let custom_text = raw.custom_text || multimodal_cfg.is_some();
        if text.embed_cls && !custom_text {
            // open_clip's CLIP copies the tower's parts to the root but not cls_emb.
            return Err(Error::Config("text_cfg.embed_cls: only with custom_text (open_clip's CLIP drops cls_emb)".into()));
        }
        for (name, value) in [("init_logit_scale", raw.init_logit_scale), ("init_logit_bias", raw.init_logit_bias)] {
            if value.is_some_and(|v| !v.is_finite()) {
                return Err(Error::Config(format!("{name} must be finite")));
            }
        }
        Ok(Self {
            embed_dim,
            quick_gelu: raw.quick_gelu,
            custom_text,
            vision,
            text,
            init_logit_scale: raw.init_logit_scale,
            init_logit_bias: raw.init_logit_bias,
            multimodal_cfg,
        })
    }
}

/// open_clip 3.3.0's model configs whose towers this crate builds (open_clip's ViT and
/// ModifiedResNet, timm's SigLIP ViTs, open_clip's own text transformer with its options, CoCa's
/// contrastive towers), name → config exactly as open_clip ships them,
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
    /// its own is that config; otherwise `NAME-quickgelu` is preset `NAME` with QuickGELU, where
    /// that builds (not for a config with `act_kwargs`, which QuickGELU does not take: SigLIP2's
    /// text towers).
    pub fn named(name: &str) -> Result<Self> {
        if let Some(config) = preset(name) {
            return Ok(config.clone());
        }
        match name.strip_suffix("-quickgelu").filter(|base| !base.ends_with("-quickgelu")).and_then(preset) {
            Some(config) => config.with_quick_gelu().ok_or_else(|| {
                Error::Config(format!("{name}: QuickGELU takes no arguments, and the config sets act_kwargs"))
            }),
            None => Err(Error::UnknownModel {
                name: name.to_owned(),
                known: format!("{} (each also as NAME-quickgelu)", presets().iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")),
            }),
        }
    }

    /// The config as open_clip model-config JSON (what [`ClipConfig::from_json`] reads); options
    /// at open_clip's defaults are left out.
    pub fn to_json(&self) -> String {
        let approximate = |g: GeluApproximate| match g {
            GeluApproximate::None => "none",
            GeluApproximate::Tanh => "tanh",
        };
        let vision = match &self.vision {
            VisionConfig::Vit(v) => {
                let mut json = serde_json::json!({
                    "image_size": v.image_size, "layers": v.layers, "width": v.width, "patch_size": v.patch_size,
                    "head_width": v.width / v.heads, "mlp_ratio": v.mlp_ratio,
                });
                let d = VitConfig::default();
                let mut set = |key: &str, value: serde_json::Value, default: bool| {
                    if !default {
                        json[key] = value;
                    }
                };
                set("no_ln_pre", true.into(), v.ln_pre);
                set("pool_type", "avg".into(), v.pool == VitPool::Tok);
                set("final_ln_after_pool", true.into(), !v.final_ln_after_pool);
                if let Some(a) = v.attentional_pool {
                    set("attentional_pool", true.into(), false);
                    set("attn_pooler_queries", a.queries.into(), false);
                    set("attn_pooler_heads", a.heads.into(), false);
                }
                set("ls_init_value", serde_json::json!(v.ls_init_value), v.ls_init_value.is_none());
                set("output_tokens", true.into(), !v.output_tokens);
                set("norm_kwargs", serde_json::json!({"eps": v.norm_eps}), v.norm_eps == d.norm_eps);
                set("act_kwargs", serde_json::json!({"approximate": approximate(v.gelu)}), v.gelu == d.gelu);
                set("patch_dropout", v.patch_dropout.into(), v.patch_dropout == 0.0);
                json
            }
            VisionConfig::ResNet(r) => serde_json::json!({
                "image_size": r.image_size, "layers": r.layers, "width": r.width, "patch_size": null,
                "head_width": r.width * 32 / r.heads,
            }),
            VisionConfig::TimmVit(v) => {
                let mut json = serde_json::json!({
                    "image_size": v.image_size, "timm_model_name": v.model_name, "timm_model_pretrained": false,
                    "timm_pool": "map", "timm_proj": "none",
                });
                if v.timm_drop != 0.0 {
                    json["timm_drop"] = v.timm_drop.into();
                }
                if v.patch_dropout != 0.0 {
                    json["patch_dropout"] = v.patch_dropout.into();
                }
                json
            }
        };
        let t = &self.text;
        let mut text = serde_json::json!({
            "context_length": t.context_length, "vocab_size": t.vocab_size, "width": t.width,
            "heads": t.heads, "layers": t.layers, "mlp_ratio": t.mlp_ratio,
        });
        let d = TextConfig::default();
        let mut set = |key: &str, value: serde_json::Value, default: bool| {
            if !default {
                text[key] = value;
            }
        };
        set("no_causal_mask", true.into(), t.causal);
        let pool = match t.pool {
            TextPool::Argmax => "argmax",
            TextPool::First => "first",
            TextPool::Last => "last",
            TextPool::Eos => "eos",
        };
        set("pool_type", pool.into(), t.pool == d.pool);
        set("eos_id", t.eos_id.into(), t.pool != TextPool::Eos);
        set("pad_id", t.pad_id.into(), t.pad_id == d.pad_id);
        set("proj_type", "none".into(), t.projection == TextProjection::Linear);
        set("proj_bias", true.into(), !t.proj_bias);
        set("embed_cls", true.into(), !t.embed_cls);
        set("ls_init_value", serde_json::json!(t.ls_init_value), t.ls_init_value.is_none());
        set("output_tokens", true.into(), !t.output_tokens);
        set("norm_kwargs", serde_json::json!({"eps": t.norm_eps}), t.norm_eps == d.norm_eps);
        set("act_kwargs", serde_json::json!({"approximate": approximate(t.gelu)}), t.gelu == d.gelu);
        set("hf_tokenizer_name", serde_json::json!(t.hf_tokenizer_name), t.hf_tokenizer_name.is_none());
        set("tokenizer_kwargs", serde_json::json!(t.tokenizer_kwargs), t.tokenizer_kwargs.is_none());
        let mut json = serde_json::json!({
            "embed_dim": self.embed_dim,
            "quick_gelu": self.quick_gelu,
            "vision_cfg": vision,
            "text_cfg": text,
        });
        if self.custom_text {
            json["custom_text"] = true.into();
        }
        if let Some(multimodal) = &self.multimodal_cfg {
            json["multimodal_cfg"] = multimodal.clone().into();
        }
        for (key, value) in [("init_logit_scale", self.init_logit_scale), ("init_logit_bias", self.init_logit_bias)] {
            if let Some(v) = value {
                json[key] = serde_json::json!(v);
            }
        }
        json.to_string()
    }

    /// The config with QuickGELU in open_clip's own towers, `None` where a tower sets
    /// `act_kwargs` (open_clip would pass them to QuickGELU, which takes none).
    fn with_quick_gelu(&self) -> Option<Self> {
        let vit_gelu = match &self.vision {
            VisionConfig::Vit(v) => v.gelu,
            VisionConfig::ResNet(_) | VisionConfig::TimmVit(_) => GeluApproximate::None,
        };
        (vit_gelu == GeluApproximate::None && self.text.gelu == GeluApproximate::None).then(|| Self { quick_gelu: true, ..self.clone() })
    }

    /// Key prefixes of a checkpoint that belong to parts of open_clip's model this crate does not
    /// build: `text_decoder.` (CoCa's captioning decoder) when the config has a `multimodal_cfg`,
    /// none otherwise. Loading weights expects them and sets them aside
    /// ([`crate::weights::load_weights_for`]); every other key stays strict.
    pub fn unbuilt_prefixes(&self) -> &'static [&'static str] {
        if self.multimodal_cfg.is_some() { &["text_decoder."] } else { &[] }
    }

    /// Every name [`ClipConfig::named`] accepts: each preset, followed by its `-quickgelu` form
    /// where that has no config of its own.
    pub fn preset_names() -> Vec<String> {
        let mut names = Vec::new();
        for (name, _) in presets() {
            names.push(name.clone());
            let quick = format!("{name}-quickgelu");
            if !name.ends_with("-quickgelu") && preset(&quick).is_none() && preset(name).and_then(Self::with_quick_gelu).is_some() {
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
        // 84 open_clip configs (14 of them `-quickgelu` configs of their own) and the 2 tiny
        // presets; the 56 + 2 plain names without a `-quickgelu` config get one by the suffix
        // rule, but for the 15 SigLIP2 configs, whose text towers set act_kwargs.
        assert_eq!(presets().len(), 86);
        assert_eq!(ClipConfig::preset_names().len(), 129);
        let err = ClipConfig::named("ViT-B-16-SigLIP2-quickgelu").unwrap_err().to_string();
        assert!(err.contains("act_kwargs"), "{err}");
        assert!(ClipConfig::named("ViT-B-16-SigLIP-quickgelu").unwrap().quick_gelu);
        for name in ClipConfig::preset_names() {
            let config = ClipConfig::named(&name).unwrap();
            assert_eq!(config.quick_gelu, name.ends_with("-quickgelu"), "{name}");
            assert_eq!(ClipConfig::from_json(&config.to_json()).unwrap(), config, "{name}");
        }
    }

    #[test]
    fn open_clip_configs_keep_their_shapes_and_order() {
        let names: Vec<&str> = presets().iter().map(|(n, _)| n.as_str()).collect();
        // open_clip's natural order, lower case first: the CoCa configs, then RN50.
        assert_eq!(&names[..5], ["coca_base", "coca_ViT-B-32", "coca_ViT-L-14", "RN50", "RN50-quickgelu"]);
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
    fn the_families_presets_are_open_clips_configs() {
        for (name, family) in [
            ("ViT-B-16-SigLIP", "vit_base_patch16_siglip_224"),
            ("ViT-B-16-SigLIP-384", "vit_base_patch16_siglip_384"),
            ("ViT-SO400M-14-SigLIP", "vit_so400m_patch14_siglip_224"),
            ("ViT-B-32-SigLIP2-256", "vit_base_patch32_siglip_256"),
            ("ViT-gopt-16-SigLIP2-384", "vit_giantopt_patch16_siglip_384"),
            ("ViT-SO400M-16-SigLIP-i18n-256", "vit_so400m_patch16_siglip_256"),
        ] {
            let config = ClipConfig::named(name).unwrap();
            let VisionConfig::TimmVit(v) = &config.vision else { panic!("{name}: timm tower expected") };
            assert_eq!(v.model_name, family, "{name}");
            assert!(config.custom_text && !config.text.causal && config.text.pool == TextPool::Last, "{name}");
            assert_eq!(config.init_logit_bias, Some(-10.0), "{name}");
        }
        let VisionConfig::Vit(clipa) = ClipConfig::named("ViT-bigG-14-CLIPA-336").unwrap().vision else { panic!("ViT expected") };
        assert!(!clipa.ln_pre && clipa.pool == VitPool::Avg && clipa.image_size == 336);
        let worldwide = ClipConfig::named("ViT-H-14-worldwide-quickgelu").unwrap();
        assert!(worldwide.quick_gelu && worldwide.text.pool == TextPool::Eos && worldwide.text.vocab_size == 901_629);
        let coca = ClipConfig::named("coca_ViT-L-14").unwrap();
        assert!(coca.custom_text && coca.text.embed_cls && coca.multimodal_cfg.is_some());
        assert_eq!(coca.unbuilt_prefixes(), ["text_decoder."]);
        assert!(ClipConfig::named("coca_base").unwrap().multimodal_cfg.is_some());
    }

    #[test]
    fn every_left_out_open_clip_config_is_refused() {
        // scripts/gen_presets.py writes every open_clip 3.3.0 config it leaves out with its
        // reasons, each naming a key: the parser must refuse each, over one of those keys.
        let left: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(include_str!("../tests/fixtures/left_out_configs.json")).unwrap();
        assert_eq!(left.len() + presets().len() - PROJECT_PRESETS.len(), 144, "open_clip 3.3.0 has 144 configs");
        for (name, entry) in &left {
            assert!(preset(name).is_none(), "{name} is both taken and left out");
            let err = ClipConfig::from_json(&entry["config"].to_string()).expect_err(name).to_string();
            let reasons = entry["reasons"].as_array().unwrap();
            let keys: Vec<&str> = reasons.iter().map(|r| r.as_str().unwrap().split([':', ' ']).next().unwrap()).collect();
            let named = keys.iter().any(|key| err.contains(key.rsplit('.').next().unwrap()));
            assert!(named, "{name}: refused for {err}, left out for {reasons:?}");
        }
    }

    #[test]
    fn malformed_configs_name_the_problem() {
        let err = ClipConfig::named("EVA02-B-16").unwrap_err().to_string();
        assert!(err.contains("EVA02-B-16") && err.contains("ViT-SO400M-14-SigLIP") && err.contains("tiny-vit"), "{err}");
        let cases = [
            (r#"{"embed_dim":512,"vision_cfg":{"image_size":224,"layers":12,"width":768,"patch_size":32,"timm_model_name":"x"},"text_cfg":{}}"#, "timm_model_name"),
            (r#"{"embed_dim":512,"vision_cfg":{"image_size":224,"layers":12,"width":768},"text_cfg":{}}"#, "patch_size is required"),
            (r#"{"embed_dim":512,"vision_cfg":{"image_size":225,"layers":12,"width":768,"patch_size":32},"text_cfg":{}}"#, "not a multiple of 32"),
            (r#"{"embed_dim":0,"vision_cfg":{"image_size":224,"layers":12,"width":768,"patch_size":32},"text_cfg":{}}"#, "embed_dim must be positive"),
            (r#"{"embed_dim":512,"vision_cfg":{"image_size":224,"layers":[1,1,1],"width":64},"text_cfg":{}}"#, "layers"),
            (r#"{"embed_dim":512,"vision_cfg":{"image_size":224,"layers":12,"width":768,"patch_size":32},"text_cfg":{"width":100,"heads":8}}"#, "not a multiple of 8"),
            ("not json", "expected"),
            // The newer families' options: what is not built is named.
            (r#"{"embed_dim":768,"vision_cfg":{"image_size":224,"timm_model_name":"eva02_base_patch16_clip_224","timm_pool":"map","timm_proj":"none"},"text_cfg":{}}"#, "timm_model_name: \"eva02"),
            (r#"{"embed_dim":768,"vision_cfg":{"image_size":224,"timm_model_name":"vit_base_patch16_siglip_224","timm_model_pretrained":true,"timm_pool":"map","timm_proj":"none"},"text_cfg":{}}"#, "timm_model_pretrained"),
            (r#"{"embed_dim":768,"vision_cfg":{"image_size":224,"timm_model_name":"vit_base_patch16_siglip_224","timm_proj":"none"},"text_cfg":{}}"#, "timm_pool: \"avg\""),
            (r#"{"embed_dim":768,"vision_cfg":{"image_size":224,"timm_model_name":"vit_base_patch16_siglip_224","timm_pool":"map"},"text_cfg":{}}"#, "timm_proj: \"linear\""),
            (r#"{"embed_dim":768,"vision_cfg":{"image_size":384,"timm_model_name":"vit_base_patch16_siglip_224","timm_pool":"map","timm_proj":"none"},"text_cfg":{}}"#, "takes 224 px"),
            (r#"{"embed_dim":512,"vision_cfg":{"image_size":224,"timm_model_name":"vit_base_patch16_siglip_224","timm_pool":"map","timm_proj":"none"},"text_cfg":{}}"#, "must be embed_dim"),
            (r#"{"embed_dim":768,"vision_cfg":{"image_size":224,"timm_model_name":"vit_base_patch16_siglip_224","timm_pool":"map","timm_proj":"none","timm_drop_path":0.1},"text_cfg":{}}"#, "timm_drop_path"),
            (r#"{"embed_dim":768,"vision_cfg":{"image_size":224,"timm_model_name":"vit_base_patch16_siglip_224","timm_pool":"map","timm_proj":"none","width":768},"text_cfg":{}}"#, "vision_cfg.width: not read"),
            (r#"{"embed_dim":512,"vision_cfg":{"image_size":224,"layers":12,"width":768,"patch_size":32,"timm_pool":"map"},"text_cfg":{}}"#, "vision_cfg.timm_pool: not read"),
            (r#"{"embed_dim":512,"vision_cfg":{"image_size":224,"layers":12,"width":768,"patch_size":32,"pool_type":"none"},"text_cfg":{}}"#, "vision_cfg.pool_type: \"none\""),
            (r#"{"embed_dim":512,"vision_cfg":{"image_size":224,"layers":12,"width":768,"patch_size":32},"text_cfg":{"pool_type":"none"}}"#, "text_cfg.pool_type: \"none\""),
            (r#"{"embed_dim":512,"vision_cfg":{"image_size":224,"layers":12,"width":768,"patch_size":32},"text_cfg":{"proj_type":"mlp"}}"#, "text_cfg.proj_type: \"mlp\""),
            (r#"{"embed_dim":512,"vision_cfg":{"image_size":224,"layers":12,"width":768,"patch_size":32},"text_cfg":{"eos_id":2}}"#, "text_cfg.eos_id"),
            (r#"{"embed_dim":512,"quick_gelu":true,"vision_cfg":{"image_size":224,"layers":12,"width":768,"patch_size":32},"text_cfg":{"act_kwargs":{"approximate":"tanh"}}}"#, "QuickGELU takes no arguments"),
            (r#"{"embed_dim":512,"vision_cfg":{"image_size":224,"layers":12,"width":768,"patch_size":32},"text_cfg":{"norm_kwargs":{"eps":1e-6,"elementwise_affine":false}}}"#, "elementwise_affine"),
            (r#"{"embed_dim":512,"vision_cfg":{"image_size":224,"layers":12,"width":768,"patch_size":32},"text_cfg":{"embed_cls":true}}"#, "only with custom_text"),
            (r#"{"embed_dim":256,"vision_cfg":{"image_size":224,"layers":12,"width":768,"patch_size":32},"text_cfg":{"proj_type":"none"}}"#, "must be embed_dim 256"),
            (r#"{"embed_dim":512,"vision_cfg":{"image_size":224,"layers":12,"width":768,"patch_size":32,"patch_dropout":1.5},"text_cfg":{}}"#, "vision_cfg.patch_dropout must be in [0, 1)"),
            (r#"{"embed_dim":512,"multimodal_cfg":[],"vision_cfg":{"image_size":224,"layers":12,"width":768,"patch_size":32},"text_cfg":{}}"#, "multimodal_cfg: an object"),
            (r#"{"embed_dim":512,"vision_cfg":{"image_size":224,"layers":12,"width":768,"patch_size":32,"attentional_pool":"parallel"},"text_cfg":{}}"#, "attentional_pool"),
        ];
        for (json, needle) in cases {
            let err = ClipConfig::from_json(json).unwrap_err().to_string();
            assert!(err.contains(needle), "{json}: {err}");
        }
    }

    #[test]
    fn the_newer_families_options_parse_and_round_trip() {
        let configs = [
            // ViT-B-16-SigLIP2 as open_clip 3.3.0 ships it.
            r#"{"embed_dim": 768, "init_logit_bias": -10, "custom_text": true, "vision_cfg": {"image_size": 224, "timm_model_name": "vit_base_patch16_siglip_224", "timm_model_pretrained": false, "timm_pool": "map", "timm_proj": "none"}, "text_cfg": {"context_length": 64, "vocab_size": 256000, "hf_tokenizer_name": "timm/ViT-B-16-SigLIP2", "tokenizer_kwargs": {"clean": "canonicalize"}, "width": 768, "heads": 12, "layers": 12, "no_causal_mask": true, "proj_bias": true, "pool_type": "last", "norm_kwargs": {"eps": 1e-06}, "act_kwargs": {"approximate": "tanh"}}}"#,
            // ViT-L-14-CLIPA.
            r#"{"embed_dim": 768, "vision_cfg": {"image_size": 224, "layers": 24, "width": 1024, "patch_size": 14, "no_ln_pre": true, "pool_type": "avg", "final_ln_after_pool": true}, "text_cfg": {"context_length": 32, "vocab_size": 32000, "hf_tokenizer_name": "bert-base-uncased", "tokenizer_kwargs": {"strip_sep_token": true}, "width": 768, "heads": 12, "layers": 12, "pool_type": "last", "no_causal_mask": true}}"#,
            // coca_ViT-B-32, its decoder (multimodal_cfg) kept, not built.
            r#"{"embed_dim": 512, "vision_cfg": {"image_size": 224, "layers": 12, "width": 768, "patch_size": 32, "attentional_pool": true, "attn_pooler_heads": 8, "output_tokens": true}, "text_cfg": {"context_length": 76, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12, "embed_cls": true, "output_tokens": true}, "multimodal_cfg": {"context_length": 76, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12, "attn_pooler_heads": 8}, "custom_text": true}"#,
            // ViT-H-14-worldwide, and ViT-M-16-alt's LayerScale.
            r#"{"embed_dim": 1024, "vision_cfg": {"image_size": 224, "layers": 32, "width": 1280, "head_width": 80, "patch_size": 14, "ls_init_value": 0.0001}, "text_cfg": {"hf_tokenizer_name": "facebook/xlm-v-base", "pool_type": "eos", "eos_id": 2, "context_length": 77, "vocab_size": 901629, "width": 1024, "heads": 16, "layers": 24}}"#,
            // ViT-SO400M-16-SigLIP-i18n-256: no text projection.
            r#"{"embed_dim": 1152, "init_logit_bias": -10, "custom_text": true, "vision_cfg": {"image_size": 256, "timm_model_name": "vit_so400m_patch16_siglip_256", "timm_model_pretrained": false, "timm_pool": "map", "timm_proj": "none"}, "text_cfg": {"context_length": 64, "vocab_size": 250000, "hf_tokenizer_name": "timm/ViT-B-16-SigLIP-i18n-256", "tokenizer_kwargs": {"clean": "canonicalize"}, "width": 1152, "heads": 16, "layers": 27, "mlp_ratio": 3.7362, "no_causal_mask": true, "pool_type": "last", "proj_type": "none", "norm_kwargs": {"eps": 1e-06}}}"#,
        ];
        for json in configs {
            let config = ClipConfig::from_json(json).unwrap_or_else(|e| panic!("{json}: {e}"));
            assert_eq!(ClipConfig::from_json(&config.to_json()).unwrap(), config, "{json}");
        }
        let siglip2 = ClipConfig::from_json(configs[0]).unwrap();
        let VisionConfig::TimmVit(v) = &siglip2.vision else { panic!("timm tower expected") };
        assert_eq!((v.image_size, v.patch_size, v.width, v.layers, v.heads, v.gelu), (224, 16, 768, 12, 12, GeluApproximate::None));
        let t = &siglip2.text;
        assert!(siglip2.custom_text && !t.causal && t.proj_bias);
        assert_eq!((t.pool, t.norm_eps, t.gelu, t.hf_tokenizer_name.as_deref()), (TextPool::Last, 1e-6, GeluApproximate::Tanh, Some("timm/ViT-B-16-SigLIP2")));
        let VisionConfig::Vit(clipa) = ClipConfig::from_json(configs[1]).unwrap().vision else { panic!("ViT expected") };
        assert!(!clipa.ln_pre && clipa.final_ln_after_pool && clipa.pool == VitPool::Avg);
        let coca = ClipConfig::from_json(configs[2]).unwrap();
        let VisionConfig::Vit(v) = &coca.vision else { panic!("ViT expected") };
        assert_eq!(v.attentional_pool, Some(AttentionalPoolConfig { queries: 256, heads: 8 }));
        assert!(coca.text.embed_cls);
        assert_eq!(coca.multimodal_cfg.as_ref().map(|m| m["layers"].as_i64()), Some(Some(12)));
        assert_eq!(coca.unbuilt_prefixes(), ["text_decoder."]);
        assert!(siglip2.unbuilt_prefixes().is_empty());
        // The decoder's keys imply custom_text, as in open_clip's CoCa.
        let without_flag = configs[2].replace(r#", "custom_text": true"#, "");
        assert_eq!(ClipConfig::from_json(&without_flag).unwrap(), coca);
        let worldwide = ClipConfig::from_json(configs[3]).unwrap();
        assert_eq!((worldwide.text.pool, worldwide.text.eos_id), (TextPool::Eos, 2));
        assert_eq!(ClipConfig::from_json(configs[4]).unwrap().text.projection, TextProjection::None);
        // Every timm name resolves, its resolution from the name.
        for name in TimmVitConfig::NAMES {
            let c = TimmVitConfig::named(name).unwrap();
            assert!(name.ends_with(&format!("_{}", c.image_size)) && name.contains(&format!("patch{}", c.patch_size)), "{name}");
        }
    }
}
