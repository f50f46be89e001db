//! Classification sets in their native binary formats, decoded into memory: CIFAR-10 and
//! CIFAR-100 binary batches, MNIST idx files (plain or gzipped) and STL-10 binary files. They
//! hold raw pixels, so reading them is one pass; each image is handed out as it is stored (32×32,
//! 28×28 grey, 96×96) and preprocessed like any other.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{ClassificationSet, Indexed, Payload, Record, Text, read_lines};
use crate::preprocess::{ImageMode, SourceImage};
use crate::{Error, Result};

/// How each stored image lays out its pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Channel planes, each row-major (CIFAR).
    PlanarRows,
    /// Channel planes, each column-major (STL-10).
    PlanarColumns,
    /// One grey channel, row-major (MNIST).
    Grey,
}

/// Fixed-size images in one buffer, with their labels.
#[derive(Debug, Clone)]
pub struct ArraySource {
    name: String,
    side: u32,
    layout: Layout,
    pixels: Arc<Vec<u8>>,
    labels: Vec<i64>,
}

impl ArraySource {
    fn image_bytes(&self) -> usize {
        let channels = if self.layout == Layout::Grey { 1 } else { 3 };
        channels * (self.side * self.side) as usize
    }

    fn image(&self, index: usize) -> SourceImage {
        let n = self.image_bytes();
        let raw = &self.pixels[index * n..(index + 1) * n];
        let side = self.side as usize;
        let plane = side * side;
        let (mode, pixels) = match self.layout {
            Layout::Grey => (ImageMode::L, raw.to_vec()),
            Layout::PlanarRows => (ImageMode::Rgb, (0..plane).flat_map(|i| (0..3).map(move |c| raw[c * plane + i])).collect()),
            Layout::PlanarColumns => (
                ImageMode::Rgb,
                (0..plane)
                    .flat_map(|i| {
                        let (y, x) = (i / side, i % side);
                        (0..3).map(move |c| raw[c * plane + x * side + y])
                    })
                    .collect(),
            ),
        };
        SourceImage { mode, width: self.side, height: self.side, pixels, zero_colour: [0; 3] }
    }
}

impl Indexed for ArraySource {
    fn len(&self) -> u64 {
        self.labels.len() as u64
    }

    fn record(&self, _epoch: u64, index: u64) -> Record {
        let i = index as usize;
        Record { key: format!("{}/{i}", self.name), payload: Payload::Image(self.image(i)), text: Text::Label(self.labels[i]), json: None }
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut out).map_err(|e| Error::io(path, e))?;
        return Ok(out);
    }
    Ok(bytes)
}

fn bad(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::Source(format!("{}: {why}", path.display()))
}

/// CIFAR binary records: `label_bytes` label bytes (the last one is the class), then 3×32×32 pixels.
fn cifar(files: &[PathBuf], label_bytes: usize, classes: usize, name: &str) -> Result<ArraySource> {
    const IMAGE: usize = 3 * 32 * 32;
    let record = label_bytes + IMAGE;
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for path in files {
        let bytes = read(path)?;
        if bytes.is_empty() || bytes.len() % record != 0 {
            return Err(bad(path, format!("{} bytes is not a whole number of {record}-byte CIFAR records", bytes.len())));
        }
        for chunk in bytes.chunks_exact(record) {
            let label = chunk[label_bytes - 1] as usize;
            if label >= classes {
                return Err(bad(path, format!("label {label} is not below {classes}")));
            }
            labels.push(label as i64);
            pixels.extend_from_slice(&chunk[label_bytes..]);
        }
    }
    Ok(ArraySource { name: name.into(), side: 32, layout: Layout::PlanarRows, pixels: Arc::new(pixels), labels })
}

/// The folder holding `marker`: `dir` itself or the sub-folder the official archive unpacks to.
fn holder(dir: &Path, unpacked: &str, marker: &str) -> Option<PathBuf> {
    [dir.to_path_buf(), dir.join(unpacked)].into_iter().find(|d| d.join(marker).is_file())
}

/// A split of a set in one of the native formats, if `dir` holds one: CIFAR-10 (`data_batch_1.bin`
/// … `test_batch.bin`), CIFAR-100 (`train.bin`, `test.bin`, `fine_label_names.txt`), MNIST
/// (`train-images-idx3-ubyte`, `t10k-…`, optionally `.gz`) or STL-10 (`train_X.bin`, `test_X.bin`),
/// directly in `dir` or in the folder its archive unpacks to. Splits: `train` and `test`.
pub fn open_native(dir: &Path, split: &str) -> Result<Option<(ArraySource, ClassificationSet)>> {
    let train = match split {
        "train" => true,
        "test" => false,
        _ => return Ok(None),
    };
    let no_templates = |classnames: Vec<String>| ClassificationSet { classnames, templates: Vec::new() };
    if let Some(d) = holder(dir, "cifar-10-batches-bin", "test_batch.bin") {
        let files: Vec<PathBuf> =
            if train { (1..=5).map(|i| d.join(format!("data_batch_{i}.bin"))).collect() } else { vec![d.join("test_batch.bin")] };
        let classes = read_lines(&d.join("batches.meta.txt"))?;
        return Ok(Some((cifar(&files, 1, classes.len(), "cifar10")?, no_templates(classes))));
    }
    if let Some(d) = holder(dir, "cifar-100-binary", "fine_label_names.txt") {
        let classes = read_lines(&d.join("fine_label_names.txt"))?;
        let file = d.join(if train { "train.bin" } else { "test.bin" });
        return Ok(Some((cifar(&[file], 2, classes.len(), "cifar100")?, no_templates(classes))));
    }
    let prefix = if train { "train" } else { "t10k" };
    for (d, gz) in [(dir.to_path_buf(), ""), (dir.to_path_buf(), ".gz"), (dir.join("raw"), ""), (dir.join("raw"), ".gz")] {
        let images = d.join(format!("{prefix}-images-idx3-ubyte{gz}"));
        if images.is_file() {
            let labels = d.join(format!("{prefix}-labels-idx1-ubyte{gz}"));
            let classes = (0..10).map(|i| i.to_string()).collect();
            return Ok(Some((mnist(&images, &labels)?, no_templates(classes))));
        }
    }
    if let Some(d) = holder(dir, "stl10_binary", "test_X.bin") {
        let stem = if train { "train" } else { "test" };
        let classes = read_lines(&d.join("class_names.txt"))?;
        return Ok(Some((stl10(&d.join(format!("{stem}_X.bin")), &d.join(format!("{stem}_y.bin")), classes.len())?, no_templates(classes))));
    }
    Ok(None)
}

/// The big-endian `u32` at `at`.
fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    bytes.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// MNIST's idx files: images (magic 2051, count, rows, columns, pixels) and labels (2049, count, labels).
fn mnist(images: &Path, labels: &Path) -> Result<ArraySource> {
    let (image_bytes, label_bytes) = (read(images)?, read(labels)?);
    let header = |b: &[u8], words: usize| (0..words).map(|w| be_u32(b, 4 * w)).collect::<Option<Vec<_>>>();
    let Some([2051, count, rows, cols]) = header(&image_bytes, 4).as_deref().map(|h| [h[0], h[1], h[2], h[3]]) else {
        return Err(bad(images, "not an idx3 image file (magic 2051)"));
    };
    let Some([2049, label_count]) = header(&label_bytes, 2).as_deref().map(|h| [h[0], h[1]]) else {
        return Err(bad(labels, "not an idx1 label file (magic 2049)"));
    };
    if rows != cols || label_count != count {
        return Err(bad(images, format!("{count} images of {rows}×{cols} against {label_count} labels")));
    }
    let size = (count as usize) * (rows * cols) as usize;
    if image_bytes.len() != 16 + size || label_bytes.len() != 8 + count as usize {
        return Err(bad(images, "file length does not match its header (truncated?)"));
    }
    let labels = label_bytes[8..].iter().map(|&l| i64::from(l)).collect::<Vec<_>>();
    if let Some(l) = labels.iter().find(|&&l| l > 9) {
        return Err(bad(images, format!("label {l} is not a digit")));
    }
    Ok(ArraySource { name: "mnist".into(), side: rows, layout: Layout::Grey, pixels: Arc::new(image_bytes[16..].to_vec()), labels })
}

/// STL-10's binary files: 3×96×96 column-major images, labels 1 to 10 one byte each.
fn stl10(images: &Path, labels: &Path, classes: usize) -> Result<ArraySource> {
    const IMAGE: usize = 3 * 96 * 96;
    let (pixels, label_bytes) = (read(images)?, read(labels)?);
    if pixels.len() % IMAGE != 0 || pixels.len() / IMAGE != label_bytes.len() {
        return Err(bad(images, format!("{} bytes of images against {} labels", pixels.len(), label_bytes.len())));
    }
    let labels = label_bytes
        .iter()
        .map(|&l| if (1..=classes).contains(&(l as usize)) { Ok(i64::from(l) - 1) } else { Err(bad(labels, format!("label {l} outside 1..={classes}"))) })
        .collect::<Result<Vec<_>>>()?;
    Ok(ArraySource { name: "stl10".into(), side: 96, layout: Layout::PlanarColumns, pixels: Arc::new(pixels), labels })
}
