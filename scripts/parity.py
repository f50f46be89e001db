#!/usr/bin/env python3
"""Full-size parity: `clip embed` against open_clip 3.3.0 for ViT-B-32 and RN50.

Random weights (open_clip's init, perturbed; BatchNorm running statistics randomised, not left at
0/1), the same real photos (PNG and GIF, from crates/clip-data/tests/fixtures/images) and captions
through both stacks, each with its own preprocessing and tokenizer; prints max |Δ| of the
normalised features and fails above 1e-4. Run by `cargo xtask parity`.

    .venv/bin/python scripts/parity.py target/release/clip target/parity
"""
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import open_clip
import torch
from PIL import Image
from safetensors.torch import save_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
PHOTOS = ["camera.png", "chelsea.png", "chelsea_la.png", "chelsea_palette.png", "coffee.png", "logo.png",
          "no_time_for_that_tiny.gif"]
CAPTIONS = ["a photo of a cat", "a diagram", "a dog playing in the snow", "Café &amp; crème brûlée",
            "東京タワーの夜景", "an astronaut riding a horse on the moon", "a close-up of coffee beans"]
TOL = 1e-4


def randomize(model):
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn_like(b))
            elif name.endswith("running_var"):
                b.copy_(torch.empty_like(b).uniform_(0.5, 1.5))


def main():
    clip, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    assert open_clip.__version__ == "3.3.0", open_clip.__version__
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    for name in PHOTOS:
        shutil.copy(ROOT / "crates/clip-data/tests/fixtures/images" / name, images / name)
    (out / "captions.txt").write_text("\n".join(CAPTIONS) + "\n")
    worst = 0.0
    for model_name in ("ViT-B-32", "RN50"):
        torch.manual_seed(0)
        model = open_clip.create_model(model_name)
        randomize(model)
        model.eval()
        weights = out / f"{model_name}.safetensors"
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
        preprocess = open_clip.image_transform(model.visual.image_size, is_train=False)
        tokenizer = open_clip.get_tokenizer(model_name)
        names = sorted(PHOTOS, key=lambda n: n.encode())
        with torch.no_grad():
            pixels = torch.stack([preprocess(Image.open(images / n)) for n in names])
            ref_images = model.encode_image(pixels, normalize=True).numpy()
            ref_texts = model.encode_text(tokenizer(CAPTIONS), normalize=True).numpy()
        for kind, ref in (("images", ref_images), ("texts", ref_texts)):
            target = out / f"{model_name}-{kind}.npy"
            source = images if kind == "images" else out / "captions.txt"
            subprocess.run([clip, "embed", "--model", model_name, "--weights", weights, f"--{kind}", source,
                            "--out", target, "--device", "cpu"], check=True)
            ours = np.load(target)
            diff = float(np.abs(ours - ref).max())
            worst = max(worst, diff)
            print(f"parity {model_name} {kind}: {ours.shape[0]} rows, max |Δ| = {diff:.2e}")
    print(f"parity: worst max |Δ| = {worst:.2e} (bound {TOL:.0e})")
    sys.exit(0 if worst <= TOL else 1)


if __name__ == "__main__":
    main()
