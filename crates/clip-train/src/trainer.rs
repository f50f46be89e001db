//! The training loop: data → forward (autocast) → contrastive loss over the global batch →
//! backward, gradients averaged across ranks in buckets during it (or after) → non-finite guard →
//! clipping → AdamW →
//! `logit_scale` clamp; metrics, evaluation and checkpoints on schedule. Rank 0 writes the run
//! folder; every rank resumes from the same checkpoint. Nothing here prints: progress goes to the
//! caller as [`Event`]s.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clip_data::builtin::BuiltinTask;
use clip_data::preprocess::PreprocessConfig;
use clip_data::source::{CsvOptions, Source, SourceOptions};
use clip_data::transform::TrainTransform;
use clip_data::{ImageTransform, Loader, LoaderConfig, Position, TextMode};
use clip_dist::{Backend, Dist, GradReducer, ReduceOp};
use clip_model::{ClipConfig, ClipModel};
use clip_tensor::device::DeviceSpec;
use clip_tensor::precision::{Precision, autocast};
use clip_tokenizer::TextTokenizer;
use serde::Serialize;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::checkpoint::{self, TrainState};
use crate::config::TrainConfig;
use crate::optim::{AdamW, learning_rate};
use crate::{Error, Result};

/// One step's numbers, as written to `metrics.jsonl`.
#[derive(Debug, Clone, Serialize)]
pub struct StepMetrics {
    /// Steps done (1-based).
    pub step: u64,
    /// Total steps of the run.
    pub total_steps: u64,
    /// The epoch of this step.
    pub epoch: u64,
    /// The loss (rank 0's, the global-batch loss).
    pub loss: f64,
    /// The learning rate used.
    pub lr: f64,
    /// `logit_scale.exp()` after the step.
    pub logit_scale: f64,
    /// Samples per second over all ranks, this step.
    pub samples_per_s: f64,
    /// Samples skipped so far (rank 0's loader).
    pub skipped: u64,
    /// Steps skipped so far for a non-finite loss or gradient.
    pub nonfinite_steps: u64,
    /// Whether this step was skipped.
    pub skipped_step: bool,
    /// Seconds from the end of the backward pass until the last gradient bucket was averaged
    /// over ranks: the communication the backward pass did not hide (0 with one rank).
    pub exposed_comm_s: f64,
}

/// Zero-shot top-1 accuracy per built-in task.
#[derive(Debug, Clone, Serialize)]
pub struct EvalResult {
    /// After this step.
    pub step: u64,
    /// Task name → accuracy.
    pub top1: BTreeMap<String, f64>,
}

/// What the caller hears about.
#[derive(Debug)]
pub enum Event<'a> {
    /// Training starts (or resumes at `step`).
    Start {
        /// Steps already done.
        step: u64,
        /// Steps in all.
        total_steps: u64,
        /// Trainable parameters.
        parameters: i64,
        /// Ranks.
        world_size: usize,
    },
    /// A step finished.
    Step(&'a StepMetrics),
    /// An evaluation finished.
    Eval(&'a EvalResult),
    /// A checkpoint was written.
    Checkpoint(&'a Path),
    /// A checkpoint could not be written; the previous one is intact and training goes on.
    CheckpointFailed(&'a Error),
}

/// The end of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Steps done.
    pub steps: u64,
    /// Samples seen over all ranks.
    pub samples: u64,
    /// Steps done by this process (fewer than `steps` after a resume).
    pub steps_this_process: u64,
    /// Seconds of training in this process (evaluation and checkpoints included).
    pub seconds: f64,
    /// Mean samples per second in this process.
    pub samples_per_s: f64,
    /// The last loss.
    pub final_loss: f64,
    /// The final zero-shot evaluation.
    pub eval: Option<EvalResult>,
    /// The best mean zero-shot top-1 of the run (a fraction) and its step.
    pub best_eval: Option<(f64, u64)>,
    /// The last checkpoint written.
    pub checkpoint: Option<PathBuf>,
    /// Skipped samples by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Steps skipped for a non-finite loss or gradient.
    pub nonfinite_steps: u64,
    /// The run folder.
    pub output: PathBuf,
}

/// Everything one rank holds while training.
struct Run {
    config: TrainConfig,
    /// The run folder's `open_clip_config.json` (architecture and preprocessing).
    open_clip_config: String,
    dist: Dist,
    device: Device,
    precision: Precision,
    vs: VarStore,
    model: ClipModel,
    optim: AdamW,
    /// Averages the gradients over ranks, during the last backward pass of a step (`dist.overlap`)
    /// or after it.
    reducer: GradReducer,
    loader: Loader,
    /// The model's tokenizer (the loader's captions, the evaluation's prompts).
    tokenizer: TextTokenizer,
    state: TrainState,
    position: Position,
    total_steps: u64,
    consecutive_nonfinite: u32,
    last_eval: Option<EvalResult>,
    last_checkpoint: Option<PathBuf>,
    /// Rank 0's TensorBoard event file, when `report_to` names it.
    tensorboard: Option<crate::tensorboard::EventWriter>,
    /// Whether rank 0's last checkpoint was written (other ranks keep `true`).
    checkpoint_ok: bool,
}

/// One loader batch of a step: images, token ids, and the patches each image keeps (patch
/// dropout; `None`: all).
type Group = (Tensor, Tensor, Option<Tensor>);

/// The architecture, its preprocessing, the initial weights file and the tokenizer.
struct ModelChoice {
    config: ClipConfig,
    preprocess: PreprocessConfig,
    weights: Option<PathBuf>,
    tokenizer: TextTokenizer,
    /// What the caller should tell the user (a tag overriding the name's activation, …).
    notes: Vec<String>,
}

/// Fetches through `hub` what `[model]` names and the trainer reads from the hub cache alone:
/// pretrained weights and the text tower's Hugging Face tokenizer. Gives the resolver's notes.
/// Every rank may call it: the cache's lock has one of them download.
pub fn fetch_model(config: &TrainConfig, hub: &clip_hub::Hub, progress: &mut dyn FnMut(clip_hub::Progress)) -> Result<Vec<String>> {
    Ok(model_choice(config, hub, progress)?.notes)
}

/// What `[model]` names. A pretrained tag (or an `hf-hub:` / `local-dir:` preset) is resolved from
/// the hub cache alone: the trainer never downloads; `clip train` (or `clip pull`) fetches first.
/// So is a Hugging Face tokenizer the text tower names (`hf_tokenizer_name`), unless it is a folder.
/// A SigLIP run gets open_clip's `--siglip` initial scale (ln 10) and a learnable bias (−10)
/// unless the config sets them.
fn model_choice(config: &TrainConfig, hub: &clip_hub::Hub, progress: &mut dyn FnMut(clip_hub::Progress)) -> Result<ModelChoice> {
    let m = &config.model;
    let fetch_first = if hub.config().offline { " (the trainer reads the hub cache only; `clip train` fetches)" } else { "" };
    let (model_config, preprocess, weights, notes) = if let Some((model, tag)) = m.pretrained_source() {
        let resolved =
            clip_pretrained::resolve(model, tag, hub, progress).map_err(|e| Error::Config(format!("model.pretrained: {e}{fetch_first}")))?;
        (resolved.config, resolved.preprocess, resolved.weights, resolved.notes)
    } else {
        let config = if m.config.is_empty() {
            ClipConfig::named(&m.preset)?
        } else {
            let path = Path::new(&m.config);
            let json = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            ClipConfig::from_json(&json)?
        };
        let preprocess = PreprocessConfig::openai(config.vision.image_size() as u32);
        (config, preprocess, None, Vec::new())
    };
    let tokenizer = clip_pretrained::tokenizer(&m.preset, &model_config.text, hub, progress)
        .map_err(|e| Error::Config(format!("model: the text tower's tokenizer: {e}{fetch_first}")))?;
    clip_eval::zeroshot::check_tokenizer(&model_config.text, &tokenizer).map_err(|e| Error::Config(format!("model: {e}")))?;
    let mut choice = ModelChoice { config: model_config, preprocess, weights, tokenizer, notes };
    if !m.weights.is_empty() {
        if choice.weights.is_some() {
            return Err(Error::Config("model.weights and model.pretrained both name initial weights: keep one".into()));
        }
        choice.weights = Some(PathBuf::from(&m.weights));
    }
    if let Some(p) = m.patch_dropout {
        choice.config.vision.set_patch_dropout(p).map_err(|e| Error::Config(format!("model.patch_dropout: {e}")))?;
    }
    if config.loss.kind == "siglip" {
        choice.config.init_logit_scale.get_or_insert(clip_loss::SIGLIP_INIT_LOGIT_SCALE);
        choice.config.init_logit_bias.get_or_insert(clip_loss::SIGLIP_INIT_LOGIT_BIAS);
    }
    Ok(choice)
}

/// The loader for this rank, and the steps an epoch makes.
fn loader(config: &TrainConfig, model: &ClipConfig, preprocess: &PreprocessConfig, tokenizer: &TextTokenizer, dist: &Dist) -> Result<(Loader, u64)> {
    let d = &config.data;
    let image_size = model.vision.image_size() as u32;
    let options = SourceOptions {
        csv: CsvOptions {
            separator: d.csv_separator.bytes().next(),
            img_key: d.csv_img_key.clone(),
            caption_key: d.csv_caption_key.clone(),
        },
        builtin_seed: config.seed,
        builtin_samples: d.samples_per_epoch,
        builtin_image_size: image_size,
    };
    let source = Source::parse(&d.source, &options)?;
    let builtin = d.source == "builtin";
    let per_epoch = match &source {
        Source::Indexed(s) if builtin || d.samples_per_epoch == 0 => s.len(),
        Source::Indexed(s) => d.samples_per_epoch.min(s.len()),
        Source::Shards(_) if d.samples_per_epoch == 0 => {
            return Err(Error::Config("data.samples_per_epoch: needed for WebDataset sources".into()));
        }
        Source::Shards(_) => d.samples_per_epoch,
    };
    let context_length = model.text.context_length as usize;
    let mut lc = LoaderConfig::new(
        d.batch_size,
        // Built-in scenes are rendered at the input size and never repeat: a crop would only
        // stretch their shapes and move the positions their captions state.
        // The weights' mean and std, as open_clip's training transform takes them.
        if builtin {
            ImageTransform::Eval(PreprocessConfig { image_size, ..preprocess.clone() })
        } else {
            ImageTransform::Train(TrainTransform {
                mean: preprocess.mean,
                std: preprocess.std,
                scaled_decode: d.scaled_decode,
                ..TrainTransform::open_clip(image_size)
            })
        },
        TextMode::Tokens { context_length },
    );
    lc.tokenizer = tokenizer.clone();
    lc.threads = d.workers;
    lc.seed = config.seed;
    lc.rank = dist.rank;
    lc.world_size = dist.world_size;
    lc.workers = d.shard_readers;
    lc.shuffle_window = d.shuffle_window;
    lc.resampled = d.resampled;
    lc.samples_per_epoch = matches!(source, Source::Shards(_)).then_some(per_epoch);
    lc.max_skip_fraction = d.max_skip_fraction;
    let steps = per_epoch / (d.batch_size * dist.world_size) as u64 / config.optim.accum_freq;
    if steps == 0 {
        return Err(Error::Config(format!(
            "data: {per_epoch} samples per epoch make no step of {} batches of {} on {} ranks",
            config.optim.accum_freq, d.batch_size, dist.world_size
        )));
    }
    Ok((Loader::new(source, lc)?, steps))
}

/// The trainable parameters in the order their gradients are expected to become final in a
/// backward pass: the reverse of their creation, which follows the forward pass tower by tower
/// (torch's DDP makes the same guess from `model.parameters()`); any not found, last. It sets
/// when the reducer launches each bucket (contiguous spans of AdamW's gradient buffers), never
/// what a bucket holds.
fn backward_order(vs: &VarStore, optim: &AdamW) -> Vec<Tensor> {
    let created: HashMap<usize, usize> = vs.trainable_variables().iter().enumerate().map(|(i, t)| (t.data_ptr() as usize, i)).collect();
    let mut params: Vec<(Option<usize>, Tensor)> =
        optim.params().map(|(_, t)| (created.get(&(t.data_ptr() as usize)).copied(), t.shallow_clone())).collect();
    params.sort_by_key(|(created, _)| std::cmp::Reverse(*created)); // Stable: the rest in name order.
    params.into_iter().map(|(_, t)| t).collect()
}

/// Trains as `config` says, resuming from `resume` (`latest` or a checkpoint folder) if given.
pub fn train(config: &TrainConfig, resume: Option<&str>, mut on_event: impl FnMut(Event<'_>)) -> Result<Summary> {
    let device = config.device.parse::<DeviceSpec>()?.resolve()?;
    let dist = Dist::from_env(if device.is_cuda() { Backend::Nccl } else { Backend::Gloo })?;
    let device = match device {
        Device::Cuda(_) => Device::Cuda(dist.local_rank),
        other => other,
    };
    let mut run = Run::new(config.clone(), dist, device, resume)?;
    run.train(&mut on_event)
}

impl Run {
    fn new(config: TrainConfig, dist: Dist, device: Device, resume: Option<&str>) -> Result<Self> {
        let precision: Precision = config.precision.parse()?;
        let hub = clip_hub::Hub::new(clip_hub::Cache::from_env(), clip_hub::HubConfig { offline: true, ..clip_hub::HubConfig::from_env() });
        let ModelChoice { config: model_config, preprocess, weights, tokenizer, .. } = model_choice(&config, &hub, &mut |_| {})?;
        clip_tensor::seed::seed_everything(config.seed);
        let vs = VarStore::new(device);
        let mut model = ClipModel::new(vs.root(), &model_config);
        model.set_grad_checkpointing(config.model.grad_checkpointing);
        if let Some(weights) = &weights {
            clip_model::weights::load_weights_for(&vs, &model_config, weights)?;
        }
        // Every rank starts from rank 0's weights, whatever its RNG did (in name order: the same
        // sequence of collectives on every rank).
        let variables: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
        for mut tensor in variables.into_values() {
            let _guard = tch::no_grad_guard();
            dist.broadcast_(&mut tensor, 0)?;
        }
        if config.model.lock_image {
            for (name, tensor) in vs.variables() {
                if name.starts_with("visual.") {
                    let _ = tensor.set_requires_grad(false);
                }
            }
        }
        let params: BTreeMap<String, Tensor> = vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        let optim = AdamW::new(params, &config.optim)?;
        let element_bytes = optim.params().next().map_or(4, |(_, t)| t.kind().elt_size_in_bytes());
        let reducer = dist.grad_reducer(&backward_order(&vs, &optim), config.dist.bucket_elements(element_bytes), config.dist.overlap)?;
        let (loader, steps_per_epoch) = loader(&config, &model_config, &preprocess, &tokenizer, &dist)?;
        let open_clip_config = clip_pretrained::open_clip_config_json(&model_config, &preprocess);
        let total_steps = steps_per_epoch * config.optim.epochs;
        let mut run = Self {
            config,
            dist,
            device,
            precision,
            vs,
            model,
            optim,
            reducer,
            loader,
            tokenizer,
            state: TrainState { model_json: model_config.to_json(), ..TrainState::default() },
            open_clip_config,
            position: Position::start(0),
            total_steps,
            consecutive_nonfinite: 0,
            last_eval: None,
            last_checkpoint: None,
            tensorboard: None,
            checkpoint_ok: true,
        };
        match resume {
            Some(spec) => run.restore(spec)?,
            None => run.fresh_output()?,
        }
        Ok(run)
    }

    fn output(&self) -> &Path {
        &self.config.output
    }

    fn is_main(&self) -> bool {
        self.dist.rank == 0
    }

    /// A new run: the folder must not hold another run's checkpoints.
    fn fresh_output(&mut self) -> Result<()> {
        if self.is_main() {
            if checkpoint::newest(self.output()).is_some() {
                return Err(Error::Config(format!(
                    "output: {} already holds a run; continue it with --resume latest, or give another \
                     folder (--set output=runs/NAME)",
                    self.output().display()
                )));
            }
            self.write_run_files()?;
            let metrics = self.output().join("metrics.jsonl");
            std::fs::write(&metrics, b"").map_err(|e| Error::io(&metrics, e))?;
            if self.config.reports_to_tensorboard() {
                self.tensorboard = Some(crate::tensorboard::EventWriter::create(&self.tensorboard_dir(), None)?);
            }
        }
        self.dist.barrier()?;
        Ok(())
    }

    fn write_run_files(&self) -> Result<()> {
        let out = self.output();
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        let toml = self.config.to_toml();
        clip_tensor::atomic::atomic_write(&out.join("config.toml"), |f| f.write_all(toml.as_bytes()))?;
        let json = self.state.model_json.clone();
        clip_tensor::atomic::atomic_write(&out.join("model.json"), |f| f.write_all(json.as_bytes()))?;
        // The same model as open_clip reads a folder (`local-dir:`), with the preprocessing it was
        // trained under, so re-evaluating a checkpoint never silently changes it.
        let open_clip = out.join("open_clip_config.json");
        clip_tensor::atomic::atomic_write(&open_clip, |f| f.write_all(self.open_clip_config.as_bytes()))?;
        Ok(())
    }

    /// Where TensorBoard event files go.
    fn tensorboard_dir(&self) -> PathBuf {
        self.output().join("tensorboard")
    }

    /// Loads a checkpoint: weights, optimiser, counters, this rank's data position; the metrics
    /// log and TensorBoard's event files are cut back to the checkpoint's step (a crash may have
    /// logged steps after it), and a new event file continues the curves from the next step.
    fn restore(&mut self, spec: &str) -> Result<()> {
        let dir = checkpoint::resolve(self.output(), spec)?;
        let (state, position) = checkpoint::read(&dir, self.dist.rank)?;
        if state.model_json != self.state.model_json {
            return Err(Error::Checkpoint(format!("{} is of a different model architecture", dir.display())));
        }
        clip_tensor::safetensors::load_strict(&self.vs, &dir.join("model.safetensors"))?;
        let optimizer = clip_tensor::safetensors::read_safetensors(&dir.join("optimizer.safetensors"))?;
        self.optim
            .load_state(optimizer.into_iter().map(|(n, t)| (n, t.to_device(self.device))).collect())
            .map_err(|e| Error::Checkpoint(format!("{}: optimizer state: {e}", dir.display())))?;
        if self.optim.steps() != state.step {
            return Err(Error::Checkpoint(format!("{}: optimizer at step {}, state at {}", dir.display(), self.optim.steps(), state.step)));
        }
        self.state = state;
        self.position = position;
        if self.is_main() {
            self.write_run_files()?;
            let path = self.output().join("metrics.jsonl");
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let mut kept = String::new();
            for line in text.lines() {
                let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else { continue };
                let step = value.get("step").and_then(serde_json::Value::as_u64).unwrap_or(u64::MAX);
                if step <= self.state.step {
                    kept.push_str(line);
                    kept.push('\n');
                }
            }
            clip_tensor::atomic::atomic_write(&path, |f| f.write_all(kept.as_bytes()))?;
            let events = self.tensorboard_dir();
            crate::tensorboard::truncate_after(&events, self.state.step)?;
            if self.config.reports_to_tensorboard() {
                self.tensorboard = Some(crate::tensorboard::EventWriter::create(&events, Some(self.state.step + 1))?);
            }
        }
        self.dist.barrier()?;
        Ok(())
    }

    /// Step scalars to TensorBoard under open_clip's tags where it has them (`train/loss`,
    /// `train/lr`, `train/scale`, `train/samples_per_second`), ours for the skip counters.
    fn log_step_scalars(&mut self, m: &StepMetrics) -> Result<()> {
        let Some(writer) = &mut self.tensorboard else { return Ok(()) };
        writer.scalars(
            m.step,
            &[
                ("train/loss", m.loss),
                ("train/lr", m.lr),
                ("train/scale", m.logit_scale),
                ("train/samples_per_second", m.samples_per_s),
                ("train/skipped_samples", m.skipped as f64),
                ("train/nonfinite_steps", m.nonfinite_steps as f64),
            ],
        )
    }

    fn log(&self, line: &impl Serialize) -> Result<()> {
        if !self.is_main() {
            return Ok(());
        }
        let path = self.output().join("metrics.jsonl");
        let mut text = serde_json::to_string(line).map_err(|e| Error::Checkpoint(e.to_string()))?;
        text.push('\n');
        let mut file = std::fs::OpenOptions::new().append(true).create(true).open(&path).map_err(|e| Error::io(&path, e))?;
        file.write_all(text.as_bytes()).map_err(|e| Error::io(&path, e))
    }

    /// Whether every rank says yes.
    fn all(&self, yes: bool) -> Result<bool> {
        if !self.dist.is_distributed() {
            return Ok(yes);
        }
        let mut flag = Tensor::from(i64::from(yes)).to_device(self.device);
        self.dist.all_reduce_(&mut flag, ReduceOp::Min)?;
        Ok(flag.int64_value(&[]) == 1)
    }

    /// Training mode for BatchNorm, unless the image tower is locked (its statistics stay as loaded,
    /// so a locked tower is left exactly as it was).
    fn trains_batch_norm(&self) -> bool {
        !self.config.model.lock_image
    }

    fn train(&mut self, on_event: &mut impl FnMut(Event<'_>)) -> Result<Summary> {
        self.model.set_training(self.trains_batch_norm());
        let parameters = self.optim.params().map(|(_, t)| t.numel() as i64).sum();
        on_event(Event::Start { step: self.state.step, total_steps: self.total_steps, parameters, world_size: self.dist.world_size });
        let started = Instant::now();
        let (samples_at_start, step_at_start) = (self.state.samples, self.state.step);
        let global_batch = (self.config.data.batch_size * self.dist.world_size) as u64 * self.config.optim.accum_freq;
        let (mut last_eval_step, mut last_checkpoint_step) = (None, None);
        let mut final_loss = f64::NAN;
        'epochs: while self.state.step < self.total_steps {
            let mut batches = self.loader.resume(&self.position)?;
            loop {
                if self.state.step >= self.total_steps {
                    break 'epochs;
                }
                let t0 = Instant::now();
                // One step's loader batches (`optim.accum_freq` of them); an epoch's last,
                // incomplete group is dropped, as a short batch is.
                let mut group = Vec::new();
                let mut position = None;
                for _ in 0..self.config.optim.accum_freq {
                    let next = batches.next();
                    if !self.all(next.is_some())? {
                        break;
                    }
                    let batch = next.expect("checked just above")?;
                    self.state.skipped.merge(&batch.skipped);
                    let kept = self.kept_patches(&batch.seeds);
                    group.push((batch.images, batch.texts.expect("captions are tokenised"), kept));
                    position = Some(batch.position);
                }
                let (true, Some(position)) = (group.len() as u64 == self.config.optim.accum_freq, position) else { break };
                let lr = learning_rate(&self.config.optim, self.state.step, self.total_steps);
                let (loss, skipped_step, exposed_comm_s) = self.step(&group, lr)?;
                self.state.step += 1;
                self.state.samples += global_batch;
                self.position = position;
                final_loss = loss;
                let metrics = StepMetrics {
                    step: self.state.step,
                    total_steps: self.total_steps,
                    epoch: self.position.epoch,
                    loss,
                    lr,
                    logit_scale: self.model.logit_scale().exp().double_value(&[]),
                    samples_per_s: global_batch as f64 / t0.elapsed().as_secs_f64(),
                    skipped: self.state.skipped.samples(),
                    nonfinite_steps: self.state.nonfinite_steps,
                    skipped_step,
                    exposed_comm_s,
                };
                self.log(&metrics)?;
                self.log_step_scalars(&metrics)?;
                on_event(Event::Step(&metrics));
                let step = self.state.step;
                let every = |n: u64| n > 0 && step.is_multiple_of(n);
                if every(self.config.eval.every) {
                    self.evaluate(on_event)?;
                    last_eval_step = Some(step);
                }
                if every(self.config.checkpoint.every) && self.checkpoint(on_event)? {
                    last_checkpoint_step = Some(step);
                }
            }
            if batches.tail().consumed > 0 {
                self.state.skipped.merge(&batches.tail().skipped);
            }
            self.position = Position::start(self.position.epoch + 1);
        }
        if last_eval_step != Some(self.state.step) {
            self.evaluate(on_event)?;
        }
        if last_checkpoint_step != Some(self.state.step) && !self.checkpoint(on_event)? {
            return Err(Error::Checkpoint(format!(
                "the final checkpoint (step {}) could not be written; the previous one is intact",
                self.state.step
            )));
        }
        let seconds = started.elapsed().as_secs_f64();
        let samples = self.state.samples - samples_at_start;
        let summary = Summary {
            steps: self.state.step,
            steps_this_process: self.state.step - step_at_start,
            samples: self.state.samples,
            seconds,
            samples_per_s: samples as f64 / seconds.max(1e-9),
            final_loss,
            eval: self.last_eval.clone(),
            best_eval: self.state.best,
            checkpoint: self.last_checkpoint.clone(),
            skipped: self.state.skipped.0.iter().map(|(r, n)| (r.name().to_owned(), *n)).collect(),
            nonfinite_steps: self.state.nonfinite_steps,
            output: self.output().to_path_buf(),
        };
        self.log(&serde_json::json!({
            "step": self.state.step,
            "end": true,
            "skipped": self.state.skipped.samples(),
            "skipped_by_reason": summary.skipped,
            "nonfinite_steps": self.state.nonfinite_steps,
        }))?;
        if self.is_main() {
            let json = serde_json::to_vec_pretty(&summary).map_err(|e| Error::Checkpoint(e.to_string()))?;
            clip_tensor::atomic::atomic_write(&self.output().join("summary.json"), |f| f.write_all(&json))?;
        }
        Ok(summary)
    }

    /// With patch dropout on, the patches each image of a batch keeps, drawn from the loader's
    /// per-sample seeds (so a resumed run and any number of ranks draw the same).
    fn kept_patches(&self, seeds: &[u64]) -> Option<Tensor> {
        let vision = &self.model.config.vision;
        let (prob, patches) = (vision.patch_dropout(), vision.patch_tokens()?);
        (prob > 0.0).then(|| clip_model::patch_dropout::draw_kept(seeds, patches, prob))
    }

    /// Features of one batch as the loss takes them (float32), and the logit scale; the image
    /// tower on the `kept` patches only, with patch dropout.
    fn features(&self, images: &Tensor, texts: &Tensor, kept: Option<&Tensor>) -> Result<(Tensor, Tensor, Tensor)> {
        Ok(autocast(self.device, self.precision, || {
            let out = self.model.forward_with(images, texts, kept);
            (out.image_features.to_kind(Kind::Float), out.text_features.to_kind(Kind::Float), out.logit_scale.to_kind(Kind::Float))
        })?)
    }

    /// The gradient of the loss over `batches` taken as one contrastive batch, accumulated in
    /// the parameters' `.grad`; returns the loss. One batch: forward and backward. Several
    /// (open_clip's feature caching): every batch's features without gradient first, then each
    /// batch's with gradient beside the others' cached ones, one backward each. Each pass
    /// differentiates the same whole-group loss through its own batch alone, so the sum is the
    /// whole-group gradient; the logit scale and bias take theirs from the first pass only
    /// (open_clip counts them once per pass, which Adam's scale invariance hides). The reducer is
    /// armed for the last pass: with overlap, it averages each gradient bucket during that pass,
    /// as soon as the bucket's gradients are final.
    fn accumulate(&self, batches: &[Group]) -> Result<Tensor> {
        let inject = self.config.stability.inject_nonfinite.contains(&(self.state.step + 1));
        let cached: Vec<(Tensor, Tensor)> = if batches.len() > 1 {
            let _guard = tch::no_grad_guard();
            batches.iter().map(|(i, t, k)| self.features(i, t, k.as_ref()).map(|(a, b, _)| (a, b))).collect::<Result<_>>()?
        } else {
            Vec::new()
        };
        let mut loss = Tensor::zeros([], (Kind::Float, self.device));
        for (j, (images, texts, kept)) in batches.iter().enumerate() {
            let (image, text, scale) = self.features(images, texts, kept.as_ref())?;
            let (image, text) = if cached.is_empty() {
                (image, text)
            } else {
                let with = |live: Tensor, pick: fn(&(Tensor, Tensor)) -> &Tensor| {
                    let parts: Vec<Tensor> =
                        cached.iter().enumerate().map(|(k, c)| if k == j { live.shallow_clone() } else { pick(c).shallow_clone() }).collect();
                    Tensor::cat(&parts, 0)
                };
                (with(image, |c| &c.0), with(text, |c| &c.1))
            };
            let first = j == 0;
            let scale = if first { scale } else { scale.detach() };
            let pass = self.loss(&image, &text, &scale, first)?;
            loss = if inject { pass * f64::NAN } else { pass };
            if j + 1 == batches.len() {
                self.reducer.arm();
            }
            loss.backward();
        }
        Ok(loss)
    }

    /// One optimisation step over a group of loader batches; returns the loss, whether the step
    /// was skipped as non-finite, and the seconds the gradient average took after the backward pass.
    fn step(&mut self, group: &[Group], lr: f64) -> Result<(f64, bool, f64)> {
        let group: Vec<Group> = group
            .iter()
            .map(|(i, t, k)| (i.to_device(self.device), t.to_device(self.device), k.as_ref().map(|k| k.to_device(self.device))))
            .collect();
        self.optim.zero_grad();
        let loss = self.accumulate(&group)?;
        let exposed = self.reducer.finish()?.exposed_s;
        // The loss reported is the mean over ranks: the global loss (SigLIP's rank losses cover
        // only their rows; the contrastive loss is the same on every rank unless local).
        let mut reported = loss.detach().to_kind(Kind::Float);
        if self.dist.is_distributed() {
            self.dist.all_reduce_(&mut reported, ReduceOp::Avg)?;
        }
        let value = reported.double_value(&[]);
        let norm = self.optim.grad_norm();
        if !self.all(value.is_finite() && norm.is_finite())? {
            self.optim.zero_grad();
            self.state.nonfinite_steps += 1;
            self.consecutive_nonfinite += 1;
            if self.consecutive_nonfinite >= self.config.stability.max_nonfinite.max(1) {
                return Err(Error::Diverged { count: self.consecutive_nonfinite, step: self.state.step + 1 });
            }
            return Ok((value, true, exposed));
        }
        self.consecutive_nonfinite = 0;
        let clip = self.config.optim.grad_clip;
        if clip > 0.0 && norm > clip {
            self.optim.scale_grads(clip / (norm + 1e-6));
        }
        self.optim.step(lr);
        let _guard = tch::no_grad_guard();
        let _ = self.model.logit_scale().shallow_clone().clamp_(0.0, clip_loss::MAX_LOGIT_SCALE);
        Ok((value, false, exposed))
    }

    /// The loss over the global batch: contrastive, or SigLIP's sigmoid loss; `bias_grad`: whether
    /// SigLIP's bias takes a gradient from it.
    fn loss(&self, image: &Tensor, text: &Tensor, scale: &Tensor, bias_grad: bool) -> Result<Tensor> {
        let siglip_bias = match self.config.loss.kind.as_str() {
            "siglip" => {
                let bias = self.model.logit_bias().expect("SigLIP runs build a logit bias").to_kind(Kind::Float);
                Some(if bias_grad { bias } else { bias.detach() })
            }
            _ => None,
        };
        if !self.dist.is_distributed() {
            return Ok(match &siglip_bias {
                Some(bias) => clip_loss::siglip_loss(image, text, scale, bias),
                None => clip_loss::clip_loss(image, text, scale),
            });
        }
        let rank = self.dist.rank;
        let gather = |x: &Tensor| -> Result<Tensor> {
            Ok(if self.config.loss.gather_with_grad {
                self.dist.all_gather_with_grad(x)?
            } else {
                clip_loss::with_local_block(&self.dist.all_gather(x)?, x, rank)
            })
        };
        let all_text = gather(text)?;
        if let Some(bias) = &siglip_bias {
            return Ok(clip_loss::siglip_loss_gathered(image, &all_text, scale, bias, rank));
        }
        let all_image = gather(image)?;
        Ok(clip_loss::clip_loss_gathered(image, text, &all_image, &all_text, scale, rank, self.config.loss.local_loss))
    }

    /// Zero-shot accuracy on the configured built-in tasks (rank 0; the others wait).
    fn evaluate(&mut self, on_event: &mut impl FnMut(Event<'_>)) -> Result<()> {
        if self.is_main() && !self.config.eval.tasks.is_empty() {
            let mut top1 = BTreeMap::new();
            // Evaluation uses running statistics (PyTorch's `model.eval()`), then training resumes.
            self.model.set_training(false);
            for name in &self.config.eval.tasks {
                let task = BuiltinTask::ALL.into_iter().find(|t| t.name() == name).expect("validated task name");
                top1.insert(name.clone(), clip_eval::zeroshot::builtin_accuracy(&self.model, &self.tokenizer, task, self.config.eval.samples, self.device)?);
            }
            self.model.set_training(self.trains_batch_norm());
            let mean = top1.values().sum::<f64>() / top1.len() as f64;
            if self.state.best.is_none_or(|(best, _)| mean > best) {
                self.state.best = Some((mean, self.state.step));
            }
            let result = EvalResult { step: self.state.step, top1 };
            self.log(&result)?;
            if let Some(writer) = &mut self.tensorboard {
                // open_clip's `val/imagenet-zeroshot-val-top1`, per built-in task.
                let tags: Vec<(String, f64)> = result.top1.iter().map(|(t, a)| (format!("val/{t}-zeroshot-val-top1"), *a)).collect();
                writer.scalars(result.step, &tags.iter().map(|(t, a)| (t.as_str(), *a)).collect::<Vec<_>>())?;
            }
            on_event(Event::Eval(&result));
            self.last_eval = Some(result);
        }
        self.dist.barrier()?;
        Ok(())
    }

    /// Every rank writes its data position, rank 0 the rest; a failure to write (a full disk) is
    /// reported and training goes on from the previous checkpoint's safety. Returns whether the
    /// checkpoint was written.
    fn checkpoint(&mut self, on_event: &mut impl FnMut(Event<'_>)) -> Result<bool> {
        let written = checkpoint::begin(self.output(), self.state.step)
            .and_then(|dir| checkpoint::write_position(&dir, self.dist.rank, &self.position));
        let ok = self.all(written.is_ok())?;
        if self.is_main() {
            let result = match (ok, written) {
                (true, _) => {
                    let (vs, optim, open_clip_config) = (&self.vs, &self.optim, &self.open_clip_config);
                    checkpoint::commit(
                        self.output(),
                        &self.state,
                        |dir| {
                            clip_tensor::safetensors::save_var_store(vs, &dir.join("model.safetensors"))?;
                            // Each checkpoint folder is a model open_clip and `clip` load as `local-dir:`.
                            clip_tensor::atomic::atomic_write(&dir.join("open_clip_config.json"), |f| f.write_all(open_clip_config.as_bytes()))?;
                            let state = optim.state();
                            let named: Vec<(&str, &Tensor)> = state.iter().map(|(n, t)| (n.as_str(), t)).collect();
                            clip_tensor::safetensors::save_safetensors(&dir.join("optimizer.safetensors"), &named)?;
                            Ok(())
                        },
                        self.config.checkpoint.keep,
                    )
                }
                (false, Err(e)) => Err(e),
                (false, Ok(_)) => Err(Error::Checkpoint("another rank could not write its part".into())),
            };
            match &result {
                Ok(path) => {
                    self.last_checkpoint = Some(path.clone());
                    on_event(Event::Checkpoint(path));
                }
                Err(e) => on_event(Event::CheckpointFailed(e)),
            }
            self.checkpoint_ok = result.is_ok();
        }
        self.dist.barrier()?;
        self.all(self.checkpoint_ok)
    }
}
