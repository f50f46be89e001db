#!/usr/bin/env python3
"""The reference side of bench-compare's `clip embed --source wds:` row: what `clip-retrieval
inference --input_format webdataset` does, written out with its pieces (clip-retrieval itself pins
old packages): WebDataset shards read by a PyTorch DataLoader with WORKERS worker processes
(webdataset 1.x, `warn_and_continue`, clip-retrieval's select-and-map), open_clip's evaluation
transform of the model, `encode_image`, L2 normalisation, float16, and one output partition:
`img_emb/img_emb_0.npy` and `metadata/metadata_0.parquet` (image_path = the key, and the caption;
pyarrow writes it, as pandas' `to_parquet` would). Prints one JSON line: seconds from start to
end, images, and the peak RSS of this process and of its largest worker, in KiB.

    python bench_embed_wds.py MODEL WEIGHTS 'SHARDS' BATCH WORKERS THREADS OUT
"""
import io
import json
import os
import resource
import sys
import time

START = time.perf_counter()

import numpy as np  # noqa: E402
import open_clip  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import torch  # noqa: E402
import webdataset as wds  # noqa: E402
from PIL import Image  # noqa: E402


def main(model_name, weights, shards, batch, workers, threads, out):
    torch.set_num_threads(int(threads))
    model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=weights)
    model.eval()

    def sample(item):
        image = preprocess(Image.open(io.BytesIO(item["jpg"])))
        return {"image_tensor": image, "image_filename": item["__key__"], "text": item["txt"].decode("utf-8")}

    dataset = (wds.WebDataset(shards, handler=wds.handlers.warn_and_continue, shardshuffle=False)
               .select(lambda item: "jpg" in item and "txt" in item)
               .map(sample, handler=wds.handlers.warn_and_continue))
    loader = torch.utils.data.DataLoader(dataset, batch_size=int(batch), shuffle=False, num_workers=int(workers),
                                         pin_memory=False, prefetch_factor=2)
    embeddings, names, captions = [], [], []
    with torch.no_grad():
        for item in loader:
            features = model.encode_image(item["image_tensor"])
            features /= features.norm(dim=-1, keepdim=True)
            embeddings.append(features.cpu().to(torch.float16).numpy())
            names.extend(item["image_filename"])
            captions.extend(item["text"])
    os.makedirs(os.path.join(out, "img_emb"), exist_ok=True)
    os.makedirs(os.path.join(out, "metadata"), exist_ok=True)
    matrix = np.concatenate(embeddings)
    np.save(os.path.join(out, "img_emb", "img_emb_0.npy"), matrix)
    pq.write_table(pa.table({"image_path": names, "caption": captions}), os.path.join(out, "metadata", "metadata_0.parquet"))
    print(json.dumps({
        "seconds": time.perf_counter() - START,
        "images": int(matrix.shape[0]),
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "worker_peak_rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    }))


if __name__ == "__main__":
    main(*sys.argv[1:])
