use std::path::Path;

use clip_data::{Error, ImageMode, Interpolation, PreprocessConfig, ResizeMode, SourceImage};
use safetensors::SafeTensors;
use serde_json::json;

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

fn decode(file: &str) -> SourceImage {
    SourceImage::decode(&std::fs::read(fixtures().join("images").join(file)).unwrap()).unwrap()
}

fn floats(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// open_clip's eval transform under every (interpolation, resize mode) pair
/// (`scripts/gen_fixtures_modes.py`): the 8-bit images equal to the last bit, except JPEGs, whose
/// decoder (not libjpeg) keeps the bounds of the test above.
#[test]
fn every_interpolation_and_resize_mode_matches_open_clip() {
    let bytes = std::fs::read(fixtures().join("expected_modes.safetensors")).unwrap();
    let expected = SafeTensors::deserialize(&bytes).unwrap();
    let mut checked = 0;
    for (key, view) in expected.tensors() {
        if key.ends_with("/normalized") {
            continue;
        }
        let (file, rest) = key.split_once('@').unwrap();
        let [size, interpolation, resize_mode] = rest.split('/').collect::<Vec<_>>()[..] else { panic!("{key}") };
        let config = PreprocessConfig {
            interpolation: interpolation.parse().unwrap(),
            resize_mode: resize_mode.parse().unwrap(),
            ..PreprocessConfig::openai(size.parse().unwrap())
        };
        let ours = config.rgb_u8(&decode(file));
        if file.ends_with(".jpg") {
            let (mean, max) = diff(&ours, view.data());
            assert!(mean <= 0.5 && max <= 2, "{key}: mean |Δ| {mean}, max |Δ| {max}");
        } else {
            let wrong = ours.iter().zip(view.data()).filter(|(a, b)| a != b).count();
            assert!(ours.len() == view.data().len() && wrong == 0, "{key}: {wrong} of {} bytes differ", ours.len());
        }
        checked += 1;
    }
    assert_eq!(checked, 9 * 6 + 5);
}

/// Normalised tensors with SigLIP's and ImageNet's statistics, the configuration read from the
/// `preprocess_cfg` JSON each was made with: the same floats as torchvision's.
#[test]
fn normalised_tensors_with_the_weights_statistics_match_open_clip() {
    let bytes = std::fs::read(fixtures().join("expected_modes.safetensors")).unwrap();
    let (_, metadata) = SafeTensors::read_metadata(&bytes).unwrap();
    let metadata = metadata.metadata().clone().unwrap();
    let expected = SafeTensors::deserialize(&bytes).unwrap();
    let mut checked = 0;
    for (key, view) in expected.tensors() {
        let Some(source) = key.strip_suffix("/normalized") else { continue };
        let json: serde_json::Value = serde_json::from_str(&metadata[&key]).unwrap();
        let config = PreprocessConfig::from_open_clip_json(&json, 61).unwrap();
        assert_ne!(config.mean, PreprocessConfig::openai(61).mean, "{key}");
        let ours = config.apply(&decode(source.split_once('@').unwrap().0));
        let theirs = floats(view.data());
        let wrong = ours.iter().zip(&theirs).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
        assert!(ours.len() == theirs.len() && wrong == 0, "{key}: {wrong} floats differ");
        checked += 1;
    }
    assert_eq!(checked, 3);
}

#[test]
fn palette_padding_is_palette_entry_zero() {
    // torchvision pads a palette image with index 0: chelsea's quantised palette starts with a
    // light brown, the GIF's with black.
    assert_eq!(decode("chelsea_palette.png").zero_colour, [199, 176, 170]);
    assert_eq!(decode("no_time_for_that_tiny.gif").zero_colour, [0, 0, 0]);
    let longest = PreprocessConfig { resize_mode: ResizeMode::Longest, ..PreprocessConfig::openai(61) };
    assert_eq!(longest.rgb_u8(&decode("chelsea_palette.png"))[..3], [199, 176, 170]);
    assert_eq!(longest.rgb_u8(&decode("chelsea.png"))[..3], [0, 0, 0]);
}

#[test]
fn resized_sizes_follow_torchvision_and_open_clip() {
    // 451 x 300 at 224: `int(224 * 451 / 300)`; `round(300 / (451 / 224))`; both sides.
    assert_eq!(ResizeMode::Shortest.resized(451, 300, 224), (336, 224));
    assert_eq!(ResizeMode::Longest.resized(451, 300, 224), (224, 149));
    assert_eq!(ResizeMode::Squash.resized(451, 300, 224), (224, 224));
    assert_eq!(ResizeMode::Shortest.resized(14, 25, 61), (61, 108));
    // 14 / (25 / 61) = 34.16; a side never rounds to nothing.
    assert_eq!(ResizeMode::Longest.resized(14, 25, 61), (34, 61));
    assert_eq!(ResizeMode::Longest.resized(1, 1000, 61), (1, 61));
}

#[test]
fn open_clip_preprocess_cfg_reads_and_writes() {
    // Defaults: OpenAI's statistics, bicubic, shortest; the model's size wins over `size`.
    let defaults = PreprocessConfig::from_open_clip_json(&json!({"size": 384}), 224).unwrap();
    assert_eq!(defaults, PreprocessConfig::openai(224));
    let siglip = json!({"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "interpolation": "bilinear",
                        "resize_mode": "squash", "unrelated": true, "fill_color": null});
    let config = PreprocessConfig::from_open_clip_json(&siglip, 256).unwrap();
    assert_eq!((config.mean, config.std), ([0.5; 3], [0.5; 3]));
    assert_eq!((config.interpolation, config.resize_mode), (Interpolation::Bilinear, ResizeMode::Squash));
    // Round trip, and the shape open_clip's `PreprocessCfg(**cfg)` takes.
    for c in [config.clone(), PreprocessConfig::openai(336)] {
        let written = c.to_open_clip_json();
        assert_eq!(PreprocessConfig::from_open_clip_json(&written, c.image_size).unwrap(), c);
    }
    // Every key of `PreprocessCfg`; statistics as the shortest decimals of the same f32
    // (0.48145467 for open_clip's 0.48145466: both are that f32).
    let mut written = PreprocessConfig::openai(224).to_open_clip_json();
    let stats = |v: serde_json::Value| -> Vec<f32> {
        serde_json::from_value::<Vec<f64>>(v).unwrap().iter().map(|&x| x as f32).collect()
    };
    assert_eq!(stats(written["mean"].take()), clip_data::preprocess::OPENAI_MEAN);
    assert_eq!(stats(written["std"].take()), clip_data::preprocess::OPENAI_STD);
    assert_eq!(
        written,
        json!({"size": 224, "mode": "RGB", "mean": null, "std": null, "interpolation": "bicubic",
               "resize_mode": "shortest", "fill_color": 0})
    );
    // One number for all channels; a falsy one is the default, as in `image_transform`.
    let scalar = PreprocessConfig::from_open_clip_json(&json!({"mean": 0.5, "std": [0.25]}), 224).unwrap();
    assert_eq!((scalar.mean, scalar.std), ([0.5; 3], [0.25; 3]));
    let falsy = PreprocessConfig::from_open_clip_json(&json!({"mean": 0, "std": []}), 224).unwrap();
    assert_eq!(falsy, PreprocessConfig::openai(224));
    // "random" (training only) is bicubic at evaluation, as open_clip makes it.
    let random = PreprocessConfig::from_open_clip_json(&json!({"interpolation": "random"}), 224).unwrap();
    assert_eq!(random.interpolation, Interpolation::Bicubic);
    // Errors name what is wrong.
    for (cfg, needle) in [
        (json!({"interpolation": "nearest"}), "nearest"),
        (json!({"resize_mode": "crop"}), "crop"),
        (json!({"std": [0.5, 0.0, 0.5]}), "std"),
        (json!({"mean": [0.5, 0.5]}), "mean"),
        (json!({"mean": "grey"}), "grey"),
        (json!({"mode": "L"}), "\"L\""),
        (json!({"fill_color": 255}), "255"),
        (json!({"size": [224, 0]}), "size"),
        (json!([0.5]), "object"),
    ] {
        let err = PreprocessConfig::from_open_clip_json(&cfg, 224).unwrap_err();
        assert!(matches!(err, Error::Preprocess(_)) && err.to_string().contains(needle), "{cfg}: {err}");
    }
    assert!(PreprocessConfig::from_open_clip_json(&json!({}), 0).is_err());
    // The names as serde values too.
    let bad = serde_json::from_value::<Interpolation>(json!("lanczos")).unwrap_err();
    assert!(bad.to_string().contains("lanczos"), "{bad}");
    assert_eq!(serde_json::to_value(ResizeMode::Longest).unwrap(), json!("longest"));
    assert_eq!("bilinear".parse::<Interpolation>().unwrap().to_string(), "bilinear");
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
