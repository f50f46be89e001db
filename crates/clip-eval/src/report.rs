//! Benchmark results: one record per dataset and task, written as `results.json`, a
//! `results.md` table with the paper's column beside ours, and `results.csv`. Scores are in
//! percent, as the paper prints them.
//!
//! [`Report::clip_benchmark_files`] renders the same results as CLIP_benchmark 1.6.2's result files
//! (`clip_benchmark/cli.py`, `run`), one JSON per dataset and task, so that `clip_benchmark build`
//! merges ours with its own into one CSV.

use serde::Serialize;

use crate::registry::{datasets, find_hub_repo};

use crate::linear_probe::Trial;
use crate::metrics::ClassificationScores;
use crate::retrieval::RetrievalScores;
use crate::robustness::Robustness;

/// Few-shot probes at one k: the test score over seeds.
#[derive(Debug, Clone, Serialize)]
pub struct FewShot {
    /// Training examples per class.
    pub k: usize,
    /// The score of each seed.
    pub values: Vec<f64>,
    /// Their mean.
    pub mean: f64,
    /// Their standard deviation.
    pub std: f64,
}

impl FewShot {
    /// Summarises the scores of several seeds.
    pub fn new(k: usize, values: Vec<f64>) -> Self {
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        Self { k, values, mean, std }
    }
}

/// How a linear probe was fitted.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeDetails {
    /// The chosen L2 strength.
    pub lambda: f64,
    /// The same as scikit-learn's `C` (1/λ).
    pub c: f64,
    /// Where the validation split came from.
    pub validation: String,
    /// Training and validation examples.
    pub train_samples: u64,
    /// Validation examples.
    pub validation_samples: u64,
    /// Wall time of the λ search.
    pub search_seconds: f64,
    /// Every λ tried, the chosen one first.
    pub trials: Vec<Trial>,
    /// Few-shot probes, by k.
    pub few_shot: Vec<FewShot>,
    /// Zero-shot on the same test split, beside the few-shot probes: how many labelled examples
    /// per class it is worth.
    pub zeroshot: Option<f64>,
}

/// The result on one dataset.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetResult {
    /// Dataset name.
    pub name: String,
    /// `zeroshot_classification` or `linear_probe`.
    pub task: String,
    /// The dataset's metric.
    pub metric: String,
    /// Our score by that metric.
    pub value: f64,
    /// Top-1 accuracy (classification).
    pub acc1: Option<f64>,
    /// Top-5 accuracy (classification with five classes or more).
    pub acc5: Option<f64>,
    /// Mean per-class recall (classification).
    pub mean_per_class_recall: Option<f64>,
    /// Further scores, keyed as CLIP_benchmark names them (`image_retrieval_recall@5`,
    /// `mean_average_precision`, …).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub scores: std::collections::BTreeMap<String, f64>,
    /// Test images scored.
    pub samples: u64,
    /// Test images skipped as unreadable.
    pub skipped: u64,
    /// The paper's score for this model, where known.
    pub paper: Option<f64>,
    /// The layout the data was read from.
    pub format: String,
    /// Linear-probe details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeDetails>,
}

impl DatasetResult {
    /// A result scored `value` (a fraction) by `metric` alone; the constructors below add the rest.
    fn scored(name: String, task: &str, metric: String, value: f64, samples: u64) -> Self {
        Self {
            name,
            task: task.into(),
            metric,
            value: 100.0 * value,
            acc1: None,
            acc5: None,
            mean_per_class_recall: None,
            scores: Default::default(),
            samples,
            skipped: 0,
            paper: None,
            format: String::new(),
            probe: None,
        }
    }

    /// A retrieval result: recall@k both ways (fractions), `value` the image recall at the
    /// largest k.
    pub fn retrieval(name: String, scores: &RetrievalScores) -> Self {
        let mut recall = std::collections::BTreeMap::new();
        for (direction, list) in [("image", &scores.image_recall), ("text", &scores.text_recall)] {
            for &(k, r) in list {
                recall.insert(format!("{direction}_retrieval_recall@{k}"), 100.0 * r);
            }
        }
        let (k, value) = scores.image_recall.last().copied().unwrap_or((0, 0.0));
        Self {
            scores: recall,
            skipped: scores.skipped.samples(),
            format: "clip_benchmark_wds".into(),
            ..Self::scored(name, "zeroshot_retrieval", format!("image_retrieval_recall@{k}"), value, scores.images as u64)
        }
    }

    /// A multi-label result: 11-point mAP (the paper's metric) as `value`, and CLIP_benchmark's
    /// non-interpolated mean AP beside it (both fractions in).
    pub fn multilabel(name: String, map_11point: f64, mean_average_precision: f64, samples: u64) -> Self {
        Self {
            scores: std::collections::BTreeMap::from([("mean_average_precision".to_owned(), 100.0 * mean_average_precision)]),
            ..Self::scored(name, "zeroshot_classification", "map_11point".into(), map_11point, samples)
        }
    }

    /// A classification result from fractional scores.
    pub fn new(name: String, task: &str, metric: &str, scores: &ClassificationScores, samples: u64) -> Self {
        Self {
            acc1: Some(100.0 * scores.acc1),
            acc5: scores.acc5.map(|a| 100.0 * a),
            mean_per_class_recall: Some(100.0 * scores.mean_per_class_recall),
            ..Self::scored(name, task, metric.into(), scores.value, samples)
        }
    }
}

/// Everything one benchmark run produced. Its JSON adds `robustness`, the summary of the
/// robustness study ([`Robustness::of`]) where the run has ImageNet and a shifted set.
#[derive(Debug, Clone)]
pub struct Report {
    /// The model's name or config file.
    pub model: String,
    /// The weights file.
    pub weights: String,
    /// One entry per evaluated set.
    pub results: Vec<DatasetResult>,
    /// Sets asked for (or in the registry) but not found under the data root.
    pub missing: Vec<String>,
    /// Sets found but not evaluated, and why.
    pub failed: Vec<(String, String)>,
}

impl Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let robustness = Robustness::of(&self.results);
        let mut s = serializer.serialize_struct("Report", 5 + usize::from(robustness.is_some()))?;
        s.serialize_field("model", &self.model)?;
        s.serialize_field("weights", &self.weights)?;
        s.serialize_field("results", &self.results)?;
        s.serialize_field("missing", &self.missing)?;
        s.serialize_field("failed", &self.failed)?;
        if let Some(r) = &robustness {
            s.serialize_field("robustness", r)?;
        }
        s.end()
    }
}

fn cell(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.1}"))
}

impl Report {
    /// The results as a Markdown table, the paper's number beside ours.
    pub fn markdown(&self) -> String {
        let mut out = format!("# Results: {} ({})\n\n", self.model, self.weights);
        out += "| dataset | task | metric | ours | paper | acc1 | acc5 | mean per-class recall | samples |\n";
        out += "|---|---|---|---:|---:|---:|---:|---:|---:|\n";
        for r in &self.results {
            out += &format!(
                "| {} | {} | {} | {:.1} | {} | {} | {} | {} | {} |\n",
                r.name,
                r.task,
                r.metric,
                r.value,
                cell(r.paper),
                cell(r.acc1),
                cell(r.acc5),
                cell(r.mean_per_class_recall),
                r.samples
            );
        }
        for r in self.results.iter().filter(|r| r.probe.as_ref().is_some_and(|p| !p.few_shot.is_empty())) {
            let probe = r.probe.as_ref().map(|p| &p.few_shot[..]).unwrap_or_default();
            let shots: Vec<String> = probe.iter().map(|f| format!("k={}: {:.1} ± {:.1}", f.k, f.mean, f.std)).collect();
            out += &format!("\n{} few-shot linear probe ({}): {}", r.name, r.metric, shots.join(", "));
            if let Some(z) = r.probe.as_ref().and_then(|p| p.zeroshot) {
                out += &match probe.iter().find(|f| f.mean >= z) {
                    Some(f) => format!("; zero-shot {z:.1}, matched by k={} examples per class", f.k),
                    None => format!("; zero-shot {z:.1}, above every few-shot probe"),
                };
            }
            out += "\n";
        }
        for r in self.results.iter().filter(|r| !r.scores.is_empty()) {
            let parts: Vec<String> = r.scores.iter().map(|(k, v)| format!("{k} {v:.1}")).collect();
            out += &format!("\n{}: {}\n", r.name, parts.join(", "));
        }
        if let Some(r) = Robustness::of(&self.results) {
            out += &r.markdown();
        }
        if !self.missing.is_empty() {
            out += &format!("\nNot found under the data root: {}\n", self.missing.join(", "));
        }
        for (name, why) in &self.failed {
            out += &format!("\nFailed: {name}: {why}\n");
        }
        out
    }

    /// One CSV row per result and metric: each further score (recall@k, …) adds a row.
    pub fn csv(&self) -> String {
        let mut out = String::from("name,task,metric,value,paper,acc1,acc5,mean_per_class_recall,samples,skipped,model,weights\n");
        let opt = |v: Option<f64>| v.map_or_else(String::new, |v| format!("{v:.4}"));
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        for r in &self.results {
            let extra = r.scores.iter().filter(|(k, _)| **k != r.metric).map(|(k, v)| (k.as_str(), *v));
            for (metric, value) in std::iter::once((r.metric.as_str(), r.value)).chain(extra) {
                out += &format!(
                    "{},{},{},{:.4},{},{},{},{},{},{},{},{}\n",
                    quote(&r.name),
                    r.task,
                    metric,
                    value,
                    opt(r.paper),
                    opt(r.acc1),
                    opt(r.acc5),
                    opt(r.mean_per_class_recall),
                    r.samples,
                    r.skipped,
                    quote(&self.model),
                    quote(&self.weights)
                );
            }
        }
        out
    }
}

/// The language CLIP_benchmark records for English class names and prompts.
const LANGUAGE: &str = "en";

/// `x` as Python's `json.dump` writes a float (`float.__repr__`): the shortest digits that read
/// back to `x`, positional from 1e-4 up to 1e16 (`0.5`, `1.0`), else with an exponent of at least
/// two digits and a sign (`1e-05`, `1.5e+16`); and the bare `NaN`, `Infinity`, `-Infinity` that
/// Python writes and reads by default. Rust's `{:?}` has the same digits and thresholds; only its
/// exponent is spelt differently (`1e-5`).
fn json_float(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    let s = format!("{x:?}");
    match s.split_once('e') {
        Some((mantissa, exponent)) => {
            let (sign, digits) = exponent.strip_prefix('-').map_or(("+", exponent), |d| ("-", d));
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// `s` as a JSON string the way Python's `json.dump` writes it (`ensure_ascii`: everything past
/// ASCII as `\uXXXX` escapes of its UTF-16 units).
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='\u{7f}' => out.push(c),
            _ => {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// A metric value in a CLIP_benchmark file.
enum Value {
    Float(f64),
    Int(i64),
    Bool(bool),
}

impl Value {
    fn json(&self) -> String {
        match self {
            Self::Float(x) => json_float(*x),
            Self::Int(i) => i.to_string(),
            Self::Bool(b) => b.to_string(),
        }
    }
}

/// A score of ours (percent) as CLIP_benchmark stores it: a fraction. An absent score (top-5 with
/// fewer than five classes) is NaN, as CLIP_benchmark writes it.
fn fraction(percent: Option<f64>) -> Value {
    Value::Float(percent.map_or(f64::NAN, |p| p / 100.0))
}

/// The dataset name CLIP_benchmark would record for `result` (its `dataset` key, which
/// `clip_benchmark build` keeps as a column):
///
/// - a registry set read from CLIP_benchmark's WebDataset layout (format `clip_benchmark_wds`,
///   what the hub copies are) takes the `wds/` name its `--dataset` needs for that copy,
///   `wds/vtab/cifar10`;
/// - a registry set read from another layout takes its first CLIP_benchmark name, the builder's
///   own name for the original files (`cifar10`, `vtab/pets`, `voc2007_multilabel`);
/// - a set named by a registry set's hub repo (`clip-benchmark/wds_vtab-pets`, a hub snapshot
///   evaluated as a folder) takes that set's `wds/` name;
/// - anything else (sets CLIP_benchmark lacks, built-in tasks, custom folders) keeps our name.
pub fn clip_benchmark_dataset(result: &DatasetResult) -> String {
    if let Some(wds) = find_hub_repo(&result.name).and_then(|info| info.wds_name()) {
        return wds;
    }
    let Some(info) = datasets().iter().find(|d| d.name == result.name) else { return result.name.clone() };
    let wds = (result.format == "clip_benchmark_wds").then(|| info.wds_name()).flatten();
    wds.or_else(|| info.clip_benchmark.first().cloned()).unwrap_or_else(|| result.name.clone())
}

/// The metrics of `r` under CLIP_benchmark's keys, in its order, as fractions.
fn clip_benchmark_metrics(r: &DatasetResult) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = Vec::new();
    let probe = r.task == "linear_probe";
    let prefix = if probe { "lp_" } else { "" };
    if r.acc1.is_some() {
        out.push((format!("{prefix}acc1"), fraction(r.acc1)));
        out.push((format!("{prefix}acc5"), fraction(r.acc5)));
        out.push((format!("{prefix}mean_per_class_recall"), fraction(r.mean_per_class_recall)));
    }
    if let Some(&map) = r.scores.get("mean_average_precision") {
        out.push(("mean_average_precision".into(), fraction(Some(map))));
    }
    // Recall@k: image then text at each k, k ascending (CLIP_benchmark's loop over --recall_k).
    let mut ks: Vec<u64> = r.scores.keys().filter_map(|key| key.strip_prefix("image_retrieval_recall@")?.parse().ok()).collect();
    ks.sort_unstable();
    for k in ks {
        for direction in ["image", "text"] {
            let key = format!("{direction}_retrieval_recall@{k}");
            if let Some(&v) = r.scores.get(&key) {
                out.push((key, fraction(Some(v))));
            }
        }
    }
    // The paper's metric where CLIP_benchmark has no key for it (map_11point, roc_auc,
    // mean_top1_top5); accuracy is acc1.
    let metric = format!("{prefix}{}", r.metric);
    if r.metric != "accuracy" && !out.iter().any(|(k, _)| *k == metric) {
        out.push((metric, fraction(Some(r.value))));
    }
    if let (true, Some(p)) = (probe, &r.probe) {
        // CLIP_benchmark's probe settings that mean the same here: the full training set
        // (`fewshot_k` -1), the seed of the validation hold-out, features not normalised. Its
        // `weight_decay` and `epochs` (AdamW) have no counterpart in an L-BFGS fit of
        // scikit-learn's objective, whose strength is written as `lambda` and `C` instead.
        out.push(("fewshot_k".into(), Value::Int(-1)));
        out.push(("seed".into(), Value::Int(0)));
        out.push(("normalized".into(), Value::Bool(false)));
        out.push(("lambda".into(), Value::Float(p.lambda)));
        out.push(("C".into(), Value::Float(p.c)));
    }
    out
}

impl Report {
    /// The results as CLIP_benchmark 1.6.2's result files: `(file name, JSON text)`, one per
    /// result, for the caller to write. `model` and `pretrained` are the model name and pretrained
    /// tag as the user gave them (`ViT-B-32`, `openai`); `clip_benchmark build` joins them into its
    /// `model_fullname` column.
    ///
    /// The file name is CLIP_benchmark's default `{dataset}_{pretrained}_{model}_{language}_{task}.json`,
    /// the dataset without `wds/` and with `/` as `_`, the tag reduced to its last path component
    /// (CLIP_benchmark takes a weights file's base name), and `/` in the model name written `_` so
    /// that the name stays one file. The JSON is what CLIP_benchmark dumps: `dataset` (see
    /// [`clip_benchmark_dataset`]), `model`, `pretrained`, `task`, `metrics` and `language`
    /// (`en`), in that order and in Python's `json.dump` spacing. Metrics are fractions, not
    /// percent, under CLIP_benchmark's keys (see `docs/eval.md`); an absent top-5 accuracy is
    /// the bare `NaN` CLIP_benchmark writes. Few-shot probes have no file.
    pub fn clip_benchmark_files(&self, model: &str, pretrained: &str) -> Vec<(String, String)> {
        let tag = pretrained.rsplit(['/', '\\']).find(|s| !s.is_empty()).unwrap_or(pretrained);
        self.results
            .iter()
            .map(|r| {
                let dataset = clip_benchmark_dataset(r);
                let slug = dataset.strip_prefix("wds/").unwrap_or(&dataset).replace('/', "_");
                let name = format!("{slug}_{tag}_{}_{LANGUAGE}_{}.json", model.replace('/', "_"), r.task);
                let metrics: Vec<String> =
                    clip_benchmark_metrics(r).iter().map(|(k, v)| format!("{}: {}", json_string(k), v.json())).collect();
                let json = format!(
                    "{{\"dataset\": {}, \"model\": {}, \"pretrained\": {}, \"task\": {}, \"metrics\": {{{}}}, \"language\": {}}}",
                    json_string(&dataset),
                    json_string(model),
                    json_string(pretrained),
                    json_string(&r.task),
                    metrics.join(", "),
                    json_string(LANGUAGE)
                );
                (name, json)
            })
            .collect()
    }
}
