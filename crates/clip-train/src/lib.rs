//! CLIP training for clip-rs: a TOML configuration ([`config`]), AdamW with open_clip's parameter
//! groups and schedules ([`optim`]), the loop with data parallelism, evaluation and metrics
//! ([`trainer`]), checkpoints that resume exactly ([`checkpoint`]), and TensorBoard event files
//! ([`tensorboard`]).
//!
//! # Example
//! ```
//! // The same keys as `clip train --set` and the TOML file (docs/config.md).
//! let config = clip_train::TrainConfig::load(None, &["optim.lr=5e-4".into(), "data.batch_size=32".into()])?;
//! assert_eq!((config.optim.lr, config.data.batch_size), (5e-4, 32));
//! assert!(clip_train::TrainConfig::load(None, &["optim.nope=1".into()]).is_err());
//! // clip_train::train(&config, None, |event| …) runs it, sending each Event to the closure.
//! # Ok::<(), clip_train::Error>(())
//! ```

pub mod checkpoint;
pub mod config;
mod error;
pub mod optim;
pub mod tensorboard;
pub mod trainer;

pub use config::TrainConfig;
pub use error::{Error, Result};
pub use trainer::{Event, EvalResult, StepMetrics, Summary, train};
