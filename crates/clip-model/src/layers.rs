//! The transformer pieces both towers share, named as in OpenAI's and open_clip's checkpoints:
//! `ln_1`, `attn.in_proj_weight`, `attn.out_proj`, `ln_2`, `mlp.c_fc`, `mlp.c_proj`.
//!
//! Activations are batch-first, `[b, t, d]` (open_clip's layout; attention does not care).

use tch::nn::{self, Init, Module};
use tch::{Kind, Tensor};

/// OpenAI's weights use QuickGELU, `x·σ(1.702x)`; other open_clip models exact GELU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `x·σ(1.702x)`.
    QuickGelu,
    /// `x·Φ(x)`.
    Gelu,
}

impl Activation {
    pub(crate) fn from_quick_gelu(quick_gelu: bool) -> Self {
        if quick_gelu { Self::QuickGelu } else { Self::Gelu }
    }

    fn apply(self, xs: &Tensor) -> Tensor {
        match self {
            Self::QuickGelu => xs * (xs * 1.702).sigmoid(),
            Self::Gelu => xs.gelu("none"),
        }
    }
}

/// Normal-init standard deviations for a transformer's weights (OpenAI's scheme, open_clip's
/// `TextTransformer.init_parameters`): they shrink with width and depth.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InitStd {
    attn: f64,
    proj: f64,
    fc: f64,
}

impl InitStd {
    pub(crate) fn for_transformer(width: i64, layers: i64) -> Self {
        let w = width as f64;
        Self { attn: w.powf(-0.5), proj: w.powf(-0.5) * (2.0 * layers as f64).powf(-0.5), fc: (2.0 * w).powf(-0.5) }
    }
}

fn normal(std: f64) -> Init {
    Init::Randn { mean: 0.0, stdev: std }
}

/// LayerNorm with PyTorch's eps.
pub(crate) fn layer_norm(p: nn::Path<'_>, width: i64) -> nn::LayerNorm {
    nn::layer_norm(p, vec![width], nn::LayerNormConfig { eps: 1e-5, ..Default::default() })
}

/// Linear layer with a normal weight init and zero bias.
pub(crate) fn linear(p: nn::Path<'_>, inputs: i64, outputs: i64, std: f64) -> nn::Linear {
    nn::linear(p, inputs, outputs, nn::LinearConfig { ws_init: normal(std), bs_init: Some(Init::Const(0.0)), bias: true })
}

/// Multi-head self-attention with PyTorch `nn.MultiheadAttention`'s parameters (a fused
/// `in_proj_weight` of `[3d, d]`), computed with libtorch's fused scaled-dot-product attention.
#[derive(Debug)]
pub(crate) struct Attention {
    in_proj_weight: Tensor,
    in_proj_bias: Tensor,
    out_proj: nn::Linear,
    heads: i64,
}

impl Attention {
    pub(crate) fn new(p: nn::Path<'_>, width: i64, heads: i64, std: InitStd) -> Self {
        assert_eq!(width % heads, 0, "width {width} is not a multiple of {heads} heads");
        Self {
            in_proj_weight: p.var("in_proj_weight", &[3 * width, width], normal(std.attn)),
            in_proj_bias: p.var("in_proj_bias", &[3 * width], Init::Const(0.0)),
            out_proj: linear(&p / "out_proj", width, width, std.proj),
            heads,
        }
    }

    /// `causal`: each position attends only to itself and earlier ones (the text tower).
    pub(crate) fn forward(&self, xs: &Tensor, causal: bool) -> Tensor {
        let (b, t, d) = xs.size3().expect("attention input is [batch, tokens, width]");
        let head_dim = d / self.heads;
        let qkv = xs.linear(&self.in_proj_weight, Some(&self.in_proj_bias)); // [b, t, 3d]
        let qkv = qkv.view([b, t, 3, self.heads, head_dim]).permute([2, 0, 3, 1, 4]); // [3, b, h, t, dh]
        let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
        let out = Tensor::scaled_dot_product_attention::<Tensor>(&q, &k, &v, None, 0.0, causal, None, false);
        out.transpose(1, 2).reshape([b, t, d]).apply(&self.out_proj)
    }

    /// The output at one query token per row (`at`, `[b]`) only, `[b, d]`: keys and values still
    /// come from every token; with `causal`, only from those up to `at`.
    fn forward_at(&self, xs: &Tensor, at: &Tensor, causal: bool) -> Tensor {
        let (b, t, d) = xs.size3().expect("attention input is [batch, tokens, width]");
        let head_dim = d / self.heads;
        let (w, bias) = (&self.in_proj_weight, &self.in_proj_bias);
        let q = gather(xs, at).linear(&w.narrow(0, 0, d), Some(bias.narrow(0, 0, d))).view([b, self.heads, 1, head_dim]);
        let kv = xs.linear(&w.narrow(0, d, 2 * d), Some(bias.narrow(0, d, 2 * d)));
        let kv = kv.view([b, t, 2, self.heads, head_dim]).permute([2, 0, 3, 1, 4]); // [2, b, h, t, dh]
        let mask = causal.then(|| Tensor::arange(t, (Kind::Int64, xs.device())).view([1, t]).le_tensor(&at.view([b, 1])).view([b, 1, 1, t]));
        let out = Tensor::scaled_dot_product_attention(&q, &kv.get(0), &kv.get(1), mask, 0.0, false, None, false);
        out.reshape([b, d]).apply(&self.out_proj)
    }
}

/// `xs[i, at[i]]` for every row `i`: `[b, t, d]` → `[b, d]`.
fn gather(xs: &Tensor, at: &Tensor) -> Tensor {
    let rows = Tensor::arange(xs.size()[0], (Kind::Int64, xs.device()));
    xs.index(&[Some(rows), Some(at.shallow_clone())])
}

/// `c_fc` → activation → `c_proj`.
#[derive(Debug)]
pub(crate) struct Mlp {
    c_fc: nn::Linear,
    c_proj: nn::Linear,
    activation: Activation,
}

impl Mlp {
    fn new(p: nn::Path<'_>, width: i64, hidden: i64, activation: Activation, std: InitStd) -> Self {
        Self { c_fc: linear(&p / "c_fc", width, hidden, std.fc), c_proj: linear(&p / "c_proj", hidden, width, std.proj), activation }
    }
}

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.activation.apply(&xs.apply(&self.c_fc)).apply(&self.c_proj)
    }
}

/// Pre-LN residual block: `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`.
#[derive(Debug)]
pub(crate) struct ResidualAttentionBlock {
    ln_1: nn::LayerNorm,
    attn: Attention,
    ln_2: nn::LayerNorm,
    mlp: Mlp,
}

impl ResidualAttentionBlock {
    fn forward(&self, xs: &Tensor, causal: bool) -> Tensor {
        let xs = xs + self.attn.forward(&xs.apply(&self.ln_1), causal);
        &xs + xs.apply(&self.ln_2).apply(&self.mlp)
    }

    /// [`Self::forward`] at the tokens `at` only, `[b, d]`.
    fn forward_at(&self, xs: &Tensor, at: &Tensor, causal: bool) -> Tensor {
        let x = gather(xs, at) + self.attn.forward_at(&xs.apply(&self.ln_1), at, causal);
        &x + x.apply(&self.ln_2).apply(&self.mlp)
    }
}

/// A stack of residual attention blocks (`transformer.resblocks.N`).
#[derive(Debug)]
pub(crate) struct Transformer {
    resblocks: Vec<ResidualAttentionBlock>,
    causal: bool,
}

impl Transformer {
    pub(crate) fn new(p: nn::Path<'_>, width: i64, layers: i64, heads: i64, mlp_ratio: f64, activation: Activation, causal: bool) -> Self {
        let std = InitStd::for_transformer(width, layers);
        let hidden = (width as f64 * mlp_ratio) as i64;
        let blocks = &p / "resblocks";
        let resblocks = (0..layers)
            .map(|i| {
                let b = &blocks / i;
                ResidualAttentionBlock {
                    ln_1: layer_norm(&b / "ln_1", width),
                    attn: Attention::new(&b / "attn", width, heads, std),
                    ln_2: layer_norm(&b / "ln_2", width),
                    mlp: Mlp::new(&b / "mlp", width, hidden, activation, std),
                }
            })
            .collect();
        Self { resblocks, causal }
    }
}

impl Transformer {
    /// The residual stream after the last block at one token per row (`at`, `[b]`): the class
    /// token, or each text's end-of-text token — all that pooling reads. So the last block runs
    /// its queries, output projection and MLP on those tokens alone (keys and values still on all):
    /// about four fifths of that block's work skipped, with the same features and gradients.
    pub(crate) fn pooled(&self, xs: &Tensor, at: &Tensor) -> Tensor {
        let Some((last, blocks)) = self.resblocks.split_last() else { return gather(xs, at) };
        let xs = blocks.iter().fold(xs.shallow_clone(), |xs, block| block.forward(&xs, self.causal));
        last.forward_at(&xs, at, self.causal)
    }
}

/// `x / max(‖x‖, 1e-12)` along the last dimension, as `F.normalize`.
pub fn l2_normalize(xs: &Tensor) -> Tensor {
    xs / xs.norm_scalaropt_dim(2.0, [-1], true).clamp_min(1e-12)
}

