#!/usr/bin/env bash
# GPU checks of what is built so far, for a session that is lent a GPU machine.
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
