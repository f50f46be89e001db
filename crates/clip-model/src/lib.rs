//! CLIP's encoders on tch: the Vision Transformer and ModifiedResNet image towers, timm's SigLIP
//! ViT with its attention-pool head, the text transformer (causal with end-of-text pooling as
//! OpenAI's, or with open_clip's options: no causal mask, first/last/eos pooling, CoCa's class
//! embedding), projections and the learnable temperature, with open_clip's model configs and
//! presets (Radford et al. 2021, Zhai et al. 2023; reference: openai/CLIP `clip/model.py`,
//! open_clip 3.3.0 `model.py`, `transformer.py`, `timm_model.py`, `modified_resnet.py`, timm
//! 1.0.31 `vision_transformer.py`).
//!
//! Struct fields and `nn::Path` segments are the checkpoint keys (`visual.transformer.resblocks.0.
//! attn.in_proj_weight`, `ln_final`, `text_projection`, …), so open_clip-layout weights load into
//! a `VarStore` with no remapping table; [`weights`] also reads OpenAI's TorchScript archives and
//! Hugging Face `CLIPModel` files, and infers an architecture from a state dict.
//!
//! The model knows nothing of files beyond that, of tokenizers, datasets or losses: inputs are
//! pixel tensors `[b, 3, s, s]` (already normalised) and id tensors `[b, context_length]`.
//!
//! # Example
//! ```
//! use clip_model::{ClipConfig, ClipModel, l2_normalize};
//! use tch::{Device, Kind, Tensor, nn::VarStore};
//!
//! let config = ClipConfig::named("tiny")?; // a 64 px model; ClipConfig::named("ViT-B-32") and the rest likewise
//! let vs = VarStore::new(Device::Cpu);
//! let model = ClipModel::new(vs.root(), &config); // random weights (ClipModel::for_weights, then clip_model::load_weights, for a checkpoint)
//! let size = config.vision.image_size();
//! let _guard = tch::no_grad_guard();
//! let images = model.encode_image(&Tensor::zeros([2, 3, size, size], (Kind::Float, Device::Cpu)));
//! let texts = model.encode_text(&Tensor::zeros([3, config.text.context_length], (Kind::Int64, Device::Cpu)));
//! let similarity = l2_normalize(&images).matmul(&l2_normalize(&texts).tr());
//! assert_eq!(similarity.size(), [2, 3]);
//! # Ok::<(), clip_model::Error>(())
//! ```

mod clip;
pub mod config;
mod error;
mod init;
mod layers;
pub mod patch_dropout;
pub mod resnet;
pub mod text;
pub mod timm_vit;
pub mod vit;
pub mod weights;

pub use clip::{ClipModel, ClipOutput, Visual};
pub use config::{
    AttentionalPoolConfig, ClipConfig, GeluApproximate, ResNetConfig, TextConfig, TextPool, TextProjection, TimmVitConfig, VisionConfig,
    VitConfig, VitPool,
};
pub use error::{Error, Result};
pub use layers::{Activation, l2_normalize};
pub use weights::{LoadedWeights, WeightsFormat, load_weights, load_weights_for};
