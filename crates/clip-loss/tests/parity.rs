use std::collections::HashMap;
use std::path::Path;

use clip_loss::{clip_loss, siglip_loss};
use tch::Tensor;

/// open_clip 3.3.0's losses and gradients on random inputs (`scripts/gen_fixtures.py`).
fn fixtures() -> HashMap<String, Tensor> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/losses.safetensors");
    clip_tensor::safetensors::read_safetensors(&path).unwrap().into_iter().collect()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    f64::try_from((a - b).abs().max()).unwrap()
}

fn leaf(t: &Tensor) -> Tensor {
    t.detach().copy().set_requires_grad(true)
}

const BATCHES: [i64; 5] = [1, 2, 5, 16, 64];
const TOL: f64 = 1e-5;

#[test]
fn clip_loss_and_gradients_match_open_clip() {
    let f = fixtures();
    for n in BATCHES {
        let get = |k: &str| &f[&format!("b{n}.{k}")];
        let (image, text, scale) = (leaf(get("image")), leaf(get("text")), leaf(get("scale")));
        let loss = clip_loss(&image, &text, &scale);
        loss.backward();
        assert!(max_diff(&loss, get("clip.loss")) < TOL, "b{n} loss {loss} vs {}", get("clip.loss"));
        assert!(max_diff(&image.grad(), get("clip.grad_image")) < TOL, "b{n} grad image");
        assert!(max_diff(&text.grad(), get("clip.grad_text")) < TOL, "b{n} grad text");
        assert!(max_diff(&scale.grad(), get("clip.grad_scale")) < TOL, "b{n} grad scale");
    }
}

#[test]
fn siglip_loss_and_gradients_match_open_clip() {
    let f = fixtures();
    for n in BATCHES {
        let get = |k: &str| &f[&format!("b{n}.{k}")];
        let (image, text, scale, bias) = (leaf(get("image")), leaf(get("text")), leaf(get("scale")), leaf(get("bias")));
        let loss = siglip_loss(&image, &text, &scale, &bias);
        loss.backward();
        assert!(max_diff(&loss, get("siglip.loss")) < TOL, "b{n} loss {loss} vs {}", get("siglip.loss"));
        assert!(max_diff(&image.grad(), get("siglip.grad_image")) < TOL, "b{n} grad image");
        assert!(max_diff(&text.grad(), get("siglip.grad_text")) < TOL, "b{n} grad text");
        assert!(max_diff(&scale.grad(), get("siglip.grad_scale")) < TOL, "b{n} grad scale");
        assert!(max_diff(&bias.grad(), get("siglip.grad_bias")) < TOL, "b{n} grad bias");
    }
}
