//! The paper's 27 zero-shot datasets (Table 9): class names and prompt templates as the paper used
//! them (openai/CLIP `data/prompts.md` and the ImageNet notebook), the metric the paper reports for
//! each, split sizes, the paper's zero-shot numbers (Table 11) for five models, and where
//! CLIP_benchmark keeps a copy on the Hugging Face hub. Then the five natural distribution shifts
//! of the robustness study (§3.3; [`ROBUSTNESS`]) as CLIP_benchmark defines them: ImageNet's
//! classes and 80 templates, the 200-class subsets of ImageNet-R and -A, ObjectNet's 113
//! ImageNet-overlapping classes with their ImageNet mapping, as CLIP_benchmark names them. The data is `data/datasets.json`, written by `scripts/gen_registry.py`.
//!
//! Hub names: CLIP_benchmark's `wds/<name>` is the dataset repo `clip-benchmark/wds_<name with /
//! replaced by ->` (`wds/vtab/cifar10` is `clip-benchmark/wds_vtab-cifar10`). Each `hub_repo` was
//! checked by the generator against CLIP_benchmark's own list (`benchmark/webdatasets.txt`, copied
//! to `scripts/clip_benchmark_webdatasets.txt`), except Food-101's, which that list omits. Birdsnap,
//! UCF101, Kinetics-700 and Hateful Memes have none: CLIP_benchmark does not carry them.

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
    /// CLIP_benchmark's copy on the Hugging Face hub (`clip-benchmark/wds_vtab-cifar10`), in its
    /// WebDataset layout; `None` where CLIP_benchmark has none. Pascal VOC 2007 names
    /// `wds_voc2007_multilabel` (whole images, 20-way target vectors: the paper's 11-point mAP),
    /// not `wds_voc2007` (single-label crops of each object's box, scored by accuracy).
    #[serde(default)]
    pub hub_repo: Option<String>,
    /// Class names in label order; some classes have several (FER2013), all used for the prompt.
    pub classes: Vec<Vec<String>>,
    /// Prompt templates, `{}` standing for the class name.
    pub templates: Vec<String>,
    /// The paper's zero-shot score (percent) by model name (open_clip spelling).
    pub paper_zeroshot: std::collections::BTreeMap<String, f64>,
    /// One of the natural distribution shifts of the paper's robustness study (§3.3), outside
    /// Table 9.
    #[serde(default)]
    pub robustness: bool,
    /// The ImageNet-1k index of each class where the set is scored over a subset of ImageNet's
    /// classes (ImageNet-R and -A: CLIP_benchmark's 200-class masks, in ImageNet order); empty
    /// otherwise.
    #[serde(default)]
    pub imagenet_classes: Vec<usize>,
    /// Each class's ImageNet-1k indices where a class stands for several ImageNet classes
    /// (ObjectNet: its 113 classes over 125 of ImageNet's, from the dataset's mapping files as
    /// CLIP_benchmark's `get_metadata` reads them); empty otherwise. CLIP_benchmark classifies
    /// ObjectNet over its own 113 names, so scoring does not use it.
    #[serde(default)]
    pub imagenet_mapping: Vec<Vec<usize>>,
    /// The image folder of each class in the dataset as shipped (ObjectNet's
    /// `objectnet-1.0/images/FOLDER/`, of which only these 113 of 313 are read); empty otherwise.
    #[serde(default)]
    pub data_folders: Vec<String>,
    /// Where the paper numbers come from, when not Table 11 (and whether they were checked).
    #[serde(default)]
    pub paper_note: Option<String>,
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

    /// CLIP_benchmark's name for the hub copy, as its `--dataset` takes it (`wds/vtab/cifar10`):
    /// the CLIP_benchmark name that `hub_repo` was made from.
    pub fn wds_name(&self) -> Option<String> {
        let repo = self.hub_repo.as_deref()?.strip_prefix(HUB_ORG)?.strip_prefix("/wds_")?;
        self.clip_benchmark.iter().find(|b| b.replace('/', "-") == repo).map(|b| format!("wds/{b}"))
    }
}

/// `--datasets robustness`: ImageNet and the five natural distribution shifts of the paper's
/// robustness study, ImageNet first.
pub const ROBUSTNESS: [&str; 6] = ["imagenet1k", "imagenetv2", "imagenet_sketch", "imagenet-r", "imagenet-a", "objectnet"];

/// The hub organisation holding CLIP_benchmark's WebDataset copies.
pub const HUB_ORG: &str = "clip-benchmark";

/// How a `--datasets` name points at a hub dataset repo: `hf-hub:ORG/NAME`.
pub const HUB_PREFIX: &str = "hf-hub:";

/// The repo id of an `hf-hub:ORG/NAME` dataset name (`ORG/NAME`): `None` unless the name has the
/// prefix and exactly two non-empty parts.
pub fn hub_repo_id(name: &str) -> Option<&str> {
    let id = name.strip_prefix(HUB_PREFIX)?;
    let (org, repo) = id.split_once('/')?;
    (!org.is_empty() && !repo.is_empty() && !repo.contains('/')).then_some(id)
}

/// The registry dataset whose `hub_repo` is `repo` (`clip-benchmark/wds_vtab-pets`, with or
/// without `hf-hub:`); hub ids are compared ignoring ASCII case, as the hub resolves them.
pub fn find_hub_repo(repo: &str) -> Option<&'static DatasetInfo> {
    let repo = repo.strip_prefix(HUB_PREFIX).unwrap_or(repo);
    datasets().iter().find(|d| d.hub_repo.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(repo)))
}

/// Every dataset: the paper's Table 9 order, then the robustness sets.
pub fn datasets() -> &'static [DatasetInfo] {
    static REGISTRY: OnceLock<Vec<DatasetInfo>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        serde_json::from_str(include_str!("../data/datasets.json")).expect("data/datasets.json is checked by the tests")
    })
}

/// The dataset called `name`: its own name or a CLIP_benchmark name. CLIP_benchmark's prefixed
/// forms, `wds/vtab/pets` (its `--dataset`) and `wds_vtab-pets` (a hub repo's or folder's name),
/// match CLIP_benchmark names only, so `wds/voc2007` (its box crops) is not our `voc2007`.
/// `hf-hub:` names are not looked up here (see [`find_hub_repo`]).
pub fn find(name: &str) -> Option<&'static DatasetInfo> {
    let benchmark = |d: &&DatasetInfo, n: &str| d.clip_benchmark.iter().any(|b| b == n || b.replace('/', "-") == n);
    match name.strip_prefix("wds/").or_else(|| name.strip_prefix("wds_")) {
        Some(rest) => datasets().iter().find(|d| benchmark(d, rest)),
        None => datasets().iter().find(|d| d.name == name || benchmark(d, name)),
    }
}
