use std::collections::HashMap;
use std::path::{Path, PathBuf};

use clip_model::{ClipConfig, ClipModel, l2_normalize};
use clip_tensor::safetensors::{load_strict, read_safetensors};
use tch::{Device, Tensor, nn::VarStore};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// The model built from the fixture's open_clip config JSON, with its weights loaded strictly.
fn load(name: &str) -> (VarStore, ClipModel, HashMap<String, Tensor>) {
    let config = ClipConfig::from_json(&std::fs::read_to_string(fixture(&format!("{name}.json"))).unwrap()).unwrap();
    load_model(&config, &fixture(name))
}

/// `config`'s model with `STEM.safetensors` loaded strictly, and `STEM.io.safetensors`.
pub(crate) fn load_model(config: &ClipConfig, stem: &Path) -> (VarStore, ClipModel, HashMap<String, Tensor>) {
    let vs = VarStore::new(Device::Cpu);
    let model = ClipModel::for_weights(vs.root(), config);
    let with = |suffix: &str| stem.with_file_name(format!("{}.{suffix}", stem.file_name().unwrap().to_str().unwrap()));
    load_strict(&vs, &with("safetensors")).unwrap();
    let io = read_safetensors(&with("io.safetensors")).unwrap().into_iter().collect();
    (vs, model, io)
}

pub(crate) fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    f64::try_from((a - b).abs().max()).unwrap()
}

/// The bound for fp32 on CPU.
const TOL: f64 = 1e-4;

fn check(name: &str) {
    let (_vs, model, io) = load(name);
    let _guard = tch::no_grad_guard();
    let image = l2_normalize(&model.encode_image(&io["images"]));
    let text = l2_normalize(&model.encode_text(&io["text"]));
    let (di, dt) = (max_diff(&image, &io["image_features"]), max_diff(&text, &io["text_features"]));
    assert!(di <= TOL, "{name}: image features differ by {di:e}");
    assert!(dt <= TOL, "{name}: text features differ by {dt:e}");
    if let Some(expected) = io.get("image_unprojected") {
        let d = max_diff(&model.encode_image_unprojected(&io["images"]).unwrap(), expected);
        assert!(d <= TOL, "{name}: unprojected features differ by {d:e}");
    }
}

#[test]
fn tiny_vit_matches_open_clip() {
    check("tiny-vit");
}

#[test]
fn tiny_resnet_matches_open_clip() {
    check("tiny-rn");
}

#[test]
fn forward_gives_unit_features_and_the_temperature() {
    let (_vs, model, io) = load("tiny-vit");
    let _guard = tch::no_grad_guard();
    let out = model.forward(&io["images"], &io["text"]);
    let norms = out.image_features.norm_scalaropt_dim(2.0, [-1], false);
    assert!(max_diff(&norms, &Tensor::ones_like(&norms)) < 1e-5);
    // The fixture's logit_scale is 2.0.
    assert!((f64::try_from(&out.logit_scale).unwrap() - 2f64.exp()).abs() < 1e-5);
}

#[test]
fn short_texts_skip_the_columns_after_their_end_token_with_the_same_features() {
    // The fixture's rows end at positions 3, 7 and 15 (of 16): alone, the first two run on 8
    // columns; beside the third, on all 16. Their features must agree (and those of the full
    // batch are open_clip's, checked above) — and the same holds for gradients.
    let (vs, model, io) = load("tiny-vit");
    let ids = &io["text"];
    let weight = vs.variables()["transformer.resblocks.0.attn.in_proj_weight"].shallow_clone();
    assert_eq!(Vec::<i64>::try_from(ids.argmax(-1, false)).unwrap(), [3, 7, 15]);
    let short = model.encode_text(&ids.narrow(0, 0, 2));
    let full = model.encode_text(ids).narrow(0, 0, 2);
    let d = max_diff(&short, &full);
    assert!(d <= 1e-5, "features differ by {d:e}");
    let grad = |features: &Tensor| Tensor::run_backward(&[features.sum(tch::Kind::Float)], &[&weight], false, false).remove(0);
    let d = max_diff(&grad(&short), &grad(&full));
    assert!(d <= 1e-5, "gradients differ by {d:e}");
}

#[test]
fn a_texts_features_do_not_depend_on_the_rest_of_its_batch() {
    // The fixture's texts (4, 8 and 16 of 16 tokens) are computed packed; a batch of a 15- and a
    // 16-token text on the full grid, the shorter one masked. Either way each text's features
    // must be those it has alone.
    let (_vs, model, io) = load("tiny-vit");
    let _guard = tch::no_grad_guard();
    let ids = &io["text"];
    let shorter = ids.get(2).copy();
    let _ = shorter.get(15).fill_(5);
    let _ = shorter.get(14).fill_(999); // the end-of-text id of this vocabulary
    for batch in [ids.shallow_clone(), Tensor::stack(&[shorter, ids.get(2)], 0)] {
        let together = model.encode_text(&batch);
        for i in 0..batch.size()[0] {
            let d = max_diff(&model.encode_text(&batch.narrow(0, i, 1)), &together.narrow(0, i, 1));
            assert!(d <= 1e-5, "text {i} of {batch:?}: features differ by {d:e}");
        }
    }
}

#[test]
fn gradients_through_both_towers_match_open_clip() {
    // Pooling reads one token per row, so the last blocks run on those tokens alone: the
    // gradients of every parameter must still be those of open_clip's full computation.
    let (vs, model, io) = load("tiny-vit");
    let expected: HashMap<String, Tensor> = read_safetensors(&fixture("tiny-vit.grads.safetensors")).unwrap().into_iter().collect();
    let image = model.encode_image(&io["images"]);
    let text = model.encode_text(&io["text"]);
    let objective = (image * &expected["image_weights"]).sum(tch::Kind::Float) + (text * &expected["text_weights"]).sum(tch::Kind::Float);
    objective.backward();
    let mut checked = 0;
    // The temperature takes no part in the encoders.
    for (name, var) in vs.variables().iter().filter(|(name, _)| *name != "logit_scale") {
        let (grad, want) = (var.grad(), &expected[&format!("grad.{name}")]);
        let scale = f64::try_from(want.abs().max()).unwrap().max(1.0);
        let d = max_diff(&grad, want);
        assert!(d <= TOL * scale, "{name}: gradient differs by {d:e} (largest {scale:e})");
        checked += 1;
    }
    assert_eq!(checked, expected.len() - 2, "reference gradients left unchecked");
}
