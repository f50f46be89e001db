#!/usr/bin/env python3
"""Writes crates/clip-model/data/model_configs.json: every open_clip 3.3.0 model config whose towers
clip-model builds, name -> config exactly as open_clip ships it (`open_clip/model_configs/*.json`),
in open_clip's order (`list_models()`); and tests/fixtures/left_out_configs.json: every other
config with the reasons it is left out, which the Rust tests check `ClipConfig::from_json` refuses.

A config is taken when `ClipConfig::from_json` (src/config.rs) accepts it. `refusals` below mirrors
that parser: its key sets (`RawConfig`, `RawVision`, `RawText`; anything else is an "unknown
field" there), the timm models src/timm_vit.rs builds (read from that file), and the values and
combinations the parser refuses. The Rust tests parse every config taken and refuse every config
left out, so the mirror cannot drift unseen. The left-out configs are printed with their reasons,
so a new gap is seen when open_clip is upgraded.

    .venv/bin/python crates/clip-model/scripts/gen_presets.py
"""
import json
import pathlib
import re

import open_clip

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "data" / "model_configs.json"
LEFT_OUT = ROOT / "tests" / "fixtures" / "left_out_configs.json"
TIMM_VIT = ROOT / "src" / "timm_vit.rs"

# The keys src/config.rs reads (RawConfig, RawVision, RawText).
TOP_KEYS = {"embed_dim", "quick_gelu", "custom_text", "init_logit_scale", "init_logit_bias", "multimodal_cfg",
            "vision_cfg", "text_cfg"}
OWN_VIT_KEYS = {"image_size", "layers", "width", "patch_size", "head_width", "mlp_ratio", "ls_init_value", "no_ln_pre",
                "pool_type", "final_ln_after_pool", "attentional_pool", "attn_pooler_queries", "attn_pooler_heads",
                "output_tokens", "act_kwargs", "norm_kwargs"}
TIMM_KEYS = {"timm_model_name", "timm_model_pretrained", "timm_pool", "timm_proj", "timm_proj_bias", "timm_drop",
             "timm_drop_path"}
# Read by both ViT families (open_clip's PatchDropout, timm's patch_drop_rate); refused when non-zero for a ResNet.
SHARED_VISION_KEYS = {"patch_dropout"}
VISION_KEYS = OWN_VIT_KEYS | TIMM_KEYS | SHARED_VISION_KEYS
TEXT_KEYS = {"context_length", "vocab_size", "width", "heads", "layers", "mlp_ratio", "no_causal_mask", "pool_type",
             "eos_id", "pad_id", "proj_type", "proj_bias", "embed_cls", "ls_init_value", "output_tokens", "act_kwargs",
             "norm_kwargs", "hf_tokenizer_name", "tokenizer_kwargs"}
# The string options' values (config.rs `string_option!`).
VIT_POOLS = ("tok", "avg")
TEXT_POOLS = ("argmax", "first", "last", "eos")
TEXT_PROJECTIONS = ("linear", "none")
APPROXIMATE = ("none", "tanh")
# Keys a timm tower does not read (its name fixes the architecture), and a ModifiedResNet.
NOT_FOR_TIMM = OWN_VIT_KEYS - {"image_size"}
NOT_FOR_RESNET = {"ls_init_value", "no_ln_pre", "pool_type", "final_ln_after_pool", "attentional_pool",
                  "attn_pooler_queries", "attn_pooler_heads", "output_tokens", "act_kwargs", "norm_kwargs"}
# open_clip's HFTextEncoder (a Hugging Face transformers model as the text tower) and its options.
HF_TEXT_KEYS = {"hf_model_name", "hf_model_pretrained", "hf_pooler_type", "hf_proj_type"}


def timm_models():
    """timm name -> (width, image size) of every timm tower src/timm_vit.rs builds."""
    rows = re.findall(r'\("(vit_\w+)", (\d+), (\d+), (\d+), (\d+), ([\d.]+), \w+\)', TIMM_VIT.read_text())
    models = {name: (int(width), int(name.rsplit("_", 1)[1])) for name, _patch, width, *_ in rows}
    assert len(models) == 16, models
    return models


TIMM = timm_models()


def kwargs_refusals(section, config, quick_gelu):
    out = []
    act, norm = config.get("act_kwargs"), config.get("norm_kwargs")
    if act is not None:
        if set(act) != {"approximate"} or act["approximate"] not in APPROXIMATE:
            out.append(f"{section}.act_kwargs: {json.dumps(act)} is not built (approximate: {'/'.join(APPROXIMATE)})")
        elif quick_gelu:
            out.append(f"{section}.act_kwargs: QuickGELU takes no arguments (quick_gelu is set)")
    if norm is not None and set(norm) != {"eps"}:
        out.append(f"{section}.norm_kwargs: {json.dumps(norm)} is not built (eps only)")
    return out


def vision_refusals(v, embed_dim, quick_gelu):
    out = [f"vision_cfg.{k}: not an option clip-model reads" for k in sorted(set(v) - VISION_KEYS)]
    if not 0 <= (v.get("patch_dropout") or 0) < 1:
        out.append("vision_cfg.patch_dropout: not in [0, 1)")
    name = v.get("timm_model_name")
    if name is not None:
        out += [f"vision_cfg.{k}: not read for a timm tower" for k in sorted(set(v) & NOT_FOR_TIMM)]
        if name not in TIMM:
            return out + [f"vision_cfg.timm_model_name: timm's {name} is not built (of timm's towers, clip-model builds "
                          "the SigLIP ViTs)"]
        width, size = TIMM[name]
        if v.get("timm_model_pretrained"):
            out.append("vision_cfg.timm_model_pretrained: timm's ImageNet weights are not fetched")
        if v.get("timm_pool", "avg") != "map":
            out.append(f"vision_cfg.timm_pool: {v.get('timm_pool', 'avg')!r} is not built (map)")
        if v.get("timm_proj", "linear") != "none":
            out.append(f"vision_cfg.timm_proj: {v.get('timm_proj', 'linear')!r} is not built (none)")
        if v.get("timm_proj_bias"):
            out.append("vision_cfg.timm_proj_bias: there is no projection")
        if v.get("timm_drop_path") not in (None, 0):
            out.append("vision_cfg.timm_drop_path: stochastic depth is not built")
        if not 0 <= (v.get("timm_drop") or 0) < 1:
            out.append("vision_cfg.timm_drop: not in [0, 1)")
        if v.get("image_size", size) != size:
            out.append(f"vision_cfg.image_size: {name} takes {size} px")
        if width != embed_dim:
            out.append(f"vision_cfg.timm_proj none: {name}'s width {width} must be embed_dim")
        return out
    out += [f"vision_cfg.{k}: not read for open_clip's own towers" for k in sorted(set(v) & (TIMM_KEYS - {"timm_model_name"}))]
    layers, image_size = v.get("layers"), v.get("image_size", 224)
    head_width = v.get("head_width", 64)
    if isinstance(layers, int):
        patch = v.get("patch_size")
        if patch is None:
            return out + ["vision_cfg.patch_size is required for a ViT"]
        if image_size % patch or v["width"] % head_width:
            out.append("vision_cfg: the image size or width does not divide")
        if v.get("pool_type", "tok") not in VIT_POOLS:
            out.append(f"vision_cfg.pool_type: {v['pool_type']!r} is not built ({'/'.join(VIT_POOLS)})")
        if v.get("attentional_pool") is not None and not isinstance(v["attentional_pool"], bool):
            out.append(f"vision_cfg.attentional_pool: {v['attentional_pool']!r} is not built (true or false; "
                       "open_clip's 'parallel'/'cascade' poolers are not)")
        elif not v.get("attentional_pool") and ({"attn_pooler_queries", "attn_pooler_heads"} & set(v)):
            out.append("vision_cfg.attn_pooler_*: not read without attentional_pool")
        out += kwargs_refusals("vision_cfg", v, quick_gelu)
    elif isinstance(layers, list) and len(layers) == 4:
        out += [f"vision_cfg.{k}: not read for a ModifiedResNet" for k in sorted(set(v) & NOT_FOR_RESNET)]
        if v.get("patch_dropout") not in (None, 0):
            out.append("vision_cfg.patch_dropout: a ModifiedResNet has no patch tokens")
        if v.get("mlp_ratio", 4.0) != 4.0:
            out.append("vision_cfg.mlp_ratio: not read for a ModifiedResNet")
        if v.get("patch_size") is not None:
            out.append("vision_cfg.patch_size must be null for a ModifiedResNet")
        if image_size % 32 or (v["width"] * 32) % head_width:
            out.append("vision_cfg: the image size or width does not divide")
    else:
        out.append(f"vision_cfg.layers: {layers!r} is neither a number (ViT) nor four numbers (ModifiedResNet)")
    return out


def text_refusals(t, embed_dim, quick_gelu, custom_text):
    out = []
    unread = set(t) - TEXT_KEYS
    if "hf_model_name" in t:
        options = ", ".join(f"{k} {t[k]}" for k in sorted(unread & HF_TEXT_KEYS - {"hf_model_name"}))
        out.append(f"text_cfg.hf_model_name: a Hugging Face transformers text tower ({t['hf_model_name']}"
                   f"{'; ' + options if options else ''}) is not built")
        unread -= HF_TEXT_KEYS
    out += [f"text_cfg.{k}: not an option clip-model reads" for k in sorted(unread)]
    pool = t.get("pool_type", "argmax")
    if pool not in TEXT_POOLS:
        out.append(f"text_cfg.pool_type: {pool!r} is not built ({'/'.join(TEXT_POOLS)})")
    if "eos_id" in t and pool != "eos":
        out.append("text_cfg.eos_id: read only with pool_type eos")
    projection = t.get("proj_type", "linear")
    if projection not in TEXT_PROJECTIONS:
        out.append(f"text_cfg.proj_type: {projection!r} is not built ({'/'.join(TEXT_PROJECTIONS)})")
    out += kwargs_refusals("text_cfg", t, quick_gelu)
    if t.get("width", 512) % t.get("heads", 8):
        out.append("text_cfg.width: not a multiple of heads")
    if t.get("embed_cls") and "pool_type" in t:
        out.append("text_cfg.pool_type: embed_cls pools the class embedding")
    if t.get("embed_cls") and not custom_text:
        out.append("text_cfg.embed_cls: only with custom_text")
    if t.get("proj_bias") and projection == "none":
        out.append("text_cfg.proj_bias: there is no projection")
    if projection == "none" and t.get("width", 512) != embed_dim:
        out.append("text_cfg.proj_type none: the width must be embed_dim")
    return out


def refusals(config):
    """Why `ClipConfig::from_json` refuses an open_clip model config, one reason per problem, each
    starting with the dotted key concerned (empty: it builds)."""
    out = [f"{k}: not an option clip-model reads" for k in sorted(set(config) - TOP_KEYS)]
    if not isinstance(config.get("multimodal_cfg", {}), dict):
        out.append("multimodal_cfg: not an object")
    quick_gelu = config.get("quick_gelu", False)
    custom_text = config.get("custom_text", False) or config.get("multimodal_cfg") is not None
    out += vision_refusals(config["vision_cfg"], config["embed_dim"], quick_gelu)
    out += text_refusals(config["text_cfg"], config["embed_dim"], quick_gelu, custom_text)
    return out


def main():
    assert open_clip.__version__ == "3.3.0", open_clip.__version__
    taken, left = {}, {}
    for name in open_clip.list_models():
        config = open_clip.get_model_config(name)
        reasons = refusals(config)
        if reasons:
            left[name] = {"reasons": reasons, "config": config}
        else:
            taken[name] = config
    OUT.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"  {json.dumps(name)}: {json.dumps(config)}" for name, config in taken.items()]
    OUT.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    lines = [f"  {json.dumps(name)}: {json.dumps(entry)}" for name, entry in left.items()]
    LEFT_OUT.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    print(f"{OUT.relative_to(ROOT.parent.parent)}: {len(taken)} of {len(taken) + len(left)} open_clip configs")
    for name, entry in sorted(left.items(), key=lambda kv: (kv[1]["reasons"], kv[0])):
        print(f"  left out {name}: {'; '.join(entry['reasons'])}")


if __name__ == "__main__":
    main()
