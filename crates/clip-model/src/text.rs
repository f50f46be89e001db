//! The text tower (open_clip's `TextTransformer`): token and positional embeddings → transformer
//! (causal unless `no_causal_mask`) → `ln_final` → the features at the pooled token →
//! `text_projection` (a matrix, an `nn.Linear` with `proj_bias`, or none).
//!
//! The pooled token is the highest id of each row (`argmax`, OpenAI's end-of-text token), the
//! first occurrence of `eos_id` (`eos`), the first or the last position. With CoCa's `embed_cls`
//! a class embedding is appended after the text and pooled instead, `ln_final` after pooling.

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use crate::config::{TextConfig, TextPool, TextProjection};
use crate::init::normal;
use crate::layers::{Activation, Layout, Transformer, TransformerConfig, layer_norm};

/// The projection after pooling, as the checkpoint holds it.
#[derive(Debug)]
enum Projection {
    /// `text_projection`, `[width, embed_dim]`.
    Matrix(Tensor),
    /// `text_projection.weight` / `.bias`.
    Linear(nn::Linear),
    None,
}

/// The text tower's parameters; in a CLIP checkpoint they sit at the top level, in a
/// `custom_text` one under `text`.
///
/// # Shapes
/// Input ids `[b, t]` (int64, `t ≤ context_length`); output `[b, embed_dim]`.
#[derive(Debug)]
pub struct TextTransformer {
    token_embedding: nn::Embedding,
    positional_embedding: Tensor,
    cls_emb: Option<Tensor>,
    transformer: Transformer,
    ln_final: nn::LayerNorm,
    text_projection: Projection,
    causal: bool,
    pool: TextPool,
    eos_id: i64,
    pad_id: i64,
}

impl TextTransformer {
    /// Builds the tower under `p` (the checkpoint's root, or `text`).
    pub fn new(p: nn::Path<'_>, c: &TextConfig, embed_dim: i64, quick_gelu: bool) -> Self {
        let embedding = nn::EmbeddingConfig { ws_init: normal(0.02), ..Default::default() };
        let transformer = TransformerConfig {
            width: c.width,
            layers: c.layers,
            heads: c.heads,
            mlp_ratio: c.mlp_ratio,
            activation: Activation::new(quick_gelu, c.gelu),
            norm_eps: c.norm_eps,
            ls_init_value: c.ls_init_value,
            causal: c.causal,
        };
        let positions = c.context_length + i64::from(c.embed_cls);
        let std = (c.width as f64).powf(-0.5);
        let text_projection = match (c.projection, c.proj_bias) {
            (TextProjection::None, _) => Projection::None,
            (TextProjection::Linear, false) => Projection::Matrix(p.var("text_projection", &[c.width, embed_dim], normal(std))),
            (TextProjection::Linear, true) => Projection::Linear(crate::layers::linear(&p / "text_projection", c.width, embed_dim, std)),
        };
        Self {
            token_embedding: nn::embedding(&p / "token_embedding", c.vocab_size, c.width, embedding),
            positional_embedding: p.var("positional_embedding", &[positions, c.width], normal(0.01)),
            cls_emb: c.embed_cls.then(|| p.var("cls_emb", &[c.width], normal(0.01))),
            transformer: Transformer::new(&p / "transformer", &transformer),
            ln_final: layer_norm(&p / "ln_final", c.width, c.norm_eps),
            text_projection,
            causal: c.causal,
            pool: c.pool,
            eos_id: c.eos_id,
            pad_id: c.pad_id,
        }
    }

    /// Gradient checkpointing in training: each residual block keeps only its input and runs again
    /// in the backward (open_clip's `set_grad_checkpointing`).
    pub fn set_grad_checkpointing(&mut self, on: bool) {
        self.transformer.grad_checkpointing = on;
    }

    /// The pooled features after `ln_final`, before the projection, `[b, width]`.
    pub fn pooled(&self, ids: &Tensor) -> Tensor {
        if self.cls_emb.is_some() {
            return self.pooled_cls(ids);
        }
        let (b, t) = ids.size2().expect("ids are [batch, tokens]");
        let device = ids.device();
        let at = match self.pool {
            TextPool::Argmax => ids.argmax(-1, false),
            TextPool::Eos => ids.eq(self.eos_id).to_kind(Kind::Int).argmax(-1, false),
            TextPool::First => Tensor::zeros([b], (Kind::Int64, device)),
            TextPool::Last => Tensor::full([b], t - 1, (Kind::Int64, device)),
        };
        let (used, layout) = if self.causal {
            // Attention is causal, so no token after a text's pooled one can change its feature
            // or take a gradient: those tokens are not computed at all (the columns after the
            // batch's last pooled token are dropped, and texts of different lengths are packed).
            // Prompts and captions fill ~10–20 of OpenAI's 77 positions, so this skips most of
            // the tower's work (open_clip computes them all); the features are the same.
            let used = at.max().int64_value(&[]) + 1;
            (used, Layout::up_to(used, at))
        } else {
            // Every token sees every other: all are computed (pooling still reads one).
            (t, Layout::dense(t, at))
        };
        let xs = ids.narrow(1, 0, used).apply(&self.token_embedding) + self.positional_embedding.narrow(0, 0, used);
        let xs = layout.select(&xs);
        self.transformer.pooled(&xs, &layout).apply(&self.ln_final)
    }

    /// CoCa's text: the class embedding after the ids, pooled; causal attention plus open_clip's
    /// padding mask, which (as open_clip builds it, the class column first) hides key `j ≥ 1`
    /// where id `j − 1` is `pad_id` and never key 0.
    fn pooled_cls(&self, ids: &Tensor) -> Tensor {
        let cls = self.cls_emb.as_ref().expect("called with embed_cls");
        let (b, t) = ids.size2().expect("ids are [batch, tokens]");
        let width = cls.size()[0];
        let device = ids.device();
        let xs = ids.apply(&self.token_embedding);
        let xs = Tensor::cat(&[xs.shallow_clone(), cls.to_kind(xs.kind()).view([1, 1, width]).expand([b, 1, width], false)], 1);
        let n = t + 1;
        let xs = xs + self.positional_embedding.narrow(0, 0, n);
        let valid = Tensor::cat(&[Tensor::ones([b, 1], (Kind::Bool, device)), ids.ne(self.pad_id)], 1); // [b, n] keys
        let causal = Tensor::ones([n, n], (Kind::Bool, device)).tril(0); // [q, k]
        let mask = causal.view([1, 1, n, n]).logical_and(&valid.view([b, 1, 1, n]));
        let layout = Layout::dense(n, Tensor::full([b], n - 1, (Kind::Int64, device)));
        let xs = layout.select(&xs);
        self.transformer.pooled_masked(&xs, &layout, &mask).apply(&self.ln_final)
    }
}

impl Module for TextTransformer {
    fn forward(&self, ids: &Tensor) -> Tensor {
        let pooled = self.pooled(ids);
        match &self.text_projection {
            Projection::Matrix(w) => pooled.matmul(w),
            Projection::Linear(l) => pooled.apply(l),
            Projection::None => pooled,
        }
    }
}
