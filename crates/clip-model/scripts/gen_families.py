#!/usr/bin/env python3
"""Writes parity fixtures for clip-model's newer tower families: tiny open_clip 3.3.0 models
(timm 1.0.31, torch 2.11.0) with seeded random weights, inputs, and open_clip's features.

One model per family, in tests/fixtures/families/:
  siglip     CustomTextCLIP: timm `vit_base_patch16_siglip_224` (no class token, `map` attention
             pool, `timm_proj: none`) and a text tower without causal mask pooling the last token,
             `proj_bias`, LayerNorm eps 1e-6, `init_logit_bias` -10 (ViT-B-16-SigLIP's options)
  siglip2    the same with timm `vit_base_patch32_siglip_256` (act_layer gelu_tanh) and the text's
             `act_kwargs: {"approximate": "tanh"}` (ViT-B-32-SigLIP2-256's options)
  clipa      CLIP: ViT with `no_ln_pre`, `pool_type: avg`, `final_ln_after_pool`; text pooling the
             last token without causal mask (ViT-L-14-CLIPA's options)
  coca       CoCa's contrastive towers: ViT with the attentional pooler (`attn_pooler_heads`,
             `attn_pooler_queries`), text with `embed_cls` (padding masked), `custom_text`, and
             the `multimodal_cfg` of the captioning decoder, which clip-model does not build: its
             weights (`text_decoder.*`) go to `coca.decoder.safetensors`, apart from the rest
  metaclip2  CLIP: causal text pooling the first `eos_id` (ViT-H-14-worldwide's options), and a ViT
             with LayerScale (`ls_init_value`, ViT-M-16-alt's option)

open_clip cannot size a timm tower: `TimmModel` passes timm only the model name, the pool, the
head and drop rates. So the two SigLIP towers are the real timm model names with timm's own
constructor arguments (`img_size`, `patch_size`, `embed_dim`, `depth`, `num_heads`) added to the
`timm.create_model` call open_clip makes (timm forwards them to `VisionTransformer`); those
arguments are written to `<name>.timm.json`, and `<name>.json` holds the config open_clip got.

For each: `<name>.json` (open_clip model config), `<name>.safetensors` (the state dict),
`<name>.io.safetensors` (`images` [3, 3, s, s], `text` [3, context] int64, open_clip's normalised
`image_features` / `text_features`, and `image_unprojected` where clip-model exposes it); for
siglip also `siglip.grads.safetensors`: every parameter's gradient of
Σ image_features·`image_weights` + Σ text_features·`text_weights` (unnormalised features, seeded
N(0, 1) weights stored beside). Weights: the init, then N(0, 0.02) added everywhere and LayerNorm
scales 1 + N(0, 0.1). Seed 0, float32, CPU, eval mode.

    .venv/bin/python crates/clip-model/scripts/gen_families.py
"""
import contextlib
import json
import pathlib

import open_clip
import timm
import torch
from open_clip.coca_model import CoCa
from open_clip.model import CLIP, CustomTextCLIP
from safetensors.torch import save_file

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "families"

VOCAB = 300
TINY_TIMM = {"img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2}

SIGLIP_TEXT = {"context_length": 16, "vocab_size": VOCAB, "width": 32, "heads": 2, "layers": 2,
               "no_causal_mask": True, "proj_bias": True, "pool_type": "last", "norm_kwargs": {"eps": 1e-6},
               "hf_tokenizer_name": "timm/ViT-B-16-SigLIP", "tokenizer_kwargs": {"clean": "canonicalize"}}

FAMILIES = {
    "siglip": {
        "embed_dim": 32, "init_logit_bias": -10, "custom_text": True,
        "vision_cfg": {"image_size": 32, "timm_model_name": "vit_base_patch16_siglip_224", "timm_model_pretrained": False,
                       "timm_pool": "map", "timm_proj": "none"},
        "text_cfg": SIGLIP_TEXT,
    },
    "siglip2": {
        "embed_dim": 32, "init_logit_bias": -10, "custom_text": True,
        "vision_cfg": {"image_size": 32, "timm_model_name": "vit_base_patch32_siglip_256", "timm_model_pretrained": False,
                       "timm_pool": "map", "timm_proj": "none"},
        "text_cfg": dict(SIGLIP_TEXT, act_kwargs={"approximate": "tanh"}, hf_tokenizer_name="timm/ViT-B-32-SigLIP2-256"),
    },
    "clipa": {
        "embed_dim": 24,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16,
                       "no_ln_pre": True, "pool_type": "avg", "final_ln_after_pool": True},
        "text_cfg": {"context_length": 16, "vocab_size": VOCAB, "width": 32, "heads": 2, "layers": 2,
                     "pool_type": "last", "no_causal_mask": True, "hf_tokenizer_name": "bert-base-uncased",
                     "tokenizer_kwargs": {"strip_sep_token": True}},
    },
    "coca": {
        "embed_dim": 24, "custom_text": True,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16,
                       "attentional_pool": True, "attn_pooler_heads": 4, "attn_pooler_queries": 6, "output_tokens": True},
        "text_cfg": {"context_length": 15, "vocab_size": VOCAB, "width": 32, "heads": 2, "layers": 2,
                     "embed_cls": True, "output_tokens": True},
        # CoCa's decoder, built so that the model is open_clip's CoCa.
        "multimodal_cfg": {"context_length": 15, "vocab_size": VOCAB, "width": 32, "heads": 2, "layers": 1,
                           "attn_pooler_heads": 4},
    },
    "metaclip2": {
        "embed_dim": 24,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16, "ls_init_value": 0.5},
        "text_cfg": {"context_length": 16, "vocab_size": VOCAB, "width": 32, "heads": 2, "layers": 2,
                     "pool_type": "eos", "eos_id": 2, "hf_tokenizer_name": "facebook/xlm-v-base"},
    },
}


@contextlib.contextmanager
def timm_kwargs(kwargs):
    """timm.create_model as open_clip's TimmModel calls it, with timm's own size arguments added."""
    create = timm.create_model
    timm.create_model = lambda *a, **k: create(*a, **{**k, **kwargs})
    try:
        yield
    finally:
        timm.create_model = create


def randomize(model):
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 1)[0].rsplit(".", 1)[-1]
            if p.ndim == 1 and name.endswith("weight") and (leaf.startswith(("ln", "norm")) or leaf in ("norm1", "norm2")):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:
                p.add_(0.02 * torch.randn_like(p))
        model.logit_scale.fill_(2.0)


def build(name, cfg):
    cfg = json.loads(json.dumps(cfg))
    custom = cfg.pop("custom_text", False)
    kwargs = dict(embed_dim=cfg["embed_dim"], vision_cfg=cfg["vision_cfg"], text_cfg=cfg["text_cfg"],
                  init_logit_bias=cfg.get("init_logit_bias"))
    if "multimodal_cfg" in cfg:
        return CoCa(multimodal_cfg=cfg["multimodal_cfg"], **kwargs)
    if "timm_model_name" in cfg["vision_cfg"]:
        with timm_kwargs(TINY_TIMM):
            return CustomTextCLIP(**kwargs)
    return (CustomTextCLIP if custom else CLIP)(**kwargs)


def texts(name, cfg):
    t = cfg["text_cfg"]
    context = t["context_length"]
    text = torch.zeros(3, context, dtype=torch.long)  # 0 pads
    for row, end in enumerate([3, 9, context - 1]):
        text[row, :end] = torch.randint(3, VOCAB, (end,))
        text[row, end] = VOCAB - 1
    if t.get("pool_type") == "eos":
        # The first eos_id is pooled (row 1 has two); row 2 has none, which pools position 0.
        text[0, 4] = t["eos_id"]
        text[1, 2] = text[1, 6] = t["eos_id"]
        text[2].clamp_(min=3)
    return text


def make(name, cfg):
    torch.manual_seed(0)
    model = build(name, cfg)
    randomize(model)
    model.eval()
    size = TINY_TIMM["img_size"] if "timm_model_name" in cfg["vision_cfg"] else cfg["vision_cfg"]["image_size"]
    images = torch.randn(3, 3, size, size)
    text = texts(name, cfg)
    io = {"images": images, "text": text}
    with torch.no_grad():
        io["image_features"] = model.encode_image(images, normalize=True)
        io["text_features"] = model.encode_text(text, normalize=True)
        if name.startswith("siglip"):
            io["image_unprojected"] = model.visual(images)
    state = {k: v.contiguous() for k, v in model.state_dict().items() if not k.startswith("text_decoder.")}
    decoder = {k: v.contiguous() for k, v in model.state_dict().items() if k.startswith("text_decoder.")}
    if decoder:
        save_file(decoder, str(OUT / f"{name}.decoder.safetensors"))
    (OUT / f"{name}.json").write_text(json.dumps(cfg) + "\n")
    if "timm_model_name" in cfg["vision_cfg"]:
        (OUT / f"{name}.timm.json").write_text(json.dumps(TINY_TIMM) + "\n")
    save_file(state, str(OUT / f"{name}.safetensors"))
    save_file({k: v.contiguous() for k, v in io.items()}, str(OUT / f"{name}.io.safetensors"))
    print(f"{name}: {sum(v.numel() for v in state.values())} weights, features {tuple(io['image_features'].shape)}")
    if name == "siglip":
        image, text_f = model.encode_image(images), model.encode_text(text)
        out = {"image_weights": torch.randn_like(image), "text_weights": torch.randn_like(text_f)}
        model.zero_grad()
        ((image * out["image_weights"]).sum() + (text_f * out["text_weights"]).sum()).backward()
        out.update({f"grad.{n}": p.grad for n, p in model.named_parameters() if p.grad is not None})
        save_file({k: v.detach().contiguous() for k, v in out.items()}, str(OUT / f"{name}.grads.safetensors"))


def main():
    assert open_clip.__version__ == "3.3.0", open_clip.__version__
    assert timm.__version__ == "1.0.31", timm.__version__
    assert torch.__version__.split("+")[0] == "2.11.0", torch.__version__
    OUT.mkdir(parents=True, exist_ok=True)
    for name, cfg in FAMILIES.items():
        make(name, cfg)
    for path in OUT.iterdir():
        path.chmod(0o644)  # safetensors writes 0600


if __name__ == "__main__":
    main()
