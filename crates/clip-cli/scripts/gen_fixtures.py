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
  tests/fixtures/tiny-siglip-hub/    a SigLIP-shaped repo: SigLIP's text tower (custom_text, no causal
                                     mask, the last token pooled, projection bias, LayerNorm eps 1e-6,
                                     init_logit_bias) reading a SentencePiece tokenizer that the repo
                                     itself holds (hf_tokenizer_name names the repo, as timm's SigLIP
                                     repos do; spiece.model from clip-tokenizer's unigram fixture)
                                     with `canonicalize` cleaning, SigLIP's preprocessing (0.5, bicubic,
                                     squash). The image tower is open_clip's own tiny ViT: a timm
                                     tower's size is fixed by its name (86M parameters and up), so its
                                     parity lives in clip-model's family fixtures.
  tests/fixtures/siglip.json         open_clip's image and text features for that repo, loaded with
                                     `create_model_and_transforms` and `get_tokenizer` on `local-dir:`,
                                     and its zero-shot probabilities as SigLIP computes them:
                                     sigmoid(exp(logit_scale) · cosine + logit_bias) per label

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

SIGLIP_REPO = "test/tiny-siglip"
SIGLIP_CFG = {
    "embed_dim": 16,
    "init_logit_bias": -10,
    "custom_text": True,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {
        "context_length": 16, "vocab_size": 1000, "hf_tokenizer_name": SIGLIP_REPO,
        "tokenizer_kwargs": {"clean": "canonicalize"}, "width": 32, "heads": 2, "layers": 2,
        "no_causal_mask": True, "proj_bias": True, "pool_type": "last", "norm_kwargs": {"eps": 1e-6},
    },
}
SIGLIP_PREPROCESS = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "interpolation": "bicubic", "resize_mode": "squash"}
SIGLIP_TOKENIZER = HERE.parent / "clip-tokenizer" / "tests" / "fixtures" / "hf" / "unigram-spm"
# Capitals, punctuation and underscores: what `canonicalize` removes or rewrites.
SIGLIP_TEXTS = ["a photo of a cat.", "A Rocket, launching!", "cup_of_coffee", "", "a diagram (with labels) of the camera's parts"]


def perturb(model):
    """Moves every seeded weight a little, so that no tensor is a constant."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))


def save_and_reload(model, hub):
    """Writes the weights in fp16 beside the folder's config, and loads the folder back the way
    users do: open_clip reads the config, the preprocessing, the weights and the tokenizer from it."""
    state = {k: v.detach().half().contiguous() for k, v in model.state_dict().items()}
    save_file(state, hub / "open_clip_model.safetensors")
    (hub / "open_clip_model.safetensors").chmod(0o644)
    model, _, preprocess = open_clip.create_model_and_transforms("local-dir:" + str(hub))
    model.eval()
    return model, preprocess, open_clip.get_tokenizer("local-dir:" + str(hub))


def main():
    hub = FIXTURES / "tiny-hub"
    hub.mkdir(parents=True, exist_ok=True)
    (hub / "open_clip_config.json").write_text(json.dumps({"model_cfg": MODEL_CFG, "preprocess_cfg": PREPROCESS_CFG}, indent=2) + "\n")
    torch.manual_seed(0)
    model = CLIP(embed_dim=MODEL_CFG["embed_dim"], vision_cfg=CLIPVisionCfg(**MODEL_CFG["vision_cfg"]),
                 text_cfg=CLIPTextCfg(**MODEL_CFG["text_cfg"]), quick_gelu=True)
    perturb(model)
    with torch.no_grad():
        model.logit_scale.fill_(3.0)
    model, preprocess, tokenizer = save_and_reload(model, hub)
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


def siglip():
    """The SigLIP-shaped repo and open_clip's features for it."""
    import shutil
    hub = FIXTURES / "tiny-siglip-hub"
    hub.mkdir(parents=True, exist_ok=True)
    (hub / "open_clip_config.json").write_text(json.dumps({"model_cfg": SIGLIP_CFG, "preprocess_cfg": SIGLIP_PREPROCESS}, indent=2) + "\n")
    for name in ["spiece.model", "tokenizer_config.json"]:
        shutil.copyfile(SIGLIP_TOKENIZER / name, hub / name)
    torch.manual_seed(1)
    model = open_clip.create_model("local-dir:" + str(hub), pretrained=None, load_weights=False)
    assert type(model).__name__ == "CustomTextCLIP" and model.logit_bias is not None, type(model)
    perturb(model)
    model, preprocess, tokenizer = save_and_reload(model, hub)
    assert type(tokenizer).__name__ == "HFTokenizer", type(tokenizer)
    images = torch.stack([preprocess(Image.open(PHOTOS / name)) for name in IMAGES])
    ids = tokenizer(SIGLIP_TEXTS)
    with torch.no_grad():
        out = {
            "images": IMAGES,
            "texts": SIGLIP_TEXTS,
            "ids": ids.tolist(),
            "image_features": model.encode_image(images, normalize=True).tolist(),
            "text_features": model.encode_text(ids, normalize=True).tolist(),
        }
        classifier = build_zero_shot_classifier(model, tokenizer, LABELS, [t.format for t in TEMPLATES["seed"]], num_classes_per_batch=None, device="cpu")
        features = torch.tensor(out["image_features"])
        out["labels"] = LABELS
        out["probs"] = torch.sigmoid(model.logit_scale.exp() * features @ classifier + model.logit_bias).tolist()
    (FIXTURES / "siglip.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
    siglip()
