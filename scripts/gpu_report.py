#!/usr/bin/env python3
"""The Python halves of scripts/gpu-bench.sh.

    python3 gpu_report.py peak
        the bf16 matrix-product peak of this GPU (8192^3 torch.matmul, best of 5 x 20), as JSON
    python3 gpu_report.py report OUT_DIR CARD MODEL BATCH EMBED_BATCH
        samples/s, MFU (against that peak), peak memory and images/s of each side, from the JSON
        files gpu-bench.sh left in OUT_DIR; writes gpu-bench.json and gpu-bench.md there
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


def report(out, card, model, batch, embed_batch):
    batch, embed_batch = int(batch), int(embed_batch)

    def load(name):
        path = os.path.join(out, f"{name}.json")
        return json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) else None

    flops = load("peak")["flops"]
    result = {"card": card, "matmul_peak_tflops": flops / 1e12, "model": model, "batch": batch, "sides": {}}
    lines = [f"### {card}: {model} training, batch {batch}, bf16 autocast", "",
             f"bf16 matrix-product peak measured in the same run: {flops / 1e12:.0f} TFLOP/s.", "",
             f"| | training samples/s | MFU | peak GPU memory (training) | image embedding, batch {embed_batch} |",
             "|---|---:|---:|---:|---:|"]
    for side, prefix in (("clip-rs", "ours"), ("open_clip", "theirs")):
        step, embed = load(f"{prefix}-step"), load(f"{prefix}-embed")
        if step is None or embed is None:
            lines.append(f"| {side} | not run (see the log) | | | |")
            continue
        mib = int(open(os.path.join(out, f"{prefix}-step.mib")).read())
        sps = step["samples_per_s"]
        mfu = sps * TRAIN_FLOPS[model] / flops
        ips = embed_batch / embed["median_s"]
        result["sides"][side] = {"step": step, "peak_mib": mib, "mfu": mfu, "embed": embed, "images_per_s": ips}
        lines.append(f"| {side} | {sps:.0f} | {100 * mfu:.1f} % | {mib} MiB | {ips:.0f} images/s |")
    with open(os.path.join(out, "gpu-bench.json"), "w") as f:
        json.dump(result, f, indent=1)
    with open(os.path.join(out, "gpu-bench.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    {"peak": peak, "report": report}[sys.argv[1]](*sys.argv[2:])
