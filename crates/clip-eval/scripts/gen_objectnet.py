#!/usr/bin/env python3
"""Writes crates/clip-eval/tests/fixtures/objectnet.json: ObjectNet's 113 ImageNet-overlapping
classes as CLIP_benchmark 1.6.2 reads and scores them, by running its own builder.

CLIP_benchmark does not ship ObjectNet's mapping: `build_dataset("objectnet", root)` reads the
dataset's `mappings/` files copied into `root` (`folder_to_objectnet_label.json`,
`objectnet_to_imagenet_1k.json`, `pytorch_to_imagenet_2012_id.json`, `imagenet_to_label_2012_v2`)
and the images under `root/objectnet-1.0/images/FOLDER/`. The four files in `objectnet_mappings/`
beside this script are byte-exact copies of ObjectNet 1.0's, as mlfoundations/wise-ft redistributes
them (`src/datasets/objectnet_metadata/`, commit 4639a3919b51b20beae5814bc6722b962d93ae47, whose
loader CLIP_benchmark's `datasets/objectnet.py` says it adapts); their git blob ids are checked below.

The builder is run on a scratch tree holding one 1×1 image in each of ObjectNet's 313 folders. It
keeps the 113 folders the mapping sends to ImageNet, labels them in sorted folder order and names
them by their ObjectNet label lower-cased; zero-shot classification is over those 113 names (the
templates are ImageNet's), not a projection of 1000-way predictions. Recorded: the class names in
label order, each class's folder, its ImageNet-1k indices (`folders_to_ids`, PyTorch's class order,
which is open_clip's and ours), the 1000-way mask's indices, and how many images the builder kept.

    .venv/bin/python crates/clip-eval/scripts/gen_objectnet.py
"""
import hashlib
import importlib.metadata
import json
import pathlib
import shutil
import tempfile

from PIL import Image

assert importlib.metadata.version("clip_benchmark") == "1.6.2", importlib.metadata.version("clip_benchmark")
from clip_benchmark.datasets import builder  # noqa: E402 (after the version check)

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[2]
MAPPINGS = HERE / "objectnet_mappings"
# git blob ids at mlfoundations/wise-ft 4639a3919b51b20beae5814bc6722b962d93ae47.
BLOBS = {
    "folder_to_objectnet_label.json": "214305d07ed92fe67038a2a33c9b5230bd711b73",
    "imagenet_to_label_2012_v2": "edb43d53c769ed8bb1838d03bb4e912a6eeb8840",
    "objectnet_to_imagenet_1k.json": "48b8d26e7f0efd0830b2c804cbaa62904d55fae0",
    "pytorch_to_imagenet_2012_id.json": "4dd52d8c53fe8d8d007264f8ca2cc18380db09a3",
}


def blob_id(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def main():
    for name, expected in BLOBS.items():
        assert blob_id((MAPPINGS / name).read_bytes()) == expected, name
    folders = json.loads((MAPPINGS / "folder_to_objectnet_label.json").read_text())
    assert len(folders) == 313, len(folders)
    with tempfile.TemporaryDirectory() as scratch:
        root = pathlib.Path(scratch) / "objectnet"
        images = root / "objectnet-1.0" / "images"
        for folder in folders:
            (images / folder).mkdir(parents=True)
            Image.new("RGB", (1, 1)).save(images / folder / "0.png")
        for name in BLOBS:
            shutil.copy(MAPPINGS / name, root / name)
        ds = builder.build_dataset("objectnet", root=str(root), transform=None, split="test")
        kept = len(ds)
        labels = sorted(ds.label_map.items(), key=lambda item: item[1])
        assert [label for _, label in labels] == list(range(113)), labels
        class_folders = [folder for folder, _ in labels]
        fixture = {
            "clip_benchmark": importlib.metadata.version("clip_benchmark"),
            "classnames": list(ds.classes),
            "folders": class_folders,
            "imagenet": [ds.folders_to_ids[folder] for folder in class_folders],
            "mask_indices": [i for i, keep in enumerate(ds.class_sublist_mask) if keep],
            "images_kept": kept,
        }
    assert len(fixture["classnames"]) == 113 and kept == 113, (len(fixture["classnames"]), kept)
    out = ROOT / "crates/clip-eval/tests/fixtures/objectnet.json"
    out.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"{out}: {len(fixture['classnames'])} classes over {len(fixture['mask_indices'])} ImageNet classes")


if __name__ == "__main__":
    main()
