#!/usr/bin/env python3
"""open_clip's training step, timed the way `bench_step` (benches/src/bin/bench_step.rs) times
ours: random inputs, `model.train()`, forward, `ClipLoss`, backward, `torch.optim.AdamW` over
open_clip_train/main.py's two parameter groups (its defaults: wd 0.2, betas 0.9/0.98, eps 1e-6),
the logit-scale clamp. Prints the median of each phase and the peak RSS as JSON.

    python bench_step.py MODEL BATCH ITERS THREADS [CONFIG_JSON] [--device cuda] [--precision bf16]
                         [--grad-checkpointing] [--patch-dropout P]

MODEL is an open_clip model name; CONFIG_JSON, when given, builds the model from that open_clip
config instead (how our `tiny` preset is run here). On CUDA, each phase ends with a synchronize,
and bf16 runs the forward under `torch.autocast` as open_clip's `--precision amp_bf16` does.
--grad-checkpointing and --patch-dropout are open_clip_train's `--grad-checkpointing` and
`--force-patch-dropout`.
"""
import argparse
import json
import math
import resource
import time

import open_clip
import torch


def build(name, config_json, patch_dropout=None):
    if config_json:
        config = json.loads(config_json)
        if patch_dropout is not None:
            config["vision_cfg"]["patch_dropout"] = patch_dropout
        return open_clip.model.CLIP(**config)
    return open_clip.create_model(name, force_patch_dropout=patch_dropout)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("batch", type=int)
    p.add_argument("iters", type=int)
    p.add_argument("threads", type=int)
    p.add_argument("config_json", nargs="?")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--grad-checkpointing", action="store_true")
    p.add_argument("--patch-dropout", type=float)
    a = p.parse_args()
    name, batch, iters, device = a.model, a.batch, a.iters, torch.device(a.device)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = build(name, a.config_json, a.patch_dropout).to(device).train()
    model.set_grad_checkpointing(a.grad_checkpointing)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=a.precision == "bf16")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    exclude = lambda n, p: p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": [p for n, p in named if exclude(n, p)], "weight_decay": 0.0},
         {"params": [p for n, p in named if not exclude(n, p)], "weight_decay": 0.2}],
        lr=1e-4, betas=(0.9, 0.98), eps=1e-6)
    loss_fn = open_clip.ClipLoss()
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    images = torch.randn(batch, 3, size, size, device=device)
    texts = torch.randint(0, model.vocab_size, (batch, model.context_length), device=device)
    phases = ["forward", "loss", "backward", "grad_norm", "optimizer"]
    times = []
    def lap():
        sync()
        laps.append(time.perf_counter())

    for i in range(iters + 1):
        laps = []
        lap()
        optimizer.zero_grad()
        with autocast:
            image_features, text_features, scale = model(images, texts)
        lap()
        loss = loss_fn(image_features, text_features, scale)
        lap()
        loss.backward()
        lap()
        lap()  # open_clip takes no gradient norm without clipping.
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        lap()
        if i > 0:  # The first step warms up.
            times.append([b - a for a, b in zip(laps, laps[1:])])
    median = lambda v: sorted(v)[len(v) // 2]
    report = {"median_s": median([sum(t) for t in times])}
    report["samples_per_s"] = batch / report["median_s"]
    report.update({p: median([t[k] for t in times]) for k, p in enumerate(phases)})
    report["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device.type == "cuda":
        report["peak_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(report))


if __name__ == "__main__":
    main()
