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

The other two weight formats, from the same models:
  tiny-vit-hf/           a Hugging Face `CLIPModel` (transformers) holding tiny-vit's weights,
                         written with `save_pretrained`; its own features are checked against
                         open_clip's here
  tiny-vit.grads.safetensors
                         open_clip's gradients, for every parameter of tiny-vit, of
                         Σ image_features·`image_weights` + Σ text_features·`text_weights`
                         (unnormalised features; the weights, seeded N(0, 1), are stored beside)
  tiny-<x>-openai.pt     a traced TorchScript archive, as OpenAI ships theirs, with every tensor
                         in fp16; `tiny-<x>-openai.io.safetensors` holds open_clip's features for
                         those fp16-rounded weights (computed in fp32)

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
    if name == "tiny-vit":
        write_hugging_face(cfg, model, images, text, io)
        write_gradients(name, model, images, text)
    write_torchscript(name, model, images, text)  # last: it rounds the weights to fp16


def write_gradients(name, model, images, text):
    """Gradients through both towers' pooling, where clip-model computes less than the reference."""
    image, text_f = model.encode_image(images), model.encode_text(text)
    out = {"image_weights": torch.randn_like(image), "text_weights": torch.randn_like(text_f)}
    model.zero_grad()
    ((image * out["image_weights"]).sum() + (text_f * out["text_weights"]).sum()).backward()
    out.update({f"grad.{n}": p.grad for n, p in model.named_parameters() if p.grad is not None})
    model.zero_grad()
    save_file({k: v.detach().contiguous() for k, v in out.items()}, str(FIXTURES / f"{name}.grads.safetensors"))


def write_torchscript(name, model, images, text):
    """OpenAI-style archive: a traced module, tensors stored in fp16."""
    with torch.no_grad():
        for t in list(model.parameters()) + [b for n, b in model.named_buffers() if b.is_floating_point()]:
            t.copy_(t.half().float())
        io = {"images": images, "text": text,
              "image_features": model.encode_image(images, normalize=True),
              "text_features": model.encode_text(text, normalize=True)}
        traced = torch.jit.trace(model, (images, text), strict=False)
    traced = traced.half()
    torch.jit.save(traced, str(FIXTURES / f"{name}-openai.pt"))
    save_file({k: v.contiguous() for k, v in io.items()}, str(FIXTURES / f"{name}-openai.io.safetensors"))


def write_hugging_face(cfg, model, images, text, io):
    """The same ViT as a transformers CLIPModel (the inverse of the mapping clip-model reads)."""
    from transformers import CLIPConfig, CLIPModel
    v, t = cfg["vision_cfg"], cfg["text_cfg"]
    config = CLIPConfig(
        projection_dim=cfg["embed_dim"],
        text_config=dict(vocab_size=t["vocab_size"], hidden_size=t["width"], intermediate_size=4 * t["width"],
                         num_attention_heads=t["heads"], num_hidden_layers=t["layers"],
                         max_position_embeddings=t["context_length"], hidden_act="quick_gelu",
                         eos_token_id=t["vocab_size"] - 1, layer_norm_eps=1e-5),
        vision_config=dict(hidden_size=v["width"], intermediate_size=4 * v["width"],
                           num_attention_heads=v["width"] // v["head_width"], num_hidden_layers=v["layers"],
                           image_size=v["image_size"], patch_size=v["patch_size"], hidden_act="quick_gelu",
                           layer_norm_eps=1e-5),
    )
    hf = CLIPModel(config).eval()
    sd = model.state_dict()
    out = {"logit_scale": sd["logit_scale"],
           "text_model.embeddings.token_embedding.weight": sd["token_embedding.weight"],
           "text_model.embeddings.position_embedding.weight": sd["positional_embedding"],
           "text_model.final_layer_norm.weight": sd["ln_final.weight"],
           "text_model.final_layer_norm.bias": sd["ln_final.bias"],
           "text_projection.weight": sd["text_projection"].T,
           "vision_model.embeddings.class_embedding": sd["visual.class_embedding"],
           "vision_model.embeddings.patch_embedding.weight": sd["visual.conv1.weight"],
           "vision_model.embeddings.position_embedding.weight": sd["visual.positional_embedding"],
           "vision_model.pre_layrnorm.weight": sd["visual.ln_pre.weight"],
           "vision_model.pre_layrnorm.bias": sd["visual.ln_pre.bias"],
           "vision_model.post_layernorm.weight": sd["visual.ln_post.weight"],
           "vision_model.post_layernorm.bias": sd["visual.ln_post.bias"],
           "visual_projection.weight": sd["visual.proj"].T}
    for hf_tower, tower, layers in [("text_model", "", t["layers"]), ("vision_model", "visual.", v["layers"])]:
        for i in range(layers):
            a, b = f"{hf_tower}.encoder.layers.{i}", f"{tower}transformer.resblocks.{i}"
            for part, w in zip("qkv", sd[f"{b}.attn.in_proj_weight"].chunk(3)):
                out[f"{a}.self_attn.{part}_proj.weight"] = w
            for part, w in zip("qkv", sd[f"{b}.attn.in_proj_bias"].chunk(3)):
                out[f"{a}.self_attn.{part}_proj.bias"] = w
            for ours, theirs in [("attn.out_proj", "self_attn.out_proj"), ("ln_1", "layer_norm1"),
                                 ("ln_2", "layer_norm2"), ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")]:
                for param in ("weight", "bias"):
                    out[f"{a}.{theirs}.{param}"] = sd[f"{b}.{ours}.{param}"]
    missing, unexpected = hf.load_state_dict(out, strict=False)
    assert not unexpected and all(k.endswith("position_ids") for k in missing), (missing, unexpected)
    with torch.no_grad():
        # transformers 5 returns the projected embeddings as `pooler_output`.
        pooled = lambda r: r if isinstance(r, torch.Tensor) else r.pooler_output
        image = torch.nn.functional.normalize(pooled(hf.get_image_features(pixel_values=images)), dim=-1)
        text_f = torch.nn.functional.normalize(pooled(hf.get_text_features(input_ids=text)), dim=-1)
    assert (image - io["image_features"]).abs().max() < 1e-5, "HF image features differ from open_clip's"
    assert (text_f - io["text_features"]).abs().max() < 1e-5, "HF text features differ from open_clip's"
    hf.save_pretrained(str(FIXTURES / "tiny-vit-hf"), safe_serialization=True)


def main():
    assert open_clip.__version__ == "3.3.0", open_clip.__version__
    for name in ("tiny-vit", "tiny-rn"):
        make(name)
    # Pickled checkpoints, which clip-rs refuses to read: torch.save's zip and legacy formats.
    torch.save({"w": torch.zeros(2)}, str(FIXTURES / "pickled-zip.pt"))
    torch.save({"w": torch.zeros(2)}, str(FIXTURES / "pickled-legacy.bin"), _use_new_zipfile_serialization=False)


if __name__ == "__main__":
    main()
