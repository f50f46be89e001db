"""Training loss curves on real photos with and without scaled JPEG decoding (issue 19).

Makes a photo mix with source captions (`gen_photos.py --captions`), trains `tiny-vit` from scratch
on it with `data.scaled_decode` true and false for each seed, and prints a Markdown table: mean
loss over step windows per run, then the mean per-step |Δloss| between the two settings of a seed
against that between seeds of one setting (the noise the decode difference is measured against).

    .venv/bin/python benches/scripts/scaled_decode_curves.py --clip target/release/clip \
        --work /tmp/lc [--seeds 0 1] [--epochs 8] [--count 2000]
"""

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def losses(run):
    with open(os.path.join(run, "metrics.jsonl")) as f:
        return [v["loss"] for v in map(json.loads, f) if "loss" in v]


def train(clip, work, seed, scaled, epochs):
    run = os.path.join(work, f"run-{'scaled' if scaled else 'full'}-s{seed}")
    if os.path.exists(os.path.join(run, "summary.json")):
        return run
    subprocess.run(["rm", "-rf", run], check=True)
    sets = {
        "output": run, "seed": seed, "model.preset": "tiny-vit",
        "data.source": "csv:" + os.path.join(work, "pairs.csv"), "data.samples_per_epoch": 0,
        "data.batch_size": 64, "data.workers": 2, "data.scaled_decode": str(scaled).lower(),
        "optim.epochs": epochs, "optim.warmup": 20, "checkpoint.every": 0, "eval.tasks": "[]",
    }
    args = [clip, "train", "--quiet"] + [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return run


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clip", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    if not os.path.exists(os.path.join(args.work, "pairs.csv")):
        subprocess.run([sys.executable, os.path.join(HERE, "gen_photos.py"), os.path.join(args.work, "photos"),
                        "--count", str(args.count), "--seed", "5", "--captions", os.path.join(args.work, "pairs.csv")], check=True)
    curves = {(seed, scaled): losses(train(args.clip, args.work, seed, scaled, args.epochs))
              for seed in args.seeds for scaled in (True, False)}
    n = min(map(len, curves.values()))
    windows = [(0, 50), (n // 2 - 25, n // 2 + 25), (n - 50, n)]
    print("| run | " + " | ".join(f"mean loss, steps {a + 1}–{b}" for a, b in windows) + " | final |")
    print("|---|" + "---:|" * (len(windows) + 1))
    for (seed, scaled), v in curves.items():
        cells = " | ".join(f"{statistics.mean(v[a:b]):.4f}" for a, b in windows)
        print(f"| seed {seed}, {'scaled' if scaled else 'full'} decode | {cells} | {v[n - 1]:.4f} |")

    def gap(a, b):
        return statistics.mean(abs(x - y) for x, y in zip(a[:n], b[:n]))

    print()
    for seed in args.seeds:
        print(f"- seed {seed}, scaled against full decode: mean |Δloss| per step {gap(curves[seed, True], curves[seed, False]):.4f}")
    for scaled in (True, False):
        for s, t in itertools.combinations(args.seeds, 2):
            print(f"- {'scaled' if scaled else 'full'} decode, seed {s} against seed {t}: {gap(curves[s, scaled], curves[t, scaled]):.4f}")


if __name__ == "__main__":
    main()
