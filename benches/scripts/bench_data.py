"""The reference's training-transform throughput on a folder of images, one core.

open_clip's own training transform (`open_clip.transform.image_transform(size, is_train=True)`:
RandomResizedCrop(scale=(0.9, 1.0), bicubic), RGB, ToTensor, Normalize) applied to every file,
read from disk and decoded by PIL, in one process with one torch thread. Prints JSON.

    .venv/bin/python benches/scripts/bench_data.py DIR [--image-size 224] [--passes 2]
"""

import argparse
import json
import os
import time

import torch
from PIL import Image
from open_clip.transform import image_transform


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--passes", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    transform = image_transform(args.image_size, is_train=True)
    files = sorted(os.path.join(args.dir, f) for f in os.listdir(args.dir))
    rates = []
    for _ in range(args.passes):
        start = time.perf_counter()
        for path in files:
            with Image.open(path) as image:
                transform(image)
        rates.append(len(files) / (time.perf_counter() - start))
    print(json.dumps({"images": len(files), "passes": args.passes, "images_per_s": rates,
                      "best_images_per_s": max(rates)}))


if __name__ == "__main__":
    main()
