// benchmarks/cuda_timing.cuh — device-side timing shared by the CUDA benchmark programs.
#pragma once

#include <cuda_runtime.h>

#include <vector>

#include "common.hpp"
#include "jepa/backend/cuda/device.cuh"

namespace jepa::bench {

/// Median of `reps` timed calls of f (device events on `stream` around each call), in milliseconds,
/// after `warm` untimed calls.
template <class F>
double median_ms(F&& f, int reps, cudaStream_t stream, int warm = 3) {
  for (int i = 0; i < warm; ++i) f();
  JEPA_CUDA_CHECK(cudaStreamSynchronize(stream));
  jepa::backend::cuda::Event a, b;
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    a.record(stream);
    f();
    b.record(stream);
    b.synchronize();
    t.push_back(b.elapsed_ms(a));
  }
  return median(t);
}

}  // namespace jepa::bench
