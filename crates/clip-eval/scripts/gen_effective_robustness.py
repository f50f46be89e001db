#!/usr/bin/env python3
"""Writes crates/clip-eval/data/effective_robustness.json and
crates/clip-eval/tests/fixtures/effective_robustness_points.json: the linear fits in logit space
of accuracy under each natural distribution shift against ImageNet accuracy over the ImageNet
Testbed's standard models, from which effective robustness is measured (Taori et al. 2020,
"Measuring Robustness to Natural Distribution Shifts in Image Classification"; the CLIP paper's
§3.3 and Figures 13-14 use their testbed and this definition).

Neither paper prints the fits' coefficients, so they are refitted here from the testbed's own
published per-model top-1 accuracies, `robustness_top1s.csv` of modestyachts/imagenet-testbed at
commit 0170eec658d664289d9f61de8f90f967f49abca0 (its git blob id is checked), with the model
types of its `plotting/model_types.py` and, per set, the selection and fit of the script that
draws that set's figure (default options):

- ImageNetV2 (`paper_nat_shift_imagenetv2.py`): x `val`, y `imagenetv2-matched-frequency-format-val`,
  models with x >= 55, NatModelTypes.STANDARD;
- ImageNet-Sketch (`paper_appendix_imagenet_sketch.py`): x `val`, y `imagenet-sketch`, x >= 55,
  ModelTypes.STANDARD;
- ImageNet-R (`paper_appendix_imagenet_r.py`): x `val-on-imagenet-r-classes`, y `imagenet-r`,
  x >= 75, STANDARD (no DeepAugment model);
- ImageNet-A (`paper_imagenet_a.py`): x `val-on-imagenet-a-classes`, y `imagenet-a`, x >= 75, not
  `resnet50`, NatModelTypes.STANDARD, two fits split at x = 91.86 (its piecewise line);
- ObjectNet (`paper_objectnet.py`): x `val-on-objectnet-classes`, y `objectnet-1.0-beta`, x >= 55,
  NatModelTypes.STANDARD;

always without `subsample`, `aws` or `batch64` models and rows missing either value, fitted by
`scipy.stats.linregress` on `log(p / (1 - p))` of both accuracies (the testbed's `plotter.py`).
The csv holds the testbed's models as of 2021, a few more than the 2020 paper's 204, so the fits
are the testbed's, not necessarily digit for digit those behind the papers' figures.

    git clone https://github.com/modestyachts/imagenet-testbed TESTBED  # at 0170eec
    .venv/bin/python crates/clip-eval/scripts/gen_effective_robustness.py TESTBED
"""
import csv
import hashlib
import json
import math
import pathlib
import sys

import scipy
import scipy.stats

assert scipy.__version__ == "1.17.1", scipy.__version__

ROOT = pathlib.Path(__file__).resolve().parents[3]
COMMIT = "0170eec658d664289d9f61de8f90f967f49abca0"
CSV_BLOB = "490b62ad8c59f3317aa58183158c0d1ddb7e67e3"

# Our name: testbed x column, y column, lowest x shown and fitted, model-type map, split points
# of a piecewise fit, models left out by name.
SETS = {
    "imagenetv2": ("val", "imagenetv2-matched-frequency-format-val", 55, "nat", [], []),
    "imagenet_sketch": ("val", "imagenet-sketch", 55, "plain", [], []),
    "imagenet-r": ("val-on-imagenet-r-classes", "imagenet-r", 75, "deepaugment", [], []),
    "imagenet-a": ("val-on-imagenet-a-classes", "imagenet-a", 75, "nat", [91.86], ["resnet50"]),
    "objectnet": ("val-on-objectnet-classes", "objectnet-1.0-beta", 55, "nat", [], []),
}


def logit(accuracy):
    p = accuracy / 100.0
    return math.log(p / (1.0 - p))


def blob_id(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def main():
    testbed = pathlib.Path(sys.argv[1])
    table = (testbed / "robustness_top1s.csv").read_bytes()
    assert blob_id(table) == CSV_BLOB, "robustness_top1s.csv is not the one at " + COMMIT
    sys.path.insert(0, str(testbed / "plotting"))
    import model_types  # the testbed's own

    def standard(name, kind):
        types = model_types.model_types_map
        if name not in types:
            return False
        if kind == "nat":
            return model_types.nat_model_types_map[name] is model_types.NatModelTypes.STANDARD
        if kind == "deepaugment" and "deepaugment" in name.lower():
            return False
        return types[name] is model_types.ModelTypes.STANDARD

    rows = list(csv.DictReader(table.decode().splitlines()))
    sets, points = {}, {}
    for name, (x_col, y_col, lowest, kind, splits, excluded) in SETS.items():
        chosen = []
        for row in rows:
            model = row["model"]
            lower = model.lower()
            if not row.get(x_col) or not row.get(y_col):
                continue
            x, y = float(row[x_col]), float(row[y_col])
            if "subsample" in lower or "aws" in lower or "batch64" in lower or lower in excluded:
                continue
            if x < lowest or not standard(model, kind):
                continue
            chosen.append((model, x, y))
        bounds = [-math.inf] + splits + [math.inf]
        segments, segment_points = [], []
        for low, high in zip(bounds, bounds[1:]):
            members = [(m, x, y) for m, x, y in chosen if low < x < high]
            fit = scipy.stats.linregress([logit(x) for _, x, _ in members], [logit(y) for _, _, y in members])
            segments.append({
                "x_above": None if low == -math.inf else low,
                "x_below": None if high == math.inf else high,
                "slope": float(fit.slope),
                "intercept": float(fit.intercept),
                "r": float(fit.rvalue),
                "models": len(members),
            })
            segment_points.append([[x, y] for _, x, y in members])
        sets[name] = {"x": x_col, "y": y_col, "lowest_x": lowest, "segments": segments}
        points[name] = segment_points
        print(name, [(s["models"], round(s["slope"], 4), round(s["intercept"], 4)) for s in segments])
    data = {
        "source": "modestyachts/imagenet-testbed robustness_top1s.csv at " + COMMIT + " (blob " + CSV_BLOB + "), "
                  "refitted by crates/clip-eval/scripts/gen_effective_robustness.py",
        "transform": "logit",
        "sets": sets,
    }
    (ROOT / "crates/clip-eval/data/effective_robustness.json").write_text(json.dumps(data, indent=1) + "\n")
    (ROOT / "crates/clip-eval/tests/fixtures/effective_robustness_points.json").write_text(json.dumps(points) + "\n")


if __name__ == "__main__":
    main()
