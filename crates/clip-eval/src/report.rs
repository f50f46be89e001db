//! Benchmark results: one record per dataset and task, written as `results.json`, a
//! `results.md` table with the paper's column beside ours, and `results.csv`. Scores are in
//! percent, as the paper prints them.

use serde::Serialize;

use crate::linear_probe::Trial;
use crate::metrics::ClassificationScores;
use crate::retrieval::RetrievalScores;

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

/// Everything one benchmark run produced.
#[derive(Debug, Clone, Serialize)]
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
