//! The training configuration: TOML, every key optional with a documented default
//! (`docs/config.md`), unknown keys and bad values refused with the key (and, in a file, the line),
//! `--set key=value` overrides applied on top, then validated once.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Everything a run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Seed of initialisation, data order and augmentation.
    pub seed: u64,
    /// The run folder.
    pub output: PathBuf,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// `fp32`, or `bf16` autocast (CUDA).
    pub precision: String,
    /// Where metrics go besides `metrics.jsonl` (open_clip's `--report-to`): `tensorboard` writes
    /// event files under `OUTPUT/tensorboard/`.
    pub report_to: Vec<String>,
    /// The model.
    pub model: ModelSection,
    /// The data.
    pub data: DataSection,
    /// The optimiser and schedule.
    pub optim: OptimSection,
    /// The loss.
    pub loss: LossSection,
    /// Checkpoints.
    pub checkpoint: CheckpointSection,
    /// Evaluation during training.
    pub eval: EvalSection,
    /// Guards against divergence.
    pub stability: StabilitySection,
    /// Data-parallel gradient averaging.
    pub dist: DistSection,
}

/// `[model]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    /// A preset name (`tiny`, `ViT-B-32`, `RN50`, …), used when `config` is empty; also
    /// `hf-hub:ORG/NAME` or `local-dir:DIR` (config, preprocessing and weights from there).
    pub preset: String,
    /// A pretrained tag of `preset` (`openai`, `laion2b_s34b_b79k`, …) to fine-tune from: its
    /// weights, activation and preprocessing. Empty: none.
    pub pretrained: String,
    /// An open_clip model-config JSON file.
    pub config: String,
    /// Initial weights (OpenAI `.pt`, open_clip or Hugging Face safetensors); empty: random init.
    pub weights: String,
    /// Freeze the image tower (no gradient, no update).
    pub lock_image: bool,
    /// Patch dropout in training (FLIP; open_clip's `force_patch_dropout`): the fraction of a ViT's
    /// patch tokens each image drops, in `[0, 1)`, overriding the model config's
    /// `vision_cfg.patch_dropout`. Unset: the model config's (0 in every preset). Evaluation never
    /// drops. A ModifiedResNet refuses a non-zero value.
    pub patch_dropout: Option<f64>,
    /// Gradient checkpointing (open_clip's `--grad-checkpointing`): each residual block of both
    /// towers (each stage of a ModifiedResNet) keeps only its input in the forward pass and is
    /// computed again in the backward, for less memory at the cost of one more forward pass.
    /// The same loss and gradients; evaluation never checkpoints.
    pub grad_checkpointing: bool,
}

impl ModelSection {
    /// The (model, tag) to resolve through the hub cache, when `[model]` names pretrained weights:
    /// a tag, or an `hf-hub:` / `local-dir:` preset. `None`: a preset or config with
    /// `model.weights` or random initialisation.
    pub fn pretrained_source(&self) -> Option<(&str, Option<&str>)> {
        let tag = Some(self.pretrained.as_str()).filter(|t| !t.is_empty());
        (tag.is_some() || clip_pretrained::ModelName::parse(&self.preset).brings_weights()).then_some((self.preset.as_str(), tag))
    }
}

/// `[data]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSection {
    /// `builtin`, `csv:PATH`, `wds:PATTERN`.
    pub source: String,
    /// Samples per step on each rank.
    pub batch_size: usize,
    /// Decode threads per rank.
    pub workers: usize,
    /// Shard readers per rank (WebDataset).
    pub shard_readers: usize,
    /// Samples per epoch over all ranks (the built-in dataset's epoch, or resampled shards');
    /// 0: the whole source.
    pub samples_per_epoch: u64,
    /// Draw shards with replacement.
    pub resampled: bool,
    /// Samples per shuffle window (WebDataset).
    pub shuffle_window: usize,
    /// Fail an epoch when more than this fraction of what it read was skipped.
    pub max_skip_fraction: f64,
    /// CSV separator (one character); empty: `,` for `.csv`, tab otherwise.
    pub csv_separator: String,
    /// CSV column of image paths.
    pub csv_img_key: String,
    /// CSV column of captions.
    pub csv_caption_key: String,
    /// Decode training JPEGs at the reduced DCT scale the random crop allows (1/2, 1/4, 1/8), as
    /// PIL's `draft` and DALI do; false: every JPEG in full (slower, pixels within about 1 level).
    pub scaled_decode: bool,
}

/// `[optim]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimSection {
    /// Peak learning rate.
    pub lr: f64,
    /// AdamW β₁.
    pub beta1: f64,
    /// AdamW β₂.
    pub beta2: f64,
    /// AdamW ε.
    pub eps: f64,
    /// Decoupled weight decay, applied to weight matrices only (not to gains, biases,
    /// embeddings or `logit_scale`, as open_clip groups them).
    pub weight_decay: f64,
    /// Linear warm-up steps.
    pub warmup: u64,
    /// `cosine`, `const` or `const-cooldown`.
    pub schedule: String,
    /// Steps of linear cool-down to zero at the end (`const-cooldown`).
    pub cooldown: u64,
    /// Epochs to train.
    pub epochs: u64,
    /// Clip the global gradient norm to this (0: off).
    pub grad_clip: f64,
    /// Loader batches per optimiser step (open_clip's `--accum-freq`): features of the whole
    /// group are computed first without gradient, then each batch's again with gradient beside
    /// the others' cached ones, so the contrastive loss always sees the whole group.
    pub accum_freq: u64,
}

/// `[loss]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossSection {
    /// `clip` (contrastive) or `siglip` (sigmoid, with a learnable bias).
    pub kind: String,
    /// Score only this rank's rows against all gathered features.
    pub local_loss: bool,
    /// Gather features with gradient (open_clip's `--gather-with-grad`).
    pub gather_with_grad: bool,
}

/// `[checkpoint]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointSection {
    /// Save every this many steps (and at the end); 0: only at the end.
    pub every: u64,
    /// Keep this many most recent checkpoints (the best by evaluation is kept too).
    pub keep: usize,
}

/// `[eval]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalSection {
    /// Zero-shot evaluation every this many steps (and at the end); 0: only at the end.
    pub every: u64,
    /// Built-in tasks to evaluate: `shape`, `colour`, `count`, `position`.
    pub tasks: Vec<String>,
    /// Held-out samples per task.
    pub samples: u64,
}

/// `[stability]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StabilitySection {
    /// Stop after this many consecutive steps with a non-finite loss or gradient.
    pub max_nonfinite: u32,
    /// Steps whose loss is made NaN on purpose, to exercise the guard (tests, drills).
    pub inject_nonfinite: Vec<u64>,
}

/// `[dist]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistSection {
    /// With several ranks: average each gradient bucket during the backward pass, as soon as its
    /// gradients are final (torch's DDP), instead of all of them after it. The same bits either way.
    pub overlap: bool,
    /// Most megabytes of gradient per bucket (torch DDP's `bucket_cap_mb`).
    pub bucket_mb: f64,
}

impl DistSection {
    /// Most elements per bucket, for gradients of `element_bytes` bytes each.
    pub fn bucket_elements(&self, element_bytes: usize) -> i64 {
        ((self.bucket_mb * (1u64 << 20) as f64 / element_bytes as f64) as i64).max(1)
    }
}

impl Default for DistSection {
    fn default() -> Self {
        Self { overlap: true, bucket_mb: 32.0 }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            output: PathBuf::from("runs/default"),
            device: "cpu".into(),
            precision: "fp32".into(),
            report_to: Vec::new(),
            model: ModelSection::default(),
            data: DataSection::default(),
            optim: OptimSection::default(),
            loss: LossSection::default(),
            checkpoint: CheckpointSection::default(),
            eval: EvalSection::default(),
            stability: StabilitySection::default(),
            dist: DistSection::default(),
        }
    }
}

impl Default for ModelSection {
    fn default() -> Self {
        Self {
            preset: "tiny".into(),
            config: String::new(),
            pretrained: String::new(),
            weights: String::new(),
            lock_image: false,
            patch_dropout: None,
            grad_checkpointing: false,
        }
    }
}

impl Default for DataSection {
    fn default() -> Self {
        Self {
            source: "builtin".into(),
            batch_size: 64,
            workers: 1,
            shard_readers: 1,
            samples_per_epoch: 14_400,
            resampled: false,
            shuffle_window: 1000,
            max_skip_fraction: 0.1,
            csv_separator: String::new(),
            csv_img_key: "filepath".into(),
            csv_caption_key: "title".into(),
            scaled_decode: true,
        }
    }
}

impl Default for OptimSection {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.98,
            eps: 1e-6,
            weight_decay: 0.2,
            warmup: 50,
            schedule: "cosine".into(),
            cooldown: 0,
            epochs: 4,
            grad_clip: 0.0,
            accum_freq: 1,
        }
    }
}

impl Default for LossSection {
    fn default() -> Self {
        Self { kind: "clip".into(), local_loss: false, gather_with_grad: true }
    }
}

impl Default for CheckpointSection {
    fn default() -> Self {
        Self { every: 100, keep: 2 }
    }
}

impl Default for EvalSection {
    fn default() -> Self {
        Self { every: 0, tasks: ["shape", "colour", "count", "position"].map(String::from).to_vec(), samples: 500 }
    }
}

impl Default for StabilitySection {
    fn default() -> Self {
        Self { max_nonfinite: 5, inject_nonfinite: Vec::new() }
    }
}

/// Sets `key` (dotted: `optim.lr`) in a TOML table to `value`, read as a TOML value when it is one
/// (`3`, `true`, `[1, 2]`, `"x"`) and as a string otherwise.
fn set(table: &mut toml::Table, key: &str, value: &str) -> Result<()> {
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().filter(|k| !k.is_empty()).ok_or_else(|| Error::Config(format!("--set {key}: empty key")))?;
    let mut current = table;
    for part in parts {
        current = current
            .entry(part)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| Error::Config(format!("--set {key}: `{part}` is not a section")))?;
    }
    current.insert(last.to_owned(), parsed);
    Ok(())
}

impl TrainConfig {
    /// Reads `file` (if any), applies `overrides` (`key=value`), validates.
    pub fn load(file: Option<&Path>, overrides: &[String]) -> Result<Self> {
        let text = match file {
            Some(path) => std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?,
            None => String::new(),
        };
        let name = file.map_or_else(|| "the configuration".to_owned(), |p| p.display().to_string());
        // Parsed from the text first, so that errors in the file carry their line.
        toml::from_str::<Self>(&text).map_err(|e| Error::Config(format!("{name}: {e}")))?;
        let mut table: toml::Table = toml::from_str(&text).map_err(|e| Error::Config(format!("{name}: {e}")))?;
        for item in overrides {
            let (key, value) =
                item.split_once('=').ok_or_else(|| Error::Config(format!("--set {item}: expected key=value")))?;
            set(&mut table, key.trim(), value.trim())?;
        }
        let config: Self = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| Error::Config(format!("after --set: {}", e.message())))?;
        config.validate()?;
        Ok(config)
    }

    /// Whether `report_to` names TensorBoard.
    pub fn reports_to_tensorboard(&self) -> bool {
        self.report_to.iter().any(|t| t == "tensorboard")
    }

    /// The resolved configuration as TOML (written into the run folder).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    fn validate(&self) -> Result<()> {
        let bad = |key: &str, why: String| Err(Error::Config(format!("{key}: {why}")));
        let o = &self.optim;
        if !(o.lr.is_finite() && o.lr > 0.0) {
            return bad("optim.lr", format!("must be positive, got {}", o.lr));
        }
        for (key, beta) in [("optim.beta1", o.beta1), ("optim.beta2", o.beta2)] {
            if !(0.0..1.0).contains(&beta) {
                return bad(key, format!("must be in [0, 1), got {beta}"));
            }
        }
        if o.accum_freq == 0 {
            return bad("optim.accum_freq", "must be at least 1".into());
        }
        if o.eps.is_nan() || o.eps <= 0.0 || o.weight_decay < 0.0 || o.grad_clip < 0.0 {
            return bad("optim", "eps must be positive, weight_decay and grad_clip not negative".into());
        }
        if !["cosine", "const", "const-cooldown"].contains(&o.schedule.as_str()) {
            return bad("optim.schedule", format!("`{}` is not cosine, const or const-cooldown", o.schedule));
        }
        if o.epochs == 0 {
            return bad("optim.epochs", "must be at least 1".into());
        }
        if !["clip", "siglip"].contains(&self.loss.kind.as_str()) {
            return bad("loss.kind", format!("`{}` is not clip or siglip", self.loss.kind));
        }
        for target in &self.report_to {
            if target != "tensorboard" {
                return bad("report_to", format!("`{target}` is not tensorboard (the only one clip-rs writes; wandb is not supported)"));
            }
        }
        if !["fp32", "bf16"].contains(&self.precision.as_str()) {
            return bad("precision", format!("`{}` is not fp32 or bf16", self.precision));
        }
        let d = &self.data;
        if d.batch_size == 0 || d.workers == 0 || d.shard_readers == 0 || d.shuffle_window == 0 {
            return bad("data", "batch_size, workers, shard_readers and shuffle_window must be at least 1".into());
        }
        if d.csv_separator.chars().count() > 1 {
            return bad("data.csv_separator", format!("`{}` is not one character", d.csv_separator));
        }
        for task in &self.eval.tasks {
            if !["shape", "colour", "count", "position"].contains(&task.as_str()) {
                return bad("eval.tasks", format!("`{task}` is not shape, colour, count or position"));
            }
        }
        if let Some(p) = self.model.patch_dropout
            && !(0.0..1.0).contains(&p)
        {
            return bad("model.patch_dropout", format!("must be in [0, 1), got {p}"));
        }
        if !(self.dist.bucket_mb.is_finite() && self.dist.bucket_mb > 0.0) {
            return bad("dist.bucket_mb", format!("must be positive, got {}", self.dist.bucket_mb));
        }
        if self.model.config.is_empty() && self.model.preset.is_empty() {
            return bad("model", "give model.preset or model.config".into());
        }
        if !self.model.pretrained.is_empty() && !self.model.config.is_empty() {
            return bad("model.pretrained", "a tag names its own architecture: give model.preset, not model.config".into());
        }
        Ok(())
    }
}
