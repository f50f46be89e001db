#!/usr/bin/env python3
"""`clip embed --source` read back by the Python tools that consume clip-retrieval's layout.

    embed_interop.py CLIP

WebDataset shards of the committed photos with captions and img2dataset-style json (one sample
corrupt) are embedded with the tiny-hub model (`--model local-dir:`, `--what both`). Then:
1. pyarrow reads every `metadata/metadata_N.parquet`: the keys and captions are the shards',
   in row order, without the corrupt sample; width and height are the photos'; the json fields
   are columns.
2. numpy reads `img_emb` and `text_emb` (float16 by default, float32 asked): shapes match the
   tables, rows are unit vectors.
3. open_clip loads the same folder and embeds the same photos with its own transform and the
   same captions with its tokenizer: the rows equal ours at float32 (max |Δ| ≤ 1e-5; JPEG images
   ≤ 2e-4, the two JPEG decoders' difference).

Run by `cargo xtask test` when the oracles are installed (`cargo xtask setup --oracles`).
"""
import io
import json
import pathlib
import subprocess
import sys
import tarfile
import tempfile

import numpy as np
import pyarrow.parquet as pq

HERE = pathlib.Path(__file__).resolve().parent.parent
MODEL = HERE / "tests" / "fixtures" / "tiny-hub"
PHOTOS = HERE.parent / "clip-data" / "tests" / "fixtures" / "images"
NAMES = ["chelsea.png", "rocket.jpg", "camera.png", "coffee.png", "logo.png", "chelsea_cmyk.jpg"]


def shards(root):
    """Two shards, three samples each; sample 1 of shard 1 has a corrupt image. Returns the kept
    samples (key, caption, photo name) in order."""
    kept = []
    for s in range(2):
        with tarfile.open(root / f"{s}.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
            for i in range(3):
                name = NAMES[3 * s + i]
                key = f"{s:03d}{i:03d}"
                caption = f"a photo called {name} ({s}, {i})"
                image = b"\xff\xd8\xff broken" if (s, i) == (1, 1) else (PHOTOS / name).read_bytes()
                meta = {"url": f"http://example.invalid/{name}", "status": "success", "original_width": 100 + i}
                ext = pathlib.Path(name).suffix.lstrip(".")
                for member, data in ((f"{key}.{ext}", image), (f"{key}.txt", caption.encode()),
                                     (f"{key}.json", json.dumps(meta).encode())):
                    info = tarfile.TarInfo(member)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
                if (s, i) != (1, 1):
                    kept.append((key, caption, name))
    return kept


def main(clip):
    import open_clip
    import torch
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        kept = shards(tmp)
        spec = f"wds:{tmp}/{{0..1}}.tar"
        outs = {}
        for dtype in ("float16", "float32"):
            out = tmp / dtype
            run = subprocess.run([clip, "embed", "--model", f"local-dir:{MODEL}", "--source", spec, "--out", out,
                                  "--what", "both", "--dtype", dtype, "--device", "cpu", "--batch-size", "2"],
                                 capture_output=True, text=True)
            if run.returncode != 0:
                sys.exit(f"clip embed failed:\n{run.stderr}")
            assert "corrupt_image 1" in run.stderr, run.stderr
            outs[dtype] = out

        rows = []
        for part in range(2):
            table = pq.read_table(outs["float16"] / "metadata" / f"metadata_{part}.parquet").to_pylist()
            rows.extend(table)
        assert [r["key"] for r in rows] == [k for k, _, _ in kept], rows
        assert [r["image_path"] for r in rows] == [k for k, _, _ in kept]
        assert [r["caption"] for r in rows] == [c for _, c, _ in kept]
        for row, (_, _, name) in zip(rows, kept):
            with Image.open(PHOTOS / name) as photo:
                assert (row["width"], row["height"]) == photo.size, (row, photo.size)
            assert row["url"] == f"http://example.invalid/{name}" and row["status"] == "success", row
            assert isinstance(row["original_width"], int), row
        stats = json.loads((outs["float16"] / "stats" / "stats_1.json").read_text())
        assert stats == {"rows": 2, "read": 3, "skipped": {"corrupt_image": 1}}, stats

        emb = {}
        for dtype, out in outs.items():
            for what in ("img", "text"):
                parts = [np.load(out / f"{what}_emb" / f"{what}_emb_{p}.npy") for p in range(2)]
                assert [len(p) for p in parts] == [3, 2], [p.shape for p in parts]
                matrix = np.concatenate(parts)
                assert matrix.dtype == np.dtype(dtype), matrix.dtype
                assert np.allclose(np.linalg.norm(matrix.astype(np.float64), axis=1), 1, atol=2e-3)
                emb[dtype, what] = matrix
        assert np.abs(emb["float16", "img"].astype(np.float32) - emb["float32", "img"]).max() < 2e-3

        model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{MODEL}")
        tokenizer = open_clip.get_tokenizer(f"local-dir:{MODEL}")
        model.eval()
        with torch.no_grad():
            images = torch.stack([preprocess(Image.open(PHOTOS / name)) for _, _, name in kept])
            theirs_img = torch.nn.functional.normalize(model.encode_image(images), dim=-1).numpy()
            theirs_text = torch.nn.functional.normalize(model.encode_text(tokenizer([c for _, c, _ in kept])), dim=-1).numpy()
        # PNG rows are exact up to float rounding; JPEG rows also carry the difference between
        # zune-jpeg's and libjpeg's IDCT (as in zoo parity's JPEG rows).
        jpeg = np.array([name.endswith(".jpg") for _, _, name in kept])
        d = np.abs(theirs_img - emb["float32", "img"]).max(axis=1)
        d_png, d_jpeg = d[~jpeg].max(), d[jpeg].max()
        d_text = np.abs(theirs_text - emb["float32", "text"]).max()
        assert d_png <= 1e-5 and d_jpeg <= 2e-4 and d_text <= 1e-5, (d_png, d_jpeg, d_text)
        print(f"embed interop: pyarrow reads {len(rows)} rows in order with the json fields; open_clip's rows "
              f"max |Δ| PNG images {d_png:.1e}, JPEG images {d_jpeg:.1e}, texts {d_text:.1e}")


if __name__ == "__main__":
    main(sys.argv[1])
