#!/usr/bin/env python3
"""The hub cache shared with Python, proven both ways against a loopback hub (clip-testhub).

    hub_interop.py CLIP CLIP_TESTHUB

1. Python fills a cache: huggingface_hub's `hf_hub_download` (HF_ENDPOINT at the loopback hub) fetches
   the tiny-hub model's files; then `clip embed --model hf-hub:test/tiny-hub` runs with HF_HUB_OFFLINE=1
   on that cache and must succeed without a single request.
2. clip fills a cache: `clip pull hf-hub:test/tiny-hub`; then open_clip, offline on that cache,
   loads `create_model_and_transforms("hf-hub:test/tiny-hub")` and its image embeddings of the
   committed photos must equal `clip embed`'s (max |Δ| ≤ 1e-5), again without a request.

Run by `cargo xtask test` when the oracles are installed (`cargo xtask setup --oracles`).
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import urllib.request

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent.parent
FIXTURE = HERE / "tests" / "fixtures" / "tiny-hub"
PHOTOS = HERE.parent / "clip-data" / "tests" / "fixtures" / "images"
REPO = "test/tiny-hub"


def requests_made(endpoint):
    with urllib.request.urlopen(endpoint + "/_stats") as r:
        return sum(r["count"] for r in json.load(r)["requests"] if r["path"] != "/_stats")


def python(code, env):
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"python failed:\n{out.stderr}")
    return out.stdout


def clip(binary, args, env):
    out = subprocess.run([binary, *args], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"clip {' '.join(args)} failed:\n{out.stderr}")
    return out


def main():
    binary, testhub = sys.argv[1], sys.argv[2]
    work = pathlib.Path(tempfile.mkdtemp(prefix="clip-hub-interop-"))
    root = work / "hub"
    shutil.copytree(FIXTURE, root / "models" / REPO)
    images = work / "images"
    images.mkdir()
    # PNGs of three PIL modes: JPEG decoding differs from libjpeg-turbo in the last bits (see
    # clip-data's decode test), which is not what this script is about.
    for name in ["chelsea.png", "coffee.png", "camera.png", "logo.png"]:
        shutil.copy(PHOTOS / name, images / name)
    server = subprocess.Popen([testhub, str(root)], stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
    try:
        endpoint = server.stdout.readline().strip()
        base = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE"))}
        base["HF_ENDPOINT"] = endpoint
        failures = []

        # 1. Python fills, clip reads offline.
        cache_a = work / "cache-python"
        env = dict(base, HF_HUB_CACHE=str(cache_a), HF_HUB_DISABLE_XET="1")
        python(
            "from huggingface_hub import hf_hub_download\n"
            f"for f in ['open_clip_config.json', 'open_clip_model.safetensors']: hf_hub_download('{REPO}', f)\n",
            env,
        )
        before = requests_made(endpoint)
        clip(binary, ["embed", "--model", "hf-hub:" + REPO, "--images", str(images), "--out", str(work / "a.npy"), "--device", "cpu"],
             dict(env, HF_HUB_OFFLINE="1"))
        after = requests_made(endpoint)
        print(f"python-filled cache, clip embed offline: ok, {after - before} requests")
        if after != before:
            failures.append(f"clip made {after - before} requests offline")

        # 2. clip fills, open_clip reads offline.
        cache_b = work / "cache-clip"
        env = dict(base, HF_HUB_CACHE=str(cache_b))
        clip(binary, ["pull", "hf-hub:" + REPO], env)
        clip(binary, ["embed", "--model", "hf-hub:" + REPO, "--images", str(images), "--out", str(work / "b.npy"), "--device", "cpu"],
             dict(env, HF_HUB_OFFLINE="1"))
        before = requests_made(endpoint)
        files = sorted(p.name for p in images.iterdir())
        python(
            "import numpy as np, open_clip, torch\n"
            "from PIL import Image\n"
            f"model, _, preprocess = open_clip.create_model_and_transforms('hf-hub:{REPO}')\n"
            "model.eval()\n"
            f"x = torch.stack([preprocess(Image.open('{images}/' + f)) for f in {files!r}])\n"
            "with torch.no_grad(): f = model.encode_image(x, normalize=True)\n"
            f"np.save('{work / 'open_clip.npy'}', f.numpy())\n",
            dict(env, HF_HUB_OFFLINE="1"),
        )
        after = requests_made(endpoint)
        ours, theirs = np.load(work / "b.npy"), np.load(work / "open_clip.npy")
        delta = float(np.abs(ours - theirs).max())
        print(f"clip-filled cache, open_clip offline: max |Δ| = {delta:.2e} over {ours.shape[0]} images, {after - before} requests")
        if after != before:
            failures.append(f"open_clip made {after - before} requests offline")
        if delta > 1e-5:
            failures.append(f"embeddings differ by {delta}")
        a = np.load(work / "a.npy")
        if float(np.abs(a - ours).max()) != 0.0:
            failures.append("the two caches gave different embeddings")
        if failures:
            sys.exit("hub interop failed: " + "; ".join(failures))
        print("hub interop: both ways ok")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
