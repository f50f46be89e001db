//! Checkpoints: `OUTPUT/checkpoints/step-NNNNNNNN/` with `model.safetensors` (loadable by
//! `clip embed` with the run's `model.json`), `optimizer.safetensors`, `state.json` (step, epoch,
//! counters, best evaluation) and `position-RANK.json` (each rank's data position: the data
//! stream's only state, every random draw being addressed by it). A checkpoint is written into a
//! hidden temporary folder and renamed into place; `latest` names the newest complete one, so a
//! crash or a full disk mid-write leaves the previous checkpoint as it was.

use std::path::{Path, PathBuf};

use clip_data::{Position, SkipCounts};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The trainer's counters, saved with every checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Steps done.
    pub step: u64,
    /// Samples seen (all ranks).
    pub samples: u64,
    /// Skipped samples by reason (rank 0's loader).
    pub skipped: SkipCounts,
    /// Steps skipped for a non-finite loss or gradient.
    pub nonfinite_steps: u64,
    /// Best mean zero-shot accuracy so far, and its step.
    pub best: Option<(f64, u64)>,
    /// The model's config JSON: a checkpoint only resumes the same architecture.
    pub model_json: String,
}

/// The checkpoint folder of a run.
pub fn root(output: &Path) -> PathBuf {
    output.join("checkpoints")
}

fn step_dir(output: &Path, step: u64) -> PathBuf {
    root(output).join(format!("step-{step:08}"))
}

fn staging(output: &Path, step: u64) -> PathBuf {
    root(output).join(format!(".tmp-step-{step:08}"))
}

/// Where every rank writes its part before rank 0 completes the checkpoint.
pub fn begin(output: &Path, step: u64) -> Result<PathBuf> {
    let dir = staging(output, step);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    Ok(dir)
}

/// Writes this rank's data position into the staging folder.
pub fn write_position(dir: &Path, rank: usize, position: &Position) -> Result<()> {
    let path = dir.join(format!("position-{rank}.json"));
    let json = serde_json::to_vec(position).map_err(|e| Error::Checkpoint(e.to_string()))?;
    clip_tensor::atomic::atomic_write(&path, |f| std::io::Write::write_all(f, &json))?;
    Ok(())
}

/// Rank 0: writes the state into the staging folder, renames it into place, points `latest` at it
/// and removes checkpoints beyond the newest `keep` (and the best). On failure the staging folder
/// is removed and earlier checkpoints are untouched.
pub fn commit(output: &Path, state: &TrainState, write_tensors: impl FnOnce(&Path) -> Result<()>, keep: usize) -> Result<PathBuf> {
    let dir = staging(output, state.step);
    let result = (|| {
        write_tensors(&dir)?;
        let json = serde_json::to_vec_pretty(state).map_err(|e| Error::Checkpoint(e.to_string()))?;
        clip_tensor::atomic::atomic_write(&dir.join("state.json"), |f| std::io::Write::write_all(f, &json))?;
        let target = step_dir(output, state.step);
        if target.exists() {
            std::fs::remove_dir_all(&target).map_err(|e| Error::io(&target, e))?;
        }
        std::fs::rename(&dir, &target).map_err(|e| Error::io(&target, e))?;
        let name = format!("step-{:08}\n", state.step);
        clip_tensor::atomic::atomic_write(&root(output).join("latest"), |f| std::io::Write::write_all(f, name.as_bytes()))?;
        Ok(target)
    })();
    match result {
        Ok(target) => {
            prune(output, keep, state.best.map(|b| b.1));
            Ok(target)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            Err(e)
        }
    }
}

/// Steps of the complete checkpoints (a `step-N` folder only appears by a rename once complete),
/// in order.
fn steps(output: &Path) -> Vec<u64> {
    let Ok(entries) = std::fs::read_dir(root(output)) else { return Vec::new() };
    let mut steps: Vec<u64> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_prefix("step-")?.parse().ok())
        .collect();
    steps.sort_unstable();
    steps
}

/// The newest complete checkpoint, if any. Found by listing rather than through `latest`, which a
/// crash can leave one checkpoint behind (it is written after the rename).
pub fn newest(output: &Path) -> Option<PathBuf> {
    steps(output).last().map(|&s| step_dir(output, s))
}

/// Removes complete checkpoints older than the newest `keep`, sparing the best one.
fn prune(output: &Path, keep: usize, best_step: Option<u64>) {
    let steps = steps(output);
    let cut = steps.len().saturating_sub(keep.max(1));
    for &step in &steps[..cut] {
        if Some(step) != best_step {
            let _ = std::fs::remove_dir_all(step_dir(output, step));
        }
    }
}

/// A checkpoint to resume from: `latest` (the newest complete one of the run's output folder) or
/// a checkpoint folder.
pub fn resolve(output: &Path, spec: &str) -> Result<PathBuf> {
    if spec != "latest" {
        return Ok(PathBuf::from(spec));
    }
    newest(output).ok_or_else(|| Error::Checkpoint(format!("no checkpoint to resume in {}", root(output).display())))
}

/// Reads a checkpoint's state and this rank's position.
pub fn read(dir: &Path, rank: usize) -> Result<(TrainState, Position)> {
    let read = |name: String| -> Result<Vec<u8>> {
        let path = dir.join(&name);
        std::fs::read(&path).map_err(|e| Error::Checkpoint(format!("{}: {e}", path.display())))
    };
    let state: TrainState =
        serde_json::from_slice(&read("state.json".into())?).map_err(|e| Error::Checkpoint(format!("state.json: {e}")))?;
    let position: Position = serde_json::from_slice(&read(format!("position-{rank}.json"))?)
        .map_err(|e| Error::Checkpoint(format!("position-{rank}.json: {e}")))?;
    Ok((state, position))
}
