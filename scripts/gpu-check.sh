#!/usr/bin/env bash
# GPU checks of what is built so far (issues 2, 4, 5), for a session that is lent a GPU machine.
#
# Here:   cargo xtask setup && cargo build --release -p clip-cli
# There:  run through the device tool with carry ["target/release/clip"]:
#           bash scripts/gpu-check.sh
# The binary's rpath points at this machine's .venv; on the GPU machine libtorch comes from its
# own torch 2.11.0 wheel, found through python3.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_LIB=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "== clip doctor (expect CUDA available and a tensor op on each device)"
target/release/clip doctor
echo "== NCCL: one-rank all-reduce and all-gather with gradient on CUDA"
target/release/clip dist-check --device cuda --rounds 5
echo "== CUDA features vs CPU (tiny fixture models, real photos): fp32 within 1e-3, bf16 autocast within 2e-2"
OUT_DIR=${OUT:-/tmp}/gpu-check
mkdir -p "$OUT_DIR"
for m in tiny-vit tiny-rn; do
  args=(embed --model-config "crates/clip-model/tests/fixtures/$m.json" --weights "crates/clip-model/tests/fixtures/$m.safetensors"
        --images crates/clip-data/tests/fixtures/images)
  target/release/clip "${args[@]}" --device cpu --out "$OUT_DIR/$m-cpu.npy"
  target/release/clip "${args[@]}" --device cuda --out "$OUT_DIR/$m-cuda.npy"
  target/release/clip "${args[@]}" --device cuda --precision bf16 --out "$OUT_DIR/$m-cuda-bf16.npy"
  python3 scripts/npy_diff.py "$OUT_DIR/$m-cpu.npy" "$OUT_DIR/$m-cuda.npy" 1e-3
  python3 scripts/npy_diff.py "$OUT_DIR/$m-cpu.npy" "$OUT_DIR/$m-cuda-bf16.npy" 2e-2
done
