//! CLIP training for clip-rs: a TOML configuration ([`config`]), AdamW with open_clip's parameter
//! groups and schedules ([`optim`]), the loop with data parallelism, evaluation and metrics
//! ([`trainer`]), checkpoints that resume exactly ([`checkpoint`]), and TensorBoard event files
//! ([`tensorboard`]).

pub mod checkpoint;
pub mod config;
mod error;
pub mod optim;
pub mod tensorboard;
pub mod trainer;

pub use config::TrainConfig;
pub use error::{Error, Result};
pub use trainer::{Event, EvalResult, StepMetrics, Summary, train};
