//! Patch dropout against open_clip (`scripts/gen_patch_dropout.py`): given the same kept patches,
//! the features equal open_clip's in training mode, for its own ViT and for timm's SigLIP tower;
//! without kept patches (inference) nothing is dropped whatever the config says.

use std::collections::HashMap;

use clip_model::patch_dropout::draw_kept;
use clip_model::{ClipConfig, l2_normalize};
use clip_tensor::safetensors::read_safetensors;
use tch::Tensor;

use crate::families::load as load_family;
use crate::parity::{load_model, max_diff};

fn fixture() -> HashMap<String, Tensor> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/patch_dropout.safetensors");
    read_safetensors(&path).unwrap().into_iter().collect()
}

fn tiny_vit(patch_dropout: f64) -> (tch::nn::VarStore, clip_model::ClipModel, HashMap<String, Tensor>) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut config = ClipConfig::from_json(&std::fs::read_to_string(dir.join("tiny-vit.json")).unwrap()).unwrap();
    config.vision.set_patch_dropout(patch_dropout).unwrap();
    load_model(&config, &dir.join("tiny-vit"))
}

#[test]
fn vit_features_on_kept_patches_equal_open_clips() {
    let expected = fixture();
    let (_vs, model, io) = tiny_vit(0.5);
    let _guard = tch::no_grad_guard();
    let kept = &expected["vit.kept"];
    let features = l2_normalize(&model.encode_image_with(&io["images"], Some(kept)));
    let d = max_diff(&features, &expected["vit.image_features"]);
    assert!(d <= 1e-5, "differs by {d:e}");
    // The order of kept patches is immaterial (ours are drawn ascending).
    let sorted = kept.sort(1, false).0;
    assert!(max_diff(&l2_normalize(&model.encode_image_with(&io["images"], Some(&sorted))), &features) <= 1e-6);
    // Dropping changes the features; inference drops nothing, the config notwithstanding.
    assert!(max_diff(&features, &io["image_features"]) > 1e-3);
    assert!(max_diff(&l2_normalize(&model.encode_image(&io["images"])), &io["image_features"]) <= 1e-4);
}

#[test]
fn siglip_features_on_kept_patches_equal_open_clip_and_timms() {
    let expected = fixture();
    let (_vs, model, io) = load_family("siglip");
    let _guard = tch::no_grad_guard();
    let features = l2_normalize(&model.encode_image_with(&io["images"], Some(&expected["siglip.kept"])));
    let d = max_diff(&features, &expected["siglip.image_features"]);
    assert!(d <= 1e-5, "differs by {d:e}");
    assert!(max_diff(&features, &io["image_features"]) > 1e-3);
}

#[test]
fn drawn_patches_train_through_the_tower() {
    let (_vs, model, io) = tiny_vit(0.5);
    let kept = draw_kept(&[1, 2, 3], 16, model.config.vision.patch_dropout());
    assert_eq!(kept.size(), [3, 8]);
    let features = model.encode_image_with(&io["images"], Some(&kept));
    assert_eq!(features.size(), [3, 32]);
    features.sum(tch::Kind::Float).backward();
}

#[test]
fn patch_dropout_is_a_vision_cfg_key_and_refused_for_a_resnet() {
    let vit = r#"{"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "patch_dropout": 0.5}, "text_cfg": {"context_length": 16, "vocab_size": 1000, "width": 48, "heads": 4, "layers": 2}}"#;
    let config = ClipConfig::from_json(vit).unwrap();
    assert_eq!(config.vision.patch_dropout(), 0.5);
    assert_eq!(ClipConfig::from_json(&config.to_json()).unwrap(), config, "written back");
    let bad = vit.replace("0.5}", "1.0}");
    assert!(ClipConfig::from_json(&bad).unwrap_err().to_string().contains("vision_cfg.patch_dropout must be in [0, 1)"));
    let rn = r#"{"embed_dim": 32, "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 8, "patch_size": null, "patch_dropout": 0.5}, "text_cfg": {"context_length": 16, "vocab_size": 1000, "width": 48, "heads": 4, "layers": 2}}"#;
    assert!(ClipConfig::from_json(rn).unwrap_err().to_string().contains("patch_dropout"));
    let mut rn = ClipConfig::named("tiny").unwrap();
    assert!(rn.vision.set_patch_dropout(0.5).is_err());
    assert!(rn.vision.set_patch_dropout(0.0).is_ok());
}
