//! The whole model: an image tower under `visual`, the text tower at the root (under `text` for
//! open_clip's `custom_text` models), and the learnable temperature `logit_scale` (and SigLIP's
//! `logit_bias`) — the layout of OpenAI's and open_clip's checkpoints.

use tch::nn::{self, Init, Module};
use tch::Tensor;

use crate::config::{ClipConfig, VisionConfig};
use crate::layers::l2_normalize;
use crate::resnet::ModifiedResNet;
use crate::text::TextTransformer;
use crate::timm_vit::TimmVisionTransformer;
use crate::vit::VisionTransformer;

/// The image tower of either family.
#[derive(Debug)]
pub enum Visual {
    /// A Vision Transformer.
    Vit(Box<VisionTransformer>),
    /// A ModifiedResNet.
    ResNet(Box<ModifiedResNet>),
    /// timm's SigLIP ViT.
    TimmVit(Box<TimmVisionTransformer>),
}

/// Normalised features and the temperature, what the contrastive loss takes.
#[derive(Debug)]
pub struct ClipOutput {
    /// `[b_images, embed_dim]`, unit length.
    pub image_features: Tensor,
    /// `[b_texts, embed_dim]`, unit length.
    pub text_features: Tensor,
    /// `logit_scale.exp()`, a scalar.
    pub logit_scale: Tensor,
}

/// CLIP.
#[derive(Debug)]
pub struct ClipModel {
    /// The architecture.
    pub config: ClipConfig,
    visual: Visual,
    text: TextTransformer,
    logit_scale: Tensor,
    logit_bias: Option<Tensor>,
}

impl ClipModel {
    /// Builds the model's parameters under `p` (a `VarStore`'s root for checkpoint keys).
    pub fn new(p: nn::Path<'_>, config: &ClipConfig) -> Self {
        let visual = match &config.vision {
            VisionConfig::Vit(c) => Visual::Vit(Box::new(VisionTransformer::new(&p / "visual", c, config.embed_dim, config.quick_gelu))),
            VisionConfig::ResNet(c) => Visual::ResNet(Box::new(ModifiedResNet::new(&p / "visual", c, config.embed_dim))),
            VisionConfig::TimmVit(c) => Visual::TimmVit(Box::new(TimmVisionTransformer::new(&p / "visual", c))),
        };
        let text = if config.custom_text { &p / "text" } else { p.clone() };
        Self {
            config: config.clone(),
            visual,
            text: TextTransformer::new(text, &config.text, config.embed_dim, config.quick_gelu),
            logit_scale: p.var("logit_scale", &[], Init::Const(config.init_logit_scale.unwrap_or_else(clip_init_logit_scale))),
            logit_bias: config.init_logit_bias.map(|b| p.var("logit_bias", &[], Init::Const(b))),
        }
    }

    /// [`ClipModel::new`] without drawing the initial values (the parameters are zeros), for
    /// weights that are loaded next: a strict load overwrites every parameter, and the draws
    /// took ~0.4 s of ViT-B-32's start. The global RNG is left as it was.
    pub fn for_weights(p: nn::Path<'_>, config: &ClipConfig) -> Self {
        crate::init::without_draws(|| Self::new(p, config))
    }

    /// Image embeddings, `[b, embed_dim]`, not normalised. Every patch is used (no patch
    /// dropout): what evaluation and embedding read.
    pub fn encode_image(&self, images: &Tensor) -> Tensor {
        self.encode_image_with(images, None)
    }

    /// Image embeddings from the class token and the `kept` patches only (`[b, k]` indices,
    /// drawn by [`crate::patch_dropout::draw_kept`] in training); `None`: [`Self::encode_image`].
    ///
    /// # Panics
    /// With `kept` for a ModifiedResNet, which has no patch tokens.
    pub fn encode_image_with(&self, images: &Tensor, kept: Option<&Tensor>) -> Tensor {
        match &self.visual {
            Visual::Vit(v) => v.forward_with(images, kept),
            Visual::ResNet(r) => {
                assert!(kept.is_none(), "a ModifiedResNet has no patch tokens to drop");
                r.forward(images)
            }
            Visual::TimmVit(t) => t.forward_with(images, kept),
        }
    }

    /// The features a linear probe reads: an open_clip ViT's pooled features before `proj`
    /// (`[b, width]`, `[b, embed_dim]` after CoCa's attentional pool); a timm SigLIP tower's
    /// attention-pool output, which has no projection after it (the embedding itself); `None`
    /// for a ResNet, whose attention pool ends in the projection.
    pub fn encode_image_unprojected(&self, images: &Tensor) -> Option<Tensor> {
        match &self.visual {
            Visual::Vit(v) => Some(v.pooled(images)),
            Visual::ResNet(_) => None,
            Visual::TimmVit(t) => Some(t.forward(images)),
        }
    }

    /// Text embeddings, `[b, embed_dim]`, not normalised. `ids`: `[b, context_length]` int64.
    pub fn encode_text(&self, ids: &Tensor) -> Tensor {
        self.text.forward(ids)
    }

    /// Training mode (PyTorch's `model.train()`) or inference mode (the default). Only a ResNet
    /// tower's BatchNorm layers behave differently; a ViT has no mode-dependent layer.
    pub fn set_training(&self, training: bool) {
        if let Visual::ResNet(r) = &self.visual {
            r.set_training(training);
        }
    }

    /// Gradient checkpointing (open_clip's `set_grad_checkpointing`, `--grad-checkpointing`): in
    /// training each residual block of both towers, and each stage of a ModifiedResNet, keeps
    /// only its input in the forward pass and runs again in the backward
    /// ([`clip_tensor::checkpoint`]). The same loss and gradients, the activations of one block
    /// at a time instead of all, about one more forward pass per step. Anything run without
    /// gradient (evaluation, embedding) is not checkpointed.
    pub fn set_grad_checkpointing(&mut self, on: bool) {
        match &mut self.visual {
            Visual::Vit(v) => v.set_grad_checkpointing(on),
            Visual::ResNet(r) => r.set_grad_checkpointing(on),
            Visual::TimmVit(t) => t.set_grad_checkpointing(on),
        }
        self.text.set_grad_checkpointing(on);
    }

    /// The learnable log-temperature parameter (the trainer clamps it).
    pub fn logit_scale(&self) -> &Tensor {
        &self.logit_scale
    }

    /// The learnable logit bias of SigLIP models (`init_logit_bias` in the config).
    pub fn logit_bias(&self) -> Option<&Tensor> {
        self.logit_bias.as_ref()
    }

    /// Normalised image and text features and `logit_scale.exp()`.
    pub fn forward(&self, images: &Tensor, ids: &Tensor) -> ClipOutput {
        self.forward_with(images, ids, None)
    }

    /// [`Self::forward`] with the image tower on the `kept` patches only
    /// ([`Self::encode_image_with`]): a training step with patch dropout.
    pub fn forward_with(&self, images: &Tensor, ids: &Tensor, kept: Option<&Tensor>) -> ClipOutput {
        ClipOutput {
            image_features: l2_normalize(&self.encode_image_with(images, kept)),
            text_features: l2_normalize(&self.encode_text(ids)),
            logit_scale: self.logit_scale.exp(),
        }
    }
}

/// ln(1 / 0.07), CLIP's initial temperature.
fn clip_init_logit_scale() -> f64 {
    (1.0f64 / 0.07).ln()
}
