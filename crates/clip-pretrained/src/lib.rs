//! Pretrained CLIP weights by name, as open_clip resolves them: the (model, tag) registry
//! generated from open_clip 3.3.0 ([`registry`]), `hf-hub:ORG/NAME` and `local-dir:DIR` specs
//! read from `open_clip_config.json` ([`open_clip_config`]), and the preprocessing that belongs to
//! the weights ([`resolve`](mod@resolve)), and the tokenizer the model reads
//! ([`tokenizer`](mod@tokenizer)).
//!
//! Nothing here reaches the network on its own: every file comes through the `clip_hub::Hub` the
//! caller passes, and an offline hub answers from the cache alone.
//!
//! # Example
//! ```
//! let entry = clip_pretrained::registry::find("ViT-B-32", "openai").expect("in open_clip's registry");
//! assert_eq!(entry.architecture, "ViT-B-32");
//! assert!(clip_pretrained::registry::tags("ViT-B-32").contains(&"laion2b_s34b_b79k"));
//! // resolve("ViT-B-32", Some("openai"), &hub, …) fetches the weights through a clip_hub::Hub.
//! ```

mod error;
pub mod open_clip_config;
pub mod registry;
pub mod resolve;
pub mod tokenizer;

pub use error::{Error, Result};
pub use open_clip_config::{OpenClipConfig, open_clip_config_json, read_open_clip_config, recorded_preprocess};
pub use resolve::{ModelName, Resolved, resolve};
pub use tokenizer::{choose_tokenizer, tokenizer};
