#!/usr/bin/env bash
# The README's first command: install what is missing, build, and run the main job (for now:
# encode synthetic clips with a V-JEPA 2 ViT-S/16 encoder and write a PCA feature map). Extra
# arguments go to the main job (see build/examples/encode_clip --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DJEPA_BUILD_TESTS=OFF -DJEPA_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build -j"$(nproc)" --target encode_clip
./build/examples/encode_clip "$@"
