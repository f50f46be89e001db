//! The paper's 27 zero-shot datasets (Table 9): class names and prompt templates as the paper used
//! them (openai/CLIP `data/prompts.md` and the ImageNet notebook), the metric the paper reports for
//! each, split sizes, and the paper's zero-shot numbers (Table 11) for five models. The data is
//! `data/datasets.json`, written by `scripts/gen_registry.py`.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// How a dataset is scored (the paper's Table 9 conventions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Top-1 accuracy.
    Accuracy,
    /// Mean over classes of each class's recall (balanced accuracy).
    MeanPerClassRecall,
    /// Mean over classes of VOC2007's 11-point interpolated average precision.
    #[serde(rename = "map_11point")]
    Map11point,
    /// Area under the ROC curve of the positive class (two-class sets).
    RocAuc,
    /// Mean of top-1 and top-5 accuracy (Kinetics-700).
    MeanTop1Top5,
}

impl Metric {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Accuracy => "accuracy",
            Self::MeanPerClassRecall => "mean_per_class_recall",
            Self::Map11point => "map_11point",
            Self::RocAuc => "roc_auc",
            Self::MeanTop1Top5 => "mean_top1_top5",
        }
    }
}

/// One registry entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatasetInfo {
    /// The name used on the command line and as the folder under the data root.
    pub name: String,
    /// The name in the paper's tables.
    pub title: String,
    /// The paper's metric.
    pub metric: Metric,
    /// Training examples in the paper's split.
    pub train_size: u64,
    /// Test examples in the paper's split.
    pub test_size: u64,
    /// CLIP_benchmark's names for the same data (its WebDataset folders are found under these too).
    pub clip_benchmark: Vec<String>,
    /// Class names in label order; some classes have several (FER2013), all used for the prompt.
    pub classes: Vec<Vec<String>>,
    /// Prompt templates, `{}` standing for the class name.
    pub templates: Vec<String>,
    /// The paper's zero-shot score (percent) by model name (open_clip spelling).
    pub paper_zeroshot: std::collections::BTreeMap<String, f64>,
}

impl DatasetInfo {
    /// The first name of each class.
    pub fn classnames(&self) -> Vec<String> {
        self.classes.iter().map(|names| names[0].clone()).collect()
    }

    /// The paper's zero-shot score for `model` (`ViT-B-32`, `ViT-B/32`, `RN50`, with or without
    /// `-quickgelu`).
    pub fn paper_value(&self, model: &str) -> Option<f64> {
        let key = model.trim_end_matches("-quickgelu").replace('/', "-").replace("@336px", "-336");
        self.paper_zeroshot.get(&key).copied()
    }
}

/// Every dataset, in the paper's Table 9 order.
pub fn datasets() -> &'static [DatasetInfo] {
    static REGISTRY: OnceLock<Vec<DatasetInfo>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        serde_json::from_str(include_str!("../data/datasets.json")).expect("data/datasets.json is checked by the tests")
    })
}

/// The dataset called `name` (its own name or a CLIP_benchmark name, `wds_` prefix allowed).
pub fn find(name: &str) -> Option<&'static DatasetInfo> {
    let name = name.strip_prefix("wds_").unwrap_or(name);
    datasets().iter().find(|d| d.name == name || d.clip_benchmark.iter().any(|b| b == name || b.replace('/', "-") == name))
}
