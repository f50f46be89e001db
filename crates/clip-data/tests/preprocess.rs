use std::path::Path;

use clip_data::{Error, ImageMode, PreprocessConfig, SourceImage};
use safetensors::SafeTensors;

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

/// Per-pixel |Δ| statistics in 8-bit units: (mean, max).
fn diff(ours: &[u8], theirs: &[u8]) -> (f64, u8) {
    assert_eq!(ours.len(), theirs.len());
    let total: u64 = ours.iter().zip(theirs).map(|(&a, &b)| u64::from(a.abs_diff(b))).sum();
    let max = ours.iter().zip(theirs).map(|(&a, &b)| a.abs_diff(b)).max().unwrap_or(0);
    (total as f64 / ours.len() as f64, max)
}

/// The bounds: mean |Δ| ≤ 0.5/255 and max |Δ| ≤ 2/255 per pixel before normalisation.
/// The per-image figures are printed (`--nocapture`) for the record.
#[test]
#[allow(clippy::print_stdout)]
fn matches_pil_and_torchvision_on_real_photos() {
    let bytes = std::fs::read(fixtures().join("expected.safetensors")).unwrap();
    let expected = SafeTensors::deserialize(&bytes).unwrap();
    let mut report = Vec::new();
    let mut checked = 0;
    for (key, view) in expected.tensors() {
        let Some((file, size)) = key.split_once('@') else { continue };
        let Ok(size) = size.parse::<u32>() else { continue };
        let image = SourceImage::decode(&std::fs::read(fixtures().join("images").join(file)).unwrap()).unwrap();
        let ours = PreprocessConfig::openai(size).rgb_u8(&image);
        let (mean, max) = diff(&ours, view.data());
        report.push(format!("{key:32} {:?} mean |Δ| {mean:.4}, max |Δ| {max}", image.mode));
        assert!(mean <= 0.5 && max <= 2, "{key}: mean |Δ| {mean}, max |Δ| {max}");
        checked += 1;
    }
    println!("{}", report.join("\n"));
    assert_eq!(checked, 25);
}

#[test]
fn modes_are_read_as_pil_reads_them() {
    let mode = |f: &str| SourceImage::decode(&std::fs::read(fixtures().join("images").join(f)).unwrap()).unwrap().mode;
    assert_eq!(mode("camera.png"), ImageMode::L);
    assert_eq!(mode("chelsea.png"), ImageMode::Rgb);
    assert_eq!(mode("chelsea_la.png"), ImageMode::La);
    assert_eq!(mode("chelsea_palette.png"), ImageMode::P);
    assert_eq!(mode("logo.png"), ImageMode::Rgba);
    assert_eq!(mode("no_time_for_that_tiny.gif"), ImageMode::P);
    assert_eq!(mode("chelsea_16bit.png"), ImageMode::Rgb);
}

#[test]
fn normalised_tensor_matches_torchvision() {
    let bytes = std::fs::read(fixtures().join("expected.safetensors")).unwrap();
    let expected = SafeTensors::deserialize(&bytes).unwrap();
    let view = expected.tensor("chelsea.png@64/normalized").unwrap();
    let theirs: Vec<f32> = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let image = SourceImage::decode(&std::fs::read(fixtures().join("images/chelsea.png")).unwrap()).unwrap();
    let ours = PreprocessConfig::openai(64).apply(&image);
    let max = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(max < 1e-6, "max |Δ| {max}");
}

#[test]
fn broken_images_are_errors_not_panics() {
    let png = std::fs::read(fixtures().join("images/chelsea.png")).unwrap();
    let mut bad_crc = png.clone();
    bad_crc[29] ^= 0xFF; // inside IHDR: its CRC no longer matches
    for (what, bytes) in [
        ("empty", Vec::new()),
        ("truncated", png[..png.len() / 2].to_vec()),
        ("bad crc", bad_crc),
        ("not an image", b"hello, world".to_vec()),
    ] {
        let result = std::panic::catch_unwind(|| SourceImage::decode(&bytes));
        assert!(matches!(result, Ok(Err(Error::Decode(_)))), "{what}: {result:?}");
    }
}

#[test]
fn decompression_bombs_are_refused_before_decoding() {
    // A valid PNG header claiming 100,000 x 100,000 pixels (10^10, over the 1.8·10^8 limit).
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    png.extend(13u32.to_be_bytes());
    png.extend(&ihdr);
    png.extend(crc32(&ihdr).to_be_bytes());
    // A small (and far too short) image-data chunk, then the end chunk: the header is what counts.
    for (kind, data) in [(&b"IDAT"[..], &b"\x78\x9c\x63\x00\x00\x00\x01\x00\x01"[..]), (&b"IEND"[..], &b""[..])] {
        let chunk: Vec<u8> = kind.iter().chain(data).copied().collect();
        png.extend((data.len() as u32).to_be_bytes());
        png.extend(&chunk);
        png.extend(crc32(&chunk).to_be_bytes());
    }
    let err = SourceImage::decode(&png).unwrap_err();
    assert!(matches!(err, Error::TooLarge { width: 100_000, height: 100_000, .. }), "{err}");
}

/// PNG's CRC-32.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
