// Helpers shared by the CUDA parity tests: random host data, upload/download, bf16 rounding, poison.
#pragma once

#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "jepa/backend/cuda/device.cuh"
#include "jepa/core/dtype.hpp"
#include "support/check.hpp"

namespace jepa::test::gpu {

namespace cu = jepa::backend::cuda;

/// Normal(0, std) values of type T (bf16 values are rounded from the drawn doubles).
template <class T>
std::vector<T> random(std::size_t n, std::uint64_t seed, double std = 1.0, double mean = 0.0) {
  const auto d = random_vector<double>(n, seed, std, mean);
  std::vector<T> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = T(static_cast<float>(d[i]));
  return v;
}
template <class T>
double as_double(T x) { return static_cast<double>(static_cast<float>(x)); }
inline double as_double(double x) { return x; }
template <class T>
std::vector<double> to_double(const std::vector<T>& v) {
  std::vector<double> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = as_double(v[i]);
  return out;
}
/// Fills a device array with NaN bytes (0xFF) so that an element the kernel failed to write is caught.
template <class T>
void poison(T* d, std::size_t n) {
  JEPA_CUDA_CHECK(cudaMemset(d, 0xff, n * sizeof(T)));
}
template <class T>
bool all_finite(const std::vector<T>& v) {
  for (const T& x : v)
    if (!std::isfinite(as_double(x))) return false;
  return true;
}
template <class T>
bool bitwise_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

}  // namespace jepa::test::gpu
