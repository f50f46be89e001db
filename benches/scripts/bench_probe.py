#!/usr/bin/env python3
"""Linear probe: `clip bench-linear-probe` against scikit-learn on the same features, one run.

Builds a photo classification set (scikit-image's bundled photos, one class each, random crops;
train and test splits in CLIP_benchmark's layout), runs `clip bench-linear-probe` with open_clip's
ViT-B-32 weights (initialised and perturbed, no download), saving the features it probes
(pre-projection, 768-d). Then, on those same features:

- accuracy: scikit-learn's `LogisticRegression(C, max_iter=1000)` (lbfgs) at the C our search
  chose, fitted on train + validation, scored on test, against our test accuracy;
- speed: the same parametric binary search over λ = 1/C (seven starts, four halvings, validation
  accuracy) with scikit-learn fits, timed, against our search's wall time.

    .venv/bin/python benches/scripts/bench_probe.py target/release/clip OUT_DIR [--train 100 --test 40]
"""
import argparse
import json
import pathlib
import random
import subprocess
import sys
import time

import numpy as np
import open_clip
import sklearn
import torch
from safetensors.numpy import load_file
from safetensors.torch import save_file
from sklearn.linear_model import LogisticRegression

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from bench_parity import crop, photos, webp, write_split  # noqa: E402
from parity import randomize  # noqa: E402

GRID = [10 ** (-6 + i / 8) for i in range(97)]


def search(train, validation):
    """The paper's parametric binary search with scikit-learn fits; returns (best λ, fits)."""
    scores = {}

    def evaluate(i):
        if i not in scores:
            model = LogisticRegression(C=1 / GRID[i], max_iter=1000).fit(*train)
            scores[i] = (model.predict(validation[0]) == validation[1]).mean()

    for i in range(0, 97, 16):
        evaluate(i)
    step = 8
    while step >= 1:
        best = max(scores, key=lambda i: (scores[i], i))
        for i in (best - step, best + step):
            if 0 <= i < 97:
                evaluate(i)
        step //= 2
    best = max(scores, key=lambda i: (scores[i], i))
    return GRID[best], len(scores)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("clip")
    parser.add_argument("out")
    parser.add_argument("--train", type=int, default=100)
    parser.add_argument("--test", type=int, default=40)
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    rng = random.Random(1)
    sources = photos()
    root = out / "photo_probe"
    for name, per_class in (("train", args.train), ("test", args.test)):
        samples = [{"webp": webp(crop(rng, sources[i % len(sources)][1])), "cls": str(i % len(sources))}
                   for i in range(per_class * len(sources))]
        write_split(root, samples, 1, name)
    (root / "classnames.txt").write_text("\n".join(label for label, _ in sources) + "\n")

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32")
    randomize(model)
    weights = out / "ViT-B-32.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    results = out / "results"
    subprocess.run([args.clip, "bench-linear-probe", "--model", "ViT-B-32", "--weights", weights, "--datasets", root,
                    "--few-shot", "0", "--save-features", out / "features", "--out", results, "--device", "cpu"],
                   check=True, stdout=subprocess.DEVNULL)
    ours = json.loads((results / "results.json").read_text())["results"][0]
    f = load_file(str(out / "features" / "photo_probe.safetensors"))
    train = (f["train_x"].astype(np.float64), f["train_y"])
    validation = (f["validation_x"].astype(np.float64), f["validation_y"])
    test = (f["test_x"].astype(np.float64), f["test_y"])

    lam = ours["probe"]["lambda"]
    both = (np.concatenate([train[0], validation[0]]), np.concatenate([train[1], validation[1]]))
    reference = LogisticRegression(C=1 / lam, max_iter=1000).fit(*both)
    sk_acc = 100 * (reference.predict(test[0]) == test[1]).mean()
    start = time.perf_counter()
    sk_lambda, sk_fits = search(train, validation)
    sk_seconds = time.perf_counter() - start

    print(f"features: train {len(train[1])}, validation {len(validation[1])}, test {len(test[1])}, dim {train[0].shape[1]}")
    print(f"accuracy at C = {1 / lam:.4g}: clip-rs {ours['acc1']:.2f}, scikit-learn {sklearn.__version__} {sk_acc:.2f}, "
          f"Δ {ours['acc1'] - sk_acc:+.2f} points")
    print(f"λ search: clip-rs {ours['probe']['search_seconds']:.2f} s ({len(ours['probe']['trials'])} fits, chose λ {lam:.3g}); "
          f"scikit-learn {sk_seconds:.2f} s ({sk_fits} fits, chose λ {sk_lambda:.3g}); "
          f"speed-up {sk_seconds / ours['probe']['search_seconds']:.1f}x")


if __name__ == "__main__":
    main()


def multilabel_set(root, rng, sources, sizes=(("train", 240), ("test", 80))):
    """A multi-label photo set in CLIP_benchmark's layout (`dataset_type.txt` = multilabel, `.npy`
    target vectors): each image is two random crops of different photos side by side, its target
    the two photos' classes."""
    import io
    from PIL import Image
    for split, count in sizes:
        samples = []
        for _ in range(count):
            a, b = rng.sample(range(len(sources)), 2)
            left, right = crop(rng, sources[a][1]), crop(rng, sources[b][1])
            image = Image.new("RGB", (left.width + right.width, max(left.height, right.height)))
            image.paste(left, (0, 0))
            image.paste(right, (left.width, 0))
            target = np.zeros(len(sources), dtype=np.float32)
            target[[a, b]] = 1
            buf = io.BytesIO()
            np.save(buf, target)
            samples.append({"webp": webp(image), "npy": buf.getvalue()})
        write_split(root, samples, 1, split)
    (root / "classnames.txt").write_text("\n".join(label for label, _ in sources) + "\n")
    (root / "dataset_type.txt").write_text("multilabel\n")


def search_multilabel(train, validation):
    """The same search with scikit-learn's one-vs-rest fits on validation 11-point mAP: the
    reference of crates/clip-eval/scripts/gen_multilabel_fixture.py. Returns (best λ, fits)."""
    sys.path.insert(0, str(ROOT / "crates/clip-eval/scripts"))
    import gen_multilabel_fixture as ml
    best, fits = ml.search(train, validation)
    return ml.GRID[best], fits


def multilabel_test_map(lam, train, validation, test):
    """scikit-learn's one-vs-rest test 11-point mAP (percent) at C = 1/λ, fitted on train + validation."""
    import gen_multilabel_fixture as ml
    both = (np.concatenate([train[0], validation[0]]), np.concatenate([train[1], validation[1]]))
    return 100 * ml.voc07_map(ml.ovr(1 / lam, *both, max_iter=1000).decision_function(test[0]), test[1])
