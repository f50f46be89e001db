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
fn converting_a_pickle_fails_with_the_reason() {
    let output = Command::new(env!("CARGO_BIN_EXE_clip"))
        .arg("convert")
        .arg(model_fixture("pickled-legacy.bin"))
        .arg(std::env::temp_dir().join("never-written.safetensors"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("does not unpickle"));
}
