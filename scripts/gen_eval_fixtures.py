#!/usr/bin/env python3
"""Writes crates/clip-eval/tests/fixtures/eval.json: reference values from scikit-learn 1.9 for the
metric and linear-probe tests.

- balanced accuracy (mean per-class recall) and ROC AUC (with tied scores) on random data;
- multi-label average precision: scikit-learn's `average_precision_score` per class (CLIP_benchmark's
  non-interpolated mAP) and VOC2007's 11-point AP as the devkit computes it (`voc_ap`, use_07_metric);
- `LogisticRegression(C, max_iter=10000, tol=1e-10)` (lbfgs, multinomial, run to convergence) on
  Gaussian blobs at three values of C: its coefficients, intercepts and test predictions.

    .venv/bin/python scripts/gen_eval_fixtures.py
"""
import json
import pathlib

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, balanced_accuracy_score, roc_auc_score

ROOT = pathlib.Path(__file__).resolve().parent.parent


def voc07_ap(scores, positive):
    """The VOC2007 devkit's 11-point AP of one class (voc_eval.py, use_07_metric=True)."""
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(positive[order])
    fp = np.cumsum(~positive[order])
    rec = tp / positive.sum()
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    ap = 0.0
    for t in np.arange(0.0, 1.1, 0.1):
        ap += (np.max(prec[rec >= t]) if np.sum(rec >= t) > 0 else 0) / 11.0
    return ap


def main():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 200)
    predicted = np.where(rng.random(200) < 0.6, labels, rng.integers(0, 8, 200))  # class 7 only predicted
    auc_scores = np.round(rng.normal(size=300), 1).astype(np.float32)  # rounded: many ties
    auc_labels = (rng.random(300) < auc_scores.astype(np.float64) * 0.2 + 0.4).astype(int)

    ml_rng = np.random.default_rng(1)
    ml_scores = ml_rng.normal(size=(60, 5)).astype(np.float32)
    ml_targets = (ml_rng.random((60, 5)) < 0.3).astype(int)
    ml_targets[0] = 1  # every class has a positive

    classes, dim = 4, 12
    centres = rng.normal(scale=1.5, size=(classes, dim))
    def blobs(n):
        y = rng.integers(0, classes, n)
        return (centres[y] + rng.normal(size=(n, dim))).astype(np.float32), y
    x_train, y_train = blobs(240)
    x_test, y_test = blobs(120)
    fits = []
    for c in (0.01, 1.0, 100.0):
        # In float64: scikit-learn fits float32 input in float32, short of convergence.
        model = LogisticRegression(C=c, max_iter=10000, tol=1e-10).fit(x_train.astype(np.float64), y_train)
        fits.append({"C": c, "coef": model.coef_.T.tolist(), "intercept": model.intercept_.tolist(),
                     "predicted": model.predict(x_test.astype(np.float64)).tolist(),
                     "accuracy": float((model.predict(x_test.astype(np.float64)) == y_test).mean())})
    out = {
        "sklearn": sklearn.__version__,
        "balanced": {"labels": labels.tolist(), "predicted": predicted.tolist(),
                     "value": balanced_accuracy_score(labels, predicted)},
        "roc_auc": {"scores": auc_scores.tolist(), "labels": auc_labels.tolist(),
                    "value": roc_auc_score(auc_labels, auc_scores)},
        "multilabel": {"scores": ml_scores.tolist(), "targets": ml_targets.tolist(),
                       "mean_ap": float(np.mean([average_precision_score(ml_targets[:, c], ml_scores[:, c]) for c in range(5)])),
                       "map_11point": float(np.mean([voc07_ap(ml_scores[:, c].astype(np.float64), ml_targets[:, c] == 1) for c in range(5)]))},
        "probe": {"x_train": x_train.tolist(), "y_train": y_train.tolist(), "x_test": x_test.tolist(),
                  "y_test": y_test.tolist(), "classes": classes, "fits": fits},
    }
    path = ROOT / "crates/clip-eval/tests/fixtures/eval.json"
    path.write_text(json.dumps(out) + "\n")
    print(f"{path}: balanced {out['balanced']['value']:.6f}, auc {out['roc_auc']['value']:.6f}, "
          f"probe accuracies {[f['accuracy'] for f in fits]}")


if __name__ == "__main__":
    main()
