//! The Vision Transformer image tower (OpenAI `VisionTransformer`, open_clip's default path):
//! patch embedding `conv1` → class token + `positional_embedding` → `ln_pre` → transformer →
//! `ln_post` → class token → `proj`.

use tch::nn::{self, Init, Module};
use tch::Tensor;

use crate::config::VitConfig;
use crate::layers::{Activation, Layout, Transformer, layer_norm};

/// # Shapes
/// Input `[b, 3, image_size, image_size]`; pooled features `[b, width]`; output `[b, embed_dim]`.
#[derive(Debug)]
pub struct VisionTransformer {
    conv1: nn::Conv2D,
    class_embedding: Tensor,
    positional_embedding: Tensor,
    ln_pre: nn::LayerNorm,
    transformer: Transformer,
    ln_post: nn::LayerNorm,
    proj: Tensor,
}

impl VisionTransformer {
    /// Builds the tower under `p` (`visual` in a CLIP checkpoint).
    pub fn new(p: nn::Path<'_>, c: &VitConfig, embed_dim: i64, activation: Activation) -> Self {
        let scale = (c.width as f64).powf(-0.5);
        let grid = c.image_size / c.patch_size;
        let conv = nn::ConvConfig { stride: c.patch_size, bias: false, ..Default::default() };
        Self {
            conv1: nn::conv2d(&p / "conv1", 3, c.width, c.patch_size, conv),
            class_embedding: p.var("class_embedding", &[c.width], Init::Randn { mean: 0.0, stdev: scale }),
            positional_embedding: p.var("positional_embedding", &[grid * grid + 1, c.width], Init::Randn { mean: 0.0, stdev: scale }),
            ln_pre: layer_norm(&p / "ln_pre", c.width),
            transformer: Transformer::new(&p / "transformer", c.width, c.layers, c.heads, c.mlp_ratio, activation, false),
            ln_post: layer_norm(&p / "ln_post", c.width),
            proj: p.var("proj", &[c.width, embed_dim], Init::Randn { mean: 0.0, stdev: scale }),
        }
    }

    /// The class token after `ln_post`, before `proj`: the features a linear probe uses.
    pub fn pooled(&self, images: &Tensor) -> Tensor {
        let xs = images.apply(&self.conv1); // [b, width, grid, grid]
        let (b, width, _, _) = xs.size4().expect("conv output is 4-d");
        let xs = xs.reshape([b, width, -1]).transpose(1, 2); // [b, grid², width]
        let kind = xs.kind();
        let cls = self.class_embedding.to_kind(kind).view([1, 1, width]).expand([b, 1, width], false);
        let xs = Tensor::cat(&[cls, xs], 1) + self.positional_embedding.to_kind(kind); // [b, tokens, width]
        let layout = Layout::dense(xs.size()[1], Tensor::zeros([b], (tch::Kind::Int64, xs.device())));
        self.transformer.pooled(&layout.select(&xs).apply(&self.ln_pre), &layout).apply(&self.ln_post)
    }
}

impl Module for VisionTransformer {
    fn forward(&self, images: &Tensor) -> Tensor {
        self.pooled(images).matmul(&self.proj)
    }
}
