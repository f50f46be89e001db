#!/usr/bin/env python3
"""open_clip's training step, timed the way `bench_step` (benches/src/bin/bench_step.rs) times
ours: random inputs, `model.train()`, forward, `ClipLoss`, backward, `torch.optim.AdamW` over
open_clip_train/main.py's two parameter groups (its defaults: wd 0.2, betas 0.9/0.98, eps 1e-6),
the logit-scale clamp. Prints the median of each phase and the peak RSS as JSON.

    python bench_step.py MODEL BATCH ITERS THREADS [CONFIG_JSON]

MODEL is an open_clip model name; CONFIG_JSON, when given, builds the model from that open_clip
config instead (how our `tiny` preset is run here).
"""
import json
import math
import resource
import sys
import time

import open_clip
import torch


def build(name, config_json):
    if config_json:
        return open_clip.model.CLIP(**json.loads(config_json))
    return open_clip.create_model(name)


def main():
    name, batch, iters, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    config_json = sys.argv[5] if len(sys.argv) > 5 else None
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build(name, config_json).train()
    exclude = lambda n, p: p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": [p for n, p in named if exclude(n, p)], "weight_decay": 0.0},
         {"params": [p for n, p in named if not exclude(n, p)], "weight_decay": 0.2}],
        lr=1e-4, betas=(0.9, 0.98), eps=1e-6)
    loss_fn = open_clip.ClipLoss()
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    images = torch.randn(batch, 3, size, size)
    texts = torch.randint(0, model.vocab_size, (batch, model.context_length))
    phases = ["forward", "loss", "backward", "grad_norm", "optimizer"]
    times = []
    for i in range(iters + 1):
        laps = [time.perf_counter()]
        optimizer.zero_grad()
        image_features, text_features, scale = model(images, texts)
        laps.append(time.perf_counter())
        loss = loss_fn(image_features, text_features, scale)
        laps.append(time.perf_counter())
        loss.backward()
        laps.append(time.perf_counter())
        laps.append(time.perf_counter())  # open_clip takes no gradient norm without clipping.
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        laps.append(time.perf_counter())
        if i > 0:  # The first step warms up.
            times.append([b - a for a, b in zip(laps, laps[1:])])
    median = lambda v: sorted(v)[len(v) // 2]
    report = {"median_s": median([sum(t) for t in times])}
    report.update({p: median([t[k] for t in times]) for k, p in enumerate(phases)})
    report["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(report))


if __name__ == "__main__":
    main()
