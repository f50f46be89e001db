#!/usr/bin/env python3
"""Writes crates/clip-eval/data/datasets.json: the paper's 27 zero-shot datasets, then the five
natural distribution shifts of its robustness study (ImageNetV2, -Sketch, -R, -A, ObjectNet) as
CLIP_benchmark 1.6.2 defines them (its `imagenet_robustness` collection, class subsets from its
`build_dataset`, ImageNet's 80 templates, which it uses for every ImageNet variant).

Class names and prompt templates are the paper's: openai/CLIP `data/prompts.md` for 26 datasets
(FER2013 lists several names for some classes; they are kept as lists), and the ImageNet notebook's
80 templates and edited class names (shipped by open_clip as `OPENAI_IMAGENET_TEMPLATES` and
`IMAGENET_CLASSNAMES`). Sizes and metrics follow the paper's Table 9, zero-shot numbers its Table 11.

Each set's `hub_repo` is CLIP_benchmark's copy on the Hugging Face hub: `wds/<name>` is the repo
`clip-benchmark/wds_<name with / replaced by ->`, for the first of the set's CLIP_benchmark names
whose `wds/` form is in CLIP_benchmark's own list, `benchmark/webdatasets.txt`. That list is not in
the pip package; `scripts/clip_benchmark_webdatasets.txt` is a byte-exact copy from
LAION-AI/CLIP_benchmark at commit 48de38c1689fa6d8b4dd53e3370c669c3bb18117 (blob 3dd02939, last
changed in aabe0fa7, "Added support for wds/voc2007_multilabel"). Every name is also checked
against the installed builder (`clip_benchmark/datasets/builder.py`, 1.6.2).

    .venv/bin/python scripts/gen_registry.py PATH/TO/openai-CLIP/data/prompts.md
"""
import ast
import importlib.metadata
import inspect
import json
import pathlib
import re
import sys

import open_clip
from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES, OPENAI_IMAGENET_TEMPLATES

assert open_clip.__version__ == "3.3.0", open_clip.__version__
assert importlib.metadata.version("clip_benchmark") == "1.6.2", importlib.metadata.version("clip_benchmark")
from clip_benchmark.datasets import builder  # noqa: E402 (after the version checks)

ROOT = pathlib.Path(__file__).resolve().parent.parent
WEBDATASETS = ROOT / "scripts/clip_benchmark_webdatasets.txt"
HUB_ORG = "clip-benchmark"

# Hub copies in CLIP_benchmark's layout that its list omits. Food-101: `wds/food101` is not in
# webdatasets.txt, but `clip-benchmark/wds_food101` is loaded by several public projects and
# DataComp's test copy is `djghosh/wds_food101_test`. Not checked on the hub itself.
UNLISTED = {"food101": "food101"}
MODELS = ["RN50", "ViT-B-32", "ViT-B-16", "ViT-L-14", "ViT-L-14-336"]

# name, title, prompts.md section, metric, train, test, CLIP_benchmark name(s), Table 11 row.
DATASETS = [
    ("food101", "Food-101", "Food101", "accuracy", 75750, 25250, ["food101"], [81.1, 84.4, 89.2, 92.9, 93.8]),
    ("cifar10", "CIFAR-10", "CIFAR10", "accuracy", 50000, 10000, ["cifar10", "vtab/cifar10"], [75.6, 91.3, 91.6, 96.2, 95.7]),
    ("cifar100", "CIFAR-100", "CIFAR100", "accuracy", 50000, 10000, ["cifar100", "vtab/cifar100"], [41.6, 65.1, 68.7, 77.9, 77.5]),
    ("birdsnap", "Birdsnap", "Birdsnap", "accuracy", 42283, 2149, [], [32.6, 37.8, 39.1, 48.3, 49.5]),
    ("sun397", "SUN397", "SUN397", "accuracy", 19850, 19850, ["sun397"], [59.6, 63.2, 65.2, 67.7, 68.4]),
    ("cars", "Stanford Cars", "StanfordCars", "accuracy", 8144, 8041, ["cars"], [55.8, 59.4, 65.6, 77.3, 78.8]),
    ("fgvc_aircraft", "FGVC Aircraft", "FGVCAircraft", "mean_per_class_recall", 6667, 3333, ["fgvc_aircraft"], [19.3, 21.2, 27.1, 36.1, 37.2]),
    ("voc2007", "Pascal VOC 2007", "PascalVOC2007", "map_11point", 5011, 4952, ["voc2007_multilabel"], [82.1, 83.1, 83.9, 84.1, 84.3]),
    ("dtd", "Describable Textures", "DescribableTextures", "accuracy", 3760, 1880, ["dtd", "vtab/dtd"], [41.7, 44.5, 46.0, 55.3, 55.7]),
    ("pets", "Oxford-IIIT Pets", "OxfordPets", "mean_per_class_recall", 3680, 3669, ["pets", "vtab/pets"], [85.4, 87.0, 88.9, 93.5, 93.5]),
    ("caltech101", "Caltech-101", "Caltech101", "mean_per_class_recall", 3060, 6085, ["vtab/caltech101", "caltech101"], [82.1, 87.9, 89.3, 92.6, 92.8]),
    ("flowers", "Oxford Flowers 102", "Flowers102", "mean_per_class_recall", 2040, 6149, ["flowers", "vtab/flowers"], [65.9, 66.7, 70.4, 78.7, 78.3]),
    ("mnist", "MNIST", "MNIST", "accuracy", 60000, 10000, ["mnist"], [66.6, 51.9, 56.0, 87.2, 88.3]),
    ("fer2013", "FER2013", "FacialEmotionRecognition2013", "accuracy", 32140, 3574, ["fer2013"], [42.2, 47.3, 52.7, 57.5, 57.7]),
    ("stl10", "STL-10", "STL10", "accuracy", 1000, 8000, ["stl10"], [94.3, 97.2, 98.2, 99.3, 99.4]),
    ("eurosat", "EuroSAT", "EuroSAT", "accuracy", 10000, 5000, ["vtab/eurosat", "eurosat"], [41.1, 49.4, 54.1, 59.9, 59.6]),
    ("resisc45", "RESISC45", "RESISC45", "accuracy", 3150, 25200, ["vtab/resisc45"], [54.2, 60.3, 65.5, 71.6, 71.7]),
    ("gtsrb", "GTSRB", "GTSRB", "accuracy", 26640, 12630, ["gtsrb"], [35.2, 32.6, 43.3, 50.3, 52.3]),
    ("kitti", "KITTI (closest vehicle distance)", "KITTI", "accuracy", 6770, 711, ["vtab/kitti_closest_vehicle_distance"], [42.2, 39.4, 44.0, 23.1, 21.9]),
    ("country211", "Country211", "Country211", "accuracy", 42200, 21100, ["country211"], [16.1, 17.8, 23.3, 32.7, 34.9]),
    ("pcam", "PatchCamelyon", "PatchCamelyon", "accuracy", 294912, 32768, ["vtab/pcam", "pcam"], [57.6, 58.4, 48.1, 58.8, 63.0]),
    ("ucf101", "UCF101", "UCF101", "accuracy", 9537, 1794, [], [63.6, 64.5, 69.8, 76.2, 76.9]),
    ("kinetics700", "Kinetics-700", "Kinetics700", "mean_top1_top5", 494801, 31669, [], [43.5, 47.8, 52.4, 60.3, 61.3]),
    ("clevr_counts", "CLEVR Counts", "CLEVRCounts", "accuracy", 2000, 500, ["vtab/clevr_count_all"], [20.3, 24.8, 23.4, 24.3, 24.8]),
    ("hateful_memes", "Hateful Memes", "HatefulMemes", "roc_auc", 8500, 500, [], [59.7, 57.6, 61.7, 63.3, 63.3]),
    ("renderedsst2", "Rendered SST2", "SST2", "accuracy", 7792, 1821, ["renderedsst2"], [56.9, 59.6, 59.8, 64.0, 67.9]),
    ("imagenet1k", "ImageNet", None, "accuracy", 1281167, 50000, ["imagenet1k"], [59.6, 63.2, 68.6, 75.3, 76.2]),
]

# The natural distribution shifts of the paper's robustness study (§3.3, Figure 13): name, title,
# test images, the ImageNet classes it is scored over ("all", a CLIP_benchmark wnid list in
# `build_dataset`, or "objectnet": ObjectNet's 113 ImageNet-overlapping classes, as CLIP_benchmark's
# `datasets/objectnet.py` reads them from the dataset's mapping files, copied in
# crates/clip-eval/scripts/objectnet_mappings/; see crates/clip-eval/scripts/gen_objectnet.py), and
# the zero-shot ViT-L/14@336px figure of Figure 13. Those figures were not read from the paper here but recalled second-hand,
# hence `paper_note`; ImageNet's 76.2 beside them is Table 11's.
ROBUSTNESS = [
    ("imagenetv2", "ImageNetV2 (matched frequency)", 10000, "all", 70.1),
    ("imagenet_sketch", "ImageNet-Sketch", 50889, "all", 60.2),
    ("imagenet-r", "ImageNet-R (200 classes)", 30000, "imagenet_r_wnids", 88.9),
    ("imagenet-a", "ImageNet-A (200 classes)", 7500, "imagenet_a_wnids", 77.1),
    ("objectnet", "ObjectNet (113 ImageNet classes)", 18574, "objectnet", 72.3),
]
OBJECTNET_MAPPINGS = ROOT / "crates/clip-eval/scripts/objectnet_mappings"
PAPER_NOTE = ("Figure 13, zero-shot CLIP ViT-L/14@336px; unverified: recalled second-hand, not read from the "
              "paper by the generator")


def sections(markdown):
    """{section title: (classes, templates)} from prompts.md's Python code blocks."""
    out = {}
    for title, body in re.findall(r"^## (\S+)\n+```bash\n(.*?)```", markdown, flags=re.S | re.M):
        tree = ast.parse(body)
        values = {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body}
        out[title] = (values["classes"], values["templates"])
    return out


def webdatasets():
    """CLIP_benchmark's `wds/` names, without the prefix."""
    names = [line.strip() for line in WEBDATASETS.read_text().splitlines() if line.strip()]
    assert all(n.startswith("wds/") for n in names), names
    return {n.removeprefix("wds/") for n in names}


def builder_names():
    """A test of whether the installed builder takes a dataset name: the names it compares with
    (`dataset_name == "…"`, `dataset_name in (…)`) and the prefixes it matches
    (`dataset_name.startswith("…")`), plain and under `vtab/`; `wds/` takes any name."""
    def patterns(function):
        source = inspect.getsource(function)
        names = set(re.findall(r'dataset_name == "([^"]+)"', source))
        for group in re.findall(r"dataset_name in \(([^)]*)\)", source):
            names |= set(re.findall(r'"([^"]+)"', group))
        return names, tuple(re.findall(r'dataset_name\.startswith\("([^"]+)"\)', source))
    assert 'dataset_name.startswith("wds/")' in inspect.getsource(builder.build_dataset), "the builder no longer reads wds/ sets"
    plain, _ = patterns(builder.build_dataset)
    vtab, vtab_prefixes = patterns(builder.build_vtab_dataset)

    def known(name):
        if name.startswith("vtab/"):
            rest = name.removeprefix("vtab/")
            return rest in vtab or rest.startswith(vtab_prefixes)
        return name in plain

    return known


def hub_repo(name, benchmark, listed):
    """The hub repo of a set whose CLIP_benchmark names are `benchmark`, or None."""
    wds = next((b for b in benchmark if b in listed), UNLISTED.get(name))
    if wds is None:
        return None
    assert wds in benchmark, (name, wds)
    return f"{HUB_ORG}/wds_{wds.replace('/', '-')}"


def objectnet_classes():
    """ObjectNet's classes as CLIP_benchmark's ObjectNetDataset orders and names them (its
    `get_metadata` over the mapping files; folders sorted, labels lower-cased): the image folder,
    the name and the ImageNet-1k indices of each."""
    from clip_benchmark.datasets import objectnet
    _, _, folders_to_ids, classname_map = objectnet.get_metadata(OBJECTNET_MAPPINGS)
    folders = sorted(folders_to_ids)
    assert len(folders) == 113, len(folders)
    return folders, [classname_map[f].lower() for f in folders], [folders_to_ids[f] for f in folders]


def main():
    found = sections(pathlib.Path(sys.argv[1]).read_text())
    listed, known = webdatasets(), builder_names()
    listed_names = listed
    datasets = []
    for name, title, section, metric, train, test, benchmark, paper in DATASETS:
        unknown = [b for b in benchmark if not known(b)]
        assert not unknown, f"{name}: not names in CLIP_benchmark's builder: {unknown}"
        if section is None:
            classes, templates = list(IMAGENET_CLASSNAMES), [t("{}") for t in OPENAI_IMAGENET_TEMPLATES]
        else:
            classes, templates = found.pop(section)
        datasets.append({
            "name": name,
            "title": title,
            "metric": metric,
            "train_size": train,
            "test_size": test,
            "clip_benchmark": benchmark,
            "hub_repo": hub_repo(name, benchmark, listed),
            "classes": [c if isinstance(c, list) else [c] for c in classes],
            "templates": templates,
            "paper_zeroshot": dict(zip(MODELS, paper)),
        })
    assert not found, f"prompts.md sections not used: {sorted(found)}"
    source = inspect.getsource(builder.build_dataset)
    wnids = list(builder.all_imagenet_wordnet_ids)
    imagenet_templates = [t("{}") for t in OPENAI_IMAGENET_TEMPLATES]
    for name, title, test, subset, paper in ROBUSTNESS:
        assert known(name), f"{name}: not a name in CLIP_benchmark's builder"
        assert name in builder.dataset_collection["imagenet_robustness"] or name == "imagenetv2", name
        folders, mapping = [], []
        if subset == "all":
            indices, classes = [], [[c] for c in IMAGENET_CLASSNAMES]
        elif subset == "objectnet":
            folders, names, mapping = objectnet_classes()
            indices, classes = [], [[n] for n in names]
        else:
            # The list literal assigned to `subset` in build_dataset; the mask is `wnid in list`.
            listed = set(re.findall(r"'(n\d{8})'", re.search(subset + r" = [\[{]([^\]}]*)[\]}]", source).group(1)))
            assert len(listed) == 200, (name, len(listed))
            indices = [i for i, w in enumerate(wnids) if w in listed]
            classes = [[IMAGENET_CLASSNAMES[i]] for i in indices]
        datasets.append({
            "name": name,
            "title": title,
            "metric": "accuracy",
            "train_size": 0,
            "test_size": test,
            "clip_benchmark": [name],
            "hub_repo": hub_repo(name, [name], listed_names),
            "classes": classes,
            "templates": imagenet_templates,
            "paper_zeroshot": {"ViT-L-14-336": paper},
            "robustness": True,
            "imagenet_classes": indices,
            "imagenet_mapping": mapping,
            "data_folders": folders,
            "paper_note": PAPER_NOTE,
        })
    out = ROOT / "crates/clip-eval/data/datasets.json"
    out.write_text(json.dumps(datasets, indent=1, ensure_ascii=False) + "\n")
    print(f"{out}: {len(datasets)} datasets ({len(ROBUSTNESS)} of the robustness study)")


if __name__ == "__main__":
    main()
