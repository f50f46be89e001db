//! The newer tower families against open_clip 3.3.0 (+ timm 1.0.31) at random init: tiny models
//! from `scripts/gen_families.py` (SigLIP and SigLIP2 timm towers, CLIPA, CoCa's contrastive
//! towers, MetaCLIP 2's eos pooling), each loaded strictly under open_clip's keys.

use std::collections::HashMap;
use std::path::PathBuf;

use clip_model::{ClipConfig, ClipModel, TimmVitConfig, VisionConfig, WeightsFormat, l2_normalize, load_weights, load_weights_for};
use clip_tensor::safetensors::{read_safetensors, save_safetensors};

use crate::parity::{load_model, max_diff};
use tch::{Device, Kind, Tensor, nn::VarStore};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/families").join(name)
}

/// The fixture's config. A timm tower is named by its real timm model, which fixes its sizes;
/// `NAME.timm.json` holds the timm constructor arguments the script shrank it with, applied here
/// to the config parsed for the real model (whose own width is the embedding width).
pub(crate) fn config(name: &str) -> ClipConfig {
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture(&format!("{name}.json"))).unwrap()).unwrap();
    let Ok(timm) = std::fs::read_to_string(fixture(&format!("{name}.timm.json"))) else {
        return ClipConfig::from_json(&json.to_string()).unwrap();
    };
    let timm: HashMap<String, i64> = serde_json::from_str(&timm).unwrap();
    let full = TimmVitConfig::named(json["vision_cfg"]["timm_model_name"].as_str().unwrap()).unwrap();
    let mut real = json.clone();
    real["embed_dim"] = full.width.into();
    real["vision_cfg"]["image_size"] = full.image_size.into();
    let mut config = ClipConfig::from_json(&real.to_string()).unwrap();
    config.embed_dim = json["embed_dim"].as_i64().unwrap();
    config.vision = VisionConfig::TimmVit(TimmVitConfig {
        image_size: timm["img_size"],
        patch_size: timm["patch_size"],
        width: timm["embed_dim"],
        layers: timm["depth"],
        heads: timm["num_heads"],
        ..full
    });
    config
}

pub(crate) fn load(name: &str) -> (VarStore, ClipModel, HashMap<String, Tensor>) {
    load_model(&config(name), &fixture(name))
}

/// The issue's bounds: image cosine ≥ 0.9999, text max |Δ| ≤ 1e-4 (unit features).
fn check(name: &str) -> (f64, f64) {
    let (_vs, model, io) = load(name);
    let _guard = tch::no_grad_guard();
    let image = l2_normalize(&model.encode_image(&io["images"]));
    let text = l2_normalize(&model.encode_text(&io["text"]));
    let cosine = f64::try_from((&image * &io["image_features"]).sum_dim_intlist(-1, false, Kind::Float).min()).unwrap();
    let dt = max_diff(&text, &io["text_features"]);
    assert!(cosine >= 0.9999, "{name}: image cosine {cosine}");
    assert!(max_diff(&image, &io["image_features"]) <= 1e-4, "{name}: image features differ");
    assert!(dt <= 1e-4, "{name}: text features differ by {dt:e}");
    if let Some(expected) = io.get("image_unprojected") {
        let d = max_diff(&model.encode_image_unprojected(&io["images"]).unwrap(), expected);
        assert!(d <= 1e-4, "{name}: unprojected features differ by {d:e}");
    }
    (cosine, dt)
}

#[test]
fn siglip_matches_open_clip_and_timm() {
    check("siglip");
    let config = config("siglip");
    assert!(config.custom_text && !config.text.causal);
    assert_eq!(config.text.hf_tokenizer_name.as_deref(), Some("timm/ViT-B-16-SigLIP"));
    assert_eq!(config.text.tokenizer_kwargs, Some(serde_json::json!({"clean": "canonicalize"})));
}

#[test]
fn siglip2_with_gelu_tanh_matches_open_clip_and_timm() {
    check("siglip2");
}

#[test]
fn clipa_matches_open_clip() {
    check("clipa");
}

#[test]
fn coca_contrastive_towers_match_open_clip() {
    check("coca");
}

/// `coca.safetensors` less the keys `without`, with `extra` added (the decoder's keys, a stray
/// key), written under Cargo's temporary folder for tests: a CoCa checkpoint as open_clip saves it.
fn coca_checkpoint(file: &str, without: &[&str], extra: Vec<(String, Tensor)>) -> PathBuf {
    let mut tensors = read_safetensors(&fixture("coca.safetensors")).unwrap();
    tensors.retain(|(k, _)| !without.contains(&k.as_str()));
    tensors.extend(extra);
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{}-{file}", std::process::id()));
    let named: Vec<(&str, &Tensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    save_safetensors(&path, &named).unwrap();
    path
}

#[test]
fn a_coca_checkpoint_loads_with_its_decoder_set_aside() {
    let config = config("coca");
    assert_eq!(config.unbuilt_prefixes(), ["text_decoder."]);
    let decoder = read_safetensors(&fixture("coca.decoder.safetensors")).unwrap();
    let decoder_keys: Vec<String> = decoder.iter().map(|(k, _)| k.clone()).collect();
    assert!(decoder_keys.len() > 10 && decoder_keys.iter().all(|k| k.starts_with("text_decoder.")));
    let full = coca_checkpoint("coca-full.safetensors", &[], decoder.iter().map(|(k, t)| (k.clone(), t.shallow_clone())).collect());

    let vs = VarStore::new(Device::Cpu);
    let model = ClipModel::new(vs.root(), &config);
    let loaded = load_weights_for(&vs, &config, &full).unwrap();
    assert_eq!(loaded.format, WeightsFormat::OpenClip);
    assert_eq!(loaded.keys.ignored, decoder_keys);
    assert!(loaded.keys.is_empty());
    let io: HashMap<String, Tensor> = read_safetensors(&fixture("coca.io.safetensors")).unwrap().into_iter().collect();
    let _guard = tch::no_grad_guard();
    let d = max_diff(&l2_normalize(&model.encode_image(&io["images"])), &io["image_features"]);
    let dt = max_diff(&l2_normalize(&model.encode_text(&io["text"])), &io["text_features"]);
    assert!(d <= 1e-4 && dt <= 1e-4, "image {d:e}, text {dt:e}");

    // The decoder's keys are expected only because the config has a multimodal_cfg.
    let vs = VarStore::new(Device::Cpu);
    let _model = ClipModel::new(vs.root(), &config);
    let err = load_weights(&vs, &full).map(drop).unwrap_err().to_string();
    assert!(err.contains(&format!("{} unexpected [text_decoder.", decoder_keys.len())), "{err}");
    let plain = ClipConfig { multimodal_cfg: None, ..config.clone() };
    let vs = VarStore::new(Device::Cpu);
    let _model = ClipModel::new(vs.root(), &plain);
    assert!(load_weights_for(&vs, &plain, &full).unwrap_err().to_string().contains("unexpected [text_decoder."));
    // A contrastive-only checkpoint (no decoder) loads as well.
    let vs = VarStore::new(Device::Cpu);
    let _model = ClipModel::new(vs.root(), &config);
    assert!(load_weights_for(&vs, &config, &fixture("coca.safetensors")).unwrap().keys.ignored.is_empty());
    std::fs::remove_file(full).unwrap();
}

#[test]
fn a_coca_checkpoint_stays_strict_outside_its_decoder() {
    let config = config("coca");
    let mut extra: Vec<(String, Tensor)> = read_safetensors(&fixture("coca.decoder.safetensors")).unwrap();
    // open_clip's 'parallel' pooler, which this config does not have, and a wrong-shaped key.
    extra.push(("visual.attn_pool_contrastive.query".into(), Tensor::zeros([1, 24], (Kind::Float, Device::Cpu))));
    let path = coca_checkpoint("coca-stray.safetensors", &[], extra);
    let vs = VarStore::new(Device::Cpu);
    let _model = ClipModel::new(vs.root(), &config);
    let before = vs.variables()["text.cls_emb"].copy();
    let err = load_weights_for(&vs, &config, &path).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("1 unexpected [visual.attn_pool_contrastive.query]") && message.contains("set aside as not built"), "{message}");
    assert!(!message.contains("unexpected [text_decoder."), "{message}");
    // Nothing was copied.
    assert_eq!(max_diff(&vs.variables()["text.cls_emb"], &before), 0.0);
    std::fs::remove_file(path).unwrap();

    // A missing key of the contrastive towers is missing, decoder or not.
    let decoder = read_safetensors(&fixture("coca.decoder.safetensors")).unwrap();
    let path = coca_checkpoint("coca-missing.safetensors", &["visual.attn_pool.query"], decoder);
    let err = load_weights_for(&vs, &config, &path).unwrap_err().to_string();
    assert!(err.contains("1 missing [visual.attn_pool.query]"), "{err}");
    std::fs::remove_file(path).unwrap();
}

#[test]
fn metaclip2_eos_pooling_matches_open_clip() {
    check("metaclip2");
}

#[test]
fn siglip_gradients_match_open_clip() {
    let (vs, model, io) = load("siglip");
    let expected: HashMap<String, Tensor> = read_safetensors(&fixture("siglip.grads.safetensors")).unwrap().into_iter().collect();
    let image = model.encode_image(&io["images"]);
    let text = model.encode_text(&io["text"]);
    let objective = (image * &expected["image_weights"]).sum(Kind::Float) + (text * &expected["text_weights"]).sum(Kind::Float);
    objective.backward();
    let mut checked = 0;
    // The temperature and bias take no part in the encoders.
    for (name, var) in vs.variables().iter().filter(|(name, _)| !name.starts_with("logit_")) {
        let (grad, want) = (var.grad(), &expected[&format!("grad.{name}")]);
        let scale = f64::try_from(want.abs().max()).unwrap().max(1.0);
        let d = max_diff(&grad, want);
        assert!(d <= 1e-4 * scale, "{name}: gradient differs by {d:e} (largest {scale:e})");
        checked += 1;
    }
    assert_eq!(checked, expected.len() - 2, "reference gradients left unchecked");
}

#[test]
fn non_causal_text_features_do_not_depend_on_the_rest_of_the_batch() {
    // Without a causal mask every position is computed for every text: a text's features are
    // those it has alone, whatever the others hold.
    for name in ["siglip", "clipa"] {
        let (_vs, model, io) = load(name);
        let _guard = tch::no_grad_guard();
        let together = model.encode_text(&io["text"]);
        for i in 0..3 {
            let d = max_diff(&model.encode_text(&io["text"].narrow(0, i, 1)), &together.narrow(0, i, 1));
            assert!(d <= 1e-5, "{name} text {i}: features differ by {d:e}");
        }
    }
}

#[test]
fn the_real_siglip_configs_build_with_timms_keys() {
    // ViT-B-16-SigLIP's towers at full size: 203.16M parameters (open_clip + timm at random init).
    let json = r#"{"embed_dim": 768, "init_logit_bias": -10, "custom_text": true, "vision_cfg": {"image_size": 224, "timm_model_name": "vit_base_patch16_siglip_224", "timm_model_pretrained": false, "timm_pool": "map", "timm_proj": "none"}, "text_cfg": {"context_length": 64, "vocab_size": 32000, "hf_tokenizer_name": "timm/ViT-B-16-SigLIP", "tokenizer_kwargs": {"clean": "canonicalize"}, "width": 768, "heads": 12, "layers": 12, "no_causal_mask": true, "proj_bias": true, "pool_type": "last", "norm_kwargs": {"eps": 1e-06}}}"#;
    let config = ClipConfig::from_json(json).unwrap();
    assert_eq!(ClipConfig::from_json(&config.to_json()).unwrap(), config);
    let vs = VarStore::new(Device::Cpu);
    let _model = ClipModel::new(vs.root(), &config);
    let count: i64 = vs.trainable_variables().iter().map(Tensor::numel).map(|n| n as i64).sum();
    assert_eq!(count, SIGLIP_B16_PARAMETERS);
    let keys = vs.variables();
    for key in ["visual.trunk.pos_embed", "visual.trunk.attn_pool.latent", "text.text_projection.bias", "logit_bias"] {
        assert!(keys.contains_key(key), "no {key}");
    }
}

/// `sum(p.numel() for p in open_clip.create_model("ViT-B-16-SigLIP").parameters())`.
const SIGLIP_B16_PARAMETERS: i64 = 203_155_970;

/// A full-size model against open_clip, outside CI (hundreds of MB of weights; written by
/// `scripts/gen_full_size.py`): `CLIP_MODEL_FULL`
/// names a folder with `model_config.json`, `model.safetensors` (open_clip's state dict at random
/// init) and `io.safetensors` (`images`, `text` ids and open_clip's normalised features), as
/// open_clip writes them for any config.
#[test]
#[ignore = "needs CLIP_MODEL_FULL: a full-size model's weights and open_clip's features"]
#[expect(clippy::print_stderr, reason = "a manual run, whose numbers are what it is run for")]
fn a_full_size_model_matches_open_clip() {
    let dir = PathBuf::from(std::env::var("CLIP_MODEL_FULL").expect("CLIP_MODEL_FULL"));
    let config = ClipConfig::from_json(&std::fs::read_to_string(dir.join("model_config.json")).unwrap()).unwrap();
    let vs = VarStore::new(Device::Cpu);
    let model = ClipModel::new(vs.root(), &config);
    load_weights_for(&vs, &config, &dir.join("model.safetensors")).unwrap();
    let io: HashMap<String, Tensor> = read_safetensors(&dir.join("io.safetensors")).unwrap().into_iter().collect();
    let _guard = tch::no_grad_guard();
    let image = l2_normalize(&model.encode_image(&io["images"]));
    let text = l2_normalize(&model.encode_text(&io["text"]));
    let cosine = f64::try_from((&image * &io["image_features"]).sum_dim_intlist(-1, false, Kind::Float).min()).unwrap();
    let (di, dt) = (max_diff(&image, &io["image_features"]), max_diff(&text, &io["text_features"]));
    eprintln!("{}: image cosine ≥ {cosine:.7}, image max |Δ| {di:.2e}, text max |Δ| {dt:.2e}", dir.display());
    assert!(cosine >= 0.9999 && dt <= 1e-4);
}

#[test]
fn a_siglip_state_dict_asks_for_its_config() {
    let tensors = read_safetensors(&fixture("siglip.safetensors")).unwrap();
    let err = clip_model::weights::infer_config(&tensors, false).unwrap_err().to_string();
    assert!(err.contains("give its model config"), "{err}");
}
