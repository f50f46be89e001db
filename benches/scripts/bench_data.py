"""Training-transform throughput: clip-rs against open_clip's PIL + torchvision, same photos, same
machine, one run.

The reference is open_clip's own training transform (`image_transform(size, is_train=True)`:
RandomResizedCrop(scale=(0.9, 1.0), bicubic), RGB, ToTensor, Normalize) applied to every file, read
from disk and decoded by PIL, in one process with one torch thread: images per second per core.
clip-rs is `clip bench-data --source folder:DIR` (read, decode, the same transform, batching into
tensors) with 1 and then 2 decode threads, steady state. Prints one JSON object.

    .venv/bin/python benches/scripts/gen_photos.py /tmp/photos
    .venv/bin/python benches/scripts/bench_data.py /tmp/photos --clip target/release/clip
"""

import argparse
import json
import os
import subprocess
import time

import torch
from PIL import Image
from open_clip.transform import image_transform


def reference(files, image_size, passes):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    transform = image_transform(image_size, is_train=True)
    rates = []
    for _ in range(passes):
        start = time.perf_counter()
        for path in files:
            with Image.open(path) as image:
                transform(image)
        rates.append(len(files) / (time.perf_counter() - start))
    return rates


def ours(clip, folder, image_size, threads, seconds, batch_size):
    out = subprocess.run(
        [clip, "bench-data", "--source", f"folder:{folder}", "--threads", str(threads), "--seconds", str(seconds),
         "--image-size", str(image_size), "--batch-size", str(batch_size), "--json"],
        check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("--clip", default="target/release/clip")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    files = sorted(os.path.join(args.dir, f) for f in os.listdir(args.dir))
    pil = max(reference(files, args.image_size, args.passes))
    one = ours(args.clip, args.dir, args.image_size, 1, args.seconds, args.batch_size)
    two = ours(args.clip, args.dir, args.image_size, 2, args.seconds, args.batch_size)
    print(json.dumps({
        "images": len(files),
        "pil_torchvision_images_per_s_one_core": round(pil, 1),
        "clip_rs_1_thread_images_per_s": one["samples_per_s"],
        "clip_rs_2_threads_images_per_s": two["samples_per_s"],
        "per_core_ratio": round(one["samples_per_s"] / pil, 2),
        "scaling_1_to_2_threads": round(two["samples_per_s"] / one["samples_per_s"], 2),
        "skipped": {k: one["skipped"][k] + two["skipped"][k] for k in one["skipped"]},
    }, indent=1))


if __name__ == "__main__":
    main()
