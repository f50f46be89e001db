//! The facade against open_clip's own numbers for the tiny committed model (the fixture of `clip
//! classify`'s tests, made by crates/clip-cli/scripts/gen_fixtures.py), and its errors.

use std::path::{Path, PathBuf};

use clip_rs::{Clip, Error, Hub, image};

const PHOTOS: [&str; 5] = ["chelsea.png", "coffee.png", "camera.png", "logo.png", "rocket.jpg"];

fn crates() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tiny() -> PathBuf {
    crates().join("clip-cli/tests/fixtures/tiny-hub")
}

fn photos() -> Vec<PathBuf> {
    PHOTOS.iter().map(|p| crates().join("clip-data/tests/fixtures/images").join(p)).collect()
}

fn expected() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(crates().join("clip-cli/tests/fixtures/classify.json")).unwrap()).unwrap()
}

/// JPEG decoders differ from libjpeg by a level here and there.
fn tolerance(photo: &Path) -> f32 {
    if photo.extension().is_some_and(|e| e == "jpg") { 2e-4 } else { 1e-5 }
}

fn load() -> Clip {
    Clip::from_files(tiny().join("open_clip_config.json"), tiny().join("open_clip_model.safetensors")).unwrap()
}

#[test]
fn zero_shot_and_image_features_are_open_clips() {
    let clip = load();
    let e = expected();
    let labels: Vec<&str> = e["labels"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    let templates: Vec<&str> = e["templates"]["file"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let files = photos();
    let features = clip.encode_images(&files).unwrap();
    let predictions = clip.zero_shot(&labels, &templates).unwrap().classify(&files).unwrap();
    for (i, file) in files.iter().enumerate() {
        let theirs: Vec<f32> = e["image_features"][i].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let worst = features[i].iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst <= tolerance(file), "{}: features differ by {worst}", file.display());
        let probs: Vec<f32> = e["probs"]["file"][i].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let p = &predictions[i];
        let worst = p.probabilities.iter().zip(&probs).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst <= tolerance(file), "{}: probabilities {:?} vs open_clip's {probs:?}", file.display(), p.probabilities);
        let best = (0..probs.len()).max_by(|&a, &b| probs[a].total_cmp(&probs[b])).unwrap();
        assert_eq!((p.label.as_str(), p.probability), (labels[best], p.probabilities[best]));
    }
}

#[test]
fn inputs_of_every_kind_embed_alike_and_rows_are_unit_length() {
    let clip = load();
    let file = &photos()[0];
    let decoded = image::open(file).unwrap();
    let (a, b) = (clip.encode_images(&[file]).unwrap(), clip.encode_images(&[decoded]).unwrap());
    assert_eq!(a, b, "a PNG by path and the same PNG decoded by `image`");
    let texts = clip.encode_texts(&["a photo of a cat", "", "a diagram"]).unwrap();
    assert_eq!(texts.len(), 3);
    for row in &texts {
        assert_eq!(row.len(), clip.embed_dim());
        assert!((row.iter().map(|x| x * x).sum::<f32>().sqrt() - 1.0).abs() < 1e-5);
    }
    assert_eq!(clip.encode_texts_tensor(&["x"]).unwrap().size(), [1, 16]);
    assert!(clip.encode_images::<&Path>(&[]).unwrap().is_empty());
    // The same model through a `local-dir:` name, with an offline hub that has nothing cached.
    let offline = Hub::new(empty_cache(), offline_config());
    let named = Clip::load(&format!("local-dir:{}", tiny().display()), None, &offline, clip_rs::Device::Cpu, &mut |_| {}).unwrap();
    let again = &named.encode_texts(&["a photo of a cat"]).unwrap()[0];
    assert!(again.iter().zip(&texts[0]).all(|(a, b)| (a - b).abs() < 1e-6), "one text alone vs in a batch of 3: {again:?} {:?}", texts[0]);
}

fn empty_cache() -> clip_hub::Cache {
    clip_hub::Cache::new(std::env::temp_dir().join("clip-rs-tests-empty-cache"))
}

fn offline_config() -> clip_hub::HubConfig {
    clip_hub::HubConfig { offline: true, ..clip_hub::HubConfig::new("http://127.0.0.1:9") }
}

#[test]
fn errors_say_what_to_do() {
    let missing = Clip::from_files(tiny().join("open_clip_config.json"), tiny().join("nothing.safetensors")).err().unwrap();
    assert!(missing.to_string().contains("nothing.safetensors"), "{missing}");
    let clip = load();
    let bad = clip.encode_images(&[tiny().join("open_clip_config.json")]).err().unwrap();
    assert!(matches!(bad, Error::Image { .. }) && bad.to_string().contains("open_clip_config.json"), "{bad}");
    let no_slot = clip.zero_shot(&["cat"], &["a photo"]).err().unwrap();
    assert!(no_slot.to_string().contains("{}"), "{no_slot}");
    assert!(clip.zero_shot(&[], &["{}"]).is_err());
    let offline = Hub::new(empty_cache(), offline_config());
    let bare = Clip::load("ViT-B-32", None, &offline, clip_rs::Device::Cpu, &mut |_| {}).err().unwrap();
    assert!(bare.to_string().contains("pretrained tag"), "{bare}");
}
