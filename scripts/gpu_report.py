#!/usr/bin/env python3
"""The Python halves of scripts/gpu-bench.sh.

    python3 gpu_report.py peak
        the bf16 matrix-product peak of this GPU (8192^3 torch.matmul, best of 5 x 20), as JSON
    python3 gpu_report.py report WORK OUT CARD MODEL BATCH EMBED_BATCH
        samples/s, MFU (against that peak), peak memory and images/s of each side, plain, with grad
        checkpointing and with patch dropout, from the JSON files gpu-bench.sh left in WORK;
        writes gpu-bench.json and gpu-bench.md to OUT
    python3 gpu_report.py largest WORK OUT CARD MODEL
        the largest batch of a checkpointed training step of each side, with its samples/s and
        peak memory; writes gpu-largest.json and gpu-largest.md to OUT
"""
import json
import os
import sys
import time

# Training FLOPs per sample: 3 x the forward (open_clip docs/model_profile.csv, 224 px, 77 tokens).
TRAIN_FLOPS = {"ViT-B-32": 3 * 14.78e9, "ViT-B-16": 3 * 41.09e9, "ViT-L-14": 3 * 175.33e9}


def peak():
    import torch
    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    best = 0.0
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(20):
            a @ b
        torch.cuda.synchronize()
        best = max(best, 20 * 2 * n**3 / (time.perf_counter() - start))
    print(json.dumps({"flops": best}))


def loader(work):
    def load(name):
        path = os.path.join(work, f"{name}.json")
        if not (os.path.exists(path) and os.path.getsize(path)):
            return None
        result = json.load(open(path))
        mib = os.path.join(work, f"{name}.mib")
        if os.path.exists(mib):
            result["peak_mib"] = int(open(mib).read())
        return result
    return load


SIDES = (("clip-rs", "ours"), ("open_clip", "theirs"))


def write(out, stem, result, lines):
    with open(os.path.join(out, f"{stem}.json"), "w") as f:
        json.dump(result, f, indent=1)
    with open(os.path.join(out, f"{stem}.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def report(work, out, card, model, batch, embed_batch):
    batch, embed_batch = int(batch), int(embed_batch)
    load = loader(work)
    flops = load("peak")["flops"]
    result = {"card": card, "matmul_peak_tflops": flops / 1e12, "model": model, "batch": batch, "sides": {}}
    lines = [f"### {card}: {model} training, batch {batch}, bf16 autocast", "",
             f"bf16 matrix-product peak measured in the same run: {flops / 1e12:.0f} TFLOP/s. MFU counts "
             "model FLOPs (3 x the forward): a checkpointed step's recompute is not counted; with "
             "patch dropout the image tower does about half the work, so no MFU is given.", "",
             f"| | run | training samples/s | MFU | peak GPU memory (training) | image embedding, batch {embed_batch} |",
             "|---|---|---:|---:|---:|---:|"]
    variants = (("step", "plain"), ("step-ckpt", "grad checkpointing"), ("step-pd", "patch dropout 0.5"))
    for side, prefix in SIDES:
        embed = load(f"{prefix}-embed")
        result["sides"][side] = {"embed": embed}
        for name, label in variants:
            step = load(f"{prefix}-{name}")
            shown = f"{batch_embed(embed, embed_batch)}" if name == "step" else ""
            if step is None:
                lines.append(f"| {side} | {label} | not run (see the log) | | | {shown} |")
                continue
            sps = step["samples_per_s"]
            mfu = sps * TRAIN_FLOPS[model] / flops
            result["sides"][side][name] = {**step, "mfu": mfu}
            mfu_text = "" if name == "step-pd" else f"{100 * mfu:.1f} %"
            lines.append(f"| {side} | {label} | {sps:.0f} | {mfu_text} | {step['peak_mib']} MiB | {shown} |")
    write(out, "gpu-bench", result, lines)


def batch_embed(embed, embed_batch):
    return "not run" if embed is None else f"{embed_batch / embed['median_s']:.0f} images/s"


def largest(work, out, card, model):
    load = loader(work)
    result = {"card": card, "model": model, "sides": {}}
    lines = [f"### {card}: the largest {model} training batch with grad checkpointing, bf16 autocast", "",
             "Doubling from the first batch tried, then halving the gap to the first that ran out of memory.", "",
             "| | largest batch that fits | smallest that did not | samples/s there | peak GPU memory there |",
             "|---|---:|---:|---:|---:|"]
    for side, prefix in SIDES:
        found = load(f"{prefix}-largest")
        if found is None:
            lines.append(f"| {side} | not run (see the log) | | | |")
            continue
        step = load(f"{prefix}-large-{found['largest']}") if found["largest"] else None
        result["sides"][side] = {**found, "step": step}
        failed = found["smallest_failed"] or ("none tried" if found["status"] == 0 else "an error (see the log)")
        sps = f"{step['samples_per_s']:.0f}" if step else ""
        mib = f"{step['peak_mib']} MiB" if step else ""
        lines.append(f"| {side} | {found['largest']} | {failed} | {sps} | {mib} |")
    write(out, "gpu-largest", result, lines)


if __name__ == "__main__":
    {"peak": peak, "report": report, "largest": largest}[sys.argv[1]](*sys.argv[2:])
