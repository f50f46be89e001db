#!/usr/bin/env python3
"""Side-by-side encoder benchmark: clip-rs (benches/src/bin/bench_model.rs) against open_clip
3.3.0 on the same machine, same thread count, alternating runs, one process per run so that each
run's peak RSS is its own. Random weights and inputs (timing does not depend on values).

    cargo build --release -p clip-benches --bin bench_model
    .venv/bin/python benches/scripts/bench_embed.py [--repeats 3] [--iters 5] [--threads 2]
    python bench_embed.py --reference MODEL image|text BATCH ITERS THREADS [DEVICE [PRECISION]]
        (open_clip alone, as `bench_model` takes the same arguments; used by scripts/gpu-bench.sh)
    python bench_embed.py --embed-images MODEL DIR BATCH THREADS OUT
        (open_clip as `clip embed --images DIR --random-init` runs, whole process: used by compare.py)
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
OURS = ROOT / "target" / "release" / "bench_model"

def reference(model_name, what, batch, iters, threads, device="cpu", precision="fp32"):
    """open_clip's encoder timed as `bench_model` times ours; prints the same JSON."""
    import resource
    import time
    import open_clip
    import torch
    torch.set_num_threads(int(threads))
    torch.manual_seed(0)
    batch, iters, device = int(batch), int(iters), torch.device(device)
    model = open_clip.create_model(model_name).to(device).eval()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        if what == "image":
            s = model.visual.image_size
            s = s[0] if isinstance(s, (tuple, list)) else s
            x = torch.randn(batch, 3, s, s, device=device)
            step = lambda: model.encode_image(x)
        else:
            x = torch.randint(0, model.vocab_size, (batch, model.context_length), device=device)
            step = lambda: model.encode_text(x)
        step()
        sync()
        times = []
        for _ in range(iters):
            t = time.perf_counter()
            step()
            sync()
            times.append(time.perf_counter() - t)
    times.sort()
    print(json.dumps({"median_s": times[len(times) // 2], "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def embed_images(model_name, folder, batch, threads, out):
    """What `clip embed --model-config … --random-init --images DIR --batch-size BATCH --device cpu`
    does, with open_clip: build the model at random init with its evaluation transform (for a
    config without a pretrained tag, OpenAI's: bicubic resize of the short side, centre crop,
    OpenAI's mean and std), then per batch read, decode, preprocess and encode the folder's
    images in file-name order, L2-normalise, and write the rows as a float32 .npy."""
    import numpy as np
    import open_clip
    import torch
    from PIL import Image
    torch.set_num_threads(int(threads))
    batch = int(batch)
    model, _, preprocess = open_clip.create_model_and_transforms(model_name)
    model.eval()
    files = sorted(p for p in pathlib.Path(folder).iterdir() if p.is_file())
    rows = []
    with torch.no_grad():
        for i in range(0, len(files), batch):
            pixels = torch.stack([preprocess(Image.open(f)) for f in files[i:i + batch]])
            rows.append(torch.nn.functional.normalize(model.encode_image(pixels), dim=-1))
    np.save(out, torch.cat(rows).numpy().astype(np.float32))


def run(cmd, env):
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", default="ViT-B-32")
    args = p.parse_args()
    import torch
    env = dict(os.environ, LD_LIBRARY_PATH=str(pathlib.Path(torch.__file__).parent / "lib"))
    workloads = [("image", 32), ("text", 256)]
    print(f"{args.model}, {args.threads} threads, {args.iters} timed iterations per run, {args.repeats} runs each, medians")
    for what, batch in workloads:
        ours, theirs = [], []
        for _ in range(args.repeats):
            ours.append(run([str(OURS), args.model, what, str(batch), str(args.iters), str(args.threads)], env))
            theirs.append(run([sys.executable, __file__, "--reference", args.model, what, str(batch), str(args.iters),
                               str(args.threads)], env))
        t_ours = statistics.median(r["median_s"] for r in ours)
        t_theirs = statistics.median(r["median_s"] for r in theirs)
        m_ours = statistics.median(r["peak_rss_kb"] for r in ours) / 1024
        m_theirs = statistics.median(r["peak_rss_kb"] for r in theirs) / 1024
        print(f"  {what} batch {batch}: clip-rs {t_ours:.3f} s, open_clip {t_theirs:.3f} s, ratio {t_ours / t_theirs:.3f}; "
              f"peak RSS clip-rs {m_ours:.0f} MiB, open_clip {m_theirs:.0f} MiB")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--reference"]:
        reference(*sys.argv[2:])
    elif sys.argv[1:2] == ["--embed-images"]:
        embed_images(*sys.argv[2:])
    else:
        main()
