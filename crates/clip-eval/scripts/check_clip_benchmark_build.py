#!/usr/bin/env python3
"""Checks result files in CLIP_benchmark's format against CLIP_benchmark 1.6.2 itself.

    python check_clip_benchmark_build.py DIR

DIR holds the files `Report::clip_benchmark_files` rendered (the Rust test `report.rs` writes
them). This script
1. reads each with Python's `json` and writes it back with `json.dumps`, which must give the same
   text: what CLIP_benchmark's `json.dump` would have written (bare `NaN` included);
2. adds one genuine CLIP_benchmark file, written by `clip_benchmark eval` on its built-in `dummy`
   set (two classes, so its `acc5` is NaN) with a randomly initialised ViT-S-32 on the CPU;
3. runs `clip_benchmark build` on all of them and prints the merged CSV as JSON,
   `{"fieldnames": [...], "rows": [{column: text}, ...]}`, for the Rust test to check.
"""
import csv
import importlib.metadata
import json
import pathlib
import subprocess
import sys

assert importlib.metadata.version("clip_benchmark") == "1.6.2", importlib.metadata.version("clip_benchmark")


def main():
    folder = pathlib.Path(sys.argv[1])
    ours = sorted(folder.glob("*.json"))
    assert ours, f"no JSON files in {folder}"
    for path in ours:
        text = path.read_text()
        again = json.dumps(json.loads(text))
        assert again == text, f"{path.name}: Python writes\n{again}\nnot\n{text}"
    cli = [sys.executable, "-m", "clip_benchmark.cli"]
    genuine = folder / "genuine"
    genuine.mkdir(exist_ok=True)
    subprocess.run(
        cli + ["eval", "--dataset", "dummy", "--model", "ViT-S-32", "--pretrained", "", "--num_workers", "0",
               "--batch_size", "1", "--quiet", "--output", str(genuine / "{dataset}_{pretrained}_{model}_{language}_{task}.json")],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    files = ours + sorted(genuine.glob("*.json"))
    assert len(files) == len(ours) + 1, files
    merged = folder / "merged.csv"
    subprocess.run(cli + ["build", *map(str, files), "--output", str(merged)], check=True)
    with merged.open(newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    print(json.dumps({"fieldnames": reader.fieldnames, "rows": rows}))


if __name__ == "__main__":
    main()
