#!/usr/bin/env python3
"""Random-init parity of every architecture in the pretrained registry: `clip embed` against
open_clip 3.3.0, image cosine >= 0.9999 per row and text max |Δ| <= 1e-4 on normalised features.

For each architecture (by default every one in crates/clip-pretrained/data/pretrained.json, smallest
first), a child process builds `open_clip.create_model_and_transforms(ARCH, pretrained=None)` in
fp32 with seed 0, perturbs the weights as scripts/parity.py does (so that zero-initialised
parameters hide nothing), writes the state dict as safetensors, and computes `encode_image` /
`encode_text(normalize=True)` on the committed photos (crates/clip-data/tests/fixtures/images,
preprocessed by open_clip's own eval transform: OpenAI mean/std, bicubic, shortest side) and a
few captions (one longer than the context, so it truncates). The child exits, so its memory is
gone, before `clip embed --model ARCH --weights FILE` runs on the same inputs; the weights are
deleted after each architecture. Prints a table; exits non-zero on a miss.

Where the comparison should not go through `clip embed`, the towers alone are compared through
clip-model's `features` example (`--features BIN`: a model config, the weights and the inputs in,
normalised features out; cargo xtask zoo-parity builds it): a text tower built for a Hugging Face
tokenizer (SigLIP, CLIPA, MetaCLIP 2; its tokenizer would have to come from the hub, and this
compares towers offline) gets seeded random ids within its vocabulary (with `eos_id` placed for
eos pooling and a padded row) instead of the captions, and a CoCa checkpoint (`text_decoder.*`
beside the towers, which `clip embed`'s `load_weights` does not set aside) gets open_clip's
preprocessed pixels and tokenized captions. The `via` column says which:
`cli` (both through `clip embed`), `cli/ids` (images through it, random ids through `features`),
`features` (both through `features`). SigLIP's timm towers need timm (1.0.31).

    .venv/bin/python scripts/zoo_parity.py target/release/clip [ARCH ...] [--skip-large] [--features BIN]

--skip-large leaves out architectures of 1e9 parameters or more (ViT-g-14, ViT-bigG-14: 5-10 GB of
fp32 weights each, minutes per side on two cores). --workdir keeps the inputs and outputs there.
"""
import argparse
import gc
import json
import pathlib
import shutil
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
PHOTOS = ROOT / "crates/clip-data/tests/fixtures/images"
REGISTRY = ROOT / "crates/clip-pretrained/data/pretrained.json"
CAPTIONS = [
    "a photo of a cat",
    "a diagram",
    "a dog playing in the snow",
    "Café &amp; crème brûlée",
    "東京タワーの夜景",
    "an astronaut riding a horse on the moon",
    # Longer than 77 tokens: both sides truncate and keep the end-of-text token last.
    " ".join(["a very long caption about a cat sitting on a red chair next to a window"] * 8),
]
IMAGE_COSINE = 0.9999
TEXT_TOL = 1e-4
LARGE = 1_000_000_000


def architectures():
    """The registry's architectures with their parameter counts, smallest first."""
    params = {}
    for entry in json.loads(REGISTRY.read_text())["pretrained"]:
        params.setdefault(entry["architecture"], entry["params"])
    return sorted(params.items(), key=lambda kv: kv[1])


def save_safetensors(tensors, path):
    """safetensors without a second copy of the weights in memory (`save_file` builds bytes of all)."""
    import torch

    dtypes = {"torch.float32": "F32", "torch.int64": "I64", "torch.float16": "F16", "torch.bfloat16": "BF16"}
    header, offset, arrays = {}, 0, []
    for name, tensor in tensors.items():
        tensor = tensor.detach().contiguous()
        size = tensor.numel() * tensor.element_size()
        header[name] = {"dtype": dtypes[str(tensor.dtype)], "shape": list(tensor.shape), "data_offsets": [offset, offset + size]}
        offset += size
        arrays.append(tensor)
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for tensor in arrays:
            f.write(memoryview(tensor.view(-1).view(torch.uint8).numpy()))


def model_config(arch):
    import open_clip

    return open_clip.get_model_config(arch)


def via(config):
    """How each tower is run on our side: `clip embed` where it can, clip-model's `features` else."""
    cli_images = "multimodal_cfg" not in config
    cli_texts = cli_images and "hf_tokenizer_name" not in config["text_cfg"]
    return cli_images, cli_texts


def random_ids(text_cfg, rows=4):
    """Seeded ids within the vocabulary for a tower whose tokenizer is a Hugging Face one: no id
    below 3 but where placed, `eos_id` placed for eos pooling (twice in one row, in none of
    another), and a row padded with `pad_id` after ten tokens."""
    import torch

    context, vocab = text_cfg["context_length"], text_cfg["vocab_size"]
    ids = torch.randint(3, vocab, (rows, context), generator=torch.Generator().manual_seed(1))
    if text_cfg.get("pool_type") == "eos":
        eos = text_cfg["eos_id"]
        ids[ids == eos] = 3
        ids[0, 5] = eos
        ids[1, 7] = ids[1, context // 2] = eos
        ids[3, 10] = eos
    ids[3, 11:] = text_cfg.get("pad_id", 0)
    return ids


def reference(arch, work):
    """Child process: open_clip's model, its weights and its features for `arch`."""
    import open_clip
    import torch
    from PIL import Image

    sys.path.insert(0, str(ROOT / "scripts"))
    from parity import randomize

    assert open_clip.__version__ == "3.3.0", open_clip.__version__
    config = model_config(arch)
    if "timm_model_name" in config["vision_cfg"]:
        import timm

        assert timm.__version__ == "1.0.31", timm.__version__
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=None)
    randomize(model)
    model.eval()
    save_safetensors(model.state_dict(), work / "weights.safetensors")
    (work / "model_config.json").write_text(json.dumps(config))
    names = sorted((p.name for p in (work / "images").iterdir()), key=lambda n: n.encode())
    if "hf_tokenizer_name" in config["text_cfg"]:
        ids = random_ids(config["text_cfg"])
    else:
        ids = open_clip.get_tokenizer(arch)(CAPTIONS)
    with torch.no_grad():
        pixels = torch.stack([preprocess(Image.open(work / "images" / n)) for n in names])
        np.save(work / "ref-images.npy", model.encode_image(pixels, normalize=True).numpy())
        np.save(work / "ref-texts.npy", model.encode_text(ids, normalize=True).numpy())
    save_safetensors({"images": pixels, "text": ids}, work / "io.safetensors")
    (work / "ref-images.txt").write_text("\n".join(names))


def features(binary, work, towers):
    """clip-model's `features` example on open_clip's inputs for `towers` (images, text)."""
    from safetensors.numpy import load_file, save_file

    inputs = load_file(work / "io.safetensors")
    save_file({k: inputs[k] for k in towers}, work / "ours-io.safetensors")
    subprocess.run([str(binary), work / "model_config.json", work / "weights.safetensors", work / "ours-io.safetensors",
                    work / "ours-features.safetensors"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return load_file(work / "ours-features.safetensors")


def embed(clip, arch, work, kind):
    source = work / "images" if kind == "images" else work / "captions.txt"
    out = work / f"ours-{kind}.npy"
    subprocess.run([str(clip), "embed", "--model", arch, "--weights", str(work / "weights.safetensors"),
                    f"--{kind}", str(source), "--out", str(out), "--device", "cpu"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return np.load(out)


def check(clip, binary, arch, work):
    """(image min cosine, image max |Δ|, text max |Δ|, via) of `clip embed` (or `features`) against open_clip."""
    subprocess.run([sys.executable, __file__, "--reference", arch, "--workdir", str(work)], check=True)
    cli_images, cli_texts = via(model_config(arch))
    if not (cli_images and cli_texts) and binary is None:
        raise SystemExit(f"{arch}: needs clip-model's features example (--features BIN)")
    towers = [t for t, cli in (("images", cli_images), ("text", cli_texts)) if not cli]
    ours = features(binary, work, towers) if towers else {}
    if cli_images:
        ours_images = embed(clip, arch, work, "images")
        ours_names = (work / "ours-images.files.txt").read_text().split("\n")
        ref_names = (work / "ref-images.txt").read_text().split("\n")
        assert ours_names == ref_names, (ours_names, ref_names)
    else:
        ours_images = ours["image_features"]
    ours_texts = embed(clip, arch, work, "texts") if cli_texts else ours["text_features"]
    (work / "weights.safetensors").unlink()
    ref_images, ref_texts = np.load(work / "ref-images.npy"), np.load(work / "ref-texts.npy")
    assert ours_images.shape == ref_images.shape and ours_texts.shape == ref_texts.shape
    cosine = (ours_images * ref_images).sum(1) / (np.linalg.norm(ours_images, axis=1) * np.linalg.norm(ref_images, axis=1))
    mode = "cli" if cli_images and cli_texts else "cli/ids" if cli_images else "features"
    return float(cosine.min()), float(np.abs(ours_images - ref_images).max()), float(np.abs(ours_texts - ref_texts).max()), mode


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clip", nargs="?", type=pathlib.Path, help="the clip binary")
    parser.add_argument("archs", nargs="*", help="architectures (default: every one in the registry)")
    parser.add_argument("--skip-large", action="store_true", help=f"leave out architectures of {LARGE:.0e}+ parameters")
    parser.add_argument("--workdir", type=pathlib.Path, help="keep inputs and outputs here")
    parser.add_argument("--features", type=pathlib.Path, help="clip-model's features example (for what clip embed cannot take)")
    parser.add_argument("--reference", metavar="ARCH", help=argparse.SUPPRESS)
    args = parser.parse_intermixed_args()
    if args.reference:
        reference(args.reference, args.workdir)
        return
    known = dict(architectures())
    archs = args.archs or list(known)
    unknown = [a for a in archs if a not in known]
    if unknown:
        parser.error(f"not in the registry: {', '.join(unknown)}")
    if args.skip_large:
        archs = [a for a in archs if known[a] < LARGE]
    root = args.workdir or pathlib.Path(tempfile.mkdtemp(prefix="zoo-parity-"))
    rows, failed = [], False
    print(f"{'architecture':<30} {'params':>8} {'image min cos':>14} {'image max|Δ|':>13} {'text max|Δ|':>12} {'via':>8} {'s':>6}")
    for arch in archs:
        work = root / arch
        shutil.rmtree(work, ignore_errors=True)
        (work / "images").mkdir(parents=True)
        for photo in PHOTOS.iterdir():
            shutil.copy(photo, work / "images" / photo.name)
        (work / "captions.txt").write_text("\n".join(CAPTIONS) + "\n")
        start = time.monotonic()
        try:
            cosine, image_diff, text_diff, mode = check(args.clip, args.features, arch, work)
            ok = cosine >= IMAGE_COSINE and text_diff <= TEXT_TOL
            line = f"{cosine:14.7f} {image_diff:13.2e} {text_diff:12.2e} {mode:>8}"
        except subprocess.CalledProcessError as e:
            ok, line = False, f"failed: {(e.stderr or '').strip().splitlines()[-1:] or e}"
        finally:
            (work / "weights.safetensors").unlink(missing_ok=True)
            gc.collect()
        seconds = time.monotonic() - start
        failed |= not ok
        rows.append(arch)
        print(f"{arch:<30} {known[arch] / 1e6:7.1f}M {line} {seconds:6.0f}{'' if ok else '  MISS'}", flush=True)
    if not args.workdir:
        shutil.rmtree(root, ignore_errors=True)
    print(f"zoo parity: {len(rows)} architectures, bounds image cosine >= {IMAGE_COSINE}, text max |Δ| <= {TEXT_TOL:.0e}: "
          f"{'a miss' if failed else 'all met'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
