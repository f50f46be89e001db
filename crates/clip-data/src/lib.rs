//! Data for clip-rs. So far: the procedural built-in dataset ([`builtin`]), and decoding images
//! and CLIP's evaluation preprocessing, reproducing
//! PIL + torchvision as open_clip and OpenAI CLIP compose them (resize the shorter side with
//! bicubic filtering, centre crop, convert to RGB, scale to [0, 1], normalise), bit for bit on
//! 8-bit images: PIL's fixed-point resampler, its mode rules (alpha premultiplied while
//! resizing, palette images resized by nearest neighbour) and torchvision's rounding.
//!
//! Nothing here depends on tch: preprocessing returns plain buffers, so decode workers hold no
//! libtorch state.

pub mod builtin;
mod error;
pub mod preprocess;
mod resample;

pub use error::{Error, Result};
pub use preprocess::{ImageMode, PreprocessConfig, SourceImage};
