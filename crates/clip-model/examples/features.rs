//! The towers alone, for `scripts/zoo_parity.py`: a model config, its weights (loaded as
//! `load_weights_for` does: CoCa's decoder set aside, everything else strict) and a safetensors
//! file of inputs (`images`: preprocessed pixels `[b, 3, s, s]`, `text`: ids `[b, context]`, either
//! or both) in; normalised `image_features` / `text_features` out: the towers on open_clip's own
//! inputs, with no tokenizer, hub or CLI in between (random ids for a Hugging Face tokenizer's
//! tower; CoCa checkpoints, which `clip embed` loads with `load_weights`).
//!
//!     cargo run --release -p clip-model --example features -- CONFIG.json WEIGHTS IO.safetensors OUT.safetensors

use std::collections::HashMap;
use std::path::PathBuf;

use clip_model::{ClipConfig, ClipModel, l2_normalize, load_weights_for};
use clip_tensor::safetensors::{read_safetensors, save_safetensors};
use tch::{Device, Tensor, nn::VarStore};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [config, weights, io, out] = args.as_slice() else {
        return Err("usage: features CONFIG.json WEIGHTS IO.safetensors OUT.safetensors".into());
    };
    let config = ClipConfig::from_json(&std::fs::read_to_string(config)?)?;
    let vs = VarStore::new(Device::Cpu);
    let model = ClipModel::for_weights(vs.root(), &config);
    load_weights_for(&vs, &config, weights)?;
    let inputs: HashMap<String, Tensor> = read_safetensors(io)?.into_iter().collect();
    let _guard = tch::no_grad_guard();
    let mut features = Vec::new();
    if let Some(images) = inputs.get("images") {
        features.push(("image_features", l2_normalize(&model.encode_image(images))));
    }
    if let Some(ids) = inputs.get("text") {
        features.push(("text_features", l2_normalize(&model.encode_text(ids))));
    }
    let named: Vec<(&str, &Tensor)> = features.iter().map(|(k, t)| (*k, t)).collect();
    save_safetensors(out, &named)?;
    Ok(())
}
