use std::path::{Path, PathBuf};

use clip_model::weights::{detect_format, infer_config, read_weights};
use clip_model::{ClipConfig, ClipModel, WeightsFormat, l2_normalize, load_weights};
use clip_tensor::safetensors::read_safetensors;
use tch::nn::VarStore;
use tch::{Device, Tensor};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn config(name: &str) -> ClipConfig {
    ClipConfig::from_json(&std::fs::read_to_string(fixture(&format!("{name}.json"))).unwrap()).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    f64::try_from((a - b).abs().max()).unwrap()
}

/// Loads `weights` into the `config_name` architecture and compares with `io`'s features.
fn check(config_name: &str, weights: &str, io: &str, expected_format: WeightsFormat) {
    let vs = VarStore::new(Device::Cpu);
    let model = ClipModel::new(vs.root(), &config(config_name));
    let format = load_weights(&vs, &fixture(weights)).unwrap();
    assert_eq!(format, expected_format);
    let io: std::collections::HashMap<String, Tensor> = read_safetensors(&fixture(io)).unwrap().into_iter().collect();
    let _guard = tch::no_grad_guard();
    let image = l2_normalize(&model.encode_image(&io["images"]));
    let text = l2_normalize(&model.encode_text(&io["text"]));
    let (di, dt) = (max_diff(&image, &io["image_features"]), max_diff(&text, &io["text_features"]));
    assert!(di <= 1e-4 && dt <= 1e-4, "{weights}: image {di:e}, text {dt:e}");
}

#[test]
fn hugging_face_clip_model_gives_open_clips_features() {
    check("tiny-vit", "tiny-vit-hf/model.safetensors", "tiny-vit.io.safetensors", WeightsFormat::HuggingFace);
}

#[test]
fn openai_torchscript_archives_give_open_clips_features() {
    // fp16 tensors, cast to the model's fp32 on load; the ResNet's BatchNorm statistics are buffers.
    check("tiny-vit", "tiny-vit-openai.pt", "tiny-vit-openai.io.safetensors", WeightsFormat::TorchScript);
    check("tiny-rn", "tiny-rn-openai.pt", "tiny-rn-openai.io.safetensors", WeightsFormat::TorchScript);
    assert!(WeightsFormat::TorchScript.requires_quick_gelu());
}

#[test]
fn open_clip_safetensors_are_detected_as_such() {
    assert_eq!(detect_format(&fixture("tiny-rn.safetensors")).unwrap(), WeightsFormat::OpenClip);
}

#[test]
fn bad_files_are_clear_errors_naming_the_file() {
    let dir = tempdir();
    let truncated = dir.join("truncated.safetensors");
    let bytes = std::fs::read(fixture("tiny-vit.safetensors")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let text = dir.join("notes.txt");
    std::fs::write(&text, "these are not weights at all").unwrap();
    let cases = [
        (fixture("pickled-legacy.bin"), "does not unpickle"),
        (fixture("pickled-zip.pt"), "not a loadable TorchScript archive"),
        (truncated.clone(), "not a valid safetensors file"),
        (text.clone(), "not a valid safetensors file"),
        (dir.join("missing.safetensors"), "missing.safetensors"),
    ];
    for (path, needle) in cases {
        let err = read_weights(&path).expect_err("must fail").to_string();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(err.contains(needle) && err.contains(&name), "{}: {err}", path.display());
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn weights_for_another_architecture_report_every_key_problem() {
    let vs = VarStore::new(Device::Cpu);
    let _model = ClipModel::new(vs.root(), &config("tiny-rn"));
    let err = load_weights(&vs, &fixture("tiny-vit.safetensors")).unwrap_err().to_string();
    for needle in ["tiny-vit.safetensors", "missing", "unexpected", "visual.attnpool", "visual.transformer"] {
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
}

#[test]
fn architecture_is_inferred_from_a_state_dict_as_openai_does() {
    for name in ["ViT-B-32", "RN50", "RN50x4"] {
        let preset = ClipConfig::named(&format!("{name}-quickgelu")).unwrap();
        let vs = VarStore::new(Device::Cpu);
        let _model = ClipModel::new(vs.root(), &preset);
        let tensors: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        assert_eq!(infer_config(&tensors, true).unwrap(), preset, "{name}");
    }
    // Tiny models with 16-channel heads are not OpenAI-shaped: no guess, an error.
    let (_, tensors) = read_weights(&fixture("tiny-rn.safetensors")).unwrap();
    assert!(infer_config(&tensors, false).unwrap_err().to_string().contains("give a model config"));
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clip-model-formats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
