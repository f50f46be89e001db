//! The summary of the paper's robustness study (§3.3, Figures 13-14) over a run's zero-shot
//! results: ImageNet's accuracy, each natural distribution shift's, their average, the plain gap
//! between that average and ImageNet, and each set's *effective robustness*.
//!
//! Effective robustness (Taori et al. 2020, "Measuring Robustness to Natural Distribution Shifts
//! in Image Classification", which the CLIP paper follows) is a model's accuracy under a shift
//! above what its ImageNet accuracy predicts, the prediction being a linear fit in logit space,
//! `logit(acc_shift) = slope · logit(acc_ImageNet) + intercept`, over the ImageNet Testbed's
//! standard models. For ImageNet-R, -A and ObjectNet the ImageNet accuracy is class-subsampled:
//! top-1 of ImageNet's validation images of the set's classes, over those classes only (ObjectNet:
//! each of its 113 classes scoring the maximum over its ImageNet classes), the testbed's
//! `val-on-X-classes`, which [`crate::suite::zeroshot`] adds to ImageNet's result as
//! `acc1_on_X_classes`. Neither paper prints the fits; [`fits`] are refitted from the testbed's
//! published per-model accuracies (`data/effective_robustness.json`, written by
//! `scripts/gen_effective_robustness.py`). `docs/eval.md` says the same.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::registry::ROBUSTNESS;
use crate::report::DatasetResult;

/// One piece of a fit in logit space, for ImageNet accuracies in `[x_above, x_below)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Lower end of the piece (percent); `None`: unbounded.
    pub x_above: Option<f64>,
    /// Upper end (percent, excluded); `None`: unbounded.
    pub x_below: Option<f64>,
    /// `logit(y) = slope · logit(x) + intercept`.
    pub slope: f64,
    /// See `slope`.
    pub intercept: f64,
    /// The fit's correlation coefficient.
    pub r: f64,
    /// Testbed models fitted.
    pub models: usize,
}

/// The testbed's fit for one shifted set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fit {
    /// The testbed's ImageNet column (`val`, `val-on-imagenet-r-classes`, …).
    pub x: String,
    /// The testbed's column of the shifted set.
    pub y: String,
    /// The lowest ImageNet accuracy among the models fitted (percent).
    pub lowest_x: f64,
    /// The line, or pieces of it (ImageNet-A's fit is piecewise at 91.86).
    pub segments: Vec<Segment>,
}

/// `log(p / (1 − p))` of a percentage.
pub fn logit(percent: f64) -> f64 {
    let p = percent / 100.0;
    (p / (1.0 - p)).ln()
}

/// The percentage whose [`logit`] is `z`.
pub fn inverse_logit(z: f64) -> f64 {
    100.0 / (1.0 + (-z).exp())
}

impl Fit {
    /// The accuracy under shift (percent) the fit predicts for ImageNet accuracy `x` (percent).
    pub fn predict(&self, x: f64) -> f64 {
        let inside = |s: &&Segment| s.x_above.is_none_or(|a| x >= a) && s.x_below.is_none_or(|b| x < b);
        let segment = self.segments.iter().find(inside).unwrap_or(&self.segments[self.segments.len() - 1]);
        inverse_logit(segment.slope * logit(x) + segment.intercept)
    }

    /// The name of the ImageNet score this fit reads from ImageNet's result: `None` for the plain
    /// top-1, or the class-subsampled `acc1_on_X_classes`.
    pub fn imagenet_score(&self) -> Option<String> {
        let set = self.x.strip_prefix("val-on-")?.strip_suffix("-classes")?;
        Some(format!("acc1_on_{set}_classes"))
    }
}

#[derive(Deserialize)]
struct FitsFile {
    sets: BTreeMap<String, Fit>,
}

/// The testbed's fits by our set names (`imagenetv2`, …).
pub fn fits() -> &'static BTreeMap<String, Fit> {
    static FITS: OnceLock<BTreeMap<String, Fit>> = OnceLock::new();
    FITS.get_or_init(|| {
        let file: FitsFile = serde_json::from_str(include_str!("../data/effective_robustness.json")).expect("data/effective_robustness.json is checked by the tests");
        file.sets
    })
}

/// One shifted set's effective robustness.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Effective {
    /// The set.
    pub name: String,
    /// The ImageNet accuracy the fit reads (percent; class-subsampled where the fit's is).
    pub imagenet: f64,
    /// The accuracy under shift the fit predicts from it.
    pub predicted: f64,
    /// The set's accuracy.
    pub accuracy: f64,
    /// `accuracy − predicted`, in points.
    pub effective_robustness: f64,
}

/// Zero-shot accuracies (percent) of ImageNet and the shifted sets a run evaluated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Robustness {
    /// ImageNet top-1.
    pub imagenet: f64,
    /// Each shifted set's top-1, in the study's order, for those the run has.
    pub shifted: Vec<(String, f64)>,
    /// Mean over `shifted`.
    pub average_shifted: f64,
    /// `average_shifted − imagenet` (negative: accuracy lost under shift); the plain difference,
    /// not effective robustness.
    pub gap: f64,
    /// Shifted sets of the study the run lacks.
    pub missing: Vec<String>,
    /// Each shifted set's effective robustness, where ImageNet's result has the accuracy its fit
    /// reads.
    pub effective: Vec<Effective>,
    /// Mean of `effective`'s values (`None` without any).
    pub average_effective_robustness: Option<f64>,
}

impl Robustness {
    /// The summary of `results`' zero-shot classification entries; `None` without ImageNet or
    /// without a shifted set.
    pub fn of(results: &[DatasetResult]) -> Option<Self> {
        let value = |name: &str| results.iter().find(|r| r.name == name && r.task == "zeroshot_classification").map(|r| r.value);
        let imagenet = value(ROBUSTNESS[0])?;
        let (mut shifted, mut missing) = (Vec::new(), Vec::new());
        for name in &ROBUSTNESS[1..] {
            match value(name) {
                Some(v) => shifted.push((name.to_string(), v)),
                None => missing.push(name.to_string()),
            }
        }
        if shifted.is_empty() {
            return None;
        }
        let average_shifted = shifted.iter().map(|(_, v)| v).sum::<f64>() / shifted.len() as f64;
        let imagenet_result = results.iter().find(|r| r.name == ROBUSTNESS[0] && r.task == "zeroshot_classification")?;
        let effective: Vec<Effective> = shifted
            .iter()
            .filter_map(|(name, accuracy)| {
                let fit = fits().get(name)?;
                let x = match fit.imagenet_score() {
                    None => imagenet,
                    Some(key) => *imagenet_result.scores.get(&key)?,
                };
                let predicted = fit.predict(x);
                Some(Effective { name: name.clone(), imagenet: x, predicted, accuracy: *accuracy, effective_robustness: accuracy - predicted })
            })
            .collect();
        let average_effective_robustness = (!effective.is_empty()).then(|| effective.iter().map(|e| e.effective_robustness).sum::<f64>() / effective.len() as f64);
        Some(Self { imagenet, shifted, average_shifted, gap: average_shifted - imagenet, missing, effective, average_effective_robustness })
    }

    /// A Markdown paragraph.
    pub fn markdown(&self) -> String {
        let sets: Vec<String> = self.shifted.iter().map(|(n, v)| format!("{n} {v:.1}")).collect();
        let mut out = format!(
            "\nRobustness (zero-shot top-1): ImageNet {:.1}; {}; average over {} shifted sets {:.1}, gap to ImageNet {:+.1} points \
             (plain difference)\n",
            self.imagenet,
            sets.join(", "),
            self.shifted.len(),
            self.average_shifted,
            self.gap
        );
        if let Some(average) = self.average_effective_robustness {
            let sets: Vec<String> = self.effective.iter().map(|e| format!("{} {:+.1} ({:.1} against {:.1} predicted from ImageNet {:.1})", e.name, e.effective_robustness, e.accuracy, e.predicted, e.imagenet)).collect();
            out += &format!(
                "Effective robustness (Taori et al. 2020; ImageNet Testbed fits in logit space, docs/eval.md): {}; average over {} sets {:+.1} points\n",
                sets.join(", "),
                self.effective.len(),
                average
            );
        }
        if !self.missing.is_empty() {
            out += &format!("Shifted sets not in the run: {}\n", self.missing.join(", "));
        }
        out
    }
}
