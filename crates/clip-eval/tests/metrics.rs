use clip_eval::metrics::{
    average_precision_11point, classification_scores, map_11point, mean_average_precision, mean_per_class_recall, recall_at_k,
    roc_auc, topk_accuracy,
};
use clip_eval::registry::Metric;
use tch::Tensor;

use crate::support::{fixture, floats, ints, matrix};

#[test]
fn mean_per_class_recall_is_sklearns_balanced_accuracy() {
    let f = &fixture()["balanced"];
    let value = mean_per_class_recall(&ints(&f["predicted"]), &ints(&f["labels"]));
    assert!((value - f["value"].as_f64().unwrap()).abs() < 1e-12, "{value}");
}

#[test]
fn roc_auc_is_sklearns_with_ties() {
    let f = &fixture()["roc_auc"];
    let positive: Vec<bool> = ints(&f["labels"]).iter().map(|&l| l == 1).collect();
    let value = roc_auc(&floats(&f["scores"]), &positive).unwrap();
    assert!((value - f["value"].as_f64().unwrap()).abs() < 1e-12, "{value}");
    assert_eq!(roc_auc(&[0.1, 0.2], &[true, true]), None);
}

#[test]
fn eleven_point_ap_worked_by_hand() {
    // Ranked: + − + − +. Recall/precision: (1/3, 1), (1/3, 1/2), (2/3, 2/3), (2/3, 1/2), (1, 3/5).
    // Levels 0–0.3 see precision 1, 0.4–0.6 see 2/3, 0.7–1 see 3/5: (4 + 2 + 2.4) / 11.
    let scores = [0.9, 0.8, 0.7, 0.6, 0.5];
    let positive = [true, false, true, false, true].map(Some);
    let expected = 8.4 / 11.0;
    assert!((average_precision_11point(&scores, &positive) - expected).abs() < 1e-12);
    // A "difficult" sample is ignored wherever it ranks.
    let ignored = [Some(true), Some(false), Some(true), Some(false), Some(true), None];
    assert!((average_precision_11point(&[0.9, 0.8, 0.7, 0.6, 0.5, 1.0], &ignored) - expected).abs() < 1e-12);
    assert_eq!(average_precision_11point(&[0.3], &[Some(false)]), 0.0);
}

#[test]
fn topk_and_recall_at_k_worked_by_hand() {
    let scores = Tensor::from_slice(&[0.1f32, 0.5, 0.4, 0.0, 0.9, 0.2, 0.3, 0.8, 0.6, 0.7, 0.2, 0.1]).view([3, 4]);
    let labels = Tensor::from_slice(&[2i64, 3, 0]);
    // Row 0 ranks 1,2,0,3; row 1 ranks 0,3,2,1; row 2 ranks 1,0,2,3.
    assert_eq!(topk_accuracy(&scores, &labels, 1), Some(0.0));
    assert_eq!(topk_accuracy(&scores, &labels, 2), Some(1.0));
    assert_eq!(topk_accuracy(&scores, &labels, 5), None);
    // Several positives per query: a hit is any of them in the top k. Best positive ranks: 4, 3, 2.
    let positives = Tensor::from_slice(&[0i64, 0, 0, 1, 0, 1, 1, 0, 1, 0, 1, 1]).view([3, 4]);
    assert_eq!(recall_at_k(&scores, &positives, 1).unwrap(), 0.0);
    assert_eq!(recall_at_k(&scores, &positives, 2).unwrap(), 1.0 / 3.0);
    assert_eq!(recall_at_k(&scores, &positives, 3).unwrap(), 2.0 / 3.0);
    assert_eq!(recall_at_k(&scores, &positives, 10).unwrap(), 1.0);
    let all = classification_scores(&scores, &labels, Metric::MeanTop1Top5).unwrap();
    assert_eq!((all.acc1, all.acc5, all.value), (0.0, None, 0.0));
}

#[test]
fn multilabel_average_precision_against_sklearn_and_the_voc_devkit() {
    let f = &fixture()["multilabel"];
    let (scores, targets) = (matrix(&f["scores"]), matrix(&f["targets"]));
    let mean_ap = mean_average_precision(&scores, &targets).unwrap();
    assert!((mean_ap - f["mean_ap"].as_f64().unwrap()).abs() < 1e-9, "{mean_ap}");
    let map = map_11point(&scores, &targets).unwrap();
    assert!((map - f["map_11point"].as_f64().unwrap()).abs() < 1e-9, "{map}");
}
