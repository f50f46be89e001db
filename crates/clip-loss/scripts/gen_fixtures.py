#!/usr/bin/env python3
"""Writes tests/fixtures/losses.safetensors: open_clip 3.3.0's ClipLoss and SigLipLoss on random
features, with gradients with respect to the features and the scales (and SigLIP's bias).

For each batch size n in (1, 2, 5, 16, 64) and width d = 32: normalised `image`, `text` [n, d],
a scale (exponentiated, as the model passes it) and a bias; then `clip.loss`, `clip.grad_image`,
`clip.grad_text`, `clip.grad_scale`, and the same under `siglip.`. Seed 0, float32, CPU.

    .venv/bin/python crates/clip-loss/scripts/gen_fixtures.py
"""
import pathlib

import open_clip
import torch
from open_clip.loss import ClipLoss, SigLipLoss
from safetensors.torch import save_file

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "losses.safetensors"


def main():
    assert open_clip.__version__ == "3.3.0", open_clip.__version__
    torch.manual_seed(0)
    tensors = {}
    for n in (1, 2, 5, 16, 64):
        d = 32
        image = torch.nn.functional.normalize(torch.randn(n, d), dim=-1)
        text = torch.nn.functional.normalize(torch.randn(n, d), dim=-1)
        scale = torch.tensor(float(torch.empty(()).uniform_(10.0, 100.0)))
        bias = torch.tensor(float(torch.empty(()).uniform_(-12.0, 2.0)))
        p = f"b{n}."
        tensors[p + "image"], tensors[p + "text"] = image, text
        tensors[p + "scale"], tensors[p + "bias"] = scale, bias

        i, t, s = image.clone().requires_grad_(), text.clone().requires_grad_(), scale.clone().requires_grad_()
        loss = ClipLoss()(i, t, s)
        loss.backward()
        tensors[p + "clip.loss"] = loss.detach()
        tensors[p + "clip.grad_image"], tensors[p + "clip.grad_text"] = i.grad, t.grad
        tensors[p + "clip.grad_scale"] = s.grad

        i, t, s = image.clone().requires_grad_(), text.clone().requires_grad_(), scale.clone().requires_grad_()
        b = bias.clone().requires_grad_()
        loss = SigLipLoss()(i, t, s, b)
        loss.backward()
        tensors[p + "siglip.loss"] = loss.detach()
        tensors[p + "siglip.grad_image"], tensors[p + "siglip.grad_text"] = i.grad, t.grad
        tensors[p + "siglip.grad_scale"], tensors[p + "siglip.grad_bias"] = s.grad, b.grad
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(OUT))
    print(f"wrote {len(tensors)} tensors to {OUT}")


if __name__ == "__main__":
    main()
