#!/usr/bin/env python3
"""Writes tests/fixtures/expected.safetensors: what PIL + torchvision make of real photos.

Sources (tests/fixtures/images/): scikit-image's bundled sample photos (chelsea, coffee: RGB
PNG; camera: grey PNG; logo: RGBA PNG; rocket: JPEG; no_time_for_that_tiny: GIF), plus variants of
chelsea this script writes with PIL: a palette PNG, a grey+alpha PNG, a CMYK JPEG, lossless and
lossy WebP, and (by hand) a 16-bit RGB PNG.

For each image and each size in (64, 224), and chelsea also at 336: `<file>@<size>` = the uint8 [size, size, 3] image
that open_clip's eval transform hands to ToTensor (Resize(size, BICUBIC) → CenterCrop(size) →
convert("RGB")). And `chelsea.png@64/normalized`: the final [3, 64, 64] float tensor.

    .venv/bin/python crates/clip-data/scripts/gen_fixtures.py
"""
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


def variants():
    chelsea = Image.open(IMAGES / "chelsea.png").convert("RGB")
    chelsea.quantize(colors=64).save(IMAGES / "chelsea_palette.png")
    la = chelsea.convert("L").copy()
    alpha = Image.linear_gradient("L").resize(chelsea.size)
    Image.merge("LA", (la, alpha)).save(IMAGES / "chelsea_la.png")
    chelsea.convert("CMYK").save(IMAGES / "chelsea_cmyk.jpg", quality=95)
    chelsea.save(IMAGES / "chelsea_lossless.webp", lossless=True)
    chelsea.save(IMAGES / "chelsea_lossy.webp", quality=80)
    # PIL cannot write 16-bit colour PNGs: write one by hand (low bytes vary, high bytes = chelsea).
    arr = np.asarray(chelsea).astype(np.uint16) * 256 + np.arange(3, dtype=np.uint16) * 85
    write_png16(IMAGES / "chelsea_16bit.png", arr)


def write_png16(path, rgb):
    import struct
    import zlib
    h, w, _ = rgb.shape
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + rgb[y].astype(">u2").tobytes() for y in range(h))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    path.write_bytes(png)


def main():
    assert open_clip.__version__ == "3.3.0"
    variants()
    out = {}
    for path in sorted(IMAGES.iterdir()):
        for size in (64, 224, 336) if path.name == "chelsea.png" else (64, 224):
            t = open_clip.image_transform(size, is_train=False)
            # Everything before ToTensor: Resize, CenterCrop, convert to RGB.
            pre = transforms.Compose(t.transforms[:-2])
            img = pre(Image.open(path))
            arr = np.asarray(img, dtype=np.uint8)
            assert arr.shape == (size, size, 3), (path.name, arr.shape)
            out[f"{path.name}@{size}"] = np.ascontiguousarray(arr)
        print(path.name, Image.open(path).mode, Image.open(path).size)
    t = open_clip.image_transform(64, is_train=False)
    out["chelsea.png@64/normalized"] = t(Image.open(IMAGES / "chelsea.png")).numpy().astype(np.float32)
    save_file(out, str(HERE / "expected.safetensors"),
              metadata={"pillow": PIL.__version__, "torchvision": torchvision.__version__, "torch": torch.__version__})


if __name__ == "__main__":
    main()
