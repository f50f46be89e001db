#!/usr/bin/env python3
"""Times the one-vs-rest λ search at VOC2007's scale: clip-eval's batched L-BFGS search
(`examples/multilabel_search.rs`) against scikit-learn's OneVsRestClassifier fits over the same
parametric plan (gen_multilabel_fixture.search), on the same random features with planted
structure: 20 classes, 768-d, each class present in 8% of samples, train 2000, validation 500.
One thread each (OMP_NUM_THREADS=1; threadpoolctl for scikit-learn's BLAS).

    cargo build --release -p clip-eval --example multilabel_search
    LD_LIBRARY_PATH=$LIBTORCH/lib .venv/bin/python crates/clip-eval/scripts/time_multilabel_search.py \
        target/release/examples/multilabel_search OUT_DIR   (examples carry no rpath to libtorch)
"""
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
from safetensors.numpy import save_file
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import gen_multilabel_fixture as ml  # noqa: E402  (asserts scikit-learn 1.9.1, numpy 2.2.6)

CLASSES, DIM, TRAIN, VALIDATION = 20, 768, 2000, 500


def main():
    example, out = sys.argv[1], pathlib.Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    centres = rng.normal(scale=0.25, size=(CLASSES, DIM))

    def draw(n):
        y = (rng.random((n, CLASSES)) < 0.08).astype(np.int64)
        y[y.sum(1) == 0, rng.integers(0, CLASSES)] = 1
        return (y @ centres + rng.normal(size=(n, DIM))).astype(np.float32), y

    (xt, yt), (xv, yv) = draw(TRAIN), draw(VALIDATION)
    features = out / "features.safetensors"
    save_file({"train_x": xt, "train_y": yt.astype(np.float32), "validation_x": xv,
               "validation_y": yv.astype(np.float32)}, str(features))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ours = json.loads(subprocess.run([example, features], check=True, capture_output=True, text=True, env=env).stdout)
    with threadpool_limits(1):
        start = time.perf_counter()
        best, fits = ml.search((xt.astype(np.float64), yt), (xv.astype(np.float64), yv))
        theirs = time.perf_counter() - start
    print(f"clip-eval {ours['seconds']:.2f} s ({ours['fits']} fits, λ {ours['lambda']:.4g}); scikit-learn "
          f"{theirs:.2f} s ({fits} fits, λ {ml.GRID[best]:.4g}); ratio {ours['seconds'] / theirs:.3f} "
          f"({theirs / ours['seconds']:.1f}x faster)")


if __name__ == "__main__":
    main()
