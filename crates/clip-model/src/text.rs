//! The text tower: token and positional embeddings → causal transformer → `ln_final` → the
//! features at the end-of-text token (the highest id in each row, as in the reference's
//! `argmax`) → `text_projection`.

use tch::nn::{self, Init, Module};
use tch::Tensor;

use crate::config::TextConfig;
use crate::layers::{Activation, Layout, Transformer, layer_norm};

/// The text tower's parameters; in a CLIP checkpoint they sit at the top level.
///
/// # Shapes
/// Input ids `[b, context_length]` (int64); output `[b, embed_dim]`.
#[derive(Debug)]
pub struct TextTransformer {
    token_embedding: nn::Embedding,
    positional_embedding: Tensor,
    transformer: Transformer,
    ln_final: nn::LayerNorm,
    text_projection: Tensor,
}

impl TextTransformer {
    /// Builds the tower under `p` (the checkpoint's root).
    pub fn new(p: nn::Path<'_>, c: &TextConfig, embed_dim: i64, activation: Activation) -> Self {
        let embedding = nn::EmbeddingConfig { ws_init: Init::Randn { mean: 0.0, stdev: 0.02 }, ..Default::default() };
        Self {
            token_embedding: nn::embedding(&p / "token_embedding", c.vocab_size, c.width, embedding),
            positional_embedding: p.var("positional_embedding", &[c.context_length, c.width], Init::Randn { mean: 0.0, stdev: 0.01 }),
            transformer: Transformer::new(&p / "transformer", c.width, c.layers, c.heads, c.mlp_ratio, activation, true),
            ln_final: layer_norm(&p / "ln_final", c.width),
            text_projection: p.var("text_projection", &[c.width, embed_dim], Init::Randn { mean: 0.0, stdev: (c.width as f64).powf(-0.5) }),
        }
    }
}

impl Module for TextTransformer {
    /// Attention is causal, so no token after a text's end-of-text token can change its pooled
    /// feature or take a gradient: those tokens are not computed at all (the columns after the
    /// batch's last end-of-text token are dropped, and texts of different lengths are packed).
    /// Prompts and captions fill ~10–20 of the 77 positions, so this skips most of the tower's
    /// work (open_clip computes them all); the features are the same.
    fn forward(&self, ids: &Tensor) -> Tensor {
        let eot = ids.argmax(-1, false); // [b]
        let used = eot.max().int64_value(&[]) + 1;
        let xs = ids.narrow(1, 0, used).apply(&self.token_embedding) + self.positional_embedding.narrow(0, 0, used);
        let layout = Layout::up_to(used, eot);
        let xs = layout.select(&xs);
        self.transformer.pooled(&xs, &layout).apply(&self.ln_final).matmul(&self.text_projection)
    }
}
