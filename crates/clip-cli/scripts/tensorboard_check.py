#!/usr/bin/env python3
"""clip train's TensorBoard event files, read by TensorBoard's own EventAccumulator.

    tensorboard_check.py CLIP

1. A short run (a micro ViT on the built-in data, report_to = ["tensorboard"], an evaluation every
   8 steps): every scalar EventAccumulator reads has the step and value metrics.jsonl holds
   (float32), under open_clip's tags; no step is read twice.
2. The same run killed after it logged steps past its last checkpoint, then resumed: the reader
   still sees each of the 32 steps once, with the uninterrupted run's values.

Run by `cargo xtask test` when the oracles are installed (`cargo xtask setup --oracles`).
"""
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

MICRO = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
         "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
TAGS = {"train/loss": "loss", "train/lr": "lr", "train/scale": "logit_scale", "train/samples_per_second": "samples_per_s",
        "train/skipped_samples": "skipped", "train/nonfinite_steps": "nonfinite_steps"}
STEPS = 32


def setup(work):
    work.mkdir(parents=True)
    (work / "micro.json").write_text(json.dumps(MICRO))
    config = work / "train.toml"
    config.write_text(
        f'output = "{work / "run"}"\nreport_to = ["tensorboard"]\n[model]\nconfig = "{work / "micro.json"}"\n'
        '[data]\nbatch_size = 8\nsamples_per_epoch = 128\n[optim]\nepochs = 2\nwarmup = 4\n'
        '[checkpoint]\nevery = 8\nkeep = 10\n[eval]\nevery = 8\nsamples = 20\ntasks = ["colour"]\n')
    return config


def metrics(run):
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    return [l for l in lines if "loss" in l], [l for l in lines if "top1" in l]


def check(run, reference=None):
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    expected = set(TAGS) | {"val/colour-zeroshot-val-top1"}
    if tags != expected:
        sys.exit(f"tags {sorted(tags)}, expected {sorted(expected)}")
    steps, evals = metrics(run)
    if reference is not None:
        # The resumed run's metrics equal the uninterrupted run's (bitwise, as the Rust test checks);
        # here: TensorBoard's view of it equals the reference's metrics.jsonl.
        steps, evals = reference
    for tag, key in TAGS.items():
        events = acc.Scalars(tag)
        got = [(e.step, e.value) for e in events]
        want = [(l["step"], float(np.float32(l[key]))) for l in steps]
        if [s for s, _ in got] != list(range(1, STEPS + 1)):
            sys.exit(f"{tag}: steps {[s for s, _ in got]}")
        if tag == "train/samples_per_second" and reference is not None:
            continue  # timing differs between two runs
        if got != want:
            sys.exit(f"{tag}: {got[:5]}… vs {want[:5]}…")
    got = [(e.step, e.value) for e in acc.Scalars("val/colour-zeroshot-val-top1")]
    want = [(l["step"], float(np.float32(l["top1"]["colour"]))) for l in evals]
    if got != want:
        sys.exit(f"val/colour-zeroshot-val-top1: {got} vs {want}")


def main():
    binary = sys.argv[1]
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    work = pathlib.Path(tempfile.mkdtemp(prefix="clip-tensorboard-"))

    config = setup(work / "whole")
    subprocess.run([binary, "--quiet", "train", "--config", str(config)], env=env, check=True, stdout=subprocess.DEVNULL)
    check(work / "whole" / "run")
    print(f"tensorboard: {STEPS} steps × {len(TAGS)} scalars and the evaluations read back by EventAccumulator")

    config = setup(work / "killed")
    run = work / "killed" / "run"
    child = subprocess.Popen([binary, "--quiet", "train", "--config", str(config)], env=env, stdout=subprocess.DEVNULL)
    start = time.time()
    while True:
        steps = metrics(run)[0] if (run / "metrics.jsonl").exists() else []
        if (run / "checkpoints" / "step-00000008").exists() and steps and steps[-1]["step"] % 8 >= 2:
            break
        if time.time() - start > 120 or child.poll() is not None:
            sys.exit("the run ended or no checkpoint appeared before it could be killed")
        time.sleep(0.002)
    child.send_signal(signal.SIGKILL)
    child.wait()
    killed_at = metrics(run)[0][-1]["step"]
    subprocess.run([binary, "--quiet", "train", "--config", str(config), "--resume", "latest"], env=env, check=True, stdout=subprocess.DEVNULL)
    check(run, reference=metrics(work / "whole" / "run"))
    files = sorted(p.name for p in (run / "tensorboard").iterdir())
    print(f"tensorboard: killed after step {killed_at}, resumed: {len(files)} event files, every step read once")


if __name__ == "__main__":
    main()
