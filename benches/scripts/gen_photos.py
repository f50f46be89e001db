"""Writes N JPEG photos of varied sizes for the data-pipeline benchmarks.

The sources are the colour photographs bundled with the installed packages (no download):
scikit-image's sample images (its RGBA logo composited on white, its stereo motorcycle's left
view) and scikit-learn's two sample photos. Each output is a random crop of one, rescaled so its
longer side lands between `--long-side LO HI` pixels (256–1600 by default, the range of web photos;
`--long-side 256 256` for img2dataset's default output size), saved at a random JPEG quality
between `--quality LO HI` (70–95) with 4:2:0 chroma subsampling, as web photos are. Deterministic
for a given seed. `--captions FILE` also writes an open_clip CSV (`filepath,title`) whose caption
names each photo's source ("a photo of a cat"), for training runs on real photos.

    .venv/bin/python benches/scripts/gen_photos.py OUT_DIR [--count 600] [--seed 0] \
        [--long-side 256 1600] [--quality 70 95] [--captions FILE]
"""

import argparse
import csv
import os
import pathlib
import random

import numpy as np
from PIL import Image
from skimage import data

PHOTOS = ["astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "retina",
          "skin", "colorwheel", "cat", "lily", "hubble_deep_field", "logo"]


def sources():
    """(name, RGB image) pairs."""
    out = []
    for name in PHOTOS:
        try:
            arr = getattr(data, name)()
        except Exception:  # a dataset that needs a download: not bundled, skip it
            continue
        if arr.ndim == 3 and arr.shape[2] == 4:  # RGBA: composite on white, as a browser shows it
            rgb = arr[..., :3].astype(np.float32)
            alpha = arr[..., 3:].astype(np.float32) / 255.0
            arr = np.round(rgb * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
        if arr.ndim == 3 and arr.shape[2] >= 3:
            out.append((name, Image.fromarray(np.ascontiguousarray(arr[..., :3]))))
    # Files shipped with the packages but not loaded by a bundled-only call.
    extra = [pathlib.Path(data.__file__).parent / "motorcycle_left.png"]
    try:
        import sklearn.datasets
        extra += sorted((pathlib.Path(sklearn.datasets.__file__).parent / "images").glob("*.jpg"))
    except ImportError:
        pass
    for path in extra:
        if path.exists():
            out.append((path.stem.replace("_left", ""), Image.open(path).convert("RGB")))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--long-side", type=int, nargs=2, default=[256, 1600], metavar=("LO", "HI"))
    parser.add_argument("--quality", type=int, nargs=2, default=[70, 95], metavar=("LO", "HI"))
    parser.add_argument("--captions", help="also write an open_clip CSV of paths and source captions")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    images = sources()
    os.makedirs(args.out, exist_ok=True)
    rows = []
    for i in range(args.count):
        name, src = images[i % len(images)]
        w, h = src.size
        cw, ch = rng.randint(w // 2, w), rng.randint(h // 2, h)
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        crop = src.crop((x, y, x + cw, y + ch))
        longer = rng.randint(*args.long_side)
        scale = longer / max(cw, ch)
        crop = crop.resize((max(1, round(cw * scale)), max(1, round(ch * scale))), Image.BICUBIC)
        path = os.path.join(args.out, f"{i:05d}.jpg")
        crop.save(path, quality=rng.randint(*args.quality), subsampling=2)
        rows.append((os.path.abspath(path), "a photo of " + name.replace("_", " ")))
    if args.captions:
        with open(args.captions, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["filepath", "title"])
            writer.writerows(rows)


if __name__ == "__main__":
    main()
