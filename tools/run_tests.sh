#!/usr/bin/env bash
# The README's second command (and what CI runs): build and run the default test suite.
# The default run excludes tests labelled `long` and `gpu`:
#   long  ctest --test-dir build-tests -L long      (multi-minute runs)
#   gpu   ctest --test-dir build-tests -L gpu       (needs a CUDA device; built wherever nvcc is found)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="$(nproc)"
cmake -S . -B build-tests -DCMAKE_BUILD_TYPE=Release -DJEPA_BUILD_TESTS=ON -DJEPA_BUILD_EXAMPLES=ON \
      -DJEPA_BUILD_BENCHMARKS=ON >/dev/null
cmake --build build-tests -j"$jobs"
echo "jepa: running the default suite; tests labelled 'long' and 'gpu' are excluded here"
echo "      (run them with: ctest --test-dir build-tests -L long   /   -L gpu)"
ctest --test-dir build-tests -LE "long|gpu" -j"$jobs" --output-on-failure
