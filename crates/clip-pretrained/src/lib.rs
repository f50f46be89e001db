//! Pretrained CLIP weights by name, as open_clip resolves them: the (model, tag) registry
//! generated from open_clip 3.3.0 ([`registry`]), `hf-hub:ORG/NAME` and `local-dir:DIR` specs
//! read from `open_clip_config.json` ([`open_clip_config`]), and the preprocessing that belongs to
//! the weights ([`resolve`](mod@resolve)), and the tokenizer the model reads
//! ([`tokenizer`](mod@tokenizer)).
//!
//! Nothing here reaches the network on its own: every file comes through the `clip_hub::Hub` the
//! caller passes, and an offline hub answers from the cache alone.

mod error;
pub mod open_clip_config;
pub mod registry;
pub mod resolve;
pub mod tokenizer;

pub use error::{Error, Result};
pub use open_clip_config::{OpenClipConfig, open_clip_config_json, read_open_clip_config, recorded_preprocess};
pub use resolve::{ModelName, Resolved, resolve};
pub use tokenizer::{choose_tokenizer, tokenizer};
