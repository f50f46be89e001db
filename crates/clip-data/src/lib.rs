//! Data for clip-rs: sources of image-text pairs and classification sets ([`source`]), decoding and
//! transforms, and a deterministic parallel [`loader`] that turns them into batches of tensors.
//!
//! - [`preprocess`]: CLIP's evaluation preprocessing, reproducing PIL + torchvision as open_clip and
//!   OpenAI CLIP compose them, bit for bit on 8-bit images, with the weights' mean, std,
//!   interpolation and resize mode (open_clip's `preprocess_cfg`).
//! - [`transform`]: open_clip's training transform (random resized crop), on the fast road: zune-jpeg
//!   and SIMD resizing.
//! - [`builtin`]: the procedural built-in dataset and its held-out classification tasks.
//! - [`source`]: CSV/TSV, WebDataset shards (brace patterns, `::`, `pipe:`), image folders,
//!   ImageFolder and CLIP_benchmark's WebDataset layout, and the built-in dataset.
//! - [`loader`]: decoding on a rayon pool, batches through a bounded channel, order fixed by the
//!   seed and epoch alone, resumable at any batch ([`Position`]), bad samples skipped and counted
//!   ([`SkipCounts`]).
//!
//! # Example
//! ```
//! use clip_data::{PreprocessConfig, SourceImage};
//!
//! // OpenAI's evaluation transform: shorter side to 224, centre crop, bicubic, OpenAI's mean and std.
//! let preprocess = PreprocessConfig::openai(224);
//! let image = SourceImage::from(image::DynamicImage::new_rgb8(320, 240)); // or SourceImage::decode(&bytes)?
//! let pixels = preprocess.apply(&image); // [3, 224, 224], channel-major
//! assert_eq!(pixels.len(), 3 * 224 * 224);
//! ```

pub mod builtin;
mod error;
pub mod loader;
mod position;
pub mod preprocess;
mod resample;
mod rng;
mod skip;
pub mod source;
pub mod transform;

pub use error::{Error, Result};
pub use loader::{Batch, Batches, ImageTransform, Loader, LoaderConfig, SampleInfo, Tail, TextMode};
pub use position::{Position, ShardCursor, StreamPosition};
pub use preprocess::{ImageMode, Interpolation, PreprocessConfig, ResizeMode, SourceImage};
pub use skip::{SkipCounts, SkipReason};
pub use source::Source;
