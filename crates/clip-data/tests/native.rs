//! The native-format readers and the split finder, on tiny files written in each format.

use std::io::Write;
use std::path::Path;

use clip_data::source::{Indexed, Payload, Text, open_labelled, open_native};
use clip_data::{ImageMode, SourceImage};

/// Sample `i`'s image and label.
fn sample(source: &dyn Indexed, i: u64) -> (SourceImage, i64) {
    let record = source.record(0, i);
    let (Payload::Image(image), Text::Label(label)) = (record.payload, record.text) else { panic!("not an image with a label") };
    (image, label)
}

/// The RGB (or grey) value at (`x`, `y`).
fn pixel(image: &SourceImage, x: u32, y: u32) -> Vec<u8> {
    let c = if image.mode == ImageMode::L { 1 } else { 3 };
    let at = ((y * image.width + x) as usize) * c;
    image.pixels[at..at + c].to_vec()
}

/// A planar 3-channel image of `side`² whose only non-zero pixel sits at `offset` in each plane,
/// with values 10, 20, 30.
fn planes(side: usize, offset: usize) -> Vec<u8> {
    let mut out = vec![0u8; 3 * side * side];
    for c in 0..3 {
        out[c * side * side + offset] = 10 * (c as u8 + 1);
    }
    out
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn cifar10_and_cifar100_binary_batches() {
    let dir = tempfile::tempdir().unwrap();
    let names: String = (0..10).map(|i| format!("class{i}\n")).collect();
    write(&dir.path().join("batches.meta.txt"), names.as_bytes());
    // Row-major planes: offset 32 + 5 is (x 5, y 1).
    let record = |label: u8| [vec![label], planes(32, 32 + 5)].concat();
    write(&dir.path().join("test_batch.bin"), &[record(3), record(9)].concat());
    for i in 1..=5 {
        write(&dir.path().join(format!("data_batch_{i}.bin")), &record(i));
    }
    let (test, classes) = open_native(dir.path(), "test").unwrap().unwrap();
    assert_eq!((test.len(), classes.classnames[9].as_str()), (2, "class9"));
    let (image, label) = sample(&test, 1);
    assert_eq!((image.width, image.height, image.mode, label), (32, 32, ImageMode::Rgb, 9));
    assert_eq!(pixel(&image, 5, 1), [10, 20, 30]);
    assert_eq!(pixel(&image, 1, 5), [0, 0, 0]);
    let (train, _) = open_native(dir.path(), "train").unwrap().unwrap();
    assert_eq!((0..5).map(|i| sample(&train, i).1).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert!(open_native(dir.path(), "valid").unwrap().is_none());

    // CIFAR-100 as its archive unpacks: coarse label, fine label, pixels; the fine one counts.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cifar-100-binary");
    let names: String = (0..100).map(|i| format!("fine{i}\n")).collect();
    write(&root.join("fine_label_names.txt"), names.as_bytes());
    write(&root.join("test.bin"), &[vec![7u8, 42], planes(32, 0)].concat());
    let (test, classes) = open_native(dir.path(), "test").unwrap().unwrap();
    assert_eq!((test.len(), classes.classnames.len(), sample(&test, 0).1), (1, 100, 42));
    // A record cut short is an error, not a shorter set.
    write(&root.join("test.bin"), &[vec![7u8, 42], planes(32, 0)[..100].to_vec()].concat());
    assert!(open_native(dir.path(), "test").unwrap_err().to_string().contains("CIFAR records"));
}

#[test]
fn mnist_idx_files_plain_and_gzipped() {
    let dir = tempfile::tempdir().unwrap();
    let mut images = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28];
    let mut second = vec![0u8; 28 * 28];
    second[3 * 28 + 4] = 200; // (x 4, y 3)
    images.extend(vec![0u8; 28 * 28]);
    images.extend(second);
    let labels = [0, 0, 8, 1, 0, 0, 0, 2, 5, 7];
    let gz = |bytes: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    };
    write(&dir.path().join("t10k-images-idx3-ubyte.gz"), &gz(&images));
    write(&dir.path().join("t10k-labels-idx1-ubyte.gz"), &gz(&labels));
    let (test, classes) = open_native(dir.path(), "test").unwrap().unwrap();
    assert_eq!((test.len(), classes.classnames.len()), (2, 10));
    let (image, label) = sample(&test, 1);
    assert_eq!((image.mode, label, pixel(&image, 4, 3), pixel(&image, 3, 4)), (ImageMode::L, 7, vec![200], vec![0]));
    // Plain files under raw/ (torchvision's folder) work too; a truncated one is an error.
    write(&dir.path().join("raw/train-images-idx3-ubyte"), &images[..images.len() - 1]);
    write(&dir.path().join("raw/train-labels-idx1-ubyte"), &labels);
    assert!(open_native(dir.path(), "train").unwrap_err().to_string().contains("truncated"));
}

#[test]
fn stl10_binary_is_column_major() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("stl10_binary");
    let names: String = (0..10).map(|i| format!("c{i}\n")).collect();
    write(&root.join("class_names.txt"), names.as_bytes());
    // Column-major: offset x·96 + y, here (x 2, y 7).
    write(&root.join("test_X.bin"), &planes(96, 2 * 96 + 7));
    write(&root.join("test_y.bin"), &[10]);
    let (test, _) = open_native(dir.path(), "test").unwrap().unwrap();
    let (image, label) = sample(&test, 0);
    assert_eq!((image.width, label), (96, 9));
    assert_eq!((pixel(&image, 2, 7), pixel(&image, 7, 2)), (vec![10, 20, 30], vec![0, 0, 0]));
    write(&root.join("test_y.bin"), &[11]);
    assert!(open_native(dir.path(), "test").unwrap_err().to_string().contains("label 11"));
}

#[test]
fn splits_are_found_in_every_layout() {
    let dir = tempfile::tempdir().unwrap();
    let png = crate::support::png(1);
    for class in ["b_dog", "a_cat"] {
        write(&dir.path().join(class).join("x.png"), &png);
    }
    // An ImageFolder with classnames.txt is a test split; its names replace the folder names.
    write(&dir.path().join("classnames.txt"), b"cat\ndog\n");
    write(&dir.path().join("zeroshot_classification_templates.txt"), b"a photo of a {c}.\n");
    let split = open_labelled(dir.path(), "test").unwrap().unwrap();
    assert_eq!((split.format, split.classes.classnames.clone()), ("imagefolder", vec!["cat".to_owned(), "dog".to_owned()]));
    assert_eq!(split.classes.templates, ["a photo of a {c}."]);
    assert!(open_labelled(dir.path(), "train").unwrap().is_none());
    // Class names that do not match the folders are an error.
    write(&dir.path().join("classnames.txt"), b"cat\n");
    assert!(open_labelled(dir.path(), "test").unwrap_err().to_string().contains("lists 1 classes"));
    // Tar shards without nshards.txt: CLIP_benchmark's old silent failure, here an error.
    write(&dir.path().join("train/0.tar"), b"");
    assert!(open_labelled(dir.path(), "train").unwrap_err().to_string().contains("nshards.txt"));
}
