//! open_clip's Vision Transformer image tower (OpenAI's `VisionTransformer` and its options):
//! patch embedding `conv1` → class token + `positional_embedding` → `ln_pre` (unless `no_ln_pre`)
//! → transformer (LayerScale with `ls_init_value`) → pooling → `ln_post` → `proj`.
//!
//! Pooling is the class token (`tok`), the mean of the other tokens (`avg`, CLIPA; `ln_post`
//! before or, with `final_ln_after_pool`, after it), or CoCa's attentional pooler, whose query
//! outputs `ln_post` normalises and `tok`/`avg` then pool.
//!
//! Patch dropout ([`crate::patch_dropout`]) keeps the class token and a subset of the patches
//! after the positional embedding ([`VisionTransformer::pooled_with`]).

use tch::nn::{self, Init, Module};
use tch::{Kind, Tensor};

use crate::config::{AttentionalPoolConfig, VitConfig, VitPool};
use crate::init::{normal, random};
use crate::layers::{Activation, Layout, Transformer, TransformerConfig, layer_norm, linear};
use crate::patch_dropout::keep_tokens;

/// # Shapes
/// Input `[b, 3, image_size, image_size]`; pooled features `[b, width]` (`[b, embed_dim]` with an
/// attentional pool); output `[b, embed_dim]`.
#[derive(Debug)]
pub struct VisionTransformer {
    conv1: nn::Conv2D,
    class_embedding: Tensor,
    positional_embedding: Tensor,
    ln_pre: Option<nn::LayerNorm>,
    transformer: Transformer,
    attn_pool: Option<AttentionalPooler>,
    ln_post: nn::LayerNorm,
    proj: Tensor,
    pool: VitPool,
    final_ln_after_pool: bool,
}

impl VisionTransformer {
    /// Builds the tower under `p` (`visual` in a CLIP checkpoint).
    pub fn new(p: nn::Path<'_>, c: &VitConfig, embed_dim: i64, quick_gelu: bool) -> Self {
        let scale = (c.width as f64).powf(-0.5);
        let grid = c.image_size / c.patch_size;
        let conv = nn::ConvConfig { stride: c.patch_size, bias: false, ws_init: random(nn::init::DEFAULT_KAIMING_UNIFORM), ..Default::default() };
        let transformer = TransformerConfig {
            width: c.width,
            layers: c.layers,
            heads: c.heads,
            mlp_ratio: c.mlp_ratio,
            activation: Activation::new(quick_gelu, c.gelu),
            norm_eps: c.norm_eps,
            ls_init_value: c.ls_init_value,
            causal: false,
        };
        let attn_pool = c.attentional_pool.map(|a| AttentionalPooler::new(&p / "attn_pool", embed_dim, c.width, a, c.norm_eps));
        let pool_dim = if attn_pool.is_some() { embed_dim } else { c.width };
        Self {
            conv1: nn::conv2d(&p / "conv1", 3, c.width, c.patch_size, conv),
            class_embedding: p.var("class_embedding", &[c.width], normal(scale)),
            positional_embedding: p.var("positional_embedding", &[grid * grid + 1, c.width], normal(scale)),
            ln_pre: c.ln_pre.then(|| layer_norm(&p / "ln_pre", c.width, c.norm_eps)),
            transformer: Transformer::new(&p / "transformer", &transformer),
            attn_pool,
            ln_post: layer_norm(&p / "ln_post", pool_dim, c.norm_eps),
            proj: p.var("proj", &[pool_dim, embed_dim], normal(scale)),
            pool: c.pool,
            final_ln_after_pool: c.final_ln_after_pool,
        }
    }

    /// The pooled features after `ln_post`, before `proj`: what a linear probe uses.
    pub fn pooled(&self, images: &Tensor) -> Tensor {
        self.pooled_with(images, None)
    }

    /// [`Self::pooled`] on the class token and the `kept` patches only (`[b, k]` patch indices,
    /// [`crate::patch_dropout`]), taken after the positional embedding and before `ln_pre`, as
    /// open_clip's `PatchDropout` is; `None`: every patch.
    pub fn pooled_with(&self, images: &Tensor, kept: Option<&Tensor>) -> Tensor {
        let xs = images.apply(&self.conv1); // [b, width, grid, grid]
        let (b, width, _, _) = xs.size4().expect("conv output is 4-d");
        let xs = xs.reshape([b, width, -1]).transpose(1, 2); // [b, grid², width]
        let kind = xs.kind();
        let cls = self.class_embedding.to_kind(kind).view([1, 1, width]).expand([b, 1, width], false);
        let xs = Tensor::cat(&[cls, xs], 1) + self.positional_embedding.to_kind(kind); // [b, 1 + grid², width]
        let xs = match kept {
            Some(kept) => keep_tokens(&xs, kept, 1), // [b, 1 + k, width]
            None => xs,
        };
        let tokens = xs.size()[1];
        let layout = Layout::dense(tokens, Tensor::zeros([b], (Kind::Int64, xs.device())));
        let mut xs = layout.select(&xs);
        if let Some(ln_pre) = &self.ln_pre {
            xs = xs.apply(ln_pre);
        }
        if self.attn_pool.is_none() && self.pool == VitPool::Tok {
            // Only the class token is read: the last block runs on it alone.
            return self.transformer.pooled(&xs, &layout).apply(&self.ln_post);
        }
        let xs = self.transformer.forward(&xs, &layout).view([b, tokens, width]);
        match &self.attn_pool {
            Some(attn_pool) => average_or_first(&attn_pool.forward(&xs).apply(&self.ln_post), self.pool),
            None if self.final_ln_after_pool => average_or_first(&xs, self.pool).apply(&self.ln_post),
            None => average_or_first(&xs.apply(&self.ln_post), self.pool),
        }
    }
}

/// open_clip's `_global_pool`: the first token, or the mean of the others.
fn average_or_first(xs: &Tensor, pool: VitPool) -> Tensor {
    match pool {
        VitPool::Tok => xs.select(1, 0),
        VitPool::Avg => xs.narrow(1, 1, xs.size()[1] - 1).mean_dim(1, false, None),
    }
}

impl VisionTransformer {
    /// Gradient checkpointing in training: each residual block keeps only its input and runs again
    /// in the backward (open_clip's `set_grad_checkpointing`).
    pub fn set_grad_checkpointing(&mut self, on: bool) {
        self.transformer.grad_checkpointing = on;
    }

    /// The output on the class token and the `kept` patches only ([`Self::pooled_with`]).
    pub fn forward_with(&self, images: &Tensor, kept: Option<&Tensor>) -> Tensor {
        self.pooled_with(images, kept).matmul(&self.proj)
    }
}

impl Module for VisionTransformer {
    fn forward(&self, images: &Tensor) -> Tensor {
        self.forward_with(images, None)
    }
}

/// CoCa's attentional pooler (open_clip's `AttentionalPooler`): learnt queries `query`
/// (`ln_q`) attend to the image tokens (`ln_k`) through an `nn.MultiheadAttention` whose keys and
/// values come from the tower's width — fused `in_proj_weight` when that equals the query width,
/// PyTorch's separate `q_proj_weight`/`k_proj_weight`/`v_proj_weight` otherwise.
#[derive(Debug)]
struct AttentionalPooler {
    query: Tensor,
    attn: CrossAttention,
    ln_q: nn::LayerNorm,
    ln_k: nn::LayerNorm,
}

#[derive(Debug)]
struct CrossAttention {
    /// `[q, k, v]` weights, fused or separate as PyTorch stores them.
    weights: [Tensor; 3],
    in_proj_bias: Tensor,
    out_proj: nn::Linear,
    heads: i64,
}

impl AttentionalPooler {
    fn new(p: nn::Path<'_>, d_model: i64, context: i64, c: AttentionalPoolConfig, eps: f64) -> Self {
        let a = &p / "attn";
        let xavier = normal((2.0 / (d_model + context) as f64).sqrt());
        let weights = if context == d_model {
            let w = a.var("in_proj_weight", &[3 * d_model, d_model], xavier);
            [w.narrow(0, 0, d_model), w.narrow(0, d_model, d_model), w.narrow(0, 2 * d_model, d_model)]
        } else {
            [
                a.var("q_proj_weight", &[d_model, d_model], xavier),
                a.var("k_proj_weight", &[d_model, context], xavier),
                a.var("v_proj_weight", &[d_model, context], xavier),
            ]
        };
        Self {
            query: p.var("query", &[c.queries, d_model], normal(1.0)),
            attn: CrossAttention {
                weights,
                in_proj_bias: a.var("in_proj_bias", &[3 * d_model], Init::Const(0.0)),
                out_proj: linear(&a / "out_proj", d_model, d_model, (d_model as f64).powf(-0.5)),
                heads: c.heads,
            },
            ln_q: layer_norm(&p / "ln_q", d_model, eps),
            ln_k: layer_norm(&p / "ln_k", context, eps),
        }
    }

    /// `[b, tokens, context]` → `[b, queries, d_model]`.
    fn forward(&self, xs: &Tensor) -> Tensor {
        let (b, t, _) = xs.size3().expect("tokens are 3-d");
        let a = &self.attn;
        let (n, d) = (self.query.size()[0], self.query.size()[1]);
        let dh = d / a.heads;
        let bias = |i: i64| a.in_proj_bias.narrow(0, i * d, d);
        let kv = xs.apply(&self.ln_k);
        let q = self.query.apply(&self.ln_q).linear(&a.weights[0], Some(bias(0))).view([1, n, a.heads, dh]).transpose(1, 2);
        let k = kv.linear(&a.weights[1], Some(bias(1))).view([b, t, a.heads, dh]).transpose(1, 2);
        let v = kv.linear(&a.weights[2], Some(bias(2))).view([b, t, a.heads, dh]).transpose(1, 2);
        let q = q.expand([b, a.heads, n, dh], false);
        let out = Tensor::scaled_dot_product_attention::<Tensor>(&q, &k, &v, None, 0.0, false, None, false);
        out.transpose(1, 2).reshape([b, n, d]).apply(&a.out_proj)
    }
}
