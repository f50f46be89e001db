//! `clip classify`: the paper's zero-shot classifier on the user's own images and labels (OpenAI
//! CLIP's README example). Each label's prompts are the templates filled with it, averaged as
//! normalised text embeddings (open_clip's `build_zero_shot_classifier`); an image's
//! probabilities are `softmax(exp(logit_scale) · cosine)` over the labels, or for a SigLIP model
//! (one with a `logit_bias`) each label's own `sigmoid(exp(logit_scale) · cosine + logit_bias)`,
//! as SigLIP was trained and as open_clip's README computes it: they need not sum to 1.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use tch::{Device, Tensor};

use crate::embed::{Encoder, RunArgs, image_files};
use crate::model::ModelSpec;

/// `clip classify`'s options.
pub(crate) struct Options {
    pub(crate) spec: ModelSpec,
    pub(crate) labels: String,
    pub(crate) templates: String,
    pub(crate) top: usize,
    pub(crate) json: bool,
    pub(crate) inputs: Vec<PathBuf>,
    pub(crate) run: RunArgs,
}

/// The prompt templates `--templates` names: `seed` (the paper's "a photo of a {}."), `imagenet`
/// (its 80-prompt ImageNet ensemble), `none` (the labels as given) or a file of one per line.
fn templates(choice: &str) -> Result<Vec<String>> {
    let templates: Vec<String> = match choice {
        "seed" => vec!["a photo of a {}.".into()],
        "none" => vec!["{}".into()],
        "imagenet" => clip_eval::registry::find("imagenet1k").context("the registry has no imagenet1k")?.templates.clone(),
        file => {
            let text = std::fs::read_to_string(file).with_context(|| format!("--templates {file}: not seed, imagenet or none, and not a readable file"))?;
            text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect()
        }
    };
    if templates.is_empty() {
        bail!("--templates {choice}: no templates");
    }
    if let Some(bad) = templates.iter().find(|t| !t.contains("{}") && !t.contains("{c}")) {
        bail!("--templates {choice}: {bad:?} has no {{}} (or {{c}}) where the label goes");
    }
    Ok(templates)
}

pub(crate) fn run(options: &Options) -> Result<()> {
    let labels: Vec<String> = options.labels.split(',').map(|l| l.trim().to_owned()).collect();
    if labels.iter().any(String::is_empty) {
        bail!("--labels: an empty label in {:?} (labels are comma-separated)", options.labels);
    }
    let templates = templates(&options.templates)?;
    if options.run.batch_size == 0 || options.top == 0 {
        bail!("--batch-size and --top must be at least 1");
    }
    let mut files = Vec::new();
    for input in &options.inputs {
        if input.is_dir() {
            files.extend(image_files(input)?);
        } else {
            files.push(input.clone());
        }
    }
    if files.is_empty() {
        bail!("no images: give image files or folders");
    }
    let device = options.run.device.resolve()?;
    let loaded = options.spec.load(device, false, "clip classify")?;
    let model = &loaded.model;
    let _guard = tch::no_grad_guard();
    let classes: Vec<Vec<String>> = labels.iter().map(|l| vec![l.clone()]).collect();
    let tokenizer = options.spec.tokenizer(&loaded, "clip classify")?;
    let classifier = clip_eval::zeroshot::classifier(model, &tokenizer, &classes, &templates, device)?;
    let encode = Encoder { model, device, precision: options.run.precision };
    let (rows, kept) = encode.images(&loaded.preprocess, &files, options.run.batch_size, "clip classify")?;
    if kept.is_empty() {
        bail!("none of the images could be read");
    }
    let features = Tensor::from_slice(&rows).view([kept.len() as i64, model.config.embed_dim]).to_device(device);
    let probs = clip_rs::probabilities(model, &features, &classifier).to_device(Device::Cpu);
    let probs = Vec::<f32>::try_from(probs.contiguous().view([-1]))?;
    let top = options.top.min(labels.len());
    for (file, row) in kept.iter().zip(probs.chunks(labels.len())) {
        let mut order: Vec<usize> = (0..labels.len()).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        let best = &order[..top];
        if options.json {
            let top: Vec<_> = best.iter().map(|&i| serde_json::json!({"label": labels[i], "prob": row[i]})).collect();
            println!("{}", serde_json::json!({"file": file.display().to_string(), "top": top}));
        } else {
            println!("{}", file.display());
            for &i in best {
                println!("  {:>7.4}  {}", row[i], labels[i]);
            }
        }
    }
    Ok(())
}
