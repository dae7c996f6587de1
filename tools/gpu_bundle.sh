#!/usr/bin/env bash
# Builds the GPU test and benchmark binaries on this (GPU-less) machine and packs them, with the shared
# libraries a bare CUDA machine lacks (Boost.Test, OpenBLAS, libgomp, ...; not libc, not the CUDA
# driver or toolkit libraries), into gpu-bundle.tar.xz at the repository root (ignored by git).
#
#   bash tools/gpu_bundle.sh [ARCH]        # ARCH: CMAKE_CUDA_ARCHITECTURES, default 90 (H100/H200)
#
# On the GPU machine (the device tool carries the archive; the torch scripts are in the tree):
#   tar xf gpu-bundle.tar.xz && bash gpu-bundle/run.sh [tests|bench|all] [bench_cuda_step options]
# run.sh runs every `gpu` test (CTest's SKIP code 77 counts as a skip), then bench_cuda_attention and
# bench_cuda_step, printing everything; results go to docs/benchmarks.md by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
arch="${1:-90}"
build="${JEPA_GPU_BUILD:-build-cuda}"  # reused when it exists (configured the same way)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DJEPA_ENABLE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$arch" \
      -DJEPA_BUILD_TESTS=ON -DJEPA_BUILD_EXAMPLES=OFF -DJEPA_BUILD_BENCHMARKS=ON >/dev/null
tests=(test_cuda_host_checks test_cuda_gemm test_cuda_layer_norm_gelu test_cuda_optim test_cuda_attention
       test_cuda_backend test_cuda_masks test_cuda_losses test_cuda_train_step)
benches=(bench_cuda_attention bench_cuda_step)
cmake --build "$build" -j"$(nproc)" --target "${tests[@]}" "${benches[@]}"

out=gpu-bundle
rm -rf "$out" gpu-bundle.tar.xz
mkdir -p "$out/bin" "$out/lib"
for t in "${tests[@]}"; do cp "$build/tests/gpu/$t" "$out/bin/"; done
for b in "${benches[@]}"; do cp "$build/benchmarks/$b" "$out/bin/"; done
strip --strip-debug "$out"/bin/* || true
# Shared libraries outside the C library and the CUDA installation.
for f in "$out"/bin/*; do
  ldd "$f" | awk '/=> \// {print $3}'
done | sort -u | while read -r lib; do
  case "$(basename "$lib")" in
    # libstdc++ / libgcc_s stay the target's own (newer there is compatible; ours on LD_LIBRARY_PATH
    # could shadow the newer one PyTorch needs in the benchmarks' python subprocesses).
    libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|ld-linux*|libstdc++*|libgcc_s*|libcuda.so*|libcublas*|libcudart*|libnccl*) ;;
    *) cp -L "$lib" "$out/lib/" ;;
  esac
done
cat > "$out/run.sh" <<'EOF'
#!/usr/bin/env bash
# Runs the bundled GPU tests and benchmarks from the repository root (the torch scripts live in
# benchmarks/). Usage: bash gpu-bundle/run.sh [tests|bench|all] [bench_cuda_step options...]
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export LD_LIBRARY_PATH="$here/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
what="${1:-all}"; shift || true
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fail=0
if [ "$what" = tests ] || [ "$what" = all ]; then
  for t in "$here"/bin/test_cuda_*; do
    echo "=== $(basename "$t")"
    "$t" --log_level=test_suite --report_level=short; rc=$?
    if [ $rc -eq 77 ]; then echo "skipped"; elif [ $rc -ne 0 ]; then echo "FAILED ($rc)"; fail=1; fi
  done
fi
if [ "$what" = bench ] || [ "$what" = all ]; then
  echo "=== bench_cuda_attention"; "$here/bin/bench_cuda_attention" --python "${PYTHON:-python3}"
  echo "=== bench_cuda_step"; "$here/bin/bench_cuda_step" --python "${PYTHON:-python3}" "$@"
fi
exit $fail
EOF
chmod +x "$out/run.sh"
tar cJf gpu-bundle.tar.xz "$out"
du -h gpu-bundle.tar.xz
echo "gpu-bundle.tar.xz ready: carry it to the GPU machine, then: tar xf gpu-bundle.tar.xz && bash gpu-bundle/run.sh"
