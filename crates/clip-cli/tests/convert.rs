use std::path::{Path, PathBuf};
use std::process::Command;

use clip_model::{ClipConfig, ClipModel, WeightsFormat, l2_normalize, load_weights};
use clip_tensor::safetensors::read_safetensors;
use tch::nn::VarStore;
use tch::{Device, Tensor};

fn model_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../clip-model/tests/fixtures").join(name)
}

fn image_features(config: &str, weights: &Path, images: &Tensor) -> (WeightsFormat, Tensor) {
    let config = ClipConfig::from_json(&std::fs::read_to_string(model_fixture(config)).unwrap()).unwrap();
    let vs = VarStore::new(Device::Cpu);
    let model = ClipModel::new(vs.root(), &config);
    let format = load_weights(&vs, weights).unwrap();
    let _guard = tch::no_grad_guard();
    (format, l2_normalize(&model.encode_image(images)))
}

#[test]
fn converted_files_load_as_open_clip_and_give_the_same_features() {
    let dir = std::env::temp_dir().join(format!("clip-convert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let io: std::collections::HashMap<String, Tensor> =
        read_safetensors(&model_fixture("tiny-vit.io.safetensors")).unwrap().into_iter().collect();
    for (source, config) in [("tiny-vit-hf/model.safetensors", "tiny-vit.json"), ("tiny-rn-openai.pt", "tiny-rn.json")] {
        let out = dir.join("converted.safetensors");
        let status = Command::new(env!("CARGO_BIN_EXE_clip")).arg("convert").arg(model_fixture(source)).arg(&out).status().unwrap();
        assert!(status.success(), "{source}");
        let images = if config == "tiny-vit.json" { io["images"].shallow_clone() } else { Tensor::randn([2, 3, 64, 64], (tch::Kind::Float, Device::Cpu)) };
        let (format, converted) = image_features(config, &out, &images);
        assert_eq!(format, WeightsFormat::OpenClip);
        let (_, original) = image_features(config, &model_fixture(source), &images);
        assert!(converted.equal(&original), "{source}: converted weights give different features");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_pickle_that_would_run_code_is_refused_naming_the_call() {
    let out = std::env::temp_dir().join(format!("clip-convert-evil-{}.safetensors", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_clip"))
        .arg("convert")
        .arg(model_fixture("torch-save/evil-os-system.pt"))
        .arg(&out)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("os.system"), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(!out.exists());
}

#[test]
fn conversions_record_the_preprocessing_they_know() {
    let dir = std::env::temp_dir().join(format!("clip-convert-meta-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let convert = |input: &Path, out: &Path| {
        let status = Command::new(env!("CARGO_BIN_EXE_clip")).arg("convert").arg(input).arg(out).status().unwrap();
        assert!(status.success(), "{}", input.display());
        clip_tensor::safetensors::read_safetensors_metadata(out).unwrap()
    };
    // OpenAI's archive: OpenAI's preprocessing.
    let openai = convert(&model_fixture("tiny-rn-openai.pt"), &dir.join("openai.safetensors"));
    let recorded: serde_json::Value = serde_json::from_str(&openai["open_clip_preprocess_cfg"]).unwrap();
    assert_eq!((recorded["interpolation"].as_str(), recorded["resize_mode"].as_str()), (Some("bicubic"), Some("shortest")));
    // A hub-layout folder: its preprocess_cfg, which survives a second conversion of the output.
    let hub = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-hub/open_clip_model.safetensors");
    let first = convert(&hub, &dir.join("first.safetensors"));
    let recorded: serde_json::Value = serde_json::from_str(&first["open_clip_preprocess_cfg"]).unwrap();
    assert_eq!((recorded["interpolation"].as_str(), recorded["resize_mode"].as_str()), (Some("bilinear"), Some("squash")));
    assert_eq!(recorded["mean"], serde_json::json!([0.5, 0.5, 0.5]));
    let second = convert(&dir.join("first.safetensors"), &dir.join("second.safetensors"));
    assert_eq!(first, second);
    // A torch.save pickle of unknown origin records nothing, and says so.
    let pickle = convert(&model_fixture("torch-save/tiny-vit.bin"), &dir.join("pickle.safetensors"));
    assert!(pickle.is_empty(), "{pickle:?}");
    std::fs::remove_dir_all(dir).unwrap();
}
