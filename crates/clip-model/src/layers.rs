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
    fn forward(&self, xs: &Tensor, layout: &Layout, causal: bool) -> Tensor {
        let (b, t, d) = (layout.batch, layout.tokens, xs.size()[1]);
        let qkv = layout.pad(&xs.linear(&self.in_proj_weight, Some(&self.in_proj_bias))); // [b, t, 3d]
        let qkv = qkv.view([b, t, 3, self.heads, d / self.heads]).permute([2, 0, 3, 1, 4]); // [3, b, h, t, dh]
        let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
        let out = Tensor::scaled_dot_product_attention::<Tensor>(&q, &k, &v, None, 0.0, causal, None, false);
        layout.select(&out.transpose(1, 2)).apply(&self.out_proj)
    }

    /// The output at each sequence's pooled token alone, `[b, d]`: keys and values still come
    /// from every token; with `causal`, only from those up to the pooled one.
    fn forward_at(&self, xs: &Tensor, layout: &Layout, causal: bool) -> Tensor {
        let (b, t, d) = (layout.batch, layout.tokens, xs.size()[1]);
        let head_dim = d / self.heads;
        let (w, bias) = (&self.in_proj_weight, &self.in_proj_bias);
        let q = layout.pooled_rows(xs).linear(&w.narrow(0, 0, d), Some(bias.narrow(0, 0, d)));
        let kv = layout.pad(&xs.linear(&w.narrow(0, d, 2 * d), Some(bias.narrow(0, d, 2 * d))));
        let kv = kv.view([b, t, 2, self.heads, head_dim]).permute([2, 0, 3, 1, 4]); // [2, b, h, t, dh]
        let mask = causal.then(|| Tensor::arange(t, (Kind::Int64, xs.device())).view([1, t]).le_tensor(&layout.at.view([b, 1])).view([b, 1, 1, t]));
        let q = q.view([b, self.heads, 1, head_dim]);
        let out = Tensor::scaled_dot_product_attention(&q, &kv.get(0), &kv.get(1), mask, 0.0, false, None, false);
        out.reshape([b, d]).apply(&self.out_proj)
    }
}

/// Packing must skip more than this share of a batch's tokens to pay for its copies.
const PACK_BELOW: f64 = 0.9;

/// Which tokens of a `[batch, tokens]` grid the transformer computes, and the one per sequence
/// that pooling reads. Activations are `[rows, width]`: every token in order, or — for texts of
/// different lengths — each text's tokens up to its end-of-text token alone, packed, since under
/// causal attention no later token can change its pooled feature or take a gradient.
#[derive(Debug)]
pub(crate) struct Layout {
    batch: i64,
    tokens: i64,
    /// Sequence and column of each computed token, in order, unless all are computed.
    kept: Option<[Tensor; 2]>,
    /// Each sequence's pooled token: its column, and its row in the activations.
    at: Tensor,
    at_row: Tensor,
}

impl Layout {
    /// Every token; pooling reads column `at[i]` of sequence `i`.
    pub(crate) fn dense(tokens: i64, at: Tensor) -> Self {
        let batch = at.size()[0];
        let at_row = Tensor::arange(batch, (Kind::Int64, at.device())) * tokens + &at;
        Self { batch, tokens, kept: None, at, at_row }
    }

    /// Each sequence's columns up to its pooled one, `last[i]`. Only for causal attention: a
    /// skipped token comes after every kept one of its sequence, so none attends to it.
    pub(crate) fn up_to(tokens: i64, last: Tensor) -> Self {
        let batch = last.size()[0];
        let lengths = &last + 1;
        if lengths.sum(Kind::Int64).int64_value(&[]) as f64 > PACK_BELOW * (batch * tokens) as f64 {
            return Self::dense(tokens, last);
        }
        let keep = Tensor::arange(tokens, (Kind::Int64, last.device())).view([1, tokens]).le_tensor(&last.view([batch, 1]));
        let kept = keep.nonzero(); // [rows, 2], row-major: each sequence's tokens in order
        let at_row = lengths.cumsum(0, Kind::Int64) - 1;
        Self { batch, tokens, kept: Some([kept.select(1, 0), kept.select(1, 1)]), at: last, at_row }
    }

    /// `[batch, tokens, …]` → the computed tokens, `[rows, c]` (`c`: the trailing sizes' product).
    pub(crate) fn select(&self, grid: &Tensor) -> Tensor {
        match &self.kept {
            Some([sequence, column]) => grid.index(&[Some(sequence), Some(column)]).flatten(1, -1),
            None => grid.reshape([self.batch * self.tokens, -1]),
        }
    }

    /// Each sequence's pooled token of `[rows, c]` activations, `[batch, c]`.
    fn pooled_rows(&self, xs: &Tensor) -> Tensor {
        xs.index_select(0, &self.at_row)
    }

    /// `[rows, c]` → `[batch, tokens, c]`, zeros at the skipped tokens.
    fn pad(&self, xs: &Tensor) -> Tensor {
        let c = xs.size()[1];
        match &self.kept {
            Some([sequence, column]) => Tensor::zeros([self.batch, self.tokens, c], (xs.kind(), xs.device()))
                .index_put_(&[Some(sequence), Some(column)], xs, false),
            None => xs.view([self.batch, self.tokens, c]),
        }
    }
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
    fn forward(&self, xs: &Tensor, layout: &Layout, causal: bool) -> Tensor {
        let xs = xs + self.attn.forward(&xs.apply(&self.ln_1), layout, causal);
        &xs + xs.apply(&self.ln_2).apply(&self.mlp)
    }

    /// [`Self::forward`] at each sequence's pooled token alone, `[b, d]`.
    fn forward_at(&self, xs: &Tensor, layout: &Layout, causal: bool) -> Tensor {
        let x = layout.pooled_rows(xs) + self.attn.forward_at(&xs.apply(&self.ln_1), layout, causal);
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

    /// The residual stream after the last block at each sequence's pooled token (`[b, d]`; `xs`:
    /// `[rows, d]` as `layout` says): the class token, or each text's end-of-text token — all
    /// that pooling reads. So the last block runs its queries, output projection and MLP on those
    /// tokens alone (keys and values still on all): about four fifths of that block's work
    /// skipped, with the same features and gradients.
    pub(crate) fn pooled(&self, xs: &Tensor, layout: &Layout) -> Tensor {
        debug_assert!(self.causal || layout.kept.is_none(), "packed tokens need causal attention");
        let Some((last, blocks)) = self.resblocks.split_last() else { return layout.pooled_rows(xs) };
        let xs = blocks.iter().fold(xs.shallow_clone(), |xs, block| block.forward(&xs, layout, self.causal));
        last.forward_at(&xs, layout, self.causal)
    }
}

/// `x / max(‖x‖, 1e-12)` along the last dimension, as `F.normalize`.
pub fn l2_normalize(xs: &Tensor) -> Tensor {
    xs / xs.norm_scalaropt_dim(2.0, [-1], true).clamp_min(1e-12)
}

