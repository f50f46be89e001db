//! Embeds images and texts with a model built from its config and weights, and ranks the texts
//! for each image by cosine similarity (`exp(logit_scale) · cosine`, softmaxed, as CLIP's logits).
//! The model is the tiny committed one (random weights, so the ranking is arbitrary); give an
//! `open_clip_config.json`, weights and images to rank with a real one.
//!
//!     cargo run --release -p clip-model --example rank [-- CONFIG.json WEIGHTS IMAGE…]
#![allow(clippy::print_stdout)] // an example's output is its result

use clip_data::{PreprocessConfig, SourceImage};
use clip_model::{ClipConfig, ClipModel, l2_normalize, load_weights_for};
use tch::{Device, Kind, Tensor, nn::VarStore};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        args = vec![
            format!("{root}/clip-cli/tests/fixtures/tiny-hub/open_clip_config.json"),
            format!("{root}/clip-cli/tests/fixtures/tiny-hub/open_clip_model.safetensors"),
        ];
        args.extend(["chelsea.png", "coffee.png", "rocket.jpg"].map(|f| format!("{root}/clip-data/tests/fixtures/images/{f}")));
    }
    // open_clip_config.json: the architecture under `model_cfg`, the preprocessing under `preprocess_cfg`.
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&args[0])?)?;
    let config = ClipConfig::from_json(&json["model_cfg"].to_string())?;
    let size = config.vision.image_size() as u32;
    let preprocess = PreprocessConfig::from_open_clip_json(&json["preprocess_cfg"], size)?;
    let vs = VarStore::new(Device::Cpu);
    let model = ClipModel::for_weights(vs.root(), &config);
    let loaded = load_weights_for(&vs, &config, args[1].as_ref())?;
    println!("{} parameters of {} tensors from {} ({:?})", vs.variables().values().map(Tensor::numel).sum::<usize>(), vs.len(), args[1], loaded.format);

    let pixels: Vec<f32> = args[2..]
        .iter()
        .map(|path| Ok(preprocess.apply(&SourceImage::decode(&std::fs::read(path)?)?)))
        .collect::<Result<Vec<_>, Box<dyn std::error::Error>>>()?
        .concat();
    let images = Tensor::from_slice(&pixels).view([(args.len() - 2) as i64, 3, i64::from(size), i64::from(size)]);
    let captions = ["a photo of a cat", "a cup of coffee", "a rocket on its launch pad", "a diagram"];
    let context = config.text.context_length as usize;
    let ids: Vec<i64> = clip_tokenizer::Tokenizer::get().tokenize_batch(&captions, context)?.into_iter().map(i64::from).collect();
    let ids = Tensor::from_slice(&ids).view([captions.len() as i64, context as i64]);

    let _guard = tch::no_grad_guard();
    let image_features = l2_normalize(&model.encode_image(&images)); // [images, embed_dim]
    let text_features = l2_normalize(&model.encode_text(&ids)); // [captions, embed_dim]
    let probs = (model.logit_scale().exp() * image_features.matmul(&text_features.tr())).softmax(-1, Kind::Float);
    for (i, path) in args[2..].iter().enumerate() {
        let row = Vec::<f32>::try_from(probs.get(i as i64))?;
        let mut order: Vec<usize> = (0..captions.len()).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        println!("{}", path.rsplit('/').next().unwrap_or(path));
        for &c in &order {
            println!("  {:.3}  {}", row[c], captions[c]);
        }
    }
    Ok(())
}
