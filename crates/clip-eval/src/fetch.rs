//! Benchmark datasets from the hub, in CLIP_benchmark's WebDataset layout
//! (`clip-benchmark/wds_*` repos): the root's `classnames.txt`,
//! `zeroshot_classification_templates.txt` and `dataset_type.txt` where present, then per split
//! `SPLIT/nshards.txt` and its shards `SPLIT/0.tar … SPLIT/{n-1}.tar` (not zero-padded).
//!
//! Everything comes through the caller's `clip_hub::Hub` into the shared cache; an offline hub
//! answers from the cache alone. The snapshot folder it returns reads like a local copy.

use std::path::PathBuf;

use clip_hub::{Hub, Progress, Repo};

use crate::{Error, Result};

/// The root files of the layout; each may be absent (retrieval sets ship no class names).
const ROOT_FILES: &[&str] = &["classnames.txt", "zeroshot_classification_templates.txt", "dataset_type.txt"];

/// Fetches `splits` of the dataset repo `id` (those the repo has; a split it lacks is skipped) and
/// returns the snapshot folder holding them. A repo with none of the splits is an error.
pub fn fetch_dataset(hub: &Hub, id: &str, splits: &[&str], progress: &mut dyn FnMut(Progress)) -> Result<PathBuf> {
    let repo = Repo::dataset(id);
    let hub_error = |e: clip_hub::Error| Error::Task(format!("dataset {id}: {e}"));
    let mut dir = None;
    for split in splits {
        let Some(count_file) = hub.try_get(&repo, &format!("{split}/nshards.txt"), progress).map_err(hub_error)? else { continue };
        let text = std::fs::read_to_string(&count_file).map_err(|e| Error::Task(format!("reading {}: {e}", count_file.display())))?;
        let shards: usize = text.trim().parse().map_err(|_| Error::Task(format!("dataset {id}: {split}/nshards.txt holds {:?}, not a shard count", text.trim())))?;
        for shard in 0..shards {
            hub.get(&repo, &format!("{split}/{shard}.tar"), progress).map_err(hub_error)?;
        }
        dir = count_file.parent().and_then(|d| d.parent()).map(PathBuf::from);
    }
    let dir = dir.ok_or_else(|| Error::Task(format!("dataset {id} has none of the splits {} (no SPLIT/nshards.txt)", splits.join(", "))))?;
    for file in ROOT_FILES {
        hub.try_get(&repo, file, progress).map_err(hub_error)?;
    }
    Ok(dir)
}
