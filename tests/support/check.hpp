// Test helpers: relative errors, random fills and a finite-difference gradient checker.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "jepa/core/rng.hpp"

namespace jepa::test {

/// ‖a − b‖₂ / max(‖b‖₂, tiny): the norm-wise relative error used by every parity and gradient test.
template <class A, class B>
double rel_error(const A* a, const B* b, std::size_t n) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    num += d * d;
    den += static_cast<double>(b[i]) * static_cast<double>(b[i]);
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-300);
}
template <class A, class B>
double rel_error(const std::vector<A>& a, const std::vector<B>& b) {
  return rel_error(a.data(), b.data(), std::min(a.size(), b.size())) + (a.size() == b.size() ? 0.0 : 1e30);
}

template <class T>
void fill_normal(T* p, std::size_t n, std::uint64_t seed, double std = 1.0, double mean = 0.0) {
  Rng r(seed, 0);
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<T>(mean + std * r.normal());
}
template <class T>
std::vector<T> random_vector(std::size_t n, std::uint64_t seed, double std = 1.0, double mean = 0.0) {
  std::vector<T> v(n);
  fill_normal(v.data(), n, seed, std, mean);
  return v;
}

/// Central finite differences of a scalar function f with respect to the n values at x (modified in
/// place and restored). Returns the numerical gradient.
inline std::vector<double> numerical_gradient(double* x, std::size_t n, const std::function<double()>& f,
                                              double h = 1e-6) {
  std::vector<double> g(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double x0 = x[i];
    x[i] = x0 + h;
    const double fp = f();
    x[i] = x0 - h;
    const double fm = f();
    x[i] = x0;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

/// Σ a_i · b_i in double.
template <class A, class B>
double dot(const A* a, const B* b, std::size_t n) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return s;
}

}  // namespace jepa::test
