#!/usr/bin/env python3
"""`clip bench-zeroshot` against CLIP_benchmark 1.6.2 on the same weights and data.

Builds three small sets in CLIP_benchmark's WebDataset layout from real photos (those bundled
with scikit-image; random crops of varied size, lossless WebP as CLIP_benchmark's writer stores
them): a classification set (one class per photo, two shards), a multi-label set (two crops side
by side, `.npy` targets, as its voc2007_multilabel) and a retrieval set (each crop with three
captions, one per line). Weights: open_clip's ViT-B-32, initialised and perturbed (no download).
CLIP_benchmark evaluates both with its own loader, transform, tokenizer and metrics
(`zeroshot_classification.evaluate`, `zeroshot_retrieval.evaluate`, fp32 on the CPU); then
`clip bench-zeroshot` evaluates the same folders. Prints both and fails if any score differs by
more than 0.2 points.

    .venv/bin/python scripts/bench_parity.py target/release/clip OUT_DIR [--per-class 40]
"""
import argparse
import io
import json
import pathlib
import random
import subprocess
import sys

import numpy as np
import open_clip
import torch
import webdataset as wds
from PIL import Image
from safetensors.torch import save_file
from skimage import data

from clip_benchmark.datasets.builder import build_dataset
from clip_benchmark.metrics import zeroshot_classification, zeroshot_retrieval

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from parity import randomize  # noqa: E402  (same perturbation as the embedding parity check)

PHOTOS = {"astronaut": "astronaut", "chelsea": "cat", "coffee": "cup of coffee", "rocket": "rocket",
          "immunohistochemistry": "tissue sample", "retina": "retina", "skin": "skin", "colorwheel": "colour wheel",
          "cat": "kitten", "lily": "lily"}
TEMPLATES = ["a photo of a {c}.", "a blurry photo of a {c}.", "a close-up photo of a {c}."]
CAPTIONS = ["a photo of a {c}", "a picture showing a {c}", "an image of a {c}, cropped"]
TOLERANCE = 0.2


def photos():
    out = []
    for name, label in PHOTOS.items():
        try:
            arr = getattr(data, name)()
        except Exception:  # needs a download: not bundled
            continue
        if arr.ndim == 3 and arr.shape[2] >= 3:
            out.append((label, Image.fromarray(np.ascontiguousarray(arr[..., :3]))))
    return out


def crop(rng, image):
    w, h = image.size
    cw, ch = rng.randint(w // 3, w), rng.randint(h // 3, h)
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    longer = rng.randint(150, 500)
    scale = longer / max(cw, ch)
    return image.crop((x, y, x + cw, y + ch)).resize((max(1, round(cw * scale)), max(1, round(ch * scale))), Image.BICUBIC)


def webp(image):
    buf = io.BytesIO()
    image.save(buf, format="webp", lossless=True)
    return buf.getvalue()


def write_split(root, samples, shards, name="test"):
    split = root / name
    split.mkdir(parents=True, exist_ok=True)
    per = (len(samples) + shards - 1) // shards
    for s in range(shards):
        with wds.TarWriter(str(split / f"{s}.tar")) as sink:
            for i, sample in enumerate(samples[s * per:(s + 1) * per], start=s * per):
                sink.write({"__key__": f"s{i:07d}", **sample})
    (split / "nshards.txt").write_text(f"{shards}\n")


def build(out, per_class):
    rng = random.Random(0)
    sources = photos()
    names = [label for label, _ in sources]
    cls_root, ret_root = out / "photos", out / "photos_captions"
    samples, captioned = [], []
    for i in range(per_class * len(sources)):
        label, image = sources[i % len(sources)]
        pixels = webp(crop(rng, image))
        samples.append({"webp": pixels, "cls": str(i % len(sources))})
        captioned.append({"webp": pixels, "txt": "\n".join(t.format(c=label) for t in CAPTIONS)})
    write_split(cls_root, samples, 2)
    (cls_root / "classnames.txt").write_text("\n".join(names) + "\n")
    (cls_root / "zeroshot_classification_templates.txt").write_text("\n".join(TEMPLATES) + "\n")
    write_split(ret_root, captioned[: 12 * len(sources)], 1)
    (ret_root / "dataset_type.txt").write_text("retrieval\n")
    ml_root = out / "photo_pairs"
    pairs = []
    for i in range(12 * len(sources)):
        a, b = rng.sample(range(len(sources)), 2)
        left, right = crop(rng, sources[a][1]), crop(rng, sources[b][1])
        canvas = Image.new("RGB", (left.width + right.width, max(left.height, right.height)))
        canvas.paste(left, (0, 0))
        canvas.paste(right, (left.width, 0))
        target = np.zeros(len(sources), dtype=np.float32)
        target[[a, b]] = 1
        buf = io.BytesIO()
        np.save(buf, target)
        pairs.append({"webp": webp(canvas), "npy": buf.getvalue()})
    write_split(ml_root, pairs, 1)
    for name in ("classnames.txt", "zeroshot_classification_templates.txt"):
        (ml_root / name).write_text((cls_root / name).read_text())
    (ml_root / "dataset_type.txt").write_text("multilabel\n")
    return cls_root, ret_root, ml_root


def loader(name, root, transform, task="zeroshot_classification"):
    dataset = build_dataset(f"wds/{name}", root=str(root), transform=transform, split="test", task=task)
    return dataset, torch.utils.data.DataLoader(dataset.batched(64), batch_size=None, shuffle=False, num_workers=0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("clip")
    parser.add_argument("out")
    parser.add_argument("--per-class", type=int, default=40)
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    cls_root, ret_root, ml_root = build(out, args.per_class)

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32")
    randomize(model)
    model.eval()
    weights = out / "ViT-B-32.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    transform = open_clip.image_transform(model.visual.image_size, is_train=False)
    tokenizer = open_clip.get_tokenizer("ViT-B-32")

    theirs = {}
    dataset, dl = loader("photos", cls_root, transform)
    m = zeroshot_classification.evaluate(model, dl, tokenizer, dataset.classes, dataset.templates, "cpu", amp=False)
    theirs["photos"] = {k: 100 * float(v) for k, v in m.items()}
    dataset, dl = loader("photo_pairs", ml_root, transform)
    m = zeroshot_classification.evaluate(model, dl, tokenizer, dataset.classes, dataset.templates, "cpu", amp=False)
    theirs["photo_pairs"] = {k: 100 * float(v) for k, v in m.items()}
    _, dl = loader("photos_captions", ret_root, transform, task="zeroshot_retrieval")
    m = zeroshot_retrieval.evaluate(model, dl, tokenizer, "cpu", amp=False, recall_k_list=[1, 5, 10])
    theirs["photos_captions"] = {k: 100 * float(v) for k, v in m.items()}

    results = out / "ours"
    subprocess.run([args.clip, "bench-zeroshot", "--model", "ViT-B-32", "--weights", weights, "--datasets",
                    f"{cls_root},{ml_root},{ret_root}", "--out", results, "--device", "cpu"], check=True, stdout=subprocess.DEVNULL)
    ours = {r["name"]: r for r in json.loads((results / "results.json").read_text())["results"]}

    worst = 0.0
    for dataset, scores in theirs.items():
        for key, value in sorted(scores.items()):
            mine = ours[dataset].get(key)
            if mine is None:
                mine = ours[dataset]["scores"][key]
            worst = max(worst, abs(mine - value))
            print(f"{dataset:16} {key:28} CLIP_benchmark {value:7.3f}  clip-rs {mine:7.3f}  Δ {mine - value:+.3f}")
        print(f"{dataset:16} samples: clip-rs {ours[dataset]['samples']}")
    print(f"bench parity: worst |Δ| = {worst:.3f} points (bound {TOLERANCE})")
    sys.exit(0 if worst <= TOLERANCE else 1)


if __name__ == "__main__":
    main()
