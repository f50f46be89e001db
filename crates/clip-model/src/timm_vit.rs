//! timm's VisionTransformer as open_clip's `TimmModel` wraps it for SigLIP and SigLIP2
//! (timm 1.0.31 `timm/models/vision_transformer.py`, `timm/layers/attention_pool.py`): under
//! `visual.trunk`, a patch embedding with a bias (`patch_embed.proj`), a learnt `pos_embed` for
//! the patches alone (no class token), pre-LN `blocks.N` (`norm1`, `attn.qkv`, `attn.proj`,
//! `norm2`, `mlp.fc1`, `mlp.fc2`), the final `norm`, and `global_pool='map'`'s latent-query
//! attention pool `attn_pool` (`latent` → `q`, the tokens → `kv`, `proj`, then a residual MLP
//! after `norm`). `timm_proj: "none"` leaves no head: the pool's output is the embedding.
//!
//! LayerNorm eps is timm's 1e-6; the activation is the model's own (GELU, or its tanh form for
//! `act_layer='gelu_tanh'`), whatever open_clip's `quick_gelu` says, as in open_clip.

use tch::nn::{self, Init, Module};
use tch::{Kind, Tensor};

use crate::config::{GeluApproximate, TimmVitConfig};
use crate::init::{normal, random};
use crate::layers::{Activation, Layout, Mask, PreNormBlock, SelfAttention, Shared, layer_norm, run_all};

/// timm's LayerNorm eps.
const EPS: f64 = 1e-6;

/// timm's SigLIP ViTs with the attention-pool head: name, patch, width, depth, heads, MLP ratio,
/// GELU's form; the resolution is the name's suffix.
const SIGLIP: &[(&str, i64, i64, i64, i64, f64, GeluApproximate)] = {
    use GeluApproximate::{None as Exact, Tanh};
    &[
        ("vit_base_patch32_siglip_256", 32, 768, 12, 12, 4.0, Tanh),
        ("vit_base_patch16_siglip_224", 16, 768, 12, 12, 4.0, Exact),
        ("vit_base_patch16_siglip_256", 16, 768, 12, 12, 4.0, Exact),
        ("vit_base_patch16_siglip_384", 16, 768, 12, 12, 4.0, Exact),
        ("vit_base_patch16_siglip_512", 16, 768, 12, 12, 4.0, Exact),
        ("vit_large_patch16_siglip_256", 16, 1024, 24, 16, 4.0, Exact),
        ("vit_large_patch16_siglip_384", 16, 1024, 24, 16, 4.0, Exact),
        ("vit_large_patch16_siglip_512", 16, 1024, 24, 16, 4.0, Tanh),
        ("vit_so400m_patch14_siglip_224", 14, 1152, 27, 16, 3.7362, Exact),
        ("vit_so400m_patch14_siglip_378", 14, 1152, 27, 16, 3.7362, Exact),
        ("vit_so400m_patch14_siglip_384", 14, 1152, 27, 16, 3.7362, Exact),
        ("vit_so400m_patch16_siglip_256", 16, 1152, 27, 16, 3.7362, Tanh),
        ("vit_so400m_patch16_siglip_384", 16, 1152, 27, 16, 3.7362, Tanh),
        ("vit_so400m_patch16_siglip_512", 16, 1152, 27, 16, 3.7362, Tanh),
        ("vit_giantopt_patch16_siglip_256", 16, 1536, 40, 16, 4.0, Tanh),
        ("vit_giantopt_patch16_siglip_384", 16, 1536, 40, 16, 4.0, Tanh),
    ]
};

impl TimmVitConfig {
    /// The timm model names built here.
    pub const NAMES: [&str; 16] = {
        let mut names = [""; 16];
        let mut i = 0;
        while i < SIGLIP.len() {
            names[i] = SIGLIP[i].0;
            i += 1;
        }
        names
    };

    /// timm's definition of a SigLIP ViT by its name (`vit_base_patch16_siglip_224`, …).
    pub fn named(name: &str) -> Option<Self> {
        let &(model_name, patch_size, width, layers, heads, mlp_ratio, gelu) = SIGLIP.iter().find(|m| m.0 == name)?;
        let image_size = model_name.rsplit('_').next()?.parse().ok()?;
        Some(Self { model_name: model_name.to_owned(), image_size, patch_size, width, layers, heads, mlp_ratio, gelu, timm_drop: 0.0, patch_dropout: 0.0 })
    }

    fn hidden(&self) -> i64 {
        (self.width as f64 * self.mlp_ratio) as i64
    }
}

/// timm's `Mlp`: `fc1` → activation → `fc2`.
#[derive(Debug)]
struct Mlp {
    fc1: nn::Linear,
    fc2: nn::Linear,
    activation: Activation,
}

impl Mlp {
    fn new(p: nn::Path<'_>, width: i64, hidden: i64, activation: Activation) -> Self {
        Self { fc1: trunc_linear(&p / "fc1", width, hidden), fc2: trunc_linear(&p / "fc2", hidden, width), activation }
    }
}

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.activation.apply(&xs.apply(&self.fc1)).apply(&self.fc2)
    }
}

/// timm's init for linears: truncated normal, std 0.02, zero bias.
fn trunc_linear(p: nn::Path<'_>, inputs: i64, outputs: i64) -> nn::Linear {
    let ws_init = normal(0.02);
    nn::linear(p, inputs, outputs, nn::LinearConfig { ws_init, bs_init: Some(Init::Const(0.0)), bias: true })
}

/// timm's `Attention`: a fused `qkv` linear and the output `proj`.
#[derive(Debug)]
struct Attention {
    qkv: nn::Linear,
    proj: nn::Linear,
    heads: i64,
}

/// timm's pre-LN `Block` (no LayerScale in the SigLIP towers).
#[derive(Debug)]
struct Block {
    norm1: nn::LayerNorm,
    attn: Attention,
    norm2: nn::LayerNorm,
    mlp: Mlp,
}

impl PreNormBlock for Block {
    fn norm_1(&self, xs: &Tensor) -> Tensor {
        xs.apply(&self.norm1)
    }

    fn attention(&self) -> SelfAttention<'_> {
        let a = &self.attn;
        SelfAttention { qkv_weight: &a.qkv.ws, qkv_bias: a.qkv.bs.as_ref(), out_proj: &a.proj, heads: a.heads }
    }

    fn scale_1(&self, xs: Tensor) -> Tensor {
        xs
    }

    fn mlp_branch(&self, xs: &Tensor) -> Tensor {
        xs.apply(&self.norm2).apply(&self.mlp)
    }
}

/// timm's `AttentionPoolLatent` with one latent query and token pooling.
#[derive(Debug)]
struct AttentionPoolLatent {
    latent: Tensor,
    q: nn::Linear,
    kv: nn::Linear,
    proj: nn::Linear,
    norm: nn::LayerNorm,
    mlp: Mlp,
    heads: i64,
}

impl AttentionPoolLatent {
    /// `[b, tokens, d]` → `[b, d]`.
    fn forward(&self, xs: &Tensor) -> Tensor {
        let (b, t, d) = xs.size3().expect("tokens are 3-d");
        let dh = d / self.heads;
        let q = self.latent.apply(&self.q).view([1, self.heads, 1, dh]).expand([b, self.heads, 1, dh], false);
        let kv = xs.apply(&self.kv).view([b, t, 2, self.heads, dh]).permute([2, 0, 3, 1, 4]); // [2, b, h, t, dh]
        let out = Tensor::scaled_dot_product_attention::<Tensor>(&q, &kv.get(0), &kv.get(1), None, 0.0, false, None, false);
        let x = out.reshape([b, d]).apply(&self.proj);
        &x + x.apply(&self.norm).apply(&self.mlp)
    }
}

/// The tower open_clip's `TimmModel` holds, `visual.trunk` (and an empty `visual.head`).
///
/// # Shapes
/// Input `[b, 3, image_size, image_size]`; output `[b, width]` (= `embed_dim`: there is no head).
#[derive(Debug)]
pub struct TimmVisionTransformer {
    patch_embed_proj: nn::Conv2D,
    pos_embed: Tensor,
    blocks: Vec<Shared<Block>>,
    norm: nn::LayerNorm,
    attn_pool: AttentionPoolLatent,
    grad_checkpointing: bool,
}

impl TimmVisionTransformer {
    /// Builds the tower under `p` (`visual` in an open_clip checkpoint; the trunk is `p / "trunk"`).
    pub fn new(p: nn::Path<'_>, c: &TimmVitConfig) -> Self {
        let t = &p / "trunk";
        let (width, hidden) = (c.width, c.hidden());
        let activation = Activation::new(false, c.gelu);
        let grid = c.image_size / c.patch_size;
        let conv = nn::ConvConfig { stride: c.patch_size, bias: true, ws_init: random(nn::init::DEFAULT_KAIMING_UNIFORM), ..Default::default() };
        let blocks = &t / "blocks";
        let blocks = (0..c.layers)
            .map(|i| {
                let b = &blocks / i;
                let a = &b / "attn";
                Shared::new(Block {
                    norm1: layer_norm(&b / "norm1", width, EPS),
                    attn: Attention { qkv: trunc_linear(&a / "qkv", width, 3 * width), proj: trunc_linear(&a / "proj", width, width), heads: c.heads },
                    norm2: layer_norm(&b / "norm2", width, EPS),
                    mlp: Mlp::new(&b / "mlp", width, hidden, activation),
                })
            })
            .collect();
        let pool = &t / "attn_pool";
        Self {
            patch_embed_proj: nn::conv2d(&t / "patch_embed" / "proj", 3, width, c.patch_size, conv),
            pos_embed: t.var("pos_embed", &[1, grid * grid, width], normal(0.02)),
            blocks,
            norm: layer_norm(&t / "norm", width, EPS),
            attn_pool: AttentionPoolLatent {
                latent: pool.var("latent", &[1, 1, width], normal((width as f64).powf(-0.5))),
                q: trunc_linear(&pool / "q", width, width),
                kv: trunc_linear(&pool / "kv", width, 2 * width),
                proj: trunc_linear(&pool / "proj", width, width),
                norm: layer_norm(&pool / "norm", width, EPS),
                mlp: Mlp::new(&pool / "mlp", width, hidden, activation),
                heads: c.heads,
            },
            grad_checkpointing: false,
        }
    }

    /// Gradient checkpointing in training: each block keeps only its input and runs again in the
    /// backward (timm's `set_grad_checkpointing`).
    pub fn set_grad_checkpointing(&mut self, on: bool) {
        self.grad_checkpointing = on;
    }
}

impl TimmVisionTransformer {
    /// The output on the `kept` tokens only (`[b, k]` patch indices, [`crate::patch_dropout`]),
    /// taken after the positional embedding as timm's `patch_drop` is (no prefix tokens here:
    /// any patch may be dropped); `None`: every patch.
    pub fn forward_with(&self, images: &Tensor, kept: Option<&Tensor>) -> Tensor {
        let xs = images.apply(&self.patch_embed_proj); // [b, width, grid, grid]
        let (b, width, _, _) = xs.size4().expect("conv output is 4-d");
        let xs = xs.reshape([b, width, -1]).transpose(1, 2) + self.pos_embed.to_kind(xs.kind()); // [b, grid², width]
        let xs = match kept {
            Some(kept) => crate::patch_dropout::keep_tokens(&xs, kept, 0), // [b, k, width]
            None => xs,
        };
        let tokens = xs.size()[1];
        // The attention pool reads every token: all blocks run on all of them.
        let layout = Layout::dense(tokens, Tensor::zeros([b], (Kind::Int64, xs.device())));
        let xs = run_all(&self.blocks, &layout.select(&xs), &layout, Mask::None, self.grad_checkpointing).apply(&self.norm);
        self.attn_pool.forward(&xs.view([b, tokens, width]))
    }
}

impl Module for TimmVisionTransformer {
    fn forward(&self, images: &Tensor) -> Tensor {
        self.forward_with(images, None)
    }
}
