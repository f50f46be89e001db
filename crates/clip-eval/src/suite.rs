//! Running the benchmark: which sets to evaluate (the built-in tasks, registry datasets found under
//! a data root, custom folders), their features through the loader, and one result per set.
//! Progress goes to a callback; the caller prints.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clip_data::builtin::BuiltinTask;
use clip_data::source::{BuiltinTaskSource, ClassificationSet, LabelledSplit, benchmark_dataset_type, benchmark_shards, open_labelled};
use clip_data::{ImageTransform, Loader, LoaderConfig, PreprocessConfig, Source, TextMode};
use clip_model::ClipModel;
use clip_tensor::precision::Precision;
use clip_tokenizer::TextTokenizer;
use tch::{Device, Tensor};

use crate::features::{FeatureKind, Features, extract};
use crate::linear_probe::{ProbeConfig, fit, fit_multilabel, search_lambda, search_lambda_multilabel};
use crate::metrics::{classification_scores, map_11point, mean_average_precision};
use crate::registry::{DatasetInfo, Metric, datasets, find};
use crate::zeroshot::ClassifierCache;
use crate::report::{DatasetResult, FewShot, ProbeDetails};
use crate::{Error, Result};

/// Held-out draws per built-in task.
pub const BUILTIN_SAMPLES: u64 = 1000;

/// A set to evaluate.
#[derive(Debug, Clone)]
pub enum Target {
    /// A held-out task of the built-in dataset.
    Builtin(BuiltinTask),
    /// A registry dataset, found in this folder.
    Registry(&'static DatasetInfo, PathBuf),
    /// A folder in a supported layout that ships its class names (and templates).
    Custom(PathBuf),
    /// A captioned folder in CLIP_benchmark's layout (`dataset_type.txt` says `retrieval`).
    Retrieval(PathBuf),
}

impl Target {
    /// The name in reports.
    pub fn name(&self) -> String {
        match self {
            Self::Builtin(task) => format!("builtin/{}", task.name()),
            Self::Registry(info, _) => info.name.clone(),
            Self::Custom(dir) | Self::Retrieval(dir) => hub_snapshot_repo(dir)
                .unwrap_or_else(|| dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned())),
        }
    }

    /// The registry entry, if any.
    pub fn info(&self) -> Option<&'static DatasetInfo> {
        match self {
            Self::Registry(info, _) => Some(info),
            _ => None,
        }
    }

    /// The metric the set is scored by (accuracy unless the registry says otherwise).
    pub fn metric(&self) -> Metric {
        self.info().map_or(Metric::Accuracy, |i| i.metric)
    }
}

/// `ORG/NAME` for a snapshot folder of the hub cache (`datasets--ORG--NAME/snapshots/COMMIT`), whose
/// own name is only a commit.
fn hub_snapshot_repo(dir: &Path) -> Option<String> {
    let snapshots = dir.parent().filter(|p| p.file_name().is_some_and(|n| n == "snapshots"))?;
    let repo = snapshots.parent()?.file_name()?.to_str()?;
    let id = repo.strip_prefix("datasets--").or_else(|| repo.strip_prefix("models--"))?;
    Some(id.replacen("--", "/", 1))
}

/// The folder holding registry dataset `info` under `root`: its own name, or one of
/// CLIP_benchmark's (`vtab/pets`, `wds_vtab-pets`).
fn registry_dir(root: &Path, info: &DatasetInfo) -> Option<PathBuf> {
    let mut names = vec![info.name.clone()];
    for b in &info.clip_benchmark {
        names.extend([b.clone(), b.replace('/', "-"), format!("wds_{}", b.replace('/', "-"))]);
    }
    names.into_iter().map(|n| root.join(n)).find(|d| d.is_dir())
}

/// What `--datasets` named, resolved: targets found, and names not found (listed, not errors).
/// An empty list means every built-in task plus every registry dataset under `root`; `robustness`
/// means ImageNet and its five shifted sets ([`crate::registry::ROBUSTNESS`]).
pub fn resolve(root: &Path, names: &[String]) -> (Vec<Target>, Vec<String>) {
    let (mut found, mut missing) = (Vec::new(), Vec::new());
    if names.is_empty() {
        found.extend(BuiltinTask::ALL.map(Target::Builtin));
        for info in datasets() {
            match registry_dir(root, info) {
                Some(dir) => found.push(Target::Registry(info, dir)),
                None => missing.push(info.name.clone()),
            }
        }
        return (found, missing);
    }
    for name in names {
        let path = Path::new(name);
        if name == "builtin" {
            found.extend(BuiltinTask::ALL.map(Target::Builtin));
        } else if let Some(task) = name.strip_prefix("builtin/").and_then(|t| BuiltinTask::ALL.into_iter().find(|b| b.name() == t)) {
            found.push(Target::Builtin(task));
        } else if name == "robustness" {
            for set in crate::registry::ROBUSTNESS {
                let info = find(set).expect("the robustness sets are in the registry");
                match registry_dir(root, info) {
                    Some(dir) => found.push(Target::Registry(info, dir)),
                    None => missing.push(set.to_owned()),
                }
            }
        } else if let Some(info) = find(name) {
            match registry_dir(root, info) {
                Some(dir) => found.push(Target::Registry(info, dir)),
                None => missing.push(name.clone()),
            }
        } else if path.is_dir() {
            found.push(if benchmark_dataset_type(path) == "retrieval" {
                Target::Retrieval(path.to_path_buf())
            } else {
                Target::Custom(path.to_path_buf())
            });
        } else {
            missing.push(name.clone());
        }
    }
    (found, missing)
}

/// How to run the model over data.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Images per forward pass.
    pub batch_size: usize,
    /// Decode threads.
    pub threads: usize,
    /// The model's device.
    pub device: Device,
    /// fp32, or bf16/fp16 autocast.
    pub precision: Precision,
    /// Where zero-shot classifiers are cached, if anywhere.
    pub classifier_cache: Option<ClassifierCache>,
    /// The weights' evaluation preprocessing; `None`: OpenAI's at the model's resolution.
    pub preprocess: Option<PreprocessConfig>,
    /// The model's tokenizer, for zero-shot classifiers and retrieval captions.
    pub tokenizer: TextTokenizer,
    /// Where the middle frames of video sets are cached (`OUT/frames`; [`crate::video`]); `None`:
    /// a set held as videos is an error.
    pub frame_cache: Option<PathBuf>,
}

impl RunOptions {
    /// The evaluation transform for `model`.
    fn transform(&self, model: &ClipModel) -> ImageTransform {
        let openai = || PreprocessConfig::openai(model.config.vision.image_size() as u32);
        ImageTransform::Eval(self.preprocess.clone().unwrap_or_else(openai))
    }
}

/// A split opened for evaluation: its samples, classes, prompt templates, and where it came from.
pub struct OpenedSplit {
    /// The samples.
    pub source: Source,
    /// Class names (several per class where the registry has them) in label order.
    pub classes: Vec<Vec<String>>,
    /// Prompt templates (`{}` or `{c}` placeholders).
    pub templates: Vec<String>,
    /// Layout it was read from.
    pub format: &'static str,
    /// Per-class target vectors instead of one label per image.
    pub multilabel: bool,
}

/// Templates for a custom set that ships none: the paper's plainest prompt.
const DEFAULT_TEMPLATES: [&str; 1] = ["a photo of a {}."];

/// Opens `split` of `target`; `None` when the target has no such split. Registry sets take the
/// paper's class names and prompts, checked against the number of classes on disk.
pub fn open_split(target: &Target, split: &str, image_size: u32) -> Result<Option<OpenedSplit>> {
    let names = |c: ClassificationSet| -> Vec<Vec<String>> { c.classnames.into_iter().map(|n| vec![n]).collect() };
    match target {
        Target::Builtin(task) => {
            // Held-out draws only: a built-in "train" split is the training stream itself.
            let source = BuiltinTaskSource { task: *task, samples: BUILTIN_SAMPLES, image_size };
            Ok(Some(OpenedSplit {
                source: Source::Indexed(Arc::new(source)),
                classes: task.classnames().into_iter().map(|n| vec![n]).collect(),
                templates: task.templates().iter().map(|t| t.to_string()).collect(),
                format: "builtin",
                multilabel: false,
            })
            .filter(|_| split == "test"))
        }
        Target::Registry(info, dir) => {
            if let Some(source) = shipped_folders(info, dir, split)? {
                return Ok(Some(OpenedSplit { source, classes: info.classes.clone(), templates: info.templates.clone(), format: "imagefolder", multilabel: false }));
            }
            let Some(LabelledSplit { source, classes, format, multilabel }) = open_labelled(dir, split)? else { return Ok(None) };
            let expected = info.classes.len();
            if classes.classnames.len() != expected {
                return Err(Error::Task(format!("{}: {} classes on disk, but {} has {expected}", dir.display(), classes.classnames.len(), info.name)));
            }
            Ok(Some(OpenedSplit { source, classes: info.classes.clone(), templates: info.templates.clone(), format, multilabel }))
        }
        Target::Retrieval(dir) => Err(Error::Task(format!("{} is a retrieval set, not a classification set", dir.display()))),
        Target::Custom(dir) => {
            let Some(LabelledSplit { source, classes, format, multilabel }) = open_labelled(dir, split)? else { return Ok(None) };
            let templates = if classes.templates.is_empty() {
                DEFAULT_TEMPLATES.iter().map(|t| t.to_string()).collect()
            } else {
                classes.templates.clone()
            };
            Ok(Some(OpenedSplit { source, classes: names(classes), templates, format, multilabel }))
        }
    }
}

/// Whether `path` names a PNG or JPEG file (ObjectNet ships PNG).
fn is_photo(path: &Path) -> bool {
    path.extension().and_then(|x| x.to_str()).is_some_and(|x| ["png", "jpg", "jpeg"].contains(&x.to_ascii_lowercase().as_str()))
}

/// ObjectNet as shipped (`objectnet-1.0/images/FOLDER/*.png`, as CLIP_benchmark reads it): the
/// images of the registry's class folders only (113 of its 313), labelled in the registry's order;
/// `None` for other sets and layouts.
fn shipped_folders(info: &DatasetInfo, dir: &Path, split: &str) -> Result<Option<Source>> {
    let images = dir.join("objectnet-1.0/images");
    if info.data_folders.is_empty() || split != "test" || !images.is_dir() {
        return Ok(None);
    }
    let mut files = Vec::new();
    for (label, folder) in info.data_folders.iter().enumerate() {
        let folder = images.join(folder);
        let entries = std::fs::read_dir(&folder).map_err(|e| Error::Task(format!("{}: {e} (ObjectNet's class folder)", folder.display())))?;
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_file() && is_photo(p)).collect();
        paths.sort();
        files.extend(paths.into_iter().map(|p| (p, label as i64)));
    }
    Ok(Some(crate::video::FrameSource::new(files).into_source()))
}

/// Features of every image of `source`, in order, through the exact evaluation preprocessing, with
/// labels (`[n]`) or, for multi-label sets, targets (`[n, classes]`). `progress` hears the samples
/// done so far.
pub fn split_features(
    model: &ClipModel,
    source: Source,
    multilabel: bool,
    kind: FeatureKind,
    options: &RunOptions,
    progress: impl FnMut(usize),
) -> Result<Features> {
    let text = if multilabel { TextMode::MultiLabels } else { TextMode::Labels };
    let mut config = LoaderConfig::new(options.batch_size, options.transform(model), text);
    (config.threads, config.shuffle, config.drop_last) = (options.threads, false, false);
    let loader = Loader::new(source, config)?;
    let mut batches = loader.epoch(0)?;
    let mut features = extract(model, &mut batches, kind, options.device, options.precision, progress)?;
    features.skipped.merge(&batches.tail().skipped);
    Ok(features)
}

/// What the benchmark loop hears about.
#[derive(Debug, Clone)]
pub enum Progress {
    /// A pass over a split began: its name and size, where known.
    Split {
        /// e.g. `cifar10 test`.
        what: String,
        /// Samples, for indexed sources.
        total: Option<u64>,
    },
    /// Samples done in the current pass.
    Done(usize),
    /// A step of the linear probe's search.
    Fit {
        /// Which fit (`search`, `k=4 seed 1`, …).
        what: String,
    },
    /// One λ of a search fitted and scored on validation.
    Trial {
        /// L2 strength.
        lambda: f64,
        /// Validation score.
        score: f64,
    },
}

fn total(source: &Source) -> Option<u64> {
    match source {
        Source::Indexed(s) => Some(s.len()),
        Source::Shards(_) => None,
    }
}

/// Features of `split` of `target`, announcing the pass.
fn features_of(
    model: &ClipModel,
    target: &Target,
    split: OpenedSplit,
    name: &str,
    kind: FeatureKind,
    options: &RunOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Features> {
    progress(Progress::Split { what: format!("{} {name}", target.name()), total: total(&split.source) });
    split_features(model, split.source, split.multilabel, kind, options, |n| progress(Progress::Done(n)))
}

/// Recall@k reported for retrieval sets (CLIP_benchmark reports 5 by default; the paper 1, 5, 10).
pub const RECALL_KS: [i64; 3] = [1, 5, 10];

/// Zero-shot retrieval on the test split of a captioned folder.
fn retrieval(model: &ClipModel, target: &Target, dir: &Path, options: &RunOptions, progress: &mut dyn FnMut(Progress)) -> Result<DatasetResult> {
    let mut config = LoaderConfig::new(options.batch_size, options.transform(model), TextMode::Captions);
    (config.threads, config.shuffle, config.drop_last) = (options.threads, false, false);
    let loader = Loader::new(Source::Shards(benchmark_shards(dir, "test")?), config)?;
    progress(Progress::Split { what: format!("{} test", target.name()), total: None });
    let mut batches = loader.epoch(0)?;
    let mut scores = crate::retrieval::evaluate(model, &options.tokenizer, &mut batches, &RECALL_KS, options.device, options.precision, |n| progress(Progress::Done(n)))?;
    scores.skipped.merge(&batches.tail().skipped);
    Ok(DatasetResult::retrieval(target.name(), &scores))
}

/// Zero-shot classification of `target`'s test split (retrieval for captioned sets).
/// `model_name` looks up the paper's number.
pub fn zeroshot(
    model: &ClipModel,
    model_name: &str,
    target: &Target,
    options: &RunOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<DatasetResult> {
    if let Target::Retrieval(dir) = target {
        return retrieval(model, target, dir, options, progress);
    }
    if let Some((info, dir, layout)) = video_target(target) {
        return video_zeroshot(model, model_name, target, (info, dir, &layout), options, progress);
    }
    let size = model.config.vision.image_size() as u32;
    let split = open_split(target, "test", size)?.ok_or_else(|| Error::Task("no test split".into()))?;
    let classifier = zeroshot_classifier(model, target, &split, options)?;
    let (format, multilabel) = (split.format, split.multilabel);
    let features = features_of(model, target, split, "test", FeatureKind::Projected, options, progress)?;
    let logits = crate::zeroshot::logits(&features.features, &classifier).to_device(Device::Cpu);
    let metric = target.metric();
    let samples = features.labels.size()[0] as u64;
    let mut result = if multilabel {
        DatasetResult::multilabel(target.name(), map_11point(&logits, &features.labels)?, mean_average_precision(&logits, &features.labels)?, samples)
    } else {
        DatasetResult::new(target.name(), "zeroshot_classification", metric.name(), &classification_scores(&logits, &features.labels, metric)?, samples)
    };
    if !multilabel && target.info().is_some_and(|i| i.name == crate::registry::ROBUSTNESS[0]) {
        result.scores.extend(class_subsampled(&logits, &features.labels)?);
    }
    result.skipped = features.skipped.samples();
    result.paper = target.info().and_then(|i| i.paper_value(model_name));
    result.format = format.into();
    Ok(result)
}

/// ImageNet's top-1 on the classes of each shifted set scored over part of them, as the ImageNet
/// Testbed's `val-on-X-classes` (the x of the effective-robustness fits, [`crate::robustness`]):
/// the images whose label is one of the set's ImageNet classes, each of the set's classes scoring
/// the maximum of its ImageNet classes' logits (ImageNet-R and -A: one each; ObjectNet: its
/// mapping), keyed `acc1_on_X_classes`, in percent.
pub fn class_subsampled(logits: &Tensor, labels: &Tensor) -> Result<Vec<(String, f64)>> {
    let labels = Vec::<i64>::try_from(labels)?;
    let mut out = Vec::new();
    for info in datasets().iter().filter(|d| d.robustness) {
        let groups: Vec<Vec<usize>> = if !info.imagenet_classes.is_empty() {
            info.imagenet_classes.iter().map(|&i| vec![i]).collect()
        } else if !info.imagenet_mapping.is_empty() {
            info.imagenet_mapping.clone()
        } else {
            continue;
        };
        let group_of: std::collections::HashMap<i64, i64> = groups.iter().enumerate().flat_map(|(g, members)| members.iter().map(move |&m| (m as i64, g as i64))).collect();
        let (rows, targets): (Vec<i64>, Vec<i64>) = labels.iter().enumerate().filter_map(|(row, label)| Some((row as i64, *group_of.get(label)?))).unzip();
        if rows.is_empty() {
            continue;
        }
        let chosen = logits.index_select(0, &Tensor::from_slice(&rows));
        let columns: Vec<Tensor> = groups
            .iter()
            .map(|g| chosen.index_select(1, &Tensor::from_slice(&g.iter().map(|&i| i as i64).collect::<Vec<_>>())).amax([1].as_slice(), false))
            .collect();
        let predicted = Vec::<i64>::try_from(Tensor::stack(&columns, 1).argmax(-1, false))?;
        let correct = predicted.iter().zip(&targets).filter(|(p, t)| p == t).count();
        let name = info.name.replace('_', "-");
        out.push((format!("acc1_on_{name}_classes"), 100.0 * correct as f64 / rows.len() as f64));
    }
    Ok(out)
}

/// The zero-shot classifier of `split`'s classes and templates, from the cache where there is one.
fn zeroshot_classifier(model: &ClipModel, target: &Target, split: &OpenedSplit, options: &RunOptions) -> Result<Tensor> {
    match &options.classifier_cache {
        Some(cache) => cache.classifier(&target.name(), model, &options.tokenizer, &split.classes, &split.templates, options.device),
        None => crate::zeroshot::classifier(model, &options.tokenizer, &split.classes, &split.templates, options.device),
    }
}

/// A registry set held as videos ([`crate::video::layout`]): its entry, folder and layout.
fn video_target(target: &Target) -> Option<(&'static DatasetInfo, &Path, crate::video::Layout)> {
    match target {
        Target::Registry(info, dir) => crate::video::layout(info, dir).map(|layout| (*info, dir.as_path(), layout)),
        _ => None,
    }
}

/// A split of a video set as its middle frames.
struct VideoFrames {
    /// The split's clips and folds.
    clips: crate::video::VideoSplit,
    /// The split opened over the middle frames that could be taken.
    split: OpenedSplit,
    /// The loader row of each clip (`None`: skipped).
    rows: Vec<Option<i64>>,
    /// Clips skipped, by reason.
    skipped: clip_data::SkipCounts,
}

/// The middle frames of `split` of a video set (only its first fold's clips with `first_fold`);
/// `None` when the set has no list for `split`.
fn video_frames(
    target: &Target,
    (info, dir, layout): (&'static DatasetInfo, &Path, &crate::video::Layout),
    split: &str,
    first_fold: bool,
    options: &RunOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Option<VideoFrames>> {
    let Some(mut clips) = crate::video::open(info, dir, layout, split)? else { return Ok(None) };
    if first_fold {
        let (name, fold) = clips.folds.swap_remove(0);
        clips.clips = fold.iter().map(|&i| clips.clips[i].clone()).collect();
        clips.folds = vec![(name, (0..clips.clips.len()).collect())];
    }
    let cache = options.frame_cache.as_ref().ok_or_else(|| Error::Task(format!("{} holds videos: their middle frames need a cache folder", dir.display())))?;
    progress(Progress::Split { what: format!("{} {split} middle frames", target.name()), total: Some(clips.clips.len() as u64) });
    let (frames, skipped) = crate::video::middle_frames(&clips.clips, dir, &cache.join(&info.name), options.threads, &mut |n| progress(Progress::Done(n)))?;
    let mut rows = Vec::with_capacity(frames.len());
    let mut kept = Vec::new();
    for (clip, frame) in clips.clips.iter().zip(frames) {
        rows.push(frame.map(|png| {
            kept.push((png, clip.label));
            kept.len() as i64 - 1
        }));
    }
    if kept.is_empty() {
        return Err(Error::Task(format!("{}: no middle frame could be taken from the {split} clips ({skipped})", dir.display())));
    }
    let source = crate::video::FrameSource::new(kept).into_source();
    let split = OpenedSplit { source, classes: info.classes.clone(), templates: info.templates.clone(), format: clips.format, multilabel: false };
    Ok(Some(VideoFrames { clips, split, rows, skipped }))
}

/// Zero-shot classification of a video set by the middle frame of each clip; with several
/// official folds (UCF101's three test lists) each is scored and the scores averaged, as the
/// paper does, each fold's score beside the average.
fn video_zeroshot(
    model: &ClipModel,
    model_name: &str,
    target: &Target,
    video: (&'static DatasetInfo, &Path, &crate::video::Layout),
    options: &RunOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<DatasetResult> {
    let VideoFrames { clips, split, rows, mut skipped } = video_frames(target, video, "test", false, options, progress)?.ok_or_else(|| Error::Task("no test list".into()))?;
    let classifier = zeroshot_classifier(model, target, &split, options)?;
    let format = split.format;
    let features = features_of(model, target, split, "test", FeatureKind::Projected, options, progress)?;
    let kept = rows.iter().flatten().count() as i64;
    if features.labels.size()[0] != kept || features.skipped.samples() > 0 {
        return Err(Error::Task(format!("{} of {kept} cached middle frames could not be read back: delete the frame cache and rerun", kept - features.labels.size()[0])));
    }
    skipped.merge(&features.skipped);
    let logits = crate::zeroshot::logits(&features.features, &classifier).to_device(Device::Cpu);
    let metric = target.metric();
    let mut folds = Vec::new();
    for (name, members) in &clips.folds {
        let index: Vec<i64> = members.iter().filter_map(|&c| rows[c]).collect();
        if index.is_empty() {
            return Err(Error::Task(format!("{name}: none of its clips gave a middle frame")));
        }
        let index = Tensor::from_slice(&index);
        folds.push((name.clone(), classification_scores(&logits.index_select(0, &index), &features.labels.index_select(0, &index), metric)?));
    }
    let n = folds.len() as f64;
    let mean = |f: &dyn Fn(&crate::metrics::ClassificationScores) -> f64| folds.iter().map(|(_, s)| f(s)).sum::<f64>() / n;
    let average = crate::metrics::ClassificationScores {
        acc1: mean(&|s| s.acc1),
        acc5: folds.iter().all(|(_, s)| s.acc5.is_some()).then(|| mean(&|s| s.acc5.unwrap_or_default())),
        mean_per_class_recall: mean(&|s| s.mean_per_class_recall),
        value: mean(&|s| s.value),
    };
    let mut result = DatasetResult::new(target.name(), "zeroshot_classification", metric.name(), &average, kept as u64);
    if folds.len() > 1 {
        result.scores = folds.iter().map(|(name, s)| (format!("{name}_{}", metric.name()), 100.0 * s.value)).collect();
    }
    result.skipped = skipped.samples();
    result.paper = target.info().and_then(|i| i.paper_value(model_name));
    result.format = format.into();
    Ok(result)
}

/// Linear-probe settings.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// The solver.
    pub solver: ProbeConfig,
    /// Few-shot k values (examples per class); empty for none.
    pub few_shot: Vec<usize>,
    /// Seeds per few-shot k.
    pub seeds: u64,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self { solver: ProbeConfig::default(), few_shot: vec![1, 2, 4, 8, 16], seeds: 3 }
    }
}

/// Rows `index` of features and labels.
fn rows(f: &Features, index: &Tensor) -> (Tensor, Tensor) {
    (f.features.index_select(0, index), f.labels.index_select(0, index))
}

/// `k` random training rows of every class (fewer where a class has fewer), drawn by `seed`.
fn few_shot_rows(labels: &Tensor, classes: i64, k: usize, seed: u64) -> Result<Tensor> {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let labels = Vec::<i64>::try_from(labels)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut chosen = Vec::new();
    for class in 0..classes {
        let mut members: Vec<i64> = (0..labels.len() as i64).filter(|&i| labels[i as usize] == class).collect();
        members.shuffle(&mut rng);
        chosen.extend(members.into_iter().take(k));
    }
    chosen.sort_unstable();
    Ok(Tensor::from_slice(&chosen))
}

/// The three feature sets a probe needs.
#[derive(Debug)]
pub struct ProbeData {
    /// Training features (the validation rows removed when they were carved from it).
    pub train: Features,
    /// Validation features, for the λ search.
    pub validation: Features,
    /// Test features.
    pub test: Features,
    /// Where the validation split came from.
    pub validation_source: String,
    /// Number of classes.
    pub classes: i64,
    /// Layout the data was read from.
    pub format: &'static str,
    /// Labels are `[n, classes]` target vectors: the one-vs-rest probe, scored by 11-point mAP.
    pub multilabel: bool,
}

/// Features for the paper's linear probe on `target`: before the projection (ViTs), for train,
/// validation (the set's own split, or a seeded fraction of train) and test.
pub fn probe_data(
    model: &ClipModel,
    target: &Target,
    validation_fraction: f64,
    options: &RunOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<ProbeData> {
    let size = model.config.vision.image_size() as u32;
    // A video set's splits are its middle frames, taken first (UCF101: split 1's lists); the clips
    // skipped there are counted with the split's other skips.
    let video = video_target(target);
    let mut frame_skips = std::collections::HashMap::new();
    let mut open = |split: &str, progress: &mut dyn FnMut(Progress)| -> Result<Option<OpenedSplit>> {
        let Some((info, dir, layout)) = &video else { return open_split(target, split, size) };
        let Some(frames) = video_frames(target, (info, dir, layout), split, true, options, progress)? else { return Ok(None) };
        frame_skips.insert(split.to_owned(), frames.skipped);
        Ok(Some(frames.split))
    };
    let train_split = open("train", progress)?.ok_or_else(|| Error::Task("no train split (the probe needs one)".into()))?;
    let test_split = open("test", progress)?.ok_or_else(|| Error::Task("no test split".into()))?;
    let multilabel = test_split.multilabel;
    let classes = test_split.classes.len() as i64;
    let format = test_split.format;
    let kind = FeatureKind::Unprojected;
    let mut validation_split = None;
    for name in ["valid", "val", "validation"] {
        if let Some(split) = open(name, progress)? {
            validation_split = Some((name, split));
            break;
        }
    }
    let train_all = features_of(model, target, train_split, "train", kind, options, progress)?;
    let (train, validation, validation_source) = match validation_split {
        Some((name, split)) => {
            let v = features_of(model, target, split, name, kind, options, progress)?;
            (train_all, v, format!("the set's `{name}` split"))
        }
        None => {
            let n = train_all.labels.size()[0];
            let held = ((n as f64) * validation_fraction).round() as i64;
            if held < 1 || held >= n {
                return Err(Error::Task(format!("{n} training samples cannot spare a validation fraction of {validation_fraction}")));
            }
            tch::manual_seed(0);
            let order = Tensor::randperm(n, (tch::Kind::Int64, Device::Cpu));
            let (v, t) = (order.narrow(0, 0, held), order.narrow(0, held, n - held));
            let split = |index: &Tensor| {
                let (features, labels) = rows(&train_all, index);
                Features { features, labels, skipped: Default::default() }
            };
            (split(&t), split(&v), format!("{:.0}% of train, held out by seed 0", 100.0 * validation_fraction))
        }
    };
    let mut test = features_of(model, target, test_split, "test", kind, options, progress)?;
    if let Some(skipped) = frame_skips.get("test") {
        test.skipped.merge(skipped);
    }
    Ok(ProbeData { train, validation, test, validation_source, classes, format, multilabel })
}

/// The paper's linear probe on prepared features: λ searched on validation, refitted on train +
/// validation, scored on test by `metric`; then few-shot probes at each k.
pub fn linear_probe(
    name: String,
    data: &ProbeData,
    metric: Metric,
    probe: &ProbeOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<DatasetResult> {
    if data.multilabel {
        return multilabel_probe(name, data, probe, progress);
    }
    let ProbeData { train, validation, test, classes, .. } = data;
    let classes = *classes;
    let score = |scores: &Tensor, labels: &Tensor| classification_scores(scores, labels, metric).map_or(f64::NAN, |s| s.value);
    progress(Progress::Fit { what: "λ search".into() });
    let started = std::time::Instant::now();
    let trials = search_lambda((&train.features, &train.labels), (&validation.features, &validation.labels), classes, &probe.solver, &score, &mut |t| progress(Progress::Trial { lambda: t.lambda, score: t.score }))?;
    let search_seconds = started.elapsed().as_secs_f64();
    let lambda = trials[0].lambda;
    progress(Progress::Fit { what: format!("refit on train + validation at λ = {lambda:.3e}") });
    let all_x = Tensor::cat(&[&train.features, &validation.features], 0);
    let all_y = Tensor::cat(&[&train.labels, &validation.labels], 0);
    let fitted = fit(&all_x, &all_y, classes, lambda, None, &probe.solver)?;
    let scores = classification_scores(&fitted.scores(&test.features), &test.labels, metric)?;
    let mut few_shot = Vec::new();
    for &k in &probe.few_shot {
        let mut values = Vec::new();
        for seed in 0..probe.seeds {
            progress(Progress::Fit { what: format!("few-shot k={k}, seed {seed}") });
            let (x, y) = rows(train, &few_shot_rows(&train.labels, classes, k, seed)?);
            // The paper's few-shot probes use the full sweep's validation set; they are fitted on
            // the k examples alone, so no validation sample leaks into training.
            let trials = search_lambda((&x, &y), (&validation.features, &validation.labels), classes, &probe.solver, &score, &mut |t| progress(Progress::Trial { lambda: t.lambda, score: t.score }))?;
            let p = fit(&x, &y, classes, trials[0].lambda, None, &probe.solver)?;
            values.push(100.0 * score(&p.scores(&test.features), &test.labels));
        }
        few_shot.push(FewShot::new(k, values));
    }
    let result = DatasetResult::new(name, "linear_probe", metric.name(), &scores, test.labels.size()[0] as u64);
    Ok(with_probe_details(result, data, trials, search_seconds, few_shot))
}

/// `result` with the probe's settings and search attached.
fn with_probe_details(mut result: DatasetResult, data: &ProbeData, trials: Vec<crate::linear_probe::Trial>, search_seconds: f64, few_shot: Vec<FewShot>) -> DatasetResult {
    let lambda = trials[0].lambda;
    result.task = "linear_probe".into();
    result.skipped = data.test.skipped.samples();
    result.format = data.format.into();
    result.probe = Some(ProbeDetails {
        lambda,
        c: 1.0 / lambda,
        validation: data.validation_source.clone(),
        train_samples: data.train.labels.size()[0] as u64,
        validation_samples: data.validation.labels.size()[0] as u64,
        search_seconds,
        trials,
        few_shot,
        zeroshot: None,
    });
    result
}

/// The linear probe of a multi-label set (VOC2007): one-vs-rest logistic regression, λ searched
/// on validation 11-point mAP, refitted on train + validation, scored on test by 11-point mAP
/// (targets below 0, VOC's "difficult", ignored) with CLIP_benchmark's plain mAP beside it. No
/// few-shot probes: k examples per class is not defined when an image holds several classes.
fn multilabel_probe(name: String, data: &ProbeData, probe: &ProbeOptions, progress: &mut dyn FnMut(Progress)) -> Result<DatasetResult> {
    let ProbeData { train, validation, test, .. } = data;
    let score = |scores: &Tensor, targets: &Tensor| map_11point(scores, targets).unwrap_or(f64::NAN);
    progress(Progress::Fit { what: "λ search (one-vs-rest)".into() });
    let started = std::time::Instant::now();
    let trials = search_lambda_multilabel((&train.features, &train.labels), (&validation.features, &validation.labels), &probe.solver, &score, &mut |t| progress(Progress::Trial { lambda: t.lambda, score: t.score }))?;
    let search_seconds = started.elapsed().as_secs_f64();
    let lambda = trials[0].lambda;
    progress(Progress::Fit { what: format!("refit on train + validation at λ = {lambda:.3e}") });
    let all_x = Tensor::cat(&[&train.features, &validation.features], 0);
    let all_y = Tensor::cat(&[&train.labels, &validation.labels], 0);
    let fitted = fit_multilabel(&all_x, &all_y, lambda, None, &probe.solver)?;
    let scores = fitted.scores(&test.features);
    let samples = test.labels.size()[0] as u64;
    let result = DatasetResult::multilabel(name, map_11point(&scores, &test.labels)?, mean_average_precision(&scores, &test.labels.clamp_min(0.0))?, samples);
    Ok(with_probe_details(result, data, trials, search_seconds, Vec::new()))
}
