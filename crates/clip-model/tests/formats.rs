use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clip_model::weights::{detect_format, infer_config, read_weights};
use clip_model::{ClipConfig, ClipModel, WeightsFormat, l2_normalize, load_weights};
use clip_tensor::safetensors::read_safetensors;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

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
    check_within(config_name, weights, io, expected_format, 1e-4);
}

fn check_within(config_name: &str, weights: &str, io: &str, expected_format: WeightsFormat, tolerance: f64) {
    let vs = VarStore::new(Device::Cpu);
    let model = ClipModel::new(vs.root(), &config(config_name));
    let format = load_weights(&vs, &fixture(weights)).unwrap();
    assert_eq!(format, expected_format);
    let io: std::collections::HashMap<String, Tensor> = read_safetensors(&fixture(io)).unwrap().into_iter().collect();
    let _guard = tch::no_grad_guard();
    let image = l2_normalize(&model.encode_image(&io["images"]));
    let text = l2_normalize(&model.encode_text(&io["text"]));
    let (di, dt) = (max_diff(&image, &io["image_features"]), max_diff(&text, &io["text_features"]));
    assert!(di <= tolerance && dt <= tolerance, "{weights}: image {di:e}, text {dt:e}");
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
        (fixture("torch-save/views.pt"), "visual.conv1.weight"),
        (truncated.clone(), "not a valid safetensors file"),
        (text.clone(), "not a valid safetensors file"),
        (dir.join("missing.safetensors"), "missing.safetensors"),
    ];
    for (path, needle) in cases {
        let err = match path.file_name().unwrap().to_str() {
            // A state dict of something else reads, then fails to load, naming what is missing.
            Some("views.pt") => {
                let vs = VarStore::new(Device::Cpu);
                let _model = ClipModel::new(vs.root(), &config("tiny-vit"));
                load_weights(&vs, &path).expect_err("must fail").to_string()
            }
            _ => read_weights(&path).expect_err("must fail").to_string(),
        };
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

/// The open_clip tensors of a file, by key.
fn tensors_of(path: &Path) -> BTreeMap<String, Tensor> {
    read_weights(path).unwrap().1.into_iter().collect()
}

#[test]
fn torch_save_files_hold_the_safetensors_weights() {
    let reference = tensors_of(&fixture("tiny-vit.safetensors"));
    let hf = tensors_of(&fixture("tiny-vit-hf/model.safetensors"));
    for (name, source, kind) in [
        ("tiny-vit.bin", &reference, Kind::Float),
        ("tiny-vit.epoch_3.pt", &reference, Kind::Float),
        ("tiny-vit.fp16.bin", &reference, Kind::Half),
        ("tiny-vit.legacy-fp16.bin", &reference, Kind::Half),
        ("tiny-vit-hf.bf16.bin", &hf, Kind::BFloat16),
    ] {
        let path = fixture(&format!("torch-save/{name}"));
        assert_eq!(detect_format(&path).unwrap(), WeightsFormat::TorchSave, "{name}");
        let (format, tensors) = read_weights(&path).unwrap();
        assert_eq!(format, WeightsFormat::TorchSave, "{name}");
        let tensors: BTreeMap<String, Tensor> = tensors.into_iter().collect();
        assert_eq!(tensors.keys().collect::<Vec<_>>(), source.keys().collect::<Vec<_>>(), "{name}");
        for (key, want) in source {
            let got = &tensors[key];
            assert_eq!(got.kind(), kind, "{name}: {key}");
            assert!(got.equal(&want.to_kind(kind)), "{name}: {key} differs");
        }
    }
    assert!(!WeightsFormat::TorchSave.requires_quick_gelu());
}

#[test]
fn torch_save_files_give_open_clips_features() {
    let io = "tiny-vit.io.safetensors";
    check("tiny-vit", "torch-save/tiny-vit.bin", io, WeightsFormat::TorchSave);
    check("tiny-vit", "torch-save/tiny-vit.epoch_3.pt", io, WeightsFormat::TorchSave);
    // Rounded weights, cast to the model's fp32 on load.
    check_within("tiny-vit", "torch-save/tiny-vit.fp16.bin", io, WeightsFormat::TorchSave, 5e-3);
    check_within("tiny-vit", "torch-save/tiny-vit.legacy-fp16.bin", io, WeightsFormat::TorchSave, 5e-3);
    check_within("tiny-vit", "torch-save/tiny-vit-hf.bf16.bin", io, WeightsFormat::TorchSave, 5e-2);
}

#[test]
fn zips_are_told_apart_by_their_records() {
    assert_eq!(detect_format(&fixture("tiny-vit-openai.pt")).unwrap(), WeightsFormat::TorchScript);
    // gen_fixtures.py's small torch.save files, zip and legacy: {"w": zeros(2)}.
    for name in ["pickled-zip.pt", "pickled-legacy.bin"] {
        assert_eq!(detect_format(&fixture(name)).unwrap(), WeightsFormat::TorchSave, "{name}");
        let tensors = tensors_of(&fixture(name));
        assert_eq!(tensors.keys().collect::<Vec<_>>(), ["w"], "{name}");
        assert!(tensors["w"].equal(&Tensor::zeros([2], (Kind::Float, Device::Cpu))), "{name}");
    }
}

#[test]
fn pickles_that_would_run_code_are_refused_and_run_nothing() {
    // Each payload would create /tmp/clip-rs-pickle-canary/<name> (gen_pickles.py checks that
    // Python's own unpickler does); the folder exists, so only refusing keeps the file away.
    let canary = Path::new("/tmp/clip-rs-pickle-canary");
    std::fs::create_dir_all(canary).unwrap();
    for (name, global) in [
        ("os-system", "os.system"),
        ("eval", "builtins.eval"),
        ("popen", "subprocess.Popen"),
        ("posix-system", "posix.system"),
    ] {
        let marker = canary.join(name);
        let _ = std::fs::remove_file(&marker);
        for file in [format!("evil-{name}.pt"), format!("evil-{name}.pkl")] {
            let path = fixture(&format!("torch-save/{file}"));
            let vs = VarStore::new(Device::Cpu);
            let _model = ClipModel::new(vs.root(), &config("tiny-vit"));
            let err = load_weights(&vs, &path).expect_err("must be refused").to_string();
            assert!(err.contains(global) && err.contains(&file), "{file}: {err}");
            assert!(read_weights(&path).is_err(), "{file}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!marker.exists(), "{} was created", marker.display());
    }
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clip-model-formats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
