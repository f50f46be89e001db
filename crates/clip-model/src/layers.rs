//! The transformer pieces both towers share, named as in OpenAI's and open_clip's checkpoints:
//! `ln_1`, `attn.in_proj_weight`, `attn.out_proj`, `ln_2`, `mlp.c_fc`, `mlp.c_proj`.
//!
//! Activations are batch-first, `[b, t, d]` (open_clip's layout; attention does not care).

use std::sync::Arc;

use clip_tensor::checkpoint::{Pass, checkpoint};
use tch::nn::{self, Init, Module};
use tch::{Kind, Tensor};

use crate::config::GeluApproximate;
use crate::init::normal;

/// OpenAI's weights use QuickGELU, `x·σ(1.702x)`; other open_clip models exact GELU, and some
/// SigLIP2 towers GELU's tanh approximation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `x·σ(1.702x)`.
    QuickGelu,
    /// `x·Φ(x)`.
    Gelu,
    /// GELU's tanh approximation (PyTorch's `approximate='tanh'`).
    GeluTanh,
}

impl Activation {
    /// open_clip's choice for its own towers: QuickGELU when the config says so, else GELU in the
    /// form `act_kwargs` gives.
    pub(crate) fn new(quick_gelu: bool, gelu: GeluApproximate) -> Self {
        match (quick_gelu, gelu) {
            (true, _) => Self::QuickGelu,
            (false, GeluApproximate::None) => Self::Gelu,
            (false, GeluApproximate::Tanh) => Self::GeluTanh,
        }
    }

    pub(crate) fn apply(self, xs: &Tensor) -> Tensor {
        match self {
            Self::QuickGelu => xs * (xs * 1.702).sigmoid(),
            Self::Gelu => xs.gelu("none"),
            Self::GeluTanh => xs.gelu("tanh"),
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

/// LayerNorm with the given eps (PyTorch's 1e-5 unless `norm_kwargs` say otherwise; timm's 1e-6).
pub(crate) fn layer_norm(p: nn::Path<'_>, width: i64, eps: f64) -> nn::LayerNorm {
    nn::layer_norm(p, vec![width], nn::LayerNormConfig { eps, ..Default::default() })
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
}

/// Fused-QKV self-attention's parameters, in any checkpoint layout: open_clip's
/// `nn.MultiheadAttention` or timm's `qkv`/`proj` linears.
pub(crate) struct SelfAttention<'a> {
    /// `[3d, d]`, queries, keys, values stacked in that order.
    pub(crate) qkv_weight: &'a Tensor,
    /// `[3d]`.
    pub(crate) qkv_bias: Option<&'a Tensor>,
    pub(crate) out_proj: &'a nn::Linear,
    pub(crate) heads: i64,
}

/// Which keys each query sees.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mask<'a> {
    /// All of them.
    None,
    /// Its own position and earlier ones (the text tower).
    Causal,
    /// Those marked true in a boolean `[b, 1, t, t]` (query, key) grid.
    Explicit(&'a Tensor),
}

/// A [`Mask`] that holds its own handle, for a checkpointed block's recompute.
#[derive(Debug)]
pub(crate) enum OwnedMask {
    None,
    Causal,
    Explicit(Tensor),
}

impl Mask<'_> {
    fn to_owned_mask(self) -> OwnedMask {
        match self {
            Mask::None => OwnedMask::None,
            Mask::Causal => OwnedMask::Causal,
            Mask::Explicit(m) => OwnedMask::Explicit(m.shallow_clone()),
        }
    }
}

impl OwnedMask {
    fn get(&self) -> Mask<'_> {
        match self {
            OwnedMask::None => Mask::None,
            OwnedMask::Causal => Mask::Causal,
            OwnedMask::Explicit(m) => Mask::Explicit(m),
        }
    }
}

/// A part of the model (a block, a stage) that the model shares with the graphs of its
/// checkpointed runs: libtorch runs the recompute during `backward`, possibly on its own autograd
/// thread (CUDA devices), after the forward that built the graph has returned.
#[derive(Debug)]
pub(crate) struct Shared<T>(Arc<T>);

// SAFETY: `T: Send` (its tensors are), so dropping the last handle on any thread is sound. What
// `Send` for an `Arc` would also need, `T: Sync`, tch withholds because a tensor could be mutated
// through `&`. A shared part's handles are never changed after construction (the model's flags
// live outside it) and are only read, as inputs of libtorch operations, which may run
// concurrently on shared tensors; their values change only in libtorch (the optimiser's in-place
// updates, through the VarStore's own handles, between steps), and gradients accumulate under
// autograd's locks.
unsafe impl<T: Send> Send for Shared<T> {}

impl<T> Shared<T> {
    pub(crate) fn new(part: T) -> Self {
        Self(Arc::new(part))
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T> std::ops::Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// `run(part, xs)` as a checkpointed block ([`clip_tensor::checkpoint`]): only `xs` is kept for
/// the backward, which calls `run` again (told [`Pass::Recompute`]). Plain without a gradient to
/// record.
///
/// # Panics
/// If libtorch refuses the autograd function (and whatever `run` panics with).
pub(crate) fn checkpointed<T, F>(part: &Shared<T>, xs: &Tensor, run: F) -> Tensor
where
    T: Send + 'static,
    F: Fn(&T, &Tensor, Pass) -> Tensor + Send + 'static,
{
    let part = part.clone();
    checkpoint(xs, move |xs, pass| run(&*part, xs, pass)).unwrap_or_else(|e| panic!("{e}"))
}

impl SelfAttention<'_> {
    fn forward(&self, xs: &Tensor, layout: &Layout, mask: Mask<'_>) -> Tensor {
        let (b, t, d) = (layout.batch, layout.tokens, xs.size()[1]);
        let qkv = layout.pad(&xs.linear(self.qkv_weight, self.qkv_bias)); // [b, t, 3d]
        let qkv = qkv.view([b, t, 3, self.heads, d / self.heads]).permute([2, 0, 3, 1, 4]); // [3, b, h, t, dh]
        let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
        let (explicit, causal) = match mask {
            Mask::None => (None, false),
            Mask::Causal => (None, true),
            Mask::Explicit(m) => (Some(m), false),
        };
        let out = Tensor::scaled_dot_product_attention(&q, &k, &v, explicit, 0.0, causal, None, false);
        layout.select(&out.transpose(1, 2)).apply(self.out_proj)
    }

    /// The output at each sequence's pooled token alone, `[b, d]`: keys and values still come
    /// from every token the mask lets the pooled one see.
    fn forward_at(&self, xs: &Tensor, layout: &Layout, mask: Mask<'_>) -> Tensor {
        let (b, t, d) = (layout.batch, layout.tokens, xs.size()[1]);
        let head_dim = d / self.heads;
        let (w, bias) = (self.qkv_weight, self.qkv_bias);
        let q = layout.pooled_rows(xs).linear(&w.narrow(0, 0, d), bias.map(|b| b.narrow(0, 0, d)));
        let kv = layout.pad(&xs.linear(&w.narrow(0, d, 2 * d), bias.map(|b| b.narrow(0, d, 2 * d))));
        let kv = kv.view([b, t, 2, self.heads, head_dim]).permute([2, 0, 3, 1, 4]); // [2, b, h, t, dh]
        let mask = match mask {
            Mask::None => None,
            Mask::Causal => Some(Tensor::arange(t, (Kind::Int64, xs.device())).view([1, t]).le_tensor(&layout.at.view([b, 1])).view([b, 1, 1, t])),
            // The pooled query's row of the grid.
            Mask::Explicit(m) => Some(m.expand([b, 1, t, t], false).gather(2, &layout.at.view([b, 1, 1, 1]).expand([b, 1, 1, t], false), false)),
        };
        let q = q.view([b, self.heads, 1, head_dim]);
        let out = Tensor::scaled_dot_product_attention(&q, &kv.get(0), &kv.get(1), mask, 0.0, false, None, false);
        out.reshape([b, d]).apply(self.out_proj)
    }
}

/// A pre-LN residual block, `x + ls_1(attn(norm_1(x)))`, then `x + ls_2(mlp(norm_2(x)))`, whatever
/// its checkpoint calls the parts: open_clip's [`ResidualAttentionBlock`] and timm's `Block`.
pub(crate) trait PreNormBlock {
    /// The attention branch's LayerNorm.
    fn norm_1(&self, xs: &Tensor) -> Tensor;
    /// The attention's parameters.
    fn attention(&self) -> SelfAttention<'_>;
    /// LayerScale after the attention (the identity without one).
    fn scale_1(&self, xs: Tensor) -> Tensor;
    /// The whole MLP branch, `ls_2(mlp(norm_2(x)))`.
    fn mlp_branch(&self, xs: &Tensor) -> Tensor;

    /// Every computed token, `[rows, d]` as `layout` says.
    fn forward(&self, xs: &Tensor, layout: &Layout, mask: Mask<'_>) -> Tensor {
        let xs = xs + self.scale_1(self.attention().forward(&self.norm_1(xs), layout, mask));
        &xs + self.mlp_branch(&xs)
    }

    /// [`Self::forward`] at each sequence's pooled token alone, `[b, d]`.
    fn forward_at(&self, xs: &Tensor, layout: &Layout, mask: Mask<'_>) -> Tensor {
        let x = layout.pooled_rows(xs) + self.scale_1(self.attention().forward_at(&self.norm_1(xs), layout, mask));
        &x + self.mlp_branch(&x)
    }
}

/// The residual stream after `blocks` at each sequence's pooled token (`[b, d]`; `xs`: `[rows, d]`
/// as `layout` says): the class token, or each text's pooled token — all that pooling reads. So
/// the last block runs its queries, output projection and MLP on those tokens alone (keys and
/// values still on all): about four fifths of that block's work skipped, with the same features
/// and gradients. Packed layouts need causal attention.
///
/// With `grad_checkpointing`, each block is a checkpointed one ([`checkpointed`]).
pub(crate) fn run_pooled<B>(blocks: &[Shared<B>], xs: &Tensor, layout: &Layout, mask: Mask<'_>, grad_checkpointing: bool) -> Tensor
where
    B: PreNormBlock + Send + 'static,
{
    debug_assert!(matches!(mask, Mask::Causal) || layout.kept.is_none(), "packed tokens need causal attention");
    let Some((last, blocks)) = blocks.split_last() else { return layout.pooled_rows(xs) };
    let xs = run_all(blocks, xs, layout, mask, grad_checkpointing);
    if !grad_checkpointing {
        return last.forward_at(&xs, layout, mask);
    }
    let (layout, mask) = (layout.shallow_clone(), mask.to_owned_mask());
    checkpointed(last, &xs, move |block, xs, _| block.forward_at(xs, &layout, mask.get()))
}

/// The residual stream after `blocks` at every computed token, `[rows, d]`; with
/// `grad_checkpointing`, each block a checkpointed one.
pub(crate) fn run_all<B>(blocks: &[Shared<B>], xs: &Tensor, layout: &Layout, mask: Mask<'_>, grad_checkpointing: bool) -> Tensor
where
    B: PreNormBlock + Send + 'static,
{
    blocks.iter().fold(xs.shallow_clone(), |xs, block| {
        if !grad_checkpointing {
            return block.forward(&xs, layout, mask);
        }
        let (layout, mask) = (layout.shallow_clone(), mask.to_owned_mask());
        checkpointed(block, &xs, move |block, xs, _| block.forward(xs, &layout, mask.get()))
    })
}

/// LayerScale, `x · gamma` (open_clip's `ls_1`/`ls_2`, timm's `ls1`/`ls2`).
#[derive(Debug)]
pub(crate) struct LayerScale {
    gamma: Tensor,
}

impl LayerScale {
    pub(crate) fn new(p: nn::Path<'_>, width: i64, init: f64) -> Self {
        Self { gamma: p.var("gamma", &[width], Init::Const(init)) }
    }

    pub(crate) fn maybe(scale: Option<&Self>, xs: Tensor) -> Tensor {
        match scale {
            Some(s) => xs * &s.gamma,
            None => xs,
        }
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

    /// Another handle on the same layout (its tensors shared).
    fn shallow_clone(&self) -> Self {
        Self {
            batch: self.batch,
            tokens: self.tokens,
            kept: self.kept.as_ref().map(|[s, c]| [s.shallow_clone(), c.shallow_clone()]),
            at: self.at.shallow_clone(),
            at_row: self.at_row.shallow_clone(),
        }
    }

    /// `[batch, tokens, …]` → the computed tokens, `[rows, c]` (`c`: the trailing sizes' product).
    pub(crate) fn select(&self, grid: &Tensor) -> Tensor {
        match &self.kept {
            Some([sequence, column]) => grid.index(&[Some(sequence), Some(column)]).flatten(1, -1),
            None => grid.reshape([self.batch * self.tokens, -1]),
        }
    }

    /// Each sequence's pooled token of `[rows, c]` activations, `[batch, c]`.
    pub(crate) fn pooled_rows(&self, xs: &Tensor) -> Tensor {
        xs.index_select(0, &self.at_row)
    }

    /// `[rows, c]` → `[batch, tokens, c]`, zeros at the skipped tokens.
    pub(crate) fn pad(&self, xs: &Tensor) -> Tensor {
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

/// open_clip's pre-LN residual block (`ln_1`, `attn`, `ls_1`, `ln_2`, `mlp`, `ls_2`).
#[derive(Debug)]
pub(crate) struct ResidualAttentionBlock {
    ln_1: nn::LayerNorm,
    attn: Attention,
    ls_1: Option<LayerScale>,
    ln_2: nn::LayerNorm,
    mlp: Mlp,
    ls_2: Option<LayerScale>,
}

impl PreNormBlock for ResidualAttentionBlock {
    fn norm_1(&self, xs: &Tensor) -> Tensor {
        xs.apply(&self.ln_1)
    }

    fn attention(&self) -> SelfAttention<'_> {
        let a = &self.attn;
        SelfAttention { qkv_weight: &a.in_proj_weight, qkv_bias: Some(&a.in_proj_bias), out_proj: &a.out_proj, heads: a.heads }
    }

    fn scale_1(&self, xs: Tensor) -> Tensor {
        LayerScale::maybe(self.ls_1.as_ref(), xs)
    }

    fn mlp_branch(&self, xs: &Tensor) -> Tensor {
        LayerScale::maybe(self.ls_2.as_ref(), xs.apply(&self.ln_2).apply(&self.mlp))
    }
}

/// A transformer's shape and options.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TransformerConfig {
    pub(crate) width: i64,
    pub(crate) layers: i64,
    pub(crate) heads: i64,
    pub(crate) mlp_ratio: f64,
    pub(crate) activation: Activation,
    pub(crate) norm_eps: f64,
    pub(crate) ls_init_value: Option<f64>,
    pub(crate) causal: bool,
}

/// A stack of residual attention blocks (`transformer.resblocks.N`).
#[derive(Debug)]
pub(crate) struct Transformer {
    resblocks: Vec<Shared<ResidualAttentionBlock>>,
    causal: bool,
    /// Each block checkpointed in training ([`checkpointed`]).
    pub(crate) grad_checkpointing: bool,
}

impl Transformer {
    pub(crate) fn new(p: nn::Path<'_>, c: &TransformerConfig) -> Self {
        let (width, eps) = (c.width, c.norm_eps);
        let std = InitStd::for_transformer(width, c.layers);
        let hidden = (width as f64 * c.mlp_ratio) as i64;
        let blocks = &p / "resblocks";
        let resblocks = (0..c.layers)
            .map(|i| {
                let b = &blocks / i;
                let scale = |name: &str| c.ls_init_value.map(|init| LayerScale::new(&b / name, width, init));
                Shared::new(ResidualAttentionBlock {
                    ln_1: layer_norm(&b / "ln_1", width, eps),
                    attn: Attention::new(&b / "attn", width, c.heads, std),
                    ls_1: scale("ls_1"),
                    ln_2: layer_norm(&b / "ln_2", width, eps),
                    mlp: Mlp::new(&b / "mlp", width, hidden, c.activation, std),
                    ls_2: scale("ls_2"),
                })
            })
            .collect();
        Self { resblocks, causal: c.causal, grad_checkpointing: false }
    }

    /// The residual stream after the last block at each sequence's pooled token ([`run_pooled`]).
    pub(crate) fn pooled(&self, xs: &Tensor, layout: &Layout) -> Tensor {
        run_pooled(&self.resblocks, xs, layout, self.mask(), self.grad_checkpointing)
    }

    /// [`Self::pooled`] with an explicit boolean `[b, 1, t, t]` mask instead of the causal one.
    pub(crate) fn pooled_masked(&self, xs: &Tensor, layout: &Layout, mask: &Tensor) -> Tensor {
        run_pooled(&self.resblocks, xs, layout, Mask::Explicit(mask), self.grad_checkpointing)
    }

    /// The residual stream after the last block at every computed token.
    pub(crate) fn forward(&self, xs: &Tensor, layout: &Layout) -> Tensor {
        run_all(&self.resblocks, xs, layout, self.mask(), self.grad_checkpointing)
    }

    fn mask(&self) -> Mask<'static> {
        if self.causal { Mask::Causal } else { Mask::None }
    }
}

/// `x / max(‖x‖, 1e-12)` along the last dimension, as `F.normalize`.
pub fn l2_normalize(xs: &Tensor) -> Tensor {
    xs / xs.norm_scalaropt_dim(2.0, [-1], true).clamp_min(1e-12)
}
