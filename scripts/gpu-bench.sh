#!/usr/bin/env bash
# Issue 9's and 20's GPU measurements, each part in one device call, for clip-rs and for open_clip
# on the same card.
#
#   step (the default): CUDA parity, then ViT-B-32 training with bf16 autocast at batch 256
#     (samples/s, peak memory, MFU against a bf16 matrix-product peak measured in the same run) as
#     is, with gradient checkpointing and with patch dropout 0.5, and image-embedding throughput.
#     About 7 minutes: give a timeout of 540 s.
#   largest-batch: ViT-L-14 with gradient checkpointing and bf16 autocast: the largest batch whose
#     training step fits on the card, found by doubling from 128 and then halving the gap, for
#     each side, with its samples/s and peak memory there. About 6 minutes: give 540 s.
#
# Here (builds the binaries and strips copies of them into target/gpu-bin, downloads the wheels
# the GPU image lacks into target/gpu-wheels, and checks what a call carries against the 64 MiB
# the device tool takes):
#   bash scripts/gpu-bench.sh prepare
# There, through the device tool, one call per part:
#   run(command="bash scripts/gpu-bench.sh [step|largest-batch]", timeout_s=540,
#       carry=["target/gpu-bin", "target/gpu-wheels"])
# Results: $OUT/gpu-bench.md and .json (step) or $OUT/gpu-largest.md and .json (largest-batch), and
# $OUT/gpu-bench-log.tar.gz with every run's output; append the table to docs/perf.md with the
# card's name. Without a GPU the script says so and exits with status 2.
#
# Knobs (environment): MODEL (ViT-B-32), BATCH (256), ITERS (20), VARIANT_ITERS (10: the
# checkpointing and patch-dropout runs), EMBED_BATCH (1024), LARGE_MODEL (ViT-L-14),
# LARGE_START (128), LARGE_SPLITS (2: halvings of the gap after the first batch that does not
# fit), GPU_PYTHON (3.12: the Python version the wheels are downloaded for).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-ViT-B-32}
BATCH=${BATCH:-256}
ITERS=${ITERS:-20}
VARIANT_ITERS=${VARIANT_ITERS:-10}
EMBED_BATCH=${EMBED_BATCH:-1024}
LARGE_MODEL=${LARGE_MODEL:-ViT-L-14}
LARGE_START=${LARGE_START:-128}
LARGE_SPLITS=${LARGE_SPLITS:-2}
WHEELS=target/gpu-wheels
BINS=target/gpu-bin
LIMIT_MIB=64

if [[ "${1:-}" == prepare ]]; then
  cargo xtask setup --oracles
  eval "$(cargo xtask env)"
  cargo build --release -p clip-cli --bin clip
  cargo build --release -p clip-benches --bin bench_step --bin bench_model
  # Symbols are no use there and a fifth of the size.
  rm -rf "$BINS" && mkdir -p "$BINS"
  for bin in clip bench_step bench_model; do
    strip --strip-all -o "$BINS/$bin" "target/release/$bin"
  done
  # The GPU image holds torch, torchvision, timm, numpy, pillow, huggingface_hub, safetensors,
  # regex and tqdm (the device tool's KINDS.md); open_clip needs these besides.
  rm -rf "$WHEELS" && mkdir -p "$WHEELS"
  .venv/bin/python -m pip download --quiet --no-deps --only-binary=:all: --dest "$WHEELS" \
    --python-version "${GPU_PYTHON:-3.12}" --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux_2_17_x86_64 --platform any \
    open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth
  # What a call carries: the working tree git would see (tracked and untracked, not ignored) and
  # the carried folders.
  tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
  carried=$(du -sb "$BINS" "$WHEELS" | awk '{ s += $1 } END { print s + 0 }')
  du -sh "$BINS"/* "$WHEELS"
  total=$(( (tree + carried) / 1048576 ))
  echo "a call carries ${total} MiB: the working tree $(( tree / 1048576 )) MiB, binaries and wheels $(( carried / 1048576 )) MiB (limit ${LIMIT_MIB} MiB)"
  if (( total >= LIMIT_MIB )); then
    echo "gpu-bench: over the device tool's ${LIMIT_MIB} MiB" >&2
    exit 1
  fi
  exit 0
fi
PART=${1:-step}
if [[ $PART != step && $PART != largest-batch ]]; then
  echo "usage: bash scripts/gpu-bench.sh [prepare|step|largest-batch]" >&2
  exit 64
fi

OUT_DIR=${OUT:-/tmp/gpu-bench}
# Only the reports and one archive of the logs go to $OUT (the device tool brings back 8 files).
WORK=/tmp/gpu-bench-work
rm -rf "$WORK" && mkdir -p "$OUT_DIR" "$WORK"
trap 'tar -C "$WORK" -czf "$OUT_DIR/gpu-bench-log.tar.gz" . 2>/dev/null || true' EXIT
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu-bench: no GPU on this machine; run it through the device tool (see the header)." >&2
  exit 2
fi
# The stripped binaries where scripts/gpu-check.sh and the commands below look for them.
if [[ ! -x $BINS/bench_step ]]; then
  echo "gpu-bench: no $BINS: run 'bash scripts/gpu-bench.sh prepare' here and carry $BINS and $WHEELS" >&2
  exit 1
fi
mkdir -p target/release
cp "$BINS"/* target/release/
TORCH_LIB=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
CARD=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
echo "== $CARD"

echo "== the reference: open_clip from the carried wheels"
PYDEPS=/tmp/gpu-bench-pydeps  # not under $OUT: only results travel back
REFERENCE=1
python3 -m pip install --quiet --no-deps --no-index --no-compile --target "$PYDEPS" "$WHEELS"/*.whl || REFERENCE=0
export PYTHONPATH="$PYDEPS${PYTHONPATH:+:$PYTHONPATH}"
python3 -c 'import open_clip' || REFERENCE=0

# Runs a command with its stdout to $WORK/NAME.json (stderr to NAME.err) and records the peak GPU
# memory it held (MiB) in $WORK/NAME.mib, sampled from nvidia-smi every 100 ms: the caching
# allocator's reservations plus the CUDA context, the same measure for both sides (the sum over
# the card's compute processes, which are the command's alone: it may run under `timeout`).
# Returns the command's status.
measure() {
  local name=$1 log=$WORK/mem.log pid status=0
  shift
  : > "$log"
  "$@" > "$WORK/$name.json" 2> "$WORK/$name.err" &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    { nvidia-smi --query-compute-apps=used_memory --format=csv,noheader,nounits 2>/dev/null || true; echo --; } >> "$log"
    sleep 0.1
  done
  wait "$pid" || status=$?
  awk '$1 == "--" { if (s > m) m = s; s = 0; next } { s += $1 } END { if (s > m) m = s; print m + 0 }' "$log" > "$WORK/$name.mib"
  if (( status != 0 )); then
    echo "$name: FAILED (status $status): $(tail -c 400 "$WORK/$name.err")" >&2
    rm -f "$WORK/$name.json"
  else
    echo "$name: $(cat "$WORK/$name.json"), peak $(cat "$WORK/$name.mib") MiB"
  fi
  return "$status"
}

# One side's training-step command: ours or theirs, then bench_step's arguments and options.
step_command() {
  local side=$1 model=$2 batch=$3 iters=$4
  shift 4
  if [[ $side == ours ]]; then
    echo target/release/bench_step "$@" "$model" "$batch" "$iters" 16 cuda bf16
  else
    echo python3 benches/scripts/bench_step.py "$model" "$batch" "$iters" 16 --device cuda --precision bf16 "$@"
  fi
}

sides=(ours)
[[ $REFERENCE == 1 ]] && sides+=(theirs)

if [[ $PART == step ]]; then
  echo "== CUDA parity (scripts/gpu-check.sh)"
  OUT=$WORK bash scripts/gpu-check.sh || echo "== CUDA parity FAILED (see above); measuring anyway, so the call is not wasted"

  echo "== bf16 matrix-product peak (8192^3 torch.matmul, best of 5 x 20)"
  python3 scripts/gpu_report.py peak > "$WORK/peak.json"
  cat "$WORK/peak.json"

  echo "== training step: $MODEL, batch $BATCH, bf16 autocast: $ITERS steps plain, $VARIANT_ITERS with grad checkpointing, with patch dropout 0.5; then image embedding"
  for side in "${sides[@]}"; do
    # shellcheck disable=SC2046 # the command's words
    measure "$side-step" $(step_command "$side" "$MODEL" "$BATCH" "$ITERS") || true
    measure "$side-step-ckpt" $(step_command "$side" "$MODEL" "$BATCH" "$VARIANT_ITERS" --grad-checkpointing) || true
    measure "$side-step-pd" $(step_command "$side" "$MODEL" "$BATCH" "$VARIANT_ITERS" --patch-dropout 0.5) || true
  done
  measure ours-embed target/release/bench_model "$MODEL" image "$EMBED_BATCH" 10 16 cuda bf16 || true
  if [[ $REFERENCE == 1 ]]; then
    measure theirs-embed python3 benches/scripts/bench_embed.py --reference "$MODEL" image "$EMBED_BATCH" 10 16 cuda bf16 || true
  fi
  python3 scripts/gpu_report.py report "$WORK" "$OUT_DIR" "$CARD" "$MODEL" "$BATCH" "$EMBED_BATCH"
  exit 0
fi

# largest-batch: whether a checkpointed step of $LARGE_MODEL at batch B fits: 0 it does, 1 it ran
# out of memory, 2 it failed otherwise (the search stops).
fits() {
  local side=$1 batch=$2 name="$1-large-$2"
  # shellcheck disable=SC2046 # the command's words
  if measure "$name" timeout 240 $(step_command "$side" "$LARGE_MODEL" "$batch" 1 --grad-checkpointing); then
    return 0
  fi
  grep -qiE "out of memory|OutOfMemory|CUDA_ERROR_OUT_OF_MEMORY" "$WORK/$name.err" && return 1
  return 2
}

echo "== the largest batch of a $LARGE_MODEL training step with grad checkpointing, bf16 autocast"
for side in "${sides[@]}"; do
  good=0 bad=0 batch=$LARGE_START status=0
  while true; do  # doubling until a batch does not fit
    fits "$side" "$batch" || status=$?
    if (( status == 0 )); then good=$batch; batch=$(( batch * 2 )); else break; fi
  done
  if (( status == 1 )); then
    bad=$batch
    for (( i = 0; i < LARGE_SPLITS && good > 0; i++ )); do  # halving the gap
      batch=$(( (good + bad) / 2 / 8 * 8 ))
      (( batch > good && batch < bad )) || break
      status=0
      fits "$side" "$batch" || status=$?
      if (( status == 0 )); then good=$batch; elif (( status == 1 )); then bad=$batch; else break; fi
    done
  fi
  echo "$side: largest batch that fits $good (the smallest that did not: $bad)"
  echo "{\"largest\": $good, \"smallest_failed\": $bad, \"status\": $status}" > "$WORK/$side-largest.json"
done
python3 scripts/gpu_report.py largest "$WORK" "$OUT_DIR" "$CARD" "$LARGE_MODEL"
