#!/usr/bin/env python3
"""Writes tests/fixtures/patch_dropout.safetensors: open_clip 3.3.0's features in training mode with
patch dropout 0.5 (FLIP), for given kept patches, so that the Rust test checks the operation
itself (our draws come from our own random streams and cannot match torch's).

Two towers, the weights and images of existing fixtures:
  vit     tests/fixtures/tiny-vit.{json,safetensors}, `vision_cfg.patch_dropout = 0.5`: open_clip's
          `PatchDropout` (class token kept, `max(1, int(16 · 0.5)) = 8` of 16 patches chosen by
          `torch.randn(b, 16).topk(8)`)
  siglip  tests/fixtures/families/siglip.* (timm `vit_base_patch16_siglip_224` sized by
          siglip.timm.json), open_clip passing `patch_drop_rate = 0.5` to timm, whose
          `patch_dropout_forward` keeps `argsort(torch.randn(b, 16))[:, :8]` (no prefix token)
The kept indices (`<tower>.kept`, [3, 8], drawn here from a seeded permutation, unsorted) are
forced by replacing `torch.randn` during the forward with scores that rank them first, in order.
Stored: `<tower>.kept` and `<tower>.image_features` (`encode_image(normalize=True)`, train mode).

    .venv/bin/python crates/clip-model/scripts/gen_patch_dropout.py
"""
import json
import pathlib
import sys

import open_clip
import timm
import torch
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg
from safetensors.torch import load_file, save_file

HERE = pathlib.Path(__file__).resolve().parent
FIXTURES = HERE.parent / "tests" / "fixtures"
sys.path.insert(0, str(HERE))
import gen_families  # noqa: E402  (its timm sizes and model builder)

PATCHES, KEEP = 16, 8


def forced_randn(kept, largest):
    """torch.randn replaced for one (3, PATCHES) call: kept patches score first (topk: largest)."""
    scores = torch.zeros(kept.shape[0], PATCHES)
    for i, row in enumerate(kept):
        for j, patch in enumerate(row):
            scores[i, patch] = (1000.0 - j) if largest else (-1000.0 + j)
    original = torch.randn

    def randn(*size, **kwargs):
        if tuple(size) == tuple(scores.shape):
            return scores.clone()
        return original(*size, **kwargs)
    return original, randn


def features(model, images, kept, largest):
    model.train()
    original, randn = forced_randn(kept, largest)
    torch.randn = randn
    try:
        with torch.no_grad():
            return model.encode_image(images, normalize=True)
    finally:
        torch.randn = original


def main():
    assert open_clip.__version__ == "3.3.0", open_clip.__version__
    assert timm.__version__ == "1.0.31", timm.__version__
    assert torch.__version__.split("+")[0] == "2.11.0", torch.__version__
    generator = torch.Generator().manual_seed(0)
    out = {}

    cfg = json.loads((FIXTURES / "tiny-vit.json").read_text())
    vit = CLIP(embed_dim=cfg["embed_dim"], vision_cfg=CLIPVisionCfg(**cfg["vision_cfg"], patch_dropout=0.5),
               text_cfg=CLIPTextCfg(**cfg["text_cfg"]), quick_gelu=cfg.get("quick_gelu", False))
    vit.load_state_dict(load_file(str(FIXTURES / "tiny-vit.safetensors")))
    images = load_file(str(FIXTURES / "tiny-vit.io.safetensors"))["images"]
    kept = torch.stack([torch.randperm(PATCHES, generator=generator)[:KEEP] for _ in range(images.shape[0])])
    out["vit.kept"] = kept
    out["vit.image_features"] = features(vit, images, kept, largest=True)
    vit.eval()
    with torch.no_grad():  # eval mode drops nothing
        assert torch.allclose(vit.encode_image(images, normalize=True), load_file(str(FIXTURES / "tiny-vit.io.safetensors"))["image_features"], atol=1e-6)

    fam = FIXTURES / "families"
    cfg = json.loads((fam / "siglip.json").read_text())
    cfg["vision_cfg"]["patch_dropout"] = 0.5
    siglip = gen_families.build("siglip", cfg)
    siglip.load_state_dict(load_file(str(fam / "siglip.safetensors")))
    images = load_file(str(fam / "siglip.io.safetensors"))["images"]
    assert siglip.visual.trunk.patch_drop.prob == 0.5 and siglip.visual.trunk.num_prefix_tokens == 0
    kept = torch.stack([torch.randperm(PATCHES, generator=generator)[:KEEP] for _ in range(images.shape[0])])
    out["siglip.kept"] = kept
    out["siglip.image_features"] = features(siglip, images, kept, largest=False)

    path = FIXTURES / "patch_dropout.safetensors"
    save_file({k: v.contiguous() for k, v in out.items()}, str(path))
    path.chmod(0o644)
    print({k: tuple(v.shape) for k, v in out.items()})


if __name__ == "__main__":
    main()
