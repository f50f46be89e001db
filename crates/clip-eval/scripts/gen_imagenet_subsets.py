#!/usr/bin/env python3
"""Writes crates/clip-eval/tests/fixtures/imagenet_subsets.json: the class subsets CLIP_benchmark
1.6.2 classifies ImageNet-R and ImageNet-A over, read by running its own builder.

`clip_benchmark.datasets.builder.build_dataset("imagenet-r" | "imagenet-a", …)` is run on a scratch
ImageFolder holding one 1×1 image in a folder per ImageNet-1k WordNet id; it keeps the classes
whose id is in its 200-id list (`imagenet_r_wnids`, `imagenet_a_wnids`, read here from its source)
and names them by its ImageNet class names, which must be the names of those ids. Recorded per set: the ImageNet-1k indices kept (CLIP_benchmark's mask, in
ImageNet order, which is the order of the data's sorted wnid folders and so of its labels), their
wnids, and the class names the builder gives them.

    .venv/bin/python crates/clip-eval/scripts/gen_imagenet_subsets.py
"""
import ast
import importlib.metadata
import inspect
import json
import pathlib
import tempfile
import textwrap

from PIL import Image

assert importlib.metadata.version("clip_benchmark") == "1.6.2", importlib.metadata.version("clip_benchmark")
from clip_benchmark.datasets import builder  # noqa: E402 (after the version check)

ROOT = pathlib.Path(__file__).resolve().parents[3]


def subset_wnids(name):
    """The wnid list `build_dataset` masks `name` with (`imagenet_r_wnids`, `imagenet_a_wnids`)."""
    variable = {"imagenet-r": "imagenet_r_wnids", "imagenet-a": "imagenet_a_wnids"}[name]
    tree = ast.parse(textwrap.dedent(inspect.getsource(builder.build_dataset)))
    values = [ast.literal_eval(node.value) for node in ast.walk(tree)
              if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == variable for t in node.targets)]
    assert len(values) == 1 and len(set(values[0])) == 200, (name, len(values))
    return set(values[0])


def main():
    wnids = list(builder.all_imagenet_wordnet_ids)
    assert len(wnids) == 1000 and wnids == sorted(wnids)
    out = {"clip_benchmark": importlib.metadata.version("clip_benchmark"), "imagenet_wnids": wnids}
    with tempfile.TemporaryDirectory() as tmp:
        for wnid in wnids:
            (pathlib.Path(tmp) / wnid).mkdir()
            Image.new("RGB", (1, 1)).save(pathlib.Path(tmp) / wnid / "x.png")
        # imagenet1k-unverified reads `val/`: the same folders, named by the builder's 1000 names.
        (pathlib.Path(tmp) / "val").symlink_to(tmp)
        names = list(builder.build_dataset("imagenet1k-unverified", root=tmp, split="test", download=False).classes)
        (pathlib.Path(tmp) / "val").unlink()
        assert len(names) == 1000
        for name in ("imagenet-r", "imagenet-a"):
            ds = builder.build_dataset(name, root=tmp, split="test", download=False)
            assert len(ds.classes) == 200, (name, len(ds.classes))
            # The builder's mask is `wnid in <its list>` over ImageNet's ids; the list is read from
            # its source and checked against the classes the run kept, name by name.
            kept = [i for i, w in enumerate(wnids) if w in subset_wnids(name)]
            assert [names[i] for i in kept] == list(ds.classes), name
            out[name] = {"indices": kept, "wnids": [wnids[i] for i in kept], "classnames": list(ds.classes)}
    path = ROOT / "crates/clip-eval/tests/fixtures/imagenet_subsets.json"
    path.write_text(json.dumps(out, indent=0) + "\n")
    print(f"{path}: " + ", ".join(f"{n} {len(out[n]['indices'])} classes" for n in ("imagenet-r", "imagenet-a")))


if __name__ == "__main__":
    main()
