//! CLIP in a few lines: a model with its preprocessing and tokenizer ([`Clip`]), image and text
//! embeddings, and zero-shot classification ([`ZeroShot`]), returning plain Rust values, with the
//! tensors there for those who want them.
//!
//! ```
//! use clip_rs::Clip;
//!
//! // A tiny random-weight model committed for tests; `Clip::pretrained("ViT-B-32", "openai", &hub)`
//! // takes released weights through a `clip_rs::Hub` the same way.
//! let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../clip-cli/tests/fixtures/tiny-hub");
//! let clip = Clip::from_files(format!("{dir}/open_clip_config.json"), format!("{dir}/open_clip_model.safetensors"))?;
//! let texts = clip.encode_texts(&["a photo of a cat", "a diagram"])?;
//! let norm: f32 = texts[0].iter().map(|x| x * x).sum::<f32>().sqrt();
//! assert!((norm - 1.0).abs() < 1e-5);
//! # Ok::<(), clip_rs::Error>(())
//! ```
//!
//! This crate only composes the others: `clip-model` (the towers and weight formats),
//! `clip-data` (the evaluation preprocessing, bit-exact with open_clip's PIL + torchvision),
//! `clip-pretrained` (names, tags and the tokenizer a model reads), `clip-hub` (the Hugging Face
//! cache) and `clip-eval` (the prompt-ensemble classifier). It reaches the network only through
//! the [`Hub`] the caller passes; an offline hub (`HF_HUB_OFFLINE=1`) answers from the cache.
//! Nothing is printed: notes for the user are in [`Clip::notes`].

mod error;
mod load;

use std::path::{Path, PathBuf};

use clip_data::SourceImage;
use clip_hub::Progress;
use clip_model::l2_normalize;
use clip_pretrained::ModelName;
use clip_tensor::precision::autocast;
use rayon::prelude::*;
use tch::Kind;

pub use clip_data::PreprocessConfig;
pub use clip_hub::Hub;
pub use clip_model::{ClipConfig, ClipModel};
pub use clip_tensor::precision::Precision;
pub use clip_tokenizer::TextTokenizer;
pub use error::{Error, Result};
pub use image;
pub use load::{LoadedModel, attach_weights, resolve_config_file};
pub use tch::{Device, Tensor};

/// Images per forward pass in [`Clip::encode_images`] and [`ZeroShot::classify`].
const BATCH: usize = 32;

/// A model with the preprocessing of its weights and the tokenizer its text tower reads.
///
/// ```
/// # let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../clip-cli/tests/fixtures/tiny-hub");
/// let clip = clip_rs::Clip::from_files(format!("{dir}/open_clip_config.json"), format!("{dir}/open_clip_model.safetensors"))?;
/// let photo = concat!(env!("CARGO_MANIFEST_DIR"), "/../clip-data/tests/fixtures/images/chelsea.png");
/// let images = clip.encode_images(&[photo])?;
/// assert_eq!(images[0].len(), clip.embed_dim());
/// # Ok::<(), clip_rs::Error>(())
/// ```
pub struct Clip {
    loaded: LoadedModel,
    tokenizer: TextTokenizer,
    precision: Precision,
}

impl Clip {
    /// A model from a config file (`open_clip_config.json`, or a bare model config) and a weights
    /// file (open_clip or Hugging Face safetensors, OpenAI's `.pt`, `torch.save` files), on the
    /// CPU. The preprocessing is the config's, or what the weights file records; a config naming
    /// a Hugging Face tokenizer reads it from the config's folder.
    pub fn from_files(config: impl AsRef<Path>, weights: impl AsRef<Path>) -> Result<Self> {
        Self::from_files_on(config, weights, Device::Cpu)
    }

    /// [`Clip::from_files`] on `device`.
    pub fn from_files_on(config: impl AsRef<Path>, weights: impl AsRef<Path>, device: Device) -> Result<Self> {
        let config = config.as_ref();
        let mut resolved = resolve_config_file(config)?;
        attach_weights(&mut resolved, weights.as_ref())?;
        let folder = config.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        // A local folder's tokenizer needs no hub: this one is offline and never consulted.
        let offline = Hub::new(clip_hub::Cache::new(folder.to_owned()), clip_hub::HubConfig { offline: true, ..clip_hub::HubConfig::new("") });
        let model = ModelName::LocalDir(folder.to_owned());
        let text = &resolved.config.text;
        let tokenizer = clip_pretrained::choose_tokenizer(&model, text.hf_tokenizer_name.as_deref(), text.tokenizer_kwargs.as_ref(), &offline, &mut |_| {})?;
        Self::assemble(LoadedModel::load(resolved, device)?, tokenizer)
    }

    /// Released weights by open_clip's name and tag (`"ViT-B-32", "openai"`; `clip pretrained`
    /// lists the pairs), on the CPU, fetched through `hub` into the Hugging Face cache unless
    /// they are there already.
    pub fn pretrained(model: &str, tag: &str, hub: &Hub) -> Result<Self> {
        Self::load(model, Some(tag), hub, Device::Cpu, &mut |_| {})
    }

    /// Any model open_clip names: a built-in name with a tag, `hf-hub:ORG/NAME` or
    /// `local-dir:DIR` (their own weights; a tag is ignored), on `device`, downloads reported to
    /// `progress`.
    pub fn load(model: &str, tag: Option<&str>, hub: &Hub, device: Device, progress: &mut dyn FnMut(Progress)) -> Result<Self> {
        let resolved = clip_pretrained::resolve(model, tag, hub, progress)?;
        if resolved.weights.is_none() {
            return Err(Error::Input(format!(
                "{model} names an architecture without weights: add a pretrained tag (`clip pretrained` lists them), or use Clip::from_files"
            )));
        }
        let tokenizer = clip_pretrained::tokenizer(model, &resolved.config.text, hub, progress)?;
        Self::assemble(LoadedModel::load(resolved, device)?, tokenizer)
    }

    /// A loaded model with a tokenizer of the caller's choice, checked against its text tower.
    pub fn assemble(loaded: LoadedModel, tokenizer: TextTokenizer) -> Result<Self> {
        clip_eval::zeroshot::check_tokenizer(&loaded.model.config.text, &tokenizer)?;
        Ok(Self { loaded, tokenizer, precision: Precision::Fp32 })
    }

    /// Runs the towers under autocast at `precision` (bf16 or fp16 where the device has them);
    /// embeddings stay float32.
    #[must_use]
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// The model.
    pub fn model(&self) -> &ClipModel {
        &self.loaded.model
    }

    /// The evaluation preprocessing of the weights.
    pub fn preprocess(&self) -> &PreprocessConfig {
        &self.loaded.preprocess
    }

    /// The tokenizer the text tower reads.
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// The device the model runs on.
    pub fn device(&self) -> Device {
        self.loaded.device()
    }

    /// The embedding width.
    pub fn embed_dim(&self) -> usize {
        self.loaded.model.config.embed_dim as usize
    }

    /// What the user should be told about how the model was built (a tag overriding the name's
    /// activation, QuickGELU forced for OpenAI weights).
    pub fn notes(&self) -> &[String] {
        &self.loaded.notes
    }

    /// L2-normalised embeddings of images (files, or images already decoded), one row each.
    pub fn encode_images<I: ImageInput + Sync>(&self, images: &[I]) -> Result<Vec<Vec<f32>>> {
        rows(&self.encode_images_tensor(images)?)
    }

    /// [`Clip::encode_images`] as a `[n, embed_dim]` float32 tensor on the CPU.
    pub fn encode_images_tensor<I: ImageInput + Sync>(&self, images: &[I]) -> Result<Tensor> {
        let mut parts = Vec::new();
        for chunk in images.chunks(BATCH) {
            parts.push(self.encode_pixels(&self.pixels(chunk)?)?);
        }
        if parts.is_empty() {
            return Ok(Tensor::zeros([0, self.loaded.model.config.embed_dim], (Kind::Float, Device::Cpu)));
        }
        Ok(Tensor::cat(&parts, 0))
    }

    /// Preprocessed pixels of `images`, `[n, 3, size, size]`, decoded on the rayon pool.
    pub fn pixels<I: ImageInput + Sync>(&self, images: &[I]) -> Result<Tensor> {
        let preprocess = &self.loaded.preprocess;
        let decoded: Vec<Vec<f32>> = images.par_iter().map(|i| Ok(preprocess.apply(&i.source_image()?))).collect::<Result<_>>()?;
        let size = i64::from(preprocess.image_size);
        Ok(Tensor::from_slice(&decoded.concat()).view([images.len() as i64, 3, size, size]))
    }

    /// L2-normalised image embeddings of preprocessed pixels `[n, 3, size, size]`: `[n,
    /// embed_dim]` float32 on the CPU.
    pub fn encode_pixels(&self, pixels: &Tensor) -> Result<Tensor> {
        features(&self.loaded.model, pixels, Tower::Image, self.device(), self.precision)
    }

    /// L2-normalised embeddings of texts, one row each.
    pub fn encode_texts(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        rows(&self.encode_texts_tensor(texts)?)
    }

    /// [`Clip::encode_texts`] as a `[n, embed_dim]` float32 tensor on the CPU.
    pub fn encode_texts_tensor(&self, texts: &[&str]) -> Result<Tensor> {
        let ids = clip_eval::zeroshot::token_ids(&self.loaded.model, &self.tokenizer, texts, Device::Cpu)?;
        features(&self.loaded.model, &ids, Tower::Text, self.device(), self.precision)
    }

    /// A zero-shot classifier over `labels`: each label's prompts are `templates` with the label
    /// put in place of `{}` (or `{c}`), embedded and averaged (open_clip's
    /// `build_zero_shot_classifier`). `&["a photo of a {}."]` is the paper's usual prompt.
    pub fn zero_shot(&self, labels: &[&str], templates: &[&str]) -> Result<ZeroShot<'_>> {
        if labels.is_empty() || labels.iter().any(|l| l.trim().is_empty()) {
            return Err(Error::Input(format!("zero-shot labels must be non-empty, got {labels:?}")));
        }
        if let Some(bad) = templates.iter().find(|t| !t.contains("{}") && !t.contains("{c}")) {
            return Err(Error::Input(format!("template {bad:?} has no {{}} (or {{c}}) where the label goes")));
        }
        let classes: Vec<Vec<String>> = labels.iter().map(|l| vec![(*l).to_owned()]).collect();
        let _guard = tch::no_grad_guard();
        let classifier = clip_eval::zeroshot::classifier(&self.loaded.model, &self.tokenizer, &classes, templates, self.device())?;
        Ok(ZeroShot { clip: self, labels: labels.iter().map(|l| (*l).to_owned()).collect(), classifier })
    }
}

/// Which tower [`features`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tower {
    /// Preprocessed pixels `[n, 3, size, size]`.
    Image,
    /// Token ids `[n, context_length]`.
    Text,
}

/// L2-normalised features of `input` through one tower of `model` on `device`, under autocast
/// at `precision`, without gradient: `[n, embed_dim]`, contiguous float32 on the CPU.
pub fn features(model: &ClipModel, input: &Tensor, tower: Tower, device: Device, precision: Precision) -> Result<Tensor> {
    let _guard = tch::no_grad_guard();
    let input = input.to_device(device);
    let features = autocast(device, precision, || {
        let f = match tower {
            Tower::Image => model.encode_image(&input),
            Tower::Text => model.encode_text(&input),
        };
        l2_normalize(&f.to_kind(Kind::Float))
    })?;
    Ok(features.to_device(Device::Cpu).contiguous())
}

/// Class probabilities of normalised image `features` `[n, embed_dim]` against a zero-shot
/// `classifier` `[embed_dim, classes]`: `softmax(exp(logit_scale) · cosine)` over the classes,
/// or for a SigLIP model (one with a `logit_bias`) each class's own `sigmoid(exp(logit_scale) ·
/// cosine + logit_bias)`, as it was trained (these need not sum to 1). `[n, classes]` float32 on
/// the classifier's device.
pub fn probabilities(model: &ClipModel, features: &Tensor, classifier: &Tensor) -> Tensor {
    let _guard = tch::no_grad_guard();
    let scale = model.logit_scale().exp().to_kind(Kind::Float).to_device(classifier.device());
    let logits = features.to_device(classifier.device()).to_kind(Kind::Float).matmul(classifier) * scale;
    match model.logit_bias() {
        Some(bias) => (logits + bias.to_kind(Kind::Float).to_device(classifier.device())).sigmoid(),
        None => logits.softmax(-1, Kind::Float),
    }
}

/// Reads and decodes an image file (JPEG, PNG, WebP, GIF's first frame) as the preprocessing
/// takes it; the error names the file.
pub fn read_image(path: &Path) -> Result<SourceImage> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_owned(), source })?;
    SourceImage::decode(&bytes).map_err(|source| Error::Image { path: path.to_owned(), source: Box::new(source) })
}

/// What [`Clip::encode_images`] takes: image files by path, or images already decoded.
pub trait ImageInput {
    /// The image as the preprocessing takes it.
    fn source_image(&self) -> Result<SourceImage>;
}

impl ImageInput for Path {
    fn source_image(&self) -> Result<SourceImage> {
        read_image(self)
    }
}

impl ImageInput for PathBuf {
    fn source_image(&self) -> Result<SourceImage> {
        read_image(self)
    }
}

impl ImageInput for str {
    fn source_image(&self) -> Result<SourceImage> {
        read_image(Path::new(self))
    }
}

impl ImageInput for String {
    fn source_image(&self) -> Result<SourceImage> {
        read_image(Path::new(self))
    }
}

impl ImageInput for image::DynamicImage {
    fn source_image(&self) -> Result<SourceImage> {
        Ok(SourceImage::from(self.clone()))
    }
}

impl ImageInput for SourceImage {
    fn source_image(&self) -> Result<SourceImage> {
        Ok(self.clone())
    }
}

impl<T: ImageInput + ?Sized> ImageInput for &T {
    fn source_image(&self) -> Result<SourceImage> {
        (**self).source_image()
    }
}

/// A zero-shot classifier built by [`Clip::zero_shot`].
pub struct ZeroShot<'a> {
    clip: &'a Clip,
    labels: Vec<String>,
    classifier: Tensor,
}

/// One image's zero-shot result.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The most probable label.
    pub label: String,
    /// Its probability.
    pub probability: f32,
    /// Every label's probability, in the order the labels were given.
    pub probabilities: Vec<f32>,
}

impl ZeroShot<'_> {
    /// The labels, in order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The classifier: one normalised column per label, `[embed_dim, labels]`.
    pub fn classifier(&self) -> &Tensor {
        &self.classifier
    }

    /// Each image's most probable label and every label's probability ([`probabilities`]).
    pub fn classify<I: ImageInput + Sync>(&self, images: &[I]) -> Result<Vec<Prediction>> {
        let features = self.clip.encode_images_tensor(images)?;
        let probabilities = rows(&self.probabilities(&features))?;
        Ok(probabilities
            .into_iter()
            .map(|row| {
                let best = (0..row.len()).max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a))).unwrap_or_default();
                Prediction { label: self.labels[best].clone(), probability: row[best], probabilities: row }
            })
            .collect())
    }

    /// Label probabilities of normalised image features `[n, embed_dim]`: `[n, labels]` on the
    /// CPU.
    pub fn probabilities(&self, features: &Tensor) -> Tensor {
        probabilities(self.clip.model(), features, &self.classifier).to_device(Device::Cpu)
    }
}

/// The rows of a `[n, d]` float tensor.
fn rows(matrix: &Tensor) -> Result<Vec<Vec<f32>>> {
    let size = matrix.size();
    let width = size.get(1).copied().unwrap_or(0) as usize;
    let flat = Vec::<f32>::try_from(matrix.to_kind(Kind::Float).contiguous().view([-1]))?;
    Ok(if width == 0 { vec![Vec::new(); size[0] as usize] } else { flat.chunks(width).map(<[f32]>::to_vec).collect() })
}
