#!/usr/bin/env python3
"""`cargo xtask bench-compare`: the same workloads with clip-rs and with the Python reference on
this machine, in one run — alternating (which side goes first flips each repeat), several
repeats, medians, ratios (our time / reference time; lower is better) against the targets of
issue 9 — and the table written into docs/perf.md between the bench-compare markers.

Workloads (every timing excludes building the data it runs on):
- tokenizer: 100,000 captions, one thread; `clip tokenize --stats` (in-process time) vs open_clip's
  SimpleTokenizer.
- preprocessing: open_clip's training transform per image on one core; `clip bench-data --threads 1`
  (read, decode, crop, resize, normalise, batch) vs PIL + torchvision on the same JPEG files: the
  photo mix (gen_photos.py: long sides 256–1600 px, quality 70–95) and 256 px photos.
- image / text embedding: ViT-B-32 forward without gradient, image batch 32, text batch 256,
  `bench_model` vs open_clip (median of timed iterations, each side in its own process).
- SigLIP image embedding, ViT-B-16-SigLIP (timm's tower), batch 32, both at random init, fp32:
  `clip embed --images` on 32 of the photos as a whole process (start-up, building the model, read,
  decode, OpenAI's 224 evaluation transform, forward, write the .npy) vs a Python process doing
  the same with open_clip + timm (`bench_embed.py --embed-images`); and the forward alone, as the
  ViT-B-32 rows time it (`bench_model` vs `bench_embed.py --reference`).
- embedding a collection (issue 19): `clip embed --source wds:` on 160 photos in 4 WebDataset shards,
  ViT-B-32, 2 decode threads, against clip-retrieval's inference pipeline (open_clip + a DataLoader
  of 2 workers, `bench_embed_wds.py`), each a whole process; peak RSS of both printed.
- training steps: forward, loss, backward, optimiser, logit-scale clamp; `tiny` at batch 256 and
  ViT-B-32 at batch 32; `bench_step` vs `bench_step.py` (open_clip, ClipLoss, torch AdamW with
  open_clip_train's groups).
- zero-shot end to end: one process each, from start to metrics on disk: `clip bench-zeroshot` vs
  `clip_benchmark eval --no_amp`, fp32 both, same weights (open_clip ViT-B-32, initialised and
  perturbed) and the same WebDataset folder.
- linear-probe search: the λ search on the same features: our L-BFGS search (its own timing in
  results.json) vs the same parametric search with scikit-learn fits.

    .venv/bin/python benches/scripts/compare.py --bin target/release --work target/bench-compare \
        [--repeats 5] [--threads 2] [--write docs/perf.md]
"""
import argparse
import datetime
import io
import json
import os
import pathlib
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "scripts"))

import numpy as np  # noqa: E402
import open_clip  # noqa: E402
import sklearn  # noqa: E402
import torch  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import bench_data  # noqa: E402
import bench_parity  # noqa: E402
import bench_probe  # noqa: E402
import bench_tokenizer  # noqa: E402
from parity import randomize  # noqa: E402

BEGIN, END = "<!-- bench-compare:begin -->", "<!-- bench-compare:end -->"


def run_json(cmd, env=None):
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def timed(cmd, env=None):
    start = time.perf_counter()
    run = subprocess.run([str(c) for c in cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    if run.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({run.returncode}):\n{run.stderr[-3000:]}")
    return time.perf_counter() - start


class Workloads:
    """Each method is one workload; it runs both sides once (in the order given) and returns
    {"ours": seconds, "theirs": seconds} for the same unit of work."""

    def __init__(self, args):
        self.bin = pathlib.Path(args.bin).resolve()
        self.clip = self.bin / "clip"
        self.work = pathlib.Path(args.work).resolve()
        self.threads = args.threads
        self.env = dict(os.environ, LD_LIBRARY_PATH=str(pathlib.Path(torch.__file__).parent / "lib"))
        self._flops, self._peak = {}, None
        self.work.mkdir(parents=True, exist_ok=True)
        self._prepare()

    def _prepare(self):
        """The data every repeat shares: captions, photos, weights, evaluation sets."""
        self.captions = bench_tokenizer.captions(100_000)
        self.caption_file = self.work / "captions.txt"
        self.caption_file.write_text("\n".join(self.captions) + "\n")
        self.simple = bench_tokenizer.SimpleTokenizer()
        sample = self.captions[:200]
        ours = subprocess.run([self.clip, "tokenize"], input="\n".join(sample) + "\n", capture_output=True, text=True,
                              check=True, env=self.env).stdout.splitlines()
        assert [json.loads(line) for line in ours] == self.simple(sample).tolist(), "clip tokenize disagrees with open_clip"

        # The photo mix (long sides 256–1600 px, JPEG quality 70–95), and img2dataset's default
        # 256 px output size; remade when gen_photos.py's arguments change.
        self.photos = self.photo_set("photos", [])
        self.photo_files = sorted(str(p) for p in self.photos.iterdir())
        self.photos_256 = self.photo_set("photos-256", ["--long-side", "256", "256"])
        self.photo_files_256 = sorted(str(p) for p in self.photos_256.iterdir())
        self.embed_photos = self.work / "photos-32"
        shutil.rmtree(self.embed_photos, ignore_errors=True)
        self.embed_photos.mkdir()
        for f in self.photo_files[:32]:
            shutil.copy(f, self.embed_photos)
        # open_clip's own config file, which `clip embed --model-config` and `bench_model` read.
        self.siglip_config = pathlib.Path(open_clip.__file__).parent / "model_configs" / "ViT-B-16-SigLIP.json"

        torch.manual_seed(0)
        model = open_clip.create_model("ViT-B-32")
        randomize(model)
        self.weights = self.work / "ViT-B-32.safetensors"
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(self.weights))
        sets = self.work / "zeroshot"
        shutil.rmtree(sets, ignore_errors=True)
        self.zeroshot_set, _, _ = bench_parity.build(sets, 20)

        rng = random.Random(1)
        sources = bench_parity.photos()
        self.probe_set = self.work / "probe" / "photo_probe"
        shutil.rmtree(self.probe_set, ignore_errors=True)
        for split, per_class in (("train", 60), ("test", 20)):
            samples = [{"webp": bench_parity.webp(bench_parity.crop(rng, sources[i % len(sources)][1])),
                        "cls": str(i % len(sources))} for i in range(per_class * len(sources))]
            bench_parity.write_split(self.probe_set, samples, 1, split)
        (self.probe_set / "classnames.txt").write_text("\n".join(label for label, _ in sources) + "\n")

    def tokenizer(self, ours_first):
        def ours():
            with open(self.caption_file) as stdin:
                run = subprocess.run([self.clip, "tokenize", "--stats"], stdin=stdin, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, check=True, env=self.env)
            return float(run.stderr.split(" lines in ")[1].split(" s ")[0])

        def theirs():
            torch.set_num_threads(1)
            start = time.perf_counter()
            self.simple(self.captions)
            return time.perf_counter() - start
        return both(ours, theirs, ours_first)

    def preprocessing(self, ours_first):
        return self._preprocessing(self.photos, self.photo_files, ours_first)

    def photo_set(self, name, args):
        folder, stamp = self.work / name, self.work / f"{name}.args"
        args = ["--count", "300", *args, "# gen_photos.py with sources, sizes and qualities of issue 19"]
        if not folder.exists() or not stamp.exists() or stamp.read_text() != json.dumps(args):
            shutil.rmtree(folder, ignore_errors=True)
            subprocess.run([sys.executable, HERE / "gen_photos.py", folder, *args[:-1]], check=True)
            stamp.write_text(json.dumps(args))
        return folder

    def preprocessing_256(self, ours_first):
        """The preprocessing row on 256 px photos (img2dataset's default size: no scaled decoding)."""
        return self._preprocessing(self.photos_256, self.photo_files_256, ours_first)

    def _preprocessing(self, folder, files, ours_first):
        def ours():
            report = run_json([self.clip, "bench-data", "--source", f"folder:{folder}", "--threads", "1",
                               "--seconds", "10", "--image-size", "224", "--batch-size", "64", "--json"], self.env)
            return 1.0 / report["samples_per_s"]

        def theirs():
            return 1.0 / bench_data.reference(files, 224, 1)[0]
        return both(ours, theirs, ours_first)

    def _embed(self, what, batch, ours_first):
        args = ["ViT-B-32", what, str(batch), "5", str(self.threads)]
        return both(lambda: run_json([self.bin / "bench_model", *args], self.env)["median_s"],
                    lambda: run_json([sys.executable, HERE / "bench_embed.py", "--reference", *args], self.env)["median_s"],
                    ours_first)

    def embed_image(self, ours_first):
        return self._embed("image", 32, ours_first)

    def embed_text(self, ours_first):
        return self._embed("text", 256, ours_first)

    def embed_siglip(self, ours_first):
        """`clip embed` against open_clip + timm, each a whole process, same 32 photos, batch 32."""
        out = self.work / "embed-siglip"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        env = dict(self.env, OMP_NUM_THREADS=str(self.threads))  # Python sets torch's threads itself
        ours = [self.clip, "embed", "--model-config", self.siglip_config, "--random-init", "--images",
                self.embed_photos, "--batch-size", "32", "--device", "cpu", "--precision", "fp32", "--out",
                out / "ours.npy"]
        theirs = [sys.executable, HERE / "bench_embed.py", "--embed-images", "ViT-B-16-SigLIP", self.embed_photos, "32",
                  str(self.threads), out / "theirs.npy"]
        times = both(lambda: timed(ours, env), lambda: timed(theirs, env), ours_first)
        shapes = {side: np.load(out / f"{side}.npy").shape for side in ("ours", "theirs")}
        assert shapes["ours"] == shapes["theirs"] == (32, 768), shapes
        return times

    def embed_siglip_forward(self, ours_first):
        args = ["image", "32", "3", str(self.threads)]
        return both(lambda: run_json([self.bin / "bench_model", self.siglip_config, *args], self.env)["median_s"],
                    lambda: run_json([sys.executable, HERE / "bench_embed.py", "--reference", "ViT-B-16-SigLIP", *args],
                                     self.env)["median_s"],
                    ours_first)

    def embed_wds(self, ours_first):
        """`clip embed --source wds:` against clip-retrieval's inference pipeline (open_clip + a
        DataLoader of 2 workers, bench_embed_wds.py): ViT-B-32 at the same random weights, 160 of
        the photos in 4 WebDataset shards with captions, batch 32, each a whole process, timed from
        its start to its end; peak RSS of both printed (the reference's main process and its
        largest worker)."""
        shards = self.work / "embed-wds"
        if not shards.exists():
            import tarfile
            shards.mkdir()
            for s in range(4):
                with tarfile.open(shards / f"{s}.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
                    for i, photo in enumerate(self.photo_files[40 * s:40 * (s + 1)]):
                        key = f"{s:05d}{i:04d}"
                        for name, data in ((f"{key}.jpg", pathlib.Path(photo).read_bytes()),
                                           (f"{key}.txt", f"photo {i} of shard {s}".encode())):
                            member = tarfile.TarInfo(name)
                            member.size = len(data)
                            tar.addfile(member, io.BytesIO(data))
        pattern = f"{shards}/{{0..3}}.tar"
        out = self.work / "embed-wds-out"
        env = dict(self.env, OMP_NUM_THREADS=str(self.threads))

        def run(cmd, side):
            """Seconds, stdout and the process's own peak RSS (KiB, from wait4)."""
            shutil.rmtree(out / side, ignore_errors=True)
            logs = out / f"{side}.log"
            out.mkdir(parents=True, exist_ok=True)
            with open(logs, "w") as log:
                start = time.perf_counter()
                child = subprocess.Popen([str(c) for c in cmd], stdout=log, stderr=subprocess.STDOUT, env=env)
                _, status, usage = os.wait4(child.pid, 0)
                seconds = time.perf_counter() - start
            child.returncode = os.waitstatus_to_exitcode(status)
            if child.returncode != 0:
                raise RuntimeError(f"{cmd[0]} failed ({child.returncode}):\n{logs.read_text()[-3000:]}")
            rows = sum(np.load(f).shape[0] for f in (out / side / "img_emb").glob("*.npy"))
            assert rows == 160, rows
            return seconds, logs.read_text(), usage.ru_maxrss

        def ours():
            seconds, _, rss = run([self.clip, "embed", "--model", "ViT-B-32", "--weights", self.weights, "--source",
                                   f"wds:{pattern}", "--out", out / "ours", "--threads", str(self.threads),
                                   "--batch-size", "32", "--device", "cpu"], "ours")
            self.embed_wds_rss.setdefault("ours", []).append(rss)
            return seconds

        def theirs():
            seconds, stdout, rss = run([sys.executable, HERE / "bench_embed_wds.py", "ViT-B-32", self.weights, pattern,
                                        "32", "2", str(self.threads), out / "theirs"], "theirs")
            report = json.loads(stdout.strip().splitlines()[-1])
            self.embed_wds_rss.setdefault("theirs", []).append(rss)
            self.embed_wds_rss.setdefault("theirs_worker", []).append(report["worker_peak_rss_kb"])
            return seconds
        self.embed_wds_rss = getattr(self, "embed_wds_rss", {})
        times = both(ours, theirs, ours_first)
        # The same work: every photo's row on both sides, matched by key.
        import pyarrow.parquet as pq
        rows = {}
        for side, column in (("ours", "key"), ("theirs", "image_path")):
            for npy in sorted((out / side / "img_emb").glob("*.npy")):
                table = out / side / "metadata" / npy.name.replace("img_emb", "metadata").replace(".npy", ".parquet")
                for key, row in zip(pq.read_table(table).column(column).to_pylist(), np.load(npy).astype(np.float32)):
                    rows.setdefault(key, []).append(row)
        cosine = min(float(a @ b) for a, b in rows.values())
        assert len(rows) == 160 and cosine > 0.999, (len(rows), cosine)
        rss = {k: statistics.median(v) / 1024 for k, v in self.embed_wds_rss.items()}
        print(f"embed_wds peak RSS: clip-rs {rss['ours']:.0f} MiB; reference {rss['theirs']:.0f} MiB main + "
              f"{rss['theirs_worker']:.0f} MiB largest of 2 workers", flush=True)
        return times

    def _step(self, model, batch, iters, ours_first):
        args = [model, str(batch), str(iters), str(self.threads)]
        config = [] if model.startswith("ViT") else [subprocess.run([self.bin / "bench_step", "--config", model],
                                                                      capture_output=True, text=True, check=True,
                                                                      env=self.env).stdout.strip()]
        result = both(lambda: run_json([self.bin / "bench_step", *args], self.env)["median_s"],
                      lambda: run_json([sys.executable, HERE / "bench_step.py", *args, *config], self.env)["median_s"],
                      ours_first)
        result["flops"] = self._training_flops(model, config[0] if config else None, batch)
        return result

    def _training_flops(self, model, config_json, batch):
        """Model FLOPs of one training step: 3 × the forward's (backward ≈ 2 × forward, as
        docs/scaling.md counts), the forward counted by torch's FlopCounterMode on open_clip's model
        at this batch (matrix products, convolutions and attention; 2 FLOPs per multiply-add). The
        same count for both sides: work one side skips (our packed texts, our pooled last block)
        is not subtracted, so MFU says how fast each runs the model, not how much it computes."""
        key = (model, config_json, batch)
        if key not in self._flops:
            import bench_step
            from torch.utils.flop_counter import FlopCounterMode
            # Training mode, autograd on: in eval under no_grad, nn.MultiheadAttention takes its fused
            # fast path, whose FLOPs the counter does not see.
            net = bench_step.build(model, config_json).train()
            size = net.visual.image_size
            size = size[0] if isinstance(size, (tuple, list)) else size
            images = torch.randn(batch, 3, size, size)
            texts = torch.randint(0, net.vocab_size, (batch, net.context_length))
            counter = FlopCounterMode(display=False)
            with counter:
                net(images, texts)
            self._flops[key] = 3 * counter.get_total_flops()
        return self._flops[key]

    def matmul_peak(self):
        """The machine's fp32 matrix-product rate at the benchmark's thread count: the best of 5
        `torch.mm` at each of 2048² and 4096² (2n³ FLOPs each), measured once per run. Work a side
        skips still counts as model FLOPs, so MFU can pass 100 % when a step skips enough."""
        if self._peak is None:
            torch.set_num_threads(self.threads)
            self._peak = 0.0
            for n in (2048, 4096):
                a, b = torch.randn(n, n), torch.randn(n, n)
                torch.mm(a, b)
                for _ in range(5):
                    start = time.perf_counter()
                    torch.mm(a, b)
                    self._peak = max(self._peak, 2 * n ** 3 / (time.perf_counter() - start))
        return self._peak

    def step_tiny(self, ours_first):
        return self._step("tiny", 256, 5, ours_first)

    def step_vit_b_32(self, ours_first):
        return self._step("ViT-B-32", 32, 3, ours_first)

    def zeroshot(self, ours_first):
        out = self.work / "zeroshot-out"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        ours = [self.clip, "bench-zeroshot", "--model", "ViT-B-32", "--weights", self.weights, "--datasets",
                self.zeroshot_set, "--out", out / "ours", "--device", "cpu"]
        theirs = [pathlib.Path(sys.executable).parent / "clip_benchmark", "eval", "--dataset", "wds/photos",
                  "--dataset_root", self.zeroshot_set, "--task", "zeroshot_classification", "--model", "ViT-B-32",
                  "--pretrained", self.weights, "--output", out / "theirs.json", "--num_workers", str(self.threads),
                  "--no_amp"]  # fp32 as ours (its default bf16 autocast is emulated, slowly, on this CPU)
        env = dict(self.env, OMP_NUM_THREADS=str(self.threads))
        return both(lambda: timed(ours, env), lambda: timed(theirs, env), ours_first)

    def probe_search(self, ours_first):
        out = self.work / "probe-out"
        shutil.rmtree(out, ignore_errors=True)

        def ours():
            subprocess.run([self.clip, "bench-linear-probe", "--model", "ViT-B-32", "--weights", self.weights,
                            "--datasets", self.probe_set, "--few-shot", "0", "--save-features", out / "features",
                            "--out", out / "results", "--device", "cpu"], check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env=self.env)
            result = json.loads((out / "results" / "results.json").read_text())["results"][0]
            return result["probe"]["search_seconds"]

        def theirs():
            f = load_file(str(out / "features" / "photo_probe.safetensors"))
            train = (f["train_x"].astype(np.float64), f["train_y"])
            validation = (f["validation_x"].astype(np.float64), f["validation_y"])
            start = time.perf_counter()
            bench_probe.search(train, validation)
            return time.perf_counter() - start
        # Our run makes the features the reference searches on, so it always goes first.
        return both(ours, theirs, True)

    def probe_search_multilabel(self, ours_first):
        """The one-vs-rest λ search (issue 22) on a multi-label photo set (two photos side by side,
        bench_probe.multilabel_set): our batched L-BFGS search against scikit-learn's
        OneVsRestClassifier fits over the same plan; the test mAP of both at our λ printed. One
        thread each (OMP_NUM_THREADS=1 for ours, threadpoolctl's limit for scikit-learn's BLAS):
        the fits are small, and on a shared machine extra threads only measure contention."""
        root = self.work / "probe-multilabel" / "photo_pairs"
        if not root.exists():
            bench_probe.multilabel_set(root, random.Random(2), bench_parity.photos())
        out = self.work / "probe-multilabel-out"
        shutil.rmtree(out, ignore_errors=True)
        ours = {}

        def run_ours():
            subprocess.run([self.clip, "bench-linear-probe", "--model", "ViT-B-32", "--weights", self.weights,
                            "--datasets", root, "--few-shot", "0", "--save-features", out / "features",
                            "--out", out / "results", "--device", "cpu"], check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env=dict(self.env, OMP_NUM_THREADS="1"))
            ours.update(json.loads((out / "results" / "results.json").read_text())["results"][0])
            return ours["probe"]["search_seconds"]

        def theirs():
            f = load_file(str(out / "features" / "photo_pairs.safetensors"))
            split = {s: (f[f"{s}_x"].astype(np.float64), f[f"{s}_y"]) for s in ("train", "validation", "test")}
            from threadpoolctl import threadpool_limits
            with threadpool_limits(1):
                start = time.perf_counter()
                bench_probe.search_multilabel(split["train"], split["validation"])
                seconds = time.perf_counter() - start
            lam = ours["probe"]["lambda"]
            sk = bench_probe.multilabel_test_map(lam, split["train"], split["validation"], split["test"])
            print(f"  multi-label probe at λ {lam:.4g}: test 11-point mAP clip-rs {ours['value']:.2f}, "
                  f"scikit-learn {sk:.2f} (Δ {ours['value'] - sk:+.2f})", file=sys.stderr)
            return seconds
        # Our run makes the features the reference searches on, so it always goes first.
        return both(run_ours, theirs, True)


# (method, workload, reference, target ratio)
TABLE = [
    ("tokenizer", "tokenizer, 100k captions, 1 thread", "open_clip SimpleTokenizer", 0.05),
    ("preprocessing", "training preprocessing, per image, 1 core, photos 256–1600 px, q70–95", "PIL + torchvision", 0.333),
    ("preprocessing_256", "training preprocessing, per image, 1 core, 256 px photos", "PIL + torchvision", 0.4),
    ("embed_image", "image embedding, ViT-B-32, batch 32", "open_clip", 0.95),
    ("embed_text", "text embedding, ViT-B-32, batch 256", "open_clip", None),
    ("embed_siglip", "`clip embed` images, ViT-B-16-SigLIP, batch 32, whole process", "open_clip + timm", 0.95),
    ("embed_siglip_forward", "image embedding, ViT-B-16-SigLIP, batch 32, forward alone", "open_clip + timm", None),
    ("embed_wds", "`clip embed --source wds:` images, ViT-B-32, 160 photos in 4 shards, batch 32, 2 threads, "
     "whole process", "open_clip + DataLoader (2 workers)", 0.65),
    ("step_tiny", "training step, tiny, batch 256", "open_clip + torch AdamW", 0.8),
    ("step_vit_b_32", "training step, ViT-B-32, batch 32", "open_clip + torch AdamW", 0.9),
    ("zeroshot", "zero-shot eval end to end, 160 images, 8 classes", "CLIP_benchmark 1.6.2", 0.6),
    ("probe_search", "linear-probe λ search, 384 + 96 validation × 768 features", f"scikit-learn {sklearn.__version__}", 0.1),
    ("probe_search_multilabel", "one-vs-rest λ search, 8-class photo pairs, 192 + 48 validation × 768 features, 1 thread",
     f"scikit-learn {sklearn.__version__} OneVsRestClassifier", 0.2),
]


def both(ours, theirs, ours_first):
    if ours_first:
        o = ours()
        t = theirs()
    else:
        t = theirs()
        o = ours()
    return {"ours": o, "theirs": t}


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB"


def fmt(seconds):
    return f"{seconds * 1e3:.2f} ms" if seconds < 1 else f"{seconds:.3f} s"


def render(results, args, started, took, peak=None):
    lines = [
        BEGIN,
        f"Machine: {machine()}; torch {torch.__version__}, open_clip {open_clip.__version__}, Python "
        f"{platform.python_version()}; {started:%Y-%m-%d %H:%M} UTC, {took / 60:.1f} min.",
        "",
        "```",
        f"cargo xtask bench-compare --repeats {args.repeats} --threads {args.threads}",
        "```",
        "",
        f"{args.repeats} repeats, alternating which side runs first; medians. Ratio = our time / reference "
        "time (lower is better).",
        "",
        "| workload | reference | clip-rs | reference | ratio | target | |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for key, label, reference, target in TABLE:
        if key not in results:
            continue
        ours = statistics.median(r["ours"] for r in results[key])
        theirs = statistics.median(r["theirs"] for r in results[key])
        ratio = ours / theirs
        verdict = "" if target is None else ("met" if ratio <= target else "**missed**")
        lines.append(f"| {label} | {reference} | {fmt(ours)} | {fmt(theirs)} | {ratio:.3f} | "
                     f"{'—' if target is None else f'≤ {target}'} | {verdict} |")
    steps = [(key, label) for key, label, _, _ in TABLE if key in results and results[key] and "flops" in results[key][0]]
    if steps and peak:
        lines += [
            "",
            f"Model FLOPs utilisation of the training-step rows against this run's fp32 matrix-product peak, "
            f"{peak / 1e9:.1f} GFLOP/s at {args.threads} threads (best of 5 `torch.mm` at 2048² and 4096²). "
            "Model FLOPs per step = 3 × the forward's, counted by torch's FlopCounterMode on open_clip's model, "
            "the same count for both sides (work a side skips is not subtracted).",
            "",
            "| workload | model FLOPs / step | clip-rs GFLOP/s | clip-rs MFU | reference GFLOP/s | reference MFU |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for key, label in steps:
            flops = results[key][0]["flops"]
            ours = flops / statistics.median(r["ours"] for r in results[key])
            theirs = flops / statistics.median(r["theirs"] for r in results[key])
            lines.append(f"| {label} | {flops / 1e9:.1f} G | {ours / 1e9:.1f} | {100 * ours / peak:.1f} % | "
                         f"{theirs / 1e9:.1f} | {100 * theirs / peak:.1f} % |")
    lines.append(END)
    return "\n".join(lines)


def write(path, block):
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        before = text.rstrip("\n") + "\n\n" if text.strip() else ""
        text = before + "## Side by side: `cargo xtask bench-compare` (issue 9)\n\n" + block + "\n"
    path.write_text(text)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=str(ROOT / "target" / "release"))
    parser.add_argument("--work", default=str(ROOT / "target" / "bench-compare"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default="", help="comma-separated workloads (default: all)")
    parser.add_argument("--write", default="", help="the markdown file to put the table in (e.g. docs/perf.md)")
    args = parser.parse_args()
    started = datetime.datetime.now(datetime.timezone.utc)
    start = time.perf_counter()
    keys = [k for k, *_ in TABLE if not args.only or k in args.only.split(",")]
    workloads = Workloads(args)
    results = {k: [] for k in keys}
    for r in range(args.repeats):
        for key in keys:
            results[key].append(getattr(workloads, key)(ours_first=r % 2 == 0))
            last = results[key][-1]
            print(f"repeat {r + 1}/{args.repeats} {key}: clip-rs {fmt(last['ours'])}, reference {fmt(last['theirs'])}",
                  flush=True)
    has_steps = any(runs and "flops" in runs[0] for runs in results.values())
    block = render(results, args, started, time.perf_counter() - start, workloads.matmul_peak() if has_steps else None)
    print(block)
    (pathlib.Path(args.work) / "results.json").write_text(json.dumps(results, indent=1))
    if args.write:
        write(pathlib.Path(args.write), block)


if __name__ == "__main__":
    main()
