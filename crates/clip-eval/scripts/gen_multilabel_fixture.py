#!/usr/bin/env python3
"""Writes crates/clip-eval/tests/fixtures/multilabel_probe.json: scikit-learn's one-vs-rest
logistic regression on random multi-label features with planted structure, the reference for the
one-vs-rest linear probe (`clip_eval::linear_probe::fit_multilabel`, `search_lambda_multilabel`).

The data: 8 classes, 24-d features; each sample holds each class with probability 0.3 (at least
one), and its features are the sum of its classes' centres plus Gaussian noise, so classes overlap
in every sample that holds several. Train 320, validation 160, test 240; in the test targets a
few positives are marked -1, VOC's "difficult" (ignored by 11-point mAP).

Recorded:
- `fits`: `OneVsRestClassifier(LogisticRegression(C, tol=1e-10, max_iter=10000))` on train in
  float64 at three C: each class's coefficients and intercept;
- `ignored`: `LogisticRegression(C=1)` of class 0 fitted on the train rows left after marking a
  tenth of them ignored (-1), and those targets: one class's fit skips its ignored samples;
- `map_by_lambda`: for every λ of the paper's grid (1e-6 … 1e6, 8 steps a decade), the test
  11-point mAP (VOC2007 devkit, difficult samples dropped) of
  `OneVsRestClassifier(LogisticRegression(C = 1/λ, max_iter=1000))` fitted on train + validation,
  as the probe refits at the chosen λ;
- `search`: the paper's parametric binary search with those scikit-learn fits on validation mAP
  (the λ it picks and the fits it makes), for comparison.

    .venv/bin/python crates/clip-eval/scripts/gen_multilabel_fixture.py
"""
import json
import pathlib

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

assert sklearn.__version__ == "1.9.1", sklearn.__version__
assert np.__version__ == "2.2.6", np.__version__

ROOT = pathlib.Path(__file__).resolve().parents[3]
GRID = [10 ** (-6 + i / 8) for i in range(97)]
CLASSES, DIM = 8, 24


def voc07_map(scores, targets):
    """Mean over classes of the VOC2007 devkit's 11-point AP; targets < 0 are ignored."""
    aps = []
    for c in range(targets.shape[1]):
        keep = targets[:, c] >= 0
        s, positive = scores[keep, c], targets[keep, c] > 0
        order = np.argsort(-s, kind="stable")
        tp = np.cumsum(positive[order])
        fp = np.cumsum(~positive[order])
        rec = tp / positive.sum()
        prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        aps.append(sum((np.max(prec[rec >= t]) if np.sum(rec >= t) > 0 else 0) for t in np.arange(0.0, 1.1, 0.1)) / 11)
    return float(np.mean(aps))


def ovr(c, x, y, **kw):
    return OneVsRestClassifier(LogisticRegression(C=c, **kw)).fit(x, y)


def search(train, validation):
    """The paper's parametric binary search over GRID, scikit-learn fits, validation 11-point mAP."""
    scores = {}

    def evaluate(i):
        if i not in scores:
            model = ovr(1 / GRID[i], *train, max_iter=1000)
            scores[i] = voc07_map(model.decision_function(validation[0]), validation[1])

    for i in range(0, 97, 16):
        evaluate(i)
    step = 8
    while step >= 1:
        best = max(scores, key=lambda i: (scores[i], i))
        for i in (best - step, best + step):
            if 0 <= i < 97:
                evaluate(i)
        step //= 2
    return max(scores, key=lambda i: (scores[i], i)), len(scores)


def main():
    rng = np.random.default_rng(22)
    centres = rng.normal(scale=1.2, size=(CLASSES, DIM))

    def draw(n):
        y = (rng.random((n, CLASSES)) < 0.3).astype(np.int64)
        y[y.sum(1) == 0, rng.integers(0, CLASSES)] = 1
        x = y @ centres + rng.normal(scale=1.6, size=(n, DIM))
        return np.round(x, 4).astype(np.float32), y  # four decimals: a smaller fixture

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = draw(320), draw(160), draw(240)
    test_targets = y_test.copy()
    difficult = (rng.random(y_test.shape) < 0.08) & (y_test == 1)
    test_targets[difficult] = -1
    f64 = lambda a: a.astype(np.float64)  # noqa: E731  (scikit-learn fits float32 in float32)

    fits = []
    for c in (0.01, 1.0, 100.0):
        m = ovr(c, f64(x_train), y_train, tol=1e-10, max_iter=10000)
        fits.append({"C": c, "coef": [e.coef_[0].tolist() for e in m.estimators_],
                     "intercept": [float(e.intercept_[0]) for e in m.estimators_]})

    ignored_targets = y_train.copy()
    ignored_rows = rng.random(len(y_train)) < 0.1
    ignored_targets[ignored_rows, 0] = -1
    m0 = LogisticRegression(C=1.0, tol=1e-10, max_iter=10000).fit(f64(x_train[~ignored_rows]), y_train[~ignored_rows, 0])

    both = (f64(np.concatenate([x_train, x_val])), np.concatenate([y_train, y_val]))
    map_by_lambda = [voc07_map(ovr(1 / lam, *both, max_iter=1000).decision_function(f64(x_test)), test_targets)
                     for lam in GRID]
    best, fits_made = search((f64(x_train), y_train), (f64(x_val), y_val))

    out = {
        "sklearn": sklearn.__version__,
        "x_train": np.round(x_train.astype(np.float64), 4).tolist(), "y_train": y_train.tolist(),
        "x_val": np.round(x_val.astype(np.float64), 4).tolist(), "y_val": y_val.tolist(),
        "x_test": np.round(x_test.astype(np.float64), 4).tolist(), "y_test": test_targets.tolist(),
        "fits": fits,
        "ignored": {"targets": ignored_targets.tolist(), "C": 1.0, "coef": m0.coef_[0].tolist(),
                    "intercept": float(m0.intercept_[0])},
        "map_by_lambda": map_by_lambda,
        "search": {"lambda": GRID[best], "fits": fits_made, "test_map": map_by_lambda[best]},
    }
    path = ROOT / "crates/clip-eval/tests/fixtures/multilabel_probe.json"
    path.write_text(json.dumps(out) + "\n")
    print(f"{path}: scikit-learn's search chose λ {GRID[best]:.4g} ({fits_made} fits), test 11-point mAP "
          f"{100 * map_by_lambda[best]:.2f}; mAP over the grid {100 * min(map_by_lambda):.2f}–{100 * max(map_by_lambda):.2f}")


if __name__ == "__main__":
    main()
