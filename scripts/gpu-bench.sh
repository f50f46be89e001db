#!/usr/bin/env bash
# Issue 9's GPU measurements in one device call: CUDA parity, then ViT-B-32 training with bf16
# autocast at batch 256 (samples/s, peak memory, MFU against a bf16 matrix-product peak measured in
# the same run) and image-embedding throughput, for clip-rs and for open_clip on the same card.
#
# Here (builds the binaries, downloads the wheels the GPU image may lack into target/gpu-wheels):
#   bash scripts/gpu-bench.sh prepare
# There, through the device tool, one call (about 6 minutes; give a timeout of 540 s):
#   run(command="bash scripts/gpu-bench.sh", timeout_s=540,
#       carry=["target/release/clip", "target/release/bench_step", "target/release/bench_model",
#              "target/gpu-wheels"])
# Results: $OUT/gpu-bench.json and $OUT/gpu-bench.md (append the table to docs/perf.md with the
# card's name). Without a GPU the script says so and exits with status 2.
#
# Knobs (environment): MODEL (ViT-B-32), BATCH (256), ITERS (20), EMBED_BATCH (1024),
# GPU_PYTHON (3.12: the Python version the wheels are downloaded for).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-ViT-B-32}
BATCH=${BATCH:-256}
ITERS=${ITERS:-20}
EMBED_BATCH=${EMBED_BATCH:-1024}
WHEELS=target/gpu-wheels

if [[ "${1:-}" == prepare ]]; then
  cargo xtask setup --oracles
  eval "$(cargo xtask env)"
  cargo build --release -p clip-cli --bin clip
  cargo build --release -p clip-benches --bin bench_step --bin bench_model
  rm -rf "$WHEELS" && mkdir -p "$WHEELS"
  # open_clip and what it imports beyond torch (torch's own dependencies come with torch there).
  .venv/bin/python -m pip download --quiet --no-deps --only-binary=:all: --dest "$WHEELS" \
    --python-version "${GPU_PYTHON:-3.12}" --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux_2_17_x86_64 --platform any \
    open_clip_torch==3.3.0 timm==1.0.31 torchvision==0.26.0 ftfy wcwidth regex tqdm huggingface_hub hf-xet \
    safetensors pyyaml pillow numpy packaging anyio click h11 httpcore2 httpx2 idna truststore
  du -sh "$WHEELS" target/release/clip target/release/bench_step target/release/bench_model
  exit 0
fi

OUT_DIR=${OUT:-/tmp/gpu-bench}
mkdir -p "$OUT_DIR"
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu-bench: no GPU on this machine; run it through the device tool (see the header)." >&2
  exit 2
fi
TORCH_LIB=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
CARD=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
echo "== $CARD"

echo "== CUDA parity (scripts/gpu-check.sh)"
bash scripts/gpu-check.sh || echo "== CUDA parity FAILED (see above); measuring anyway, so the call is not wasted"

echo "== the reference: open_clip from the carried wheels"
PYDEPS=/tmp/gpu-bench-pydeps  # not under $OUT: only results travel back
REFERENCE=1
python3 -m pip install --quiet --no-deps --no-index --target "$PYDEPS" "$WHEELS"/*.whl || REFERENCE=0
export PYTHONPATH="$PYDEPS${PYTHONPATH:+:$PYTHONPATH}"
python3 -c 'import open_clip' || REFERENCE=0

# Runs a command with its stdout to $OUT_DIR/NAME.json and records the peak GPU memory it held
# (MiB) in $OUT_DIR/NAME.mib, sampled from nvidia-smi every 100 ms: the caching allocator's
# reservations plus the CUDA context, the same measure for both sides.
measure() {
  local name=$1 log=$OUT_DIR/mem.log pid
  shift
  : > "$log"
  "$@" > "$OUT_DIR/$name.json" &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits >> "$log" 2>/dev/null || true
    sleep 0.1
  done
  if ! wait "$pid"; then
    echo "$name: FAILED" >&2
    rm -f "$OUT_DIR/$name.json"
  fi
  awk -F', ' -v p="$pid" '$1 == p && $2 > m { m = $2 } END { print m + 0 }' "$log" > "$OUT_DIR/$name.mib"
  echo "$name: $(cat "$OUT_DIR/$name.json"), peak $(cat "$OUT_DIR/$name.mib") MiB"
}

echo "== bf16 matrix-product peak (8192^3 torch.matmul, best of 5 x 20)"
python3 scripts/gpu_report.py peak > "$OUT_DIR/peak.json"
cat "$OUT_DIR/peak.json"

echo "== training step: $MODEL, batch $BATCH, bf16 autocast, $ITERS steps; then image embedding"
measure ours-step target/release/bench_step "$MODEL" "$BATCH" "$ITERS" 16 cuda bf16
measure ours-embed target/release/bench_model "$MODEL" image "$EMBED_BATCH" 10 16 cuda bf16
if [[ $REFERENCE == 1 ]]; then
  measure theirs-step python3 benches/scripts/bench_step.py "$MODEL" "$BATCH" "$ITERS" 16 --device cuda --precision bf16
  measure theirs-embed python3 benches/scripts/bench_embed.py --reference "$MODEL" image "$EMBED_BATCH" 10 16 cuda bf16
fi
python3 scripts/gpu_report.py report "$OUT_DIR" "$CARD" "$MODEL" "$BATCH" "$EMBED_BATCH"
