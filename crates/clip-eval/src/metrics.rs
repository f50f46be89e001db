//! Scores: top-k accuracy, mean per-class recall, VOC2007's 11-point mAP, ROC AUC, and retrieval
//! recall@k. Each follows the definition its reference uses (CLIP_benchmark for accuracy and
//! recall@k, scikit-learn's `balanced_accuracy_score` and `roc_auc_score`, the VOC2007 devkit for
//! 11-point AP), so numbers compare one to one.

use tch::{Kind, Tensor};

use crate::registry::Metric;

/// Fraction of rows of `scores` (`[n, classes]`) whose label is among the `k` highest; `None`
/// when there are fewer than `k` classes (CLIP_benchmark reports NaN there).
pub fn topk_accuracy(scores: &Tensor, labels: &Tensor, k: i64) -> Option<f64> {
    let (n, classes) = scores.size2().ok()?;
    if k > classes || n == 0 {
        return None;
    }
    let (_, top) = scores.topk(k, -1, true, true);
    let hit = top.eq_tensor(&labels.view([-1, 1])).any_dim(1, false);
    Some(hit.to_kind(Kind::Double).mean(Kind::Double).double_value(&[]))
}

/// Mean over the classes present in `labels` of the fraction of their samples predicted right
/// (scikit-learn's balanced accuracy).
pub fn mean_per_class_recall(predicted: &[i64], labels: &[i64]) -> f64 {
    let mut per_class = std::collections::BTreeMap::<i64, (u64, u64)>::new();
    for (&p, &l) in predicted.iter().zip(labels) {
        let e = per_class.entry(l).or_default();
        e.0 += u64::from(p == l);
        e.1 += 1;
    }
    let recalls: Vec<f64> = per_class.values().map(|&(hit, all)| hit as f64 / all as f64).collect();
    recalls.iter().sum::<f64>() / recalls.len().max(1) as f64
}

/// VOC2007's 11-point interpolated average precision of one class: the mean over recall levels
/// 0, 0.1, …, 1 of the best precision at that recall or above. `positive[i]` is `Some(true)`
/// for a positive, `Some(false)` for a negative, `None` for an ignored ("difficult") sample.
pub fn average_precision_11point(scores: &[f32], positive: &[Option<bool>]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).filter(|&i| positive[i].is_some()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let total = order.iter().filter(|&&i| positive[i] == Some(true)).count();
    if total == 0 {
        return 0.0;
    }
    let (mut tp, mut curve) = (0usize, Vec::with_capacity(order.len()));
    for (rank, &i) in order.iter().enumerate() {
        tp += usize::from(positive[i] == Some(true));
        curve.push((tp as f64 / total as f64, tp as f64 / (rank + 1) as f64));
    }
    (0..=10)
        .map(|t| {
            let level = f64::from(t) / 10.0;
            curve.iter().filter(|(recall, _)| *recall >= level).map(|&(_, p)| p).fold(0.0, f64::max)
        })
        .sum::<f64>()
        / 11.0
}

/// Mean over classes of [`average_precision_11point`]: `scores` and `targets` are `[n, classes]`,
/// targets 1 (positive), 0 (negative) or -1 (ignored).
pub fn map_11point(scores: &Tensor, targets: &Tensor) -> tch::Result<f64> {
    let (_, classes) = scores.size2()?;
    let mut total = 0.0;
    for c in 0..classes {
        let s = Vec::<f32>::try_from(scores.select(1, c).to_kind(Kind::Float).contiguous())?;
        let t = Vec::<i64>::try_from(targets.select(1, c).to_kind(Kind::Int64).contiguous())?;
        let positive: Vec<Option<bool>> = t.iter().map(|&v| (v >= 0).then_some(v > 0)).collect();
        total += average_precision_11point(&s, &positive);
    }
    Ok(total / classes.max(1) as f64)
}

/// Mean over classes of non-interpolated average precision (the mean precision at the rank of each
/// positive; torchnet's meter, which CLIP_benchmark reports as `mean_average_precision` for
/// multi-label sets). `scores` and `targets` are `[n, classes]`, targets 1 or 0.
pub fn mean_average_precision(scores: &Tensor, targets: &Tensor) -> tch::Result<f64> {
    let (n, classes) = scores.size2()?;
    let ranks = Tensor::arange_start(1, n + 1, (Kind::Double, scores.device()));
    let mut total = 0.0;
    for c in 0..classes {
        let (_, order) = scores.select(1, c).sort(0, true);
        let truth = targets.select(1, c).to_kind(Kind::Double).index_select(0, &order);
        let precision = truth.cumsum(0, Kind::Double) / &ranks;
        let positives = truth.sum(Kind::Double).double_value(&[]).max(1.0);
        total += (precision * truth).sum(Kind::Double).double_value(&[]) / positives;
    }
    Ok(total / classes.max(1) as f64)
}

/// Area under the ROC curve: the probability that a random positive outscores a random negative,
/// ties counting half (scikit-learn's `roc_auc_score`). `None` without both kinds of sample.
pub fn roc_auc(scores: &[f32], positive: &[bool]) -> Option<f64> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut start) = (0.0f64, 0usize);
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        // Tied scores share the mean of their 1-based ranks.
        let mean_rank = (start + 1 + end) as f64 / 2.0;
        rank_sum += mean_rank * order[start..end].iter().filter(|&&i| positive[i]).count() as f64;
        start = end;
    }
    let p = positive.iter().filter(|&&x| x).count() as f64;
    let n = positive.len() as f64 - p;
    (p > 0.0 && n > 0.0).then(|| (rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// Fraction of queries (rows of `scores`, `[queries, items]`) with at least one positive item
/// (`positives`, same shape, boolean) among their `k` best-scoring items (CLIP_benchmark's recall@k).
pub fn recall_at_k(scores: &Tensor, positives: &Tensor, k: i64) -> tch::Result<f64> {
    let (_, items) = scores.size2()?;
    let (_, top) = scores.topk(k.min(items), -1, true, true);
    let hit = positives.to_kind(Kind::Bool).gather(1, &top, false).any_dim(1, false);
    Ok(hit.to_kind(Kind::Double).mean(Kind::Double).double_value(&[]))
}

/// Every classification score of one split, as fractions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassificationScores {
    /// Top-1 accuracy.
    pub acc1: f64,
    /// Top-5 accuracy (`None` below five classes).
    pub acc5: Option<f64>,
    /// Balanced accuracy.
    pub mean_per_class_recall: f64,
    /// The dataset's own metric.
    pub value: f64,
}

/// Scores `scores` (`[n, classes]`) against single `labels` (`[n]`) by every measure, and by
/// `metric` as `value`. With single labels, 11-point mAP treats each sample as positive for its
/// class only; ROC AUC (two classes) ranks by the margin of class 1 over class 0.
pub fn classification_scores(scores: &Tensor, labels: &Tensor, metric: Metric) -> tch::Result<ClassificationScores> {
    let (_, classes) = scores.size2()?;
    let predicted = Vec::<i64>::try_from(scores.argmax(-1, false))?;
    let truth = Vec::<i64>::try_from(labels.to_kind(Kind::Int64))?;
    let acc1 = topk_accuracy(scores, labels, 1).unwrap_or(0.0);
    let acc5 = topk_accuracy(scores, labels, 5);
    let mean_per_class_recall = mean_per_class_recall(&predicted, &truth);
    let value = match metric {
        Metric::Accuracy => acc1,
        Metric::MeanPerClassRecall => mean_per_class_recall,
        Metric::MeanTop1Top5 => (acc1 + acc5.unwrap_or(acc1)) / 2.0,
        Metric::Map11point => map_11point(scores, &labels.onehot(classes))?,
        Metric::RocAuc => {
            let margin = Vec::<f32>::try_from((scores.select(1, 1) - scores.select(1, 0)).to_kind(Kind::Float))?;
            let positive: Vec<bool> = truth.iter().map(|&l| l == 1).collect();
            roc_auc(&margin, &positive).unwrap_or(f64::NAN)
        }
    };
    Ok(ClassificationScores { acc1, acc5, mean_per_class_recall, value })
}
