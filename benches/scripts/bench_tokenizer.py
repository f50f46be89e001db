#!/usr/bin/env python3
"""Side-by-side tokenizer benchmark: open_clip's Python tokenizer, Hugging Face `tokenizers` (CLIP's
BPE, built from the same vocabulary) and `clip tokenize`, on the same 100,000 captions, one thread
each, in one run. Each is run `--repeats` times, alternating; medians are reported.

    cargo build --release -p clip-cli
    .venv/bin/python benches/scripts/bench_tokenizer.py [--repeats 3]

`clip tokenize` is timed twice: as it reports itself with `--stats` (reading stdin, tokenizing,
writing JSON to /dev/null; the comparable figure, since the Python timings also exclude building
the tokenizer), and end to end as a process, which adds loading libtorch and the vocabulary.
"""
import argparse
import json
import os
import pathlib
import platform
import random
import statistics
import subprocess
import tempfile
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("RAYON_RS_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from open_clip.tokenizer import SimpleTokenizer  # noqa: E402
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, Regex  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
CLIP = ROOT / "target" / "release" / "clip"


def captions(n, seed=0):
    rng = random.Random(seed)
    subjects = ["a dog", "two cats", "a man", "a woman", "three children", "an old car", "a red bicycle",
                "a bowl of soup", "a tall building", "a small boat", "a group of people", "a horse"]
    verbs = ["riding", "sitting on", "next to", "eating", "looking at", "jumping over", "parked near",
             "in front of", "walking along", "standing by"]
    objects = ["a wooden bench", "the beach at sunset", "a snowy mountain", "a busy street", "the table",
               "a pile of leaves", "an empty parking lot", "a plate of spaghetti", "a river", "the kitchen"]
    extras = ["", " on a sunny day", " at night", " in the rain", ", close-up", " with a blue sky",
              " in black and white", " during winter"]
    return [f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}{rng.choice(extras)}"
            for _ in range(n)]


def hf_clip_tokenizer(simple):
    """CLIP's BPE in `tokenizers`, as transformers' CLIPTokenizerFast builds it."""
    vocab = {token: i for token, i in simple.encoder.items()}
    merges = [tuple(k) for k, _ in sorted(simple.bpe_ranks.items(), key=lambda kv: kv[1])]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, end_of_word_suffix="</w>", fuse_unk=False))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "),
                                           normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""),
                             behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    tok.enable_truncation(77)
    tok.enable_padding(length=77, pad_id=0)
    return tok


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n", type=int, default=100_000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    texts = captions(args.n)
    simple = SimpleTokenizer()
    hf = hf_clip_tokenizer(simple)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(texts) + "\n")
        path = f.name

    # Same ids on a sample, so the three do the same work.
    sample = texts[:200]
    ours = [json.loads(line) for line in subprocess.run([CLIP, "tokenize"], input="\n".join(sample) + "\n",
                                                          capture_output=True, text=True, check=True).stdout.splitlines()]
    assert ours == simple(sample).tolist(), "clip tokenize disagrees with open_clip"

    times = {"open_clip": [], "hf_tokenizers": [], "clip_rs": [], "clip_rs_process": []}
    for _ in range(args.repeats):
        start = time.perf_counter()
        simple(texts)
        times["open_clip"].append(time.perf_counter() - start)

        start = time.perf_counter()
        hf.encode_batch(texts)
        times["hf_tokenizers"].append(time.perf_counter() - start)

        start = time.perf_counter()
        with open(path) as stdin, open(os.devnull, "w") as devnull:
            run = subprocess.run([CLIP, "tokenize", "--stats"], stdin=stdin, stdout=devnull, stderr=subprocess.PIPE,
                                 text=True, check=True)
        times["clip_rs_process"].append(time.perf_counter() - start)
        # Reading, tokenizing and writing JSON, timed inside the process (no libtorch start-up).
        times["clip_rs"].append(float(run.stderr.split(" lines in ")[1].split(" s ")[0]))
    os.unlink(path)

    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; one thread each; "
          f"{args.n} captions; {args.repeats} repeats, medians")
    for name, t in med.items():
        print(f"  {name:14s} {t:8.3f} s  {args.n / t:10.0f} captions/s")
    print(f"  open_clip / clip_rs      = {med['open_clip'] / med['clip_rs']:.1f}x")
    print(f"  hf_tokenizers / clip_rs  = {med['hf_tokenizers'] / med['clip_rs']:.2f}x")
    print(f"  open_clip / clip_rs_process = {med['open_clip'] / med['clip_rs_process']:.1f}x (start-up included)")


if __name__ == "__main__":
    main()
