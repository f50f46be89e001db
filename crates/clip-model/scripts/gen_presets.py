#!/usr/bin/env python3
"""Writes crates/clip-model/data/model_configs.json: every open_clip 3.3.0 model config whose towers
clip-model builds, name -> config exactly as open_clip ships it (`open_clip/model_configs/*.json`),
in open_clip's order (`list_models()`).

A config is taken when every key it sets is one clip-model's strict parser reads (`RawConfig`,
`RawVision`, `RawText` in src/config.rs; the sets below mirror them): a plain ViT or a
ModifiedResNet image tower and open_clip's own causal text transformer. The rest is printed with
the keys that keep it out (timm and Hugging Face towers, CoCa, CLIPA's and MetaCLIP 2's options,
LayerScale), so a new gap is seen when open_clip is upgraded. The Rust tests parse every config
written here.

    .venv/bin/python crates/clip-model/scripts/gen_presets.py
"""
import json
import pathlib

import open_clip

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "data" / "model_configs.json"

# The keys src/config.rs accepts (anything else is an "unknown field" error there).
TOP_KEYS = {"embed_dim", "quick_gelu", "init_logit_scale", "init_logit_bias", "vision_cfg", "text_cfg"}
VISION_KEYS = {"image_size", "layers", "width", "patch_size", "head_width", "mlp_ratio"}
TEXT_KEYS = {"context_length", "vocab_size", "width", "heads", "layers", "mlp_ratio"}


def unsupported_keys(config):
    """The keys of an open_clip model config that clip-model does not read, dotted (`text_cfg.pool_type`)."""
    keys = sorted(set(config) - TOP_KEYS)
    for section, known in (("vision_cfg", VISION_KEYS), ("text_cfg", TEXT_KEYS)):
        keys += [f"{section}.{k}" for k in sorted(set(config.get(section, {})) - known)]
    return keys


def main():
    assert open_clip.__version__ == "3.3.0", open_clip.__version__
    taken, left = {}, {}
    for name in open_clip.list_models():
        config = open_clip.get_model_config(name)
        extra = unsupported_keys(config)
        if extra:
            left[name] = extra
        else:
            taken[name] = config
    OUT.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"  {json.dumps(name)}: {json.dumps(config)}" for name, config in taken.items()]
    OUT.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    print(f"{OUT.relative_to(ROOT.parent.parent)}: {len(taken)} of {len(taken) + len(left)} open_clip configs")
    by_keys = {}
    for name, extra in left.items():
        by_keys.setdefault(", ".join(extra), []).append(name)
    for extra, names in sorted(by_keys.items(), key=lambda kv: -len(kv[1])):
        print(f"  left out ({extra}): {' '.join(names)}")


if __name__ == "__main__":
    main()
