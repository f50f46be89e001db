//! Embeds a text with clip-model and clip-tokenizer used as plain dependencies: the tiny model
//! committed in the clip-rs repository (its `open_clip_config.json` and weights), OpenAI's
//! tokenizer, and the normalised text embedding's norm, which must be 1.

use clip_model::{ClipConfig, ClipModel, l2_normalize, load_weights_for};
use clip_tokenizer::Tokenizer;
use tch::{Device, Tensor, nn::VarStore};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let model_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../crates/clip-cli/tests/fixtures/tiny-hub");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(format!("{model_dir}/open_clip_config.json"))?)?;
    let config = ClipConfig::from_json(&json["model_cfg"].to_string())?;
    let vs = VarStore::new(Device::Cpu);
    let model = ClipModel::new(vs.root(), &config);
    load_weights_for(&vs, &config, format!("{model_dir}/open_clip_model.safetensors").as_ref())?;

    let context = config.text.context_length as usize;
    let ids: Vec<i64> = Tokenizer::get().tokenize("a photo of a cat", context)?.into_iter().map(i64::from).collect();
    let _guard = tch::no_grad_guard();
    let embedding = l2_normalize(&model.encode_text(&Tensor::from_slice(&ids).view([1, context as i64])));
    let norm = embedding.norm().double_value(&[]);
    println!("text embedding of {} dimensions, norm {norm:.6}", embedding.size()[1]);
    if (norm - 1.0).abs() > 1e-5 {
        return Err(format!("the embedding's norm is {norm}, not 1").into());
    }
    Ok(())
}
