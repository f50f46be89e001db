#!/usr/bin/env python3
"""Writes tests/fixtures/expected_modes.safetensors: open_clip's evaluation transform under every
(interpolation, resize mode) pair a pretrained tag can ask for.

A sibling of gen_fixtures.py (which rewrites its image variants when run, so it is left alone and
expected.safetensors stays byte-identical). This script only reads tests/fixtures/images/.

For each pair in {bicubic, bilinear} x {shortest, longest, squash}:
- `<file>@61/<interpolation>/<resize_mode>`: the uint8 [61, 61, 3] image open_clip's
  `image_transform(61, is_train=False, resize_mode=..., interpolation=...)` hands to ToTensor, for
  photos of every mode (RGB, L, LA, RGBA, P from PNG and GIF, 16-bit RGB, JPEG);
- `chelsea.png@224/<interpolation>/<resize_mode>`: the same at 224 (the default pair is in
  expected.safetensors already).
And a few `<key>/normalized` float32 [3, 61, 61] tensors with non-OpenAI statistics; the
`preprocess_cfg` each was made with is in the metadata under the key, as open_clip's JSON.

    .venv/bin/python crates/clip-data/scripts/gen_fixtures_modes.py
"""
import json
import pathlib

import numpy as np
import open_clip
import PIL
import torch
import torchvision
from PIL import Image
from safetensors.numpy import save_file
from torchvision import transforms

HERE = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures"
IMAGES = HERE / "images"

PAIRS = [(i, m) for i in ("bicubic", "bilinear") for m in ("shortest", "longest", "squash")]
SMALL = ["chelsea.png", "coffee.png", "camera.png", "chelsea_la.png", "logo.png", "chelsea_palette.png",
         "no_time_for_that_tiny.gif", "chelsea_16bit.png", "rocket.jpg"]
SIGLIP = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
NORMALIZED = [
    ("chelsea.png", "bilinear", "squash", SIGLIP),
    ("chelsea_palette.png", "bicubic", "longest", IMAGENET),
    ("coffee.png", "bilinear", "shortest", IMAGENET),
]


def transform(size, interpolation, resize_mode, stats=None):
    stats = stats or {}
    return open_clip.image_transform(size, is_train=False, mean=stats.get("mean"), std=stats.get("std"),
                                     resize_mode=resize_mode, interpolation=interpolation)


def main():
    assert open_clip.__version__ == "3.3.0", open_clip.__version__
    assert PIL.__version__ == "13.0.0", PIL.__version__
    assert torchvision.__version__.startswith("0.26."), torchvision.__version__
    out, metadata = {}, {"pillow": PIL.__version__, "torchvision": torchvision.__version__,
                         "torch": torch.__version__, "open_clip": open_clip.__version__}
    jobs = [(f, 61) for f in SMALL] + [("chelsea.png", 224)]
    for name, size in jobs:
        for interpolation, resize_mode in PAIRS:
            if size == 224 and (interpolation, resize_mode) == ("bicubic", "shortest"):
                continue
            t = transform(size, interpolation, resize_mode)
            # Everything before ToTensor: resize, crop or pad, convert to RGB.
            img = transforms.Compose(t.transforms[:-2])(Image.open(IMAGES / name))
            arr = np.asarray(img, dtype=np.uint8)
            assert arr.shape == (size, size, 3), (name, arr.shape)
            out[f"{name}@{size}/{interpolation}/{resize_mode}"] = np.ascontiguousarray(arr)
    for name, interpolation, resize_mode, stats in NORMALIZED:
        key = f"{name}@61/{interpolation}/{resize_mode}/normalized"
        t = transform(61, interpolation, resize_mode, stats)
        out[key] = t(Image.open(IMAGES / name)).numpy().astype(np.float32)
        metadata[key] = json.dumps({**stats, "interpolation": interpolation, "resize_mode": resize_mode})
    save_file(out, str(HERE / "expected_modes.safetensors"), metadata=metadata)
    print(len(out), "tensors")


if __name__ == "__main__":
    main()
