//! Finding a labelled split of a classification set on disk, whatever its format: CLIP_benchmark's
//! WebDataset layout, ImageFolder (per split, or the whole folder as a test split when it ships
//! `classnames.txt`), or a native binary format ([`open_native`]).

use std::path::Path;
use std::sync::Arc;

use super::arrays::open_native;
use super::{ClassificationSet, ImageFolder, Source, benchmark_dataset_type, benchmark_wds, read_lines};
use crate::{Error, Result};

/// One split of a classification set, ready for the loader.
#[derive(Debug)]
pub struct LabelledSplit {
    /// The samples, with `.cls`-style integer labels.
    pub source: Source,
    /// Class names in label order, and templates if the set ships them.
    pub classes: ClassificationSet,
    /// Which layout it was found in, for reports.
    pub format: &'static str,
    /// Targets are per-class vectors (`.npy` members; `dataset_type.txt` says `multilabel`).
    pub multilabel: bool,
}

/// Class names and templates shipped beside the images override what the layout implies.
fn shipped(dir: &Path, mut classes: ClassificationSet) -> Result<ClassificationSet> {
    let names = dir.join("classnames.txt");
    if names.is_file() {
        let listed = read_lines(&names)?;
        if listed.len() != classes.classnames.len() {
            return Err(Error::Source(format!(
                "{} lists {} classes but the images are in {} class folders",
                names.display(),
                listed.len(),
                classes.classnames.len()
            )));
        }
        classes.classnames = listed;
    }
    let templates = dir.join("zeroshot_classification_templates.txt");
    if templates.is_file() {
        classes.templates = read_lines(&templates)?;
    }
    Ok(classes)
}

fn image_folder(images: &Path, meta: &Path) -> Result<LabelledSplit> {
    let folder = ImageFolder::open(images)?;
    let classes = shipped(meta, folder.classes().clone())?;
    Ok(LabelledSplit { source: Source::Indexed(Arc::new(folder)), classes, format: "imagefolder", multilabel: false })
}

/// The `split` (`train`, `test`, …) of the set in `dir`, or `None` when `dir` has no such split.
/// A layout that is recognised but broken (a missing `nshards.txt` beside tar shards, a truncated
/// binary file) is an error.
pub fn open_labelled(dir: &Path, split: &str) -> Result<Option<LabelledSplit>> {
    let split_dir = dir.join(split);
    if split_dir.join("nshards.txt").is_file() {
        let (shards, classes) = benchmark_wds(dir, split)?;
        let multilabel = benchmark_dataset_type(dir) == "multilabel";
        return Ok(Some(LabelledSplit { source: Source::Shards(shards), classes, format: "clip_benchmark_wds", multilabel }));
    }
    if split_dir.is_dir() && std::fs::read_dir(&split_dir).map_err(|e| Error::io(&split_dir, e))?.flatten().any(|e| {
        e.path().extension().is_some_and(|x| x == "tar")
    }) {
        return Err(Error::Source(format!("{}: tar shards without nshards.txt (CLIP_benchmark layout)", split_dir.display())));
    }
    if let Some((source, classes)) = open_native(dir, split)? {
        let classes = shipped(dir, classes)?;
        return Ok(Some(LabelledSplit { source: Source::Indexed(Arc::new(source)), classes, format: "native", multilabel: false }));
    }
    if split_dir.is_dir() {
        return image_folder(&split_dir, dir).map(Some);
    }
    if split == "test" && dir.join("classnames.txt").is_file() {
        return image_folder(dir, dir).map(Some);
    }
    Ok(None)
}
