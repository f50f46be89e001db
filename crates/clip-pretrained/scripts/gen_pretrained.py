#!/usr/bin/env python3
"""Writes crates/clip-pretrained/data/pretrained.json: open_clip 3.3.0's pretrained (model, tag)
table (`open_clip.list_pretrained()`, `pretrained.get_pretrained_cfg`) for every model whose
architecture clip-model builds (its presets: crates/clip-model/data/model_configs.json, written by
crates/clip-model/scripts/gen_presets.py), and every other listed pair with the reason it is left out.

Each entry, as open_clip resolves `create_model_and_transforms(model, pretrained=tag)`:
  model, tag        open_clip's names (tags as listed: lower case, `_`; open_clip cleans a user's
                    tag with `tag.lower().replace('-', '_')`)
  architecture      the preset to build: the model name itself
  hf_hub, hf_file   the cfg's `hf_hub` split as `download_pretrained` does (`os.path.split`): the
                    repo id, and the file named after it (null: the default file)
  files             the files `download_pretrained_from_hf` tries, in its order: the safetensors
                    alternatives of the file (`_get_safe_alternatives`), then the file itself;
                    for the default `open_clip_pytorch_model.bin` that is
                    `open_clip_model.safetensors`, then `open_clip_pytorch_model.bin`
  url, sha256       the cfg's direct URL (open_clip's fallback when huggingface_hub is missing;
                    null when none) and, for OpenAI's URLs, the SHA-256 that is the URL's
                    second-to-last path segment (null for the others)
  quick_gelu        the tag's `quick_gelu` (the config's where the tag does not say): the tag
                    decides, since the tag's weights were trained with it
  quick_gelu_overrides_name
                    the tag says QuickGELU but the model name's config does not (open_clip
                    builds GELU then and only warns)
  mean, std, interpolation, resize_mode
                    the cfg's preprocessing, open_clip's `PreprocessCfg` defaults where it omits one
  image_size        the config's `vision_cfg.image_size`
  params            parameters of open_clip's model (`create_model(model)` on the meta device)
  decoder_params    those of them in the parts clip-model does not build: CoCa's captioning
                    decoder (`text_decoder.*`, which loading sets aside); 0 for the rest

A pair is left out when clip-model's parser refuses the model's config; the reason is what
crates/clip-model/scripts/gen_presets.py's mirror of that parser says (`refusals`).

    .venv/bin/python crates/clip-pretrained/scripts/gen_pretrained.py
"""
import dataclasses
import importlib.util
import json
import pathlib
import os

import open_clip
import torch
from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME
from open_clip.pretrained import _clean_tag, _get_safe_alternatives, get_pretrained_cfg
from open_clip.transform import PreprocessCfg

CRATES = pathlib.Path(__file__).resolve().parent.parent.parent
OUT = CRATES / "clip-pretrained" / "data" / "pretrained.json"
PRESETS = CRATES / "clip-model" / "data" / "model_configs.json"


def load_gen_presets():
    """clip-model's generator, for its mirror of the config parser."""
    spec = importlib.util.spec_from_file_location("gen_presets", CRATES / "clip-model" / "scripts" / "gen_presets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def left_out_reason(config, refusals):
    """Why clip-model cannot build this open_clip config (None if it can)."""
    if config is None:
        return "no model config"
    return "; ".join(refusals(config)) or None


# Parameters of the parts of open_clip's model clip-model does not build (by key prefix).
UNBUILT_PREFIXES = ("text_decoder.",)


def parameter_counts(name):
    """(all parameters, those under UNBUILT_PREFIXES) of open_clip's model."""
    with torch.device("meta"):
        model = open_clip.create_model(name, pretrained=None, device="meta")
    named = list(model.named_parameters())
    unbuilt = sum(p.numel() for n, p in named if n.startswith(UNBUILT_PREFIXES))
    assert (unbuilt > 0) == ("multimodal_cfg" in open_clip.get_model_config(name)), name
    return sum(p.numel() for _, p in named), unbuilt


def entry(model, tag, config, counts):
    cfg = get_pretrained_cfg(model, tag)
    defaults = dataclasses.asdict(PreprocessCfg())
    hf_hub, hf_file, files = None, None, []
    if cfg.get("hf_hub"):
        hf_hub, hf_file = os.path.split(cfg["hf_hub"])
        hf_file = hf_file or None
        file = hf_file or HF_WEIGHTS_NAME
        files = list(_get_safe_alternatives(file)) + [file]
    url = cfg.get("url") or None
    sha256 = url.split("/")[-2] if url and "openaipublic" in url else None
    config_quick_gelu = config.get("quick_gelu", False)
    quick_gelu = cfg.get("quick_gelu", config_quick_gelu)
    return {
        "model": model,
        "tag": tag,
        "architecture": model,
        "hf_hub": hf_hub,
        "hf_file": hf_file,
        "files": files,
        "url": url,
        "sha256": sha256,
        "quick_gelu": quick_gelu,
        "quick_gelu_overrides_name": quick_gelu and not config_quick_gelu,
        "mean": list(cfg.get("mean", defaults["mean"])),
        "std": list(cfg.get("std", defaults["std"])),
        "interpolation": cfg.get("interpolation", defaults["interpolation"]),
        "resize_mode": cfg.get("resize_mode", defaults["resize_mode"]),
        "image_size": config["vision_cfg"]["image_size"],
        "params": counts[0],
        "decoder_params": counts[1],
    }


def main():
    assert open_clip.__version__ == "3.3.0", open_clip.__version__
    assert (HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME) == ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
    refusals = load_gen_presets().refusals
    presets = json.loads(PRESETS.read_text())
    pretrained, left_out, params = [], [], {}
    for model, tag in open_clip.list_pretrained():
        assert _clean_tag(tag) == tag, (model, tag)
        config = open_clip.get_model_config(model)
        reason = left_out_reason(config, refusals)
        assert (reason is None) == (model in presets), (model, reason)
        if model in presets:
            assert presets[model] == config, model
            if model not in params:
                params[model] = parameter_counts(model)
            pretrained.append(entry(model, tag, config, params[model]))
        else:
            left_out.append({"model": model, "tag": tag, "reason": reason})
    lines = ["{", f'  "open_clip": {json.dumps(open_clip.__version__)},', '  "pretrained": [']
    lines += [f"    {json.dumps(e)}," for e in pretrained]
    lines[-1] = lines[-1].rstrip(",")
    lines += ["  ],", '  "left_out": [']
    lines += [f"    {json.dumps(e)}," for e in left_out]
    lines[-1] = lines[-1].rstrip(",")
    lines += ["  ]", "}"]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n")
    print(f"{OUT.relative_to(CRATES.parent)}: {len(pretrained)} pairs over {len(params)} architectures, "
          f"{len(left_out)} left out")
    reasons = {}
    for e in left_out:
        reasons[e["reason"]] = reasons.get(e["reason"], 0) + 1
    for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1]):
        print(f"  {count:3d}  {reason}")


if __name__ == "__main__":
    main()
