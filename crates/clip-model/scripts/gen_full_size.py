#!/usr/bin/env python3
"""Writes a full-size open_clip model at random init beside open_clip's features, for clip-model's
ignored test `a_full_size_model_matches_open_clip` (CLIP_MODEL_FULL=OUT/NAME) and for
`clip embed --model-config OUT/NAME/model_config.json --weights OUT/NAME/model.safetensors
--images OUT/images` (the open_clip_config.json beside the config gives clip embed SigLIP's
preprocessing: mean/std 0.5, bicubic, squash).

OUT/images must hold the photos (PNG: JPEG decoding is not libjpeg-turbo's to the bit), e.g.
crates/clip-data/tests/fixtures/images/{coffee,camera,chelsea,logo}.png. Texts are seeded random
ids (SigLIP's tokenizer is not needed for the towers). Seed 0, float32, CPU.

    .venv/bin/python crates/clip-model/scripts/gen_full_size.py OUT ViT-B-16-SigLIP ViT-B-16-SigLIP-384
"""
import json
import pathlib
import sys

import open_clip
import timm
import torch
from PIL import Image
from safetensors.torch import save_file

assert open_clip.__version__ == "3.3.0" and timm.__version__ == "1.0.31", (open_clip.__version__, timm.__version__)
root = pathlib.Path(sys.argv[1])
files = sorted((root / "images").iterdir(), key=lambda p: p.name.encode())
for name in sys.argv[2:]:
    out = root / name
    out.mkdir(exist_ok=True)
    torch.manual_seed(0)
    model = open_clip.create_model(name).eval()
    cfg = open_clip.get_model_config(name)
    (out / "model_config.json").write_text(json.dumps(cfg))
    pre = {"mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "bicubic", "resize_mode": "squash"}
    (out / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": pre}))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "model.safetensors"))
    size = cfg["vision_cfg"]["image_size"]
    tf = open_clip.image_transform(size, is_train=False, mean=pre["mean"], std=pre["std"], interpolation="bicubic", resize_mode="squash")
    images = torch.stack([tf(Image.open(f).convert("RGB")) for f in files])
    g = torch.Generator().manual_seed(1)
    text = torch.randint(2, 32000, (4, cfg["text_cfg"]["context_length"]), generator=g)
    text[0, 10:] = 1  # padding-like tail
    with torch.no_grad():
        io = {"images": images, "text": text,
              "image_features": model.encode_image(images, normalize=True),
              "text_features": model.encode_text(text, normalize=True)}
    save_file({k: v.contiguous() for k, v in io.items()}, str(out / "io.safetensors"))
    print(name, [f.name for f in files], tuple(io["image_features"].shape))
