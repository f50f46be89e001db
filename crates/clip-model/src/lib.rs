//! CLIP's encoders on tch: the Vision Transformer and ModifiedResNet image towers, the causal
//! text transformer with end-of-text pooling, projections and the learnable temperature, with
//! open_clip's model configs and the nine OpenAI presets (Radford et al. 2021; reference:
//! openai/CLIP `clip/model.py`, open_clip 3.3.0 `model.py`, `transformer.py`,
//! `modified_resnet.py`).
//!
//! Struct fields and `nn::Path` segments are the checkpoint keys (`visual.transformer.resblocks.0.
//! attn.in_proj_weight`, `ln_final`, `text_projection`, …), so open_clip-layout weights load into
//! a `VarStore` with no remapping table; [`weights`] also reads OpenAI's TorchScript archives and
//! Hugging Face `CLIPModel` files, and infers an architecture from a state dict.
//!
//! The model knows nothing of files beyond that, of tokenizers, datasets or losses: inputs are
//! pixel tensors `[b, 3, s, s]` (already normalised) and id tensors `[b, context_length]`.

mod clip;
pub mod config;
mod error;
mod layers;
pub mod resnet;
pub mod text;
pub mod vit;
pub mod weights;

pub use clip::{ClipModel, ClipOutput, Visual};
pub use config::{ClipConfig, ResNetConfig, TextConfig, VisionConfig, VitConfig};
pub use error::{Error, Result};
pub use layers::{Activation, l2_normalize};
pub use weights::{WeightsFormat, load_weights};
