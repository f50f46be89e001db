//! Zero-shot classification: each class is the normalised mean of the normalised text embeddings
//! of its prompts (`templates` with the class name filled in), images are assigned to the class of
//! highest cosine similarity (open_clip's `build_zero_shot_classifier`, CLIP_benchmark's
//! `zero_shot_classifier`).

use std::sync::Arc;

use clip_data::Source;
use clip_data::builtin::BuiltinTask;
use clip_data::source::BuiltinTaskSource;
use clip_model::{ClipModel, TextConfig, l2_normalize};
use clip_tensor::precision::Precision;
use clip_tokenizer::TextTokenizer;
use tch::{Device, Kind, Tensor};

use crate::features::FeatureKind;
use crate::suite::{RunOptions, split_features};
use crate::{Error, Result};

/// Fills a template: `{c}` (CLIP_benchmark's convention) or `{}` (Python `format`).
pub fn fill(template: &str, classname: &str) -> String {
    if template.contains("{c}") { template.replace("{c}", classname) } else { template.replace("{}", classname) }
}

/// Whether `tokenizer` can feed this model's text tower: a tower built for a Hugging Face
/// tokenizer (SigLIP, CLIPA, …) given OpenAI's BPE, or a vocabulary smaller than OpenAI's, would
/// read ids that mean nothing to it, so it is refused, never silently mis-fed.
pub fn check_tokenizer(text: &TextConfig, tokenizer: &TextTokenizer) -> Result<()> {
    if let (Some(name), TextTokenizer::OpenAi) = (&text.hf_tokenizer_name, tokenizer) {
        return Err(Error::Task(format!("this model's text tower reads the Hugging Face tokenizer {name}, not OpenAI's BPE")));
    }
    if matches!(tokenizer, TextTokenizer::OpenAi) && (text.vocab_size as usize) < clip_tokenizer::VOCAB_SIZE {
        return Err(Error::Task(format!(
            "this model's vocabulary has {} tokens, fewer than the tokenizer's {}: it cannot read text",
            text.vocab_size,
            clip_tokenizer::VOCAB_SIZE
        )));
    }
    Ok(())
}

/// `texts` as the model's token ids, `[n, context_length]` on `device`. An id outside the model's
/// vocabulary (a tokenizer that does not belong to it) is an error, not an out-of-range lookup.
pub fn token_ids(model: &ClipModel, tokenizer: &TextTokenizer, texts: &[impl AsRef<str> + Sync], device: Device) -> Result<Tensor> {
    let context = model.config.text.context_length as usize;
    let ids = tokenizer.tokenize_batch(texts, context)?;
    let vocab = model.config.text.vocab_size;
    if let Some(id) = ids.iter().find(|&&id| i64::from(id) >= vocab) {
        return Err(Error::Task(format!("the {} tokenizer gave id {id}, outside the model's vocabulary of {vocab}", tokenizer.describe())));
    }
    let ids: Vec<i64> = ids.into_iter().map(i64::from).collect();
    Ok(Tensor::from_slice(&ids).view([texts.len() as i64, context as i64]).to_device(device))
}

/// The classifier, `[embed_dim, classes]`, columns normalised. A class may have several names
/// (FER2013's "happy" and "smiling"): its prompts are every template with every name.
pub fn classifier(
    model: &ClipModel,
    tokenizer: &TextTokenizer,
    classes: &[Vec<String>],
    templates: &[impl AsRef<str>],
    device: Device,
) -> Result<Tensor> {
    if classes.is_empty() || classes.iter().any(Vec::is_empty) || templates.is_empty() {
        return Err(Error::Task("a zero-shot classifier needs class names and templates".into()));
    }
    check_tokenizer(&model.config.text, tokenizer)?;
    let _guard = tch::no_grad_guard();
    let mut columns = Vec::with_capacity(classes.len());
    for names in classes {
        let prompts: Vec<String> = names.iter().flat_map(|n| templates.iter().map(move |t| fill(t.as_ref(), n))).collect();
        let ids = token_ids(model, tokenizer, &prompts, device)?;
        let features = l2_normalize(&model.encode_text(&ids).to_kind(Kind::Float));
        columns.push(l2_normalize(&features.mean_dim(0, false, Kind::Float)));
    }
    Ok(Tensor::stack(&columns, 1))
}

/// A cache of classifiers on disk: `DIR/NAME-KEY.safetensors`, the key a hash of the weights'
/// identity (given by the caller: file, size, modification time, config) with the class names and
/// templates, so a classifier is rebuilt whenever any of them changes.
#[derive(Debug, Clone)]
pub struct ClassifierCache {
    /// The folder.
    pub dir: std::path::PathBuf,
    /// What identifies the weights.
    pub weights_id: String,
}

/// 64-bit FNV-1a: a stable hash (std's `DefaultHasher` may change between Rust releases).
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for byte in parts.iter().flat_map(|p| p.bytes().chain([0xFF])) {
        h = (h ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl ClassifierCache {
    /// The classifier for `name`: read from the cache when it holds one for the same weights, class
    /// names and templates, otherwise built and stored. A cache that cannot be read or written is
    /// passed over (the classifier is built).
    pub fn classifier(
        &self,
        name: &str,
        model: &ClipModel,
        tokenizer: &TextTokenizer,
        classes: &[Vec<String>],
        templates: &[impl AsRef<str>],
        device: Device,
    ) -> Result<Tensor> {
        let names: Vec<String> = classes.iter().map(|c| c.join("\u{1}")).collect();
        let templates_joined: Vec<&str> = templates.iter().map(AsRef::as_ref).collect();
        let key = fnv1a(&[&self.weights_id, &names.join("\u{2}"), &templates_joined.join("\u{2}")]);
        let path = self.dir.join(format!("{}-{key:016x}.safetensors", name.replace('/', "-")));
        let expected = [model.config.embed_dim, classes.len() as i64];
        if let Ok(mut tensors) = clip_tensor::safetensors::read_safetensors(&path)
            && let Some((_, w)) = tensors.pop()
            && w.size() == expected
        {
            return Ok(w.to_device(device));
        }
        let w = classifier(model, tokenizer, classes, templates, device)?;
        if std::fs::create_dir_all(&self.dir).is_ok() {
            let _ = clip_tensor::safetensors::save_safetensors(&path, &[("classifier", &w.to_device(Device::Cpu))]);
        }
        Ok(w)
    }
}

/// Class scores of normalised image `features` (`[n, embed_dim]`): `100 · cosine`, as CLIP's logits.
pub fn logits(features: &Tensor, classifier: &Tensor) -> Tensor {
    features.to_device(classifier.device()).matmul(classifier) * 100.0
}

/// Predicted classes of preprocessed `images` (`[n, 3, s, s]`).
pub fn predict(model: &ClipModel, classifier: &Tensor, images: &Tensor) -> Tensor {
    let features = l2_normalize(&model.encode_image(images).to_kind(Kind::Float));
    logits(&features, classifier).argmax(-1, false)
}

/// Top-1 accuracy of the zero-shot classifier on `samples` held-out draws of a built-in task,
/// through the same loader path as every other evaluation (one decode thread, batches of 256).
pub fn builtin_accuracy(model: &ClipModel, tokenizer: &TextTokenizer, task: BuiltinTask, samples: u64, device: Device) -> Result<f64> {
    let image_size = model.config.vision.image_size() as u32;
    let source = Source::Indexed(Arc::new(BuiltinTaskSource { task, samples, image_size }));
    let options = RunOptions {
        batch_size: 256,
        threads: 1,
        device,
        precision: Precision::Fp32,
        classifier_cache: None,
        preprocess: None,
        tokenizer: tokenizer.clone(),
        frame_cache: None,
    };
    let features = split_features(model, source, false, FeatureKind::Projected, &options, |_| {})?;
    let classes: Vec<Vec<String>> = task.classnames().into_iter().map(|c| vec![c]).collect();
    let classifier = classifier(model, tokenizer, &classes, task.templates(), device)?;
    let predicted = logits(&features.features, &classifier).argmax(-1, false).to_device(Device::Cpu);
    let correct = predicted.eq_tensor(&features.labels).sum(Kind::Int64).int64_value(&[]);
    Ok(correct as f64 / samples.max(1) as f64)
}
