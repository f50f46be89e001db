//! `clip bench-zeroshot` and `clip bench-linear-probe`: the paper's protocol over the built-in
//! tasks, registry datasets found under the data root or fetched from the hub, and custom folders;
//! progress on stderr, the table on stdout, `results.json`, `results.md` and `results.csv` in the
//! output folder, and under `clip_benchmark/` one file per set in CLIP_benchmark's format.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clip_eval::report::{DatasetResult, Report};
use clip_eval::zeroshot::ClassifierCache;
use clip_eval::suite::{Progress, ProbeOptions, RunOptions, Target, linear_probe, probe_data, resolve, zeroshot};
use clip_model::ClipModel;
use clip_tensor::device::DeviceSpec;
use clip_tensor::precision::Precision;
use clip_tokenizer::TextTokenizer;

use crate::model::ModelSpec;
use crate::progress::{Bar, Unit, note};

/// Which protocol.
pub(crate) enum Task {
    ZeroShot,
    LinearProbe(ProbeTask),
}

/// `bench-linear-probe`'s own options.
pub(crate) struct ProbeTask {
    pub(crate) probe: ProbeOptions,
    /// Fraction of train held out for the λ search when a set has no validation split.
    pub(crate) validation_fraction: f64,
    /// Where to save each set's features (`NAME.safetensors`), for side-by-side checks.
    pub(crate) save_features: Option<PathBuf>,
}

/// The linear probe on one set (its features saved first when asked), on the model's device, with
/// zero-shot on the same test split beside the few-shot probes.
fn probe(model: &ClipModel, name: &str, target: &Target, task: &ProbeTask, run: &RunOptions, bar: &mut Passes) -> clip_eval::Result<DatasetResult> {
    let data = probe_data(model, target, task.validation_fraction, run, &mut |e| bar.event(e))?;
    if let Some(dir) = &task.save_features {
        let path = dir.join(format!("{}.safetensors", target.name()));
        let named = [
            ("train_x", &data.train.features),
            ("train_y", &data.train.labels),
            ("validation_x", &data.validation.features),
            ("validation_y", &data.validation.labels),
            ("test_x", &data.test.features),
            ("test_y", &data.test.labels),
        ];
        std::fs::create_dir_all(dir).map_err(|e| clip_eval::Error::Task(format!("creating {}: {e}", dir.display())))?;
        clip_tensor::safetensors::save_safetensors(&path, &named)?;
    }
    let mut options = task.probe.clone();
    options.solver.device = run.device;
    let mut result = linear_probe(target.name(), &data, target.metric(), &options, &mut |e| bar.event(e))?;
    if !options.few_shot.is_empty() {
        let zeroshot = zeroshot(model, name, target, run, &mut |e| bar.event(e))?;
        if let Some(probe) = result.probe.as_mut() {
            probe.zeroshot = Some(zeroshot.value);
        }
    }
    Ok(result)
}

/// Options shared by both commands.
pub(crate) struct Options {
    pub(crate) spec: ModelSpec,
    pub(crate) runs: PathBuf,
    pub(crate) data_root: PathBuf,
    pub(crate) datasets: Vec<String>,
    pub(crate) out: PathBuf,
    pub(crate) batch_size: usize,
    pub(crate) threads: usize,
    pub(crate) device: DeviceSpec,
    pub(crate) precision: Precision,
    pub(crate) task: Task,
}

/// The newest checkpoint of any run under `runs` (by modification time), as a model spec.
fn newest_checkpoint(runs: &Path) -> Result<ModelSpec> {
    let mut best: Option<(std::time::SystemTime, PathBuf, PathBuf)> = None;
    for entry in std::fs::read_dir(runs).into_iter().flatten().flatten() {
        let run = entry.path();
        let Some(checkpoint) = clip_train::checkpoint::newest(&run) else { continue };
        let weights = checkpoint.join("model.safetensors");
        let modified = std::fs::metadata(&weights).and_then(|m| m.modified());
        if let Ok(modified) = modified
            && best.as_ref().is_none_or(|(t, _, _)| modified > *t)
        {
            best = Some((modified, run.join("model.json"), weights));
        }
    }
    match best {
        Some((_, config, weights)) => {
            Ok(ModelSpec { model: None, pretrained: None, model_config: Some(config), weights: Some(weights), offline: false })
        }
        None => bail!(
            "no checkpoint under {}: train one with `cargo xtask train`, or name a model (--model or --model-config) and --weights",
            runs.display()
        ),
    }
}

/// Progress on stderr (crate::progress): a bar per pass over a split (images, rate, ETA), then
/// one per step of the linear probe's fitting (the λ search, counting its fits with the latest λ
/// and validation score; the refit; each few-shot probe).
struct Passes {
    who: &'static str,
    bar: Option<Bar>,
}

impl Passes {
    fn event(&mut self, event: Progress) {
        match event {
            Progress::Split { what, total } => {
                self.finish();
                self.bar = Some(Bar::new(format!("{}: {what}", self.who), total, Unit::Count("images")));
            }
            Progress::Done(n) => {
                if let Some(bar) = &mut self.bar {
                    bar.set_position(n as u64);
                }
            }
            Progress::Fit { what } => {
                self.finish();
                self.bar = Some(Bar::new(format!("{}: linear probe: {what}", self.who), None, Unit::Count("fits")));
            }
            Progress::Trial { lambda, score } => {
                if let Some(bar) = &mut self.bar {
                    bar.set_message(format!("λ {lambda:.2e}: validation {:.2}", 100.0 * score));
                    bar.inc(1);
                }
            }
        }
    }

    fn finish(&mut self) {
        if let Some(mut bar) = self.bar.take() {
            if bar.label().contains(": linear probe: ") {
                let line = format!("{} ({:.1} s)", bar.label(), bar.elapsed());
                bar.finish_with(&line);
            } else {
                bar.finish();
            }
        }
    }
}

/// Datasets named on the command line but not under the data root, fetched from the hub into the
/// cache (registry names from their CLIP_benchmark repo, `hf-hub:ORG/NAME` as given) and added to
/// `targets`. What is left is returned: names that are neither, or that failed (said on stderr).
fn fetch_missing(missing: Vec<String>, targets: &mut Vec<Target>, named: &[String], splits: &[&str], offline: bool, who: &'static str) -> Result<Vec<String>> {
    if named.is_empty() {
        return Ok(missing); // The default run lists what is absent; it never downloads all 27 sets.
    }
    let hub = crate::hub::hub(offline);
    let mut downloads = crate::hub::Downloads::new(who);
    let mut left = Vec::new();
    for name in missing {
        let Ok(id) = crate::pretrained::dataset_repo(&name) else {
            left.push(name);
            continue;
        };
        match clip_eval::fetch::fetch_dataset(&hub, &id, splits, &mut |p| downloads.event(p)) {
            Ok(dir) => targets.push(match clip_eval::registry::find(&name).or_else(|| clip_eval::registry::find_hub_repo(&id)) {
                Some(info) => Target::Registry(info, dir),
                None if clip_data::source::benchmark_dataset_type(&dir) == "retrieval" => Target::Retrieval(dir),
                None => Target::Custom(dir),
            }),
            Err(e) => {
                eprintln!("{who}: {name}: {e}");
                left.push(name);
            }
        }
    }
    Ok(left)
}

/// What identifies the weights for the classifier cache: the file, its size and modification time,
/// and the architecture.
fn weights_id(weights: Option<&Path>, model: &ClipModel) -> String {
    let file = weights.map(|w| {
        let meta = std::fs::metadata(w).ok();
        let modified = meta.as_ref().and_then(|m| m.modified().ok()).and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
        format!("{}|{:?}|{:?}", std::fs::canonicalize(w).unwrap_or_else(|_| w.to_path_buf()).display(), meta.map(|m| m.len()), modified)
    });
    format!("{}|{}", file.unwrap_or_default(), model.config.to_json())
}

fn write(path: &Path, text: &str) -> Result<()> {
    clip_tensor::atomic::atomic_write(path, |f| f.write_all(text.as_bytes())).with_context(|| format!("writing {}", path.display()))
}

pub(crate) fn run(options: Options) -> Result<()> {
    let who = match options.task {
        Task::ZeroShot => "clip bench-zeroshot",
        Task::LinearProbe(_) => "clip bench-linear-probe",
    };
    let unnamed = options.spec.model.is_none() && options.spec.model_config.is_none();
    let spec = if unnamed && options.spec.weights.is_none() { newest_checkpoint(&options.runs)? } else { options.spec.clone() };
    let device = options.device.resolve()?;
    let loaded = spec.load(device, false, who)?;
    let model = &loaded.model;
    let name = spec.name();
    let weights = spec.weights_name(&loaded);
    note(&format!("{who}: {name} with weights {weights}, data root {}", options.data_root.display()));
    let (mut targets, missing) = resolve(&options.data_root, &options.datasets);
    let splits: &[&str] = match options.task {
        Task::ZeroShot => &["test"],
        Task::LinearProbe(_) => &["train", "test"],
    };
    let missing = fetch_missing(missing, &mut targets, &options.datasets, splits, spec.offline, who)?;
    let classifier_cache = Some(ClassifierCache { dir: options.out.join("classifiers"), weights_id: weights_id(loaded.weights.as_deref(), model) });
    let preprocess = Some(loaded.preprocess.clone());
    // The linear probe reads no text: its tokenizer is never fetched.
    let tokenizer = match options.task {
        Task::ZeroShot => spec.tokenizer(&loaded, who)?,
        Task::LinearProbe(_) => TextTokenizer::default(),
    };
    let run = RunOptions {
        batch_size: options.batch_size,
        threads: options.threads,
        device,
        precision: options.precision,
        classifier_cache,
        preprocess,
        tokenizer,
        frame_cache: Some(options.out.join("frames")),
    };
    let mut bar = Passes { who, bar: None };
    let mut report = Report { model: name.clone(), weights, results: Vec::new(), missing, failed: Vec::new() };
    for target in &targets {
        let outcome = match &options.task {
            Task::ZeroShot => zeroshot(model, &name, target, &run, &mut |e| bar.event(e)),
            Task::LinearProbe(task) => match target {
                // Held-out draws or captions only: nothing to train a probe on.
                Target::Builtin(_) | Target::Retrieval(_) => continue,
                _ => probe(model, &name, target, task, &run, &mut bar),
            },
        };
        bar.finish();
        match outcome {
            Ok(result) => report.results.push(result),
            Err(e) => {
                eprintln!("{who}: {}: {e}", target.name());
                report.failed.push((target.name(), e.to_string()));
            }
        }
    }
    std::fs::create_dir_all(&options.out).with_context(|| format!("creating {}", options.out.display()))?;
    write(&options.out.join("results.json"), &serde_json::to_string_pretty(&report)?)?;
    let markdown = report.markdown();
    write(&options.out.join("results.md"), &markdown)?;
    write(&options.out.join("results.csv"), &report.csv())?;
    // One file per set in CLIP_benchmark's own format, for `clip_benchmark build` to merge.
    let theirs = options.out.join("clip_benchmark");
    std::fs::create_dir_all(&theirs).with_context(|| format!("creating {}", theirs.display()))?;
    for (file, json) in report.clip_benchmark_files(&name, &report.weights) {
        write(&theirs.join(file), &json)?;
    }
    let chart = options.out.join("results.png");
    let png = results_chart(&report, &options.task).context("drawing results.png")?;
    clip_tensor::atomic::atomic_write(&chart, |f| f.write_all(&png)).with_context(|| format!("writing {}", chart.display()))?;
    println!("{markdown}");
    note(&format!("{who}: results in {} (results.png: the chart)", options.out.display()));
    Ok(())
}

/// `results.png`: our score per set beside the paper's (zero-shot, Table 11) where it has one.
fn results_chart(report: &Report, task: &Task) -> Result<Vec<u8>> {
    let rows: Vec<clip_charts::ResultBar> = report
        .results
        .iter()
        .map(|r| clip_charts::ResultBar { label: format!("{} ({})", r.name, r.metric), ours: r.value, paper: r.paper })
        .collect();
    let title = match task {
        Task::ZeroShot => format!("Zero-shot: {} ({})", report.model, short(&report.weights)),
        Task::LinearProbe(_) => format!("Linear probe: {} ({})", report.model, short(&report.weights)),
    };
    Ok(clip_charts::results(&title, "the paper (Radford et al. 2021, Table 11)", &rows)?)
}

/// A weights name short enough for a title: a path's last two components.
fn short(weights: &str) -> String {
    let parts: Vec<&str> = weights.rsplit('/').take(2).collect();
    parts.into_iter().rev().collect::<Vec<_>>().join("/")
}
