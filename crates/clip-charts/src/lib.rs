//! Charts of clip-rs runs as PNG bytes: a training run's curves ([`curves`]: loss raw and
//! smoothed, learning rate, `logit_scale`, zero-shot top-1 per task, one or several runs overlaid)
//! from `metrics.jsonl` ([`RunCurves::from_metrics`]), and benchmark scores beside the paper's
//! ([`results`]).
//!
//! Drawn with plotters' bitmap backend into an RGB buffer, encoded by `image`. Text uses the DejaVu
//! Sans subset in `fonts/` (compiled in), never a font of the machine's: a fresh machine may have
//! none, and a chart must look the same everywhere.
//!
//! Pure Rust, no tch; never prints, never writes a file: the caller decides where bytes go.
//!
//! # Example
//! ```
//! let metrics = "{\"step\": 1, \"loss\": 4.2, \"lr\": 0.001, \"logit_scale\": 14.3}\n\
//!                {\"step\": 2, \"loss\": 3.9, \"lr\": 0.001, \"logit_scale\": 14.4}\n";
//! let run = clip_charts::RunCurves::from_metrics("run", metrics)?;
//! assert_eq!(run.loss, [(1, 4.2), (2, 3.9)]);
//! let png = clip_charts::curves(&[run])?;
//! assert!(png.starts_with(b"\x89PNG"));
//! # Ok::<(), clip_charts::Error>(())
//! ```

mod curves;
mod results;
mod style;

pub use curves::{CURVES_SIZE, RunCurves, curves};
pub use results::{RESULTS_WIDTH, ResultBar, results, results_height};

/// What can go wrong drawing a chart.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// plotters failed (a bad range, the font).
    #[error("drawing the chart: {0}")]
    Draw(String),
    /// A line of `metrics.jsonl` is not JSON.
    #[error("metrics.jsonl line {line}: {message}")]
    Metrics {
        /// 1-based line number.
        line: usize,
        /// What the parser said.
        message: String,
    },
}

/// This crate's result.
pub type Result<T> = std::result::Result<T, Error>;
