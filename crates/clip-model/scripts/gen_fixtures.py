#!/usr/bin/env python3
"""Writes parity fixtures for clip-model: tiny open_clip 3.3.0 models of both families with seeded
random weights, inputs, and open_clip's features.

For each config in tests/fixtures/{tiny-vit,tiny-rn}.json (open_clip model-config JSON):
  <name>.safetensors     the model's state dict (open_clip = OpenAI key layout)
  <name>.io.safetensors  `images` [3, 3, s, s], `text` [3, context] int64, and open_clip's
                         `image_features` / `text_features` (encode_*(normalize=True)), plus
                         `image_unprojected` for the ViT (pooled features before `proj`)
Weights are open_clip's init perturbed by N(0, 0.02) everywhere (so that zero-initialised
BatchNorm gammas and biases are not trivially zero); LayerNorm and BatchNorm scales are 1 +
N(0, 0.1); BatchNorm running statistics are randomised (means N(0, 0.1), variances U(0.5, 1.5)).
Seed 0, float32, CPU, eval mode.

    .venv/bin/python crates/clip-model/scripts/gen_fixtures.py
"""
import json
import pathlib

import open_clip
import torch
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg
from safetensors.torch import save_file

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures"


def randomize(model):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1 and (name.endswith("weight")) and ("ln" in name or "bn" in name or "downsample.1" in name):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:
                p.add_(0.02 * torch.randn_like(p))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn_like(b))
            elif name.endswith("running_var"):
                b.copy_(torch.empty_like(b).uniform_(0.5, 1.5))
        model.logit_scale.fill_(2.0)


def make(name):
    cfg = json.loads((FIXTURES / f"{name}.json").read_text())
    torch.manual_seed(0)
    model = CLIP(embed_dim=cfg["embed_dim"], vision_cfg=CLIPVisionCfg(**cfg["vision_cfg"]),
                 text_cfg=CLIPTextCfg(**cfg["text_cfg"]), quick_gelu=cfg.get("quick_gelu", False))
    randomize(model)
    model.eval()
    size = cfg["vision_cfg"]["image_size"]
    context, vocab = cfg["text_cfg"]["context_length"], cfg["text_cfg"]["vocab_size"]
    images = torch.randn(3, 3, size, size)
    text = torch.zeros(3, context, dtype=torch.long)
    for row, end in enumerate([3, 7, context - 1]):
        text[row, :end] = torch.randint(1, vocab - 1, (end,))
        text[row, end] = vocab - 1  # the highest id plays end-of-text, as 49407 does
    io = {"images": images, "text": text}
    with torch.no_grad():
        io["image_features"] = model.encode_image(images, normalize=True)
        io["text_features"] = model.encode_text(text, normalize=True)
        if "patch_size" in cfg["vision_cfg"] and cfg["vision_cfg"]["patch_size"]:
            v = model.visual
            v.proj, proj = None, v.proj
            io["image_unprojected"] = v(images)
            v.proj = proj
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(FIXTURES / f"{name}.safetensors"))
    save_file({k: v.contiguous() for k, v in io.items()}, str(FIXTURES / f"{name}.io.safetensors"))
    print(f"{name}: {sum(v.numel() for v in state.values())} weights, features {tuple(io['image_features'].shape)}")


def main():
    assert open_clip.__version__ == "3.3.0", open_clip.__version__
    for name in ("tiny-vit", "tiny-rn"):
        make(name)


if __name__ == "__main__":
    main()
