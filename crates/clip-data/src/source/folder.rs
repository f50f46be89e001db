//! Images in folders: every image below a folder (no captions), and torchvision's ImageFolder
//! layout, one sub-folder per class.

use std::path::{Path, PathBuf};

use super::{Indexed, Payload, Record, Text, is_image_name};
use crate::{Error, Result};

/// Every image file below a folder, in sorted path order.
#[derive(Debug, Clone)]
pub struct FolderSource {
    files: Vec<PathBuf>,
}

/// Image files below `dir`, sorted; sub-folders followed.
fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).map_err(|e| Error::io(&folder, e))? {
            let path = entry.map_err(|e| Error::io(&folder, e))?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.file_name().and_then(|n| n.to_str()).is_some_and(is_image_name) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

impl FolderSource {
    /// Lists the images below `dir`; none at all is an error.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let files = image_files(dir)?;
        if files.is_empty() {
            return Err(Error::Source(format!("{}: no image files (jpg, jpeg, png, webp, gif)", dir.display())));
        }
        Ok(Self { files })
    }
}

impl Indexed for FolderSource {
    fn len(&self) -> u64 {
        self.files.len() as u64
    }

    fn record(&self, _epoch: u64, index: u64) -> Record {
        let path = &self.files[index as usize];
        Record { key: path.display().to_string(), payload: Payload::File(path.clone()), text: Text::None, json: None }
    }
}

/// Class names and zero-shot prompt templates of a classification set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassificationSet {
    /// Class names, in label order.
    pub classnames: Vec<String>,
    /// Templates with `{c}` standing for the class name (empty when the set ships none).
    pub templates: Vec<String>,
}

/// torchvision's ImageFolder: `DIR/CLASS/IMAGE`, classes in sorted order, labels their indices.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    samples: Vec<(PathBuf, i64)>,
    classes: ClassificationSet,
}

impl ImageFolder {
    /// Lists the class folders of `dir` and their images.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let mut classes = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let path = entry.map_err(|e| Error::io(dir, e))?.path();
            if path.is_dir() {
                classes.push(path);
            }
        }
        classes.sort();
        let mut samples = Vec::new();
        for (label, class) in classes.iter().enumerate() {
            samples.extend(image_files(class)?.into_iter().map(|p| (p, label as i64)));
        }
        if samples.is_empty() {
            return Err(Error::Source(format!("{}: no CLASS/IMAGE files (ImageFolder layout)", dir.display())));
        }
        let classnames = classes.iter().map(|c| c.file_name().unwrap_or_default().to_string_lossy().into_owned()).collect();
        Ok(Self { samples, classes: ClassificationSet { classnames, templates: Vec::new() } })
    }

    /// The class names (folder names).
    pub fn classes(&self) -> &ClassificationSet {
        &self.classes
    }
}

impl Indexed for ImageFolder {
    fn len(&self) -> u64 {
        self.samples.len() as u64
    }

    fn record(&self, _epoch: u64, index: u64) -> Record {
        let (path, label) = &self.samples[index as usize];
        Record { key: path.display().to_string(), payload: Payload::File(path.clone()), text: Text::Label(*label), json: None }
    }
}
