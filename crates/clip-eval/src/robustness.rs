//! The summary of the paper's robustness study (§3.3, Figure 13) over a run's zero-shot results:
//! ImageNet's accuracy, each natural distribution shift's, their average, and the gap between
//! that average and ImageNet.
//!
//! The paper's *effective robustness* (Taori et al. 2020) is the accuracy on the shifted sets above
//! what a model's ImageNet accuracy predicts, the prediction being a linear fit, in logit space, of
//! accuracy under shift against ImageNet accuracy over the ImageNet Testbed's ~200 standard models.
//! Neither paper prints that fit's coefficients (Taori et al. publish the models' accuracies, from
//! which it is re-fitted), so it is not computed here: the gap reported is the plain
//! `average(shifted) − ImageNet`, in points, which the paper's Figure 14 calls the drop under
//! shift. `docs/eval.md` says the same.

use serde::Serialize;

use crate::registry::ROBUSTNESS;
use crate::report::DatasetResult;

/// Zero-shot accuracies (percent) of ImageNet and the shifted sets a run evaluated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Robustness {
    /// ImageNet top-1.
    pub imagenet: f64,
    /// Each shifted set's top-1, in the study's order, for those the run has.
    pub shifted: Vec<(String, f64)>,
    /// Mean over `shifted`.
    pub average_shifted: f64,
    /// `average_shifted − imagenet` (negative: accuracy lost under shift). Not effective
    /// robustness: see the module documentation.
    pub gap: f64,
    /// Shifted sets of the study the run lacks.
    pub missing: Vec<String>,
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
        Some(Self { imagenet, shifted, average_shifted, gap: average_shifted - imagenet, missing })
    }

    /// A Markdown paragraph.
    pub fn markdown(&self) -> String {
        let sets: Vec<String> = self.shifted.iter().map(|(n, v)| format!("{n} {v:.1}")).collect();
        let mut out = format!(
            "\nRobustness (zero-shot top-1): ImageNet {:.1}; {}; average over {} shifted sets {:.1}, gap to ImageNet {:+.1} points \
             (plain difference, not the paper's effective robustness: docs/eval.md)\n",
            self.imagenet,
            sets.join(", "),
            self.shifted.len(),
            self.average_shifted,
            self.gap
        );
        if !self.missing.is_empty() {
            out += &format!("Shifted sets not in the run: {}\n", self.missing.join(", "));
        }
        out
    }
}
