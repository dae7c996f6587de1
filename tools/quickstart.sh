#!/usr/bin/env bash
# The README's first command: install what is missing, build, and run the main job: pretrain a
# V-JEPA 2 model with the published recipe (warmup → constant → cooldown at more frames) on the
# built-in synthetic video source, writing jepa-run/{log.csv,loss.png,checkpoint.safetensors}.
# Extra arguments go to the trainer (see build/examples/train --help), e.g. --family vjepa2_1.
set -euo pipefail
cd "$(dirname "$0")/.."
# OpenBLAS's workers spin for 2^28 cycles after each GEMM and steal a core from jepa's OpenMP regions;
# a short spin makes the encoder ~1.5x faster on 2 cores (docs/benchmarks.md).
export OPENBLAS_THREAD_TIMEOUT="${OPENBLAS_THREAD_TIMEOUT:-4}"
bash tools/install_deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DJEPA_BUILD_TESTS=OFF -DJEPA_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build -j"$(nproc)" --target train
./build/examples/train "$@"
