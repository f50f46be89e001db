#!/usr/bin/env python3
"""Writes the clip-cli fixtures for pretrained-model tests, from open_clip 3.3.0 itself.

  tests/fixtures/tiny-hub/           a model folder in open_clip's hub layout: open_clip_config.json
                                     (model_cfg + a non-default preprocess_cfg: SigLIP's 0.5 mean/std,
                                     bilinear, squash) and open_clip_model.safetensors (seeded random
                                     weights; the full 49,408-token vocabulary so real text tokenizes,
                                     every other width tiny; stored in fp16 to keep the file small)
  tests/fixtures/classify.json       open_clip's zero-shot probabilities for that model, loaded with
                                     `create_model_and_transforms("local-dir:…")` (so open_clip reads
                                     the folder exactly as `clip` does): softmax(exp(logit_scale) ·
                                     cosine) over a classifier built by `build_zero_shot_classifier`
                                     for the labels and each template set, on the committed photos

    .venv/bin/python crates/clip-cli/scripts/gen_fixtures.py
"""
import json
import pathlib

import open_clip
import torch
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg
from open_clip.zero_shot_classifier import build_zero_shot_classifier
from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES
from PIL import Image
from safetensors.torch import save_file

assert open_clip.__version__ == "3.3.0", open_clip.__version__
assert torch.__version__.startswith("2.11.0"), torch.__version__

HERE = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = HERE / "tests" / "fixtures"
PHOTOS = HERE.parent / "clip-data" / "tests" / "fixtures" / "images"
# PNGs of each mode PIL distinguishes (RGB, grey, RGBA), and a JPEG: JPEG decoders differ in their
# last bits (ours is not libjpeg-turbo), so the tests hold the JPEG to a looser bound.
IMAGES = ["chelsea.png", "coffee.png", "camera.png", "logo.png", "rocket.jpg"]
LABELS = ["cat", "rocket", "cup of coffee", "a diagram"]
TEMPLATES = {
    "seed": ["a photo of a {}."],
    "none": ["{}"],
    "file": ["a photo of a {}.", "a drawing of a {}.", "{} in the wild"],
    # The paper's 80 ImageNet prompts, as open_clip ships them (functions of the class name).
    "imagenet": [t("{}") for t in OPENAI_IMAGENET_TEMPLATES],
}

MODEL_CFG = {
    "embed_dim": 16,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 2},
}
PREPROCESS_CFG = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "interpolation": "bilinear", "resize_mode": "squash"}


def main():
    hub = FIXTURES / "tiny-hub"
    hub.mkdir(parents=True, exist_ok=True)
    (hub / "open_clip_config.json").write_text(json.dumps({"model_cfg": MODEL_CFG, "preprocess_cfg": PREPROCESS_CFG}, indent=2) + "\n")
    torch.manual_seed(0)
    model = CLIP(embed_dim=MODEL_CFG["embed_dim"], vision_cfg=CLIPVisionCfg(**MODEL_CFG["vision_cfg"]),
                 text_cfg=CLIPTextCfg(**MODEL_CFG["text_cfg"]), quick_gelu=True)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
        model.logit_scale.fill_(3.0)
    state = {k: v.detach().half().contiguous() for k, v in model.state_dict().items()}
    save_file(state, hub / "open_clip_model.safetensors")
    (hub / "open_clip_model.safetensors").chmod(0o644)

    # Load it back the way users do: open_clip reads the folder (config, preprocessing, weights).
    model, _, preprocess = open_clip.create_model_and_transforms("local-dir:" + str(hub))
    model.eval()
    tokenizer = open_clip.get_tokenizer("local-dir:" + str(hub))
    images = torch.stack([preprocess(Image.open(PHOTOS / name)) for name in IMAGES])
    out = {"images": IMAGES, "labels": LABELS, "templates": TEMPLATES, "probs": {}}
    with torch.no_grad():
        features = model.encode_image(images, normalize=True)
        for name, templates in TEMPLATES.items():
            fill = OPENAI_IMAGENET_TEMPLATES if name == "imagenet" else [t.format for t in templates]
            classifier = build_zero_shot_classifier(model, tokenizer, LABELS, fill, num_classes_per_batch=None, device="cpu")
            probs = (model.logit_scale.exp() * features @ classifier).softmax(dim=-1)
            out["probs"][name] = probs.tolist()
        out["image_features"] = features.tolist()
    (FIXTURES / "classify.json").write_text(json.dumps(out, indent=1) + "\n")
    (FIXTURES / "templates.txt").write_text("\n".join(TEMPLATES["file"]) + "\n")


if __name__ == "__main__":
    main()
