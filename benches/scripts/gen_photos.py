"""Writes N JPEG photos of varied sizes for the data-pipeline benchmarks.

The sources are the colour photographs bundled with scikit-image (no download): each output is a
random crop of one, rescaled so its longer side lands between 320 and 1280 pixels, saved at a
random JPEG quality between 75 and 95 with 4:2:0 chroma subsampling, as web photos are.
Deterministic for a given seed.

    .venv/bin/python benches/scripts/gen_photos.py OUT_DIR [--count 600] [--seed 0]
"""

import argparse
import os
import random

import numpy as np
from PIL import Image
from skimage import data

PHOTOS = ["astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "retina",
          "skin", "colorwheel", "cat", "lily"]


def sources():
    out = []
    for name in PHOTOS:
        try:
            arr = getattr(data, name)()
        except Exception:  # a dataset that needs a download: not bundled, skip it
            continue
        if arr.ndim == 3 and arr.shape[2] >= 3:
            out.append(Image.fromarray(np.ascontiguousarray(arr[..., :3])))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    images = sources()
    os.makedirs(args.out, exist_ok=True)
    for i in range(args.count):
        src = images[i % len(images)]
        w, h = src.size
        cw, ch = rng.randint(w // 2, w), rng.randint(h // 2, h)
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        crop = src.crop((x, y, x + cw, y + ch))
        longer = rng.randint(320, 1280)
        scale = longer / max(cw, ch)
        crop = crop.resize((max(1, round(cw * scale)), max(1, round(ch * scale))), Image.BICUBIC)
        crop.save(os.path.join(args.out, f"{i:05d}.jpg"), quality=rng.randint(75, 95), subsampling=2)


if __name__ == "__main__":
    main()
