// jepa/eval/rank.hpp — collapse diagnostics for feature matrices.
//
// Effective rank (Roy & Vetterli 2007; "RankMe", Garrido et al. 2023) of X (n, D):
//   σ = singular values of X,  p_k = σ_k / Σσ + 1e-7,  erank = exp(−Σ p_k log p_k)   ∈ [1, min(n, D)]
// A collapsed representation (every token the same vector) has erank ≈ 1. Computed on at most
// `max_rows` evenly spaced rows so that it is cheap enough to log every step.
#pragma once

#include <Eigen/SVD>
#include <algorithm>
#include <cmath>

#include "jepa/core/tensor.hpp"

namespace jepa::eval {

template <class T>
double effective_rank(const T* X, index_t n, index_t D, index_t max_rows = 256) {
  if (n < 1 || D < 1) return 0.0;
  const index_t rows = std::min(n, max_rows), stride = n / rows;
  Eigen::MatrixXd m(rows, D);
  for (index_t r = 0; r < rows; ++r)
    for (index_t c = 0; c < D; ++c) m(r, c) = static_cast<double>(X[(r * stride) * D + c]);
  const Eigen::VectorXd sv = Eigen::BDCSVD<Eigen::MatrixXd>(m).singularValues();
  const double total = sv.sum();
  if (!(total > 0)) return 0.0;
  double h = 0;
  for (index_t k = 0; k < sv.size(); ++k) {
    const double p = sv[k] / total + 1e-7;
    h -= p * std::log(p);
  }
  return std::exp(h);
}

/// Mean over channels of the per-channel standard deviation across the n rows (a collapsed encoder
/// drives it to 0; LayerNorm-ed targets of a healthy one sit near 1).
template <class T>
double feature_std(const T* X, index_t n, index_t D) {
  if (n < 2) return 0.0;
  double acc = 0;
  for (index_t c = 0; c < D; ++c) {
    double s = 0, s2 = 0;
    for (index_t r = 0; r < n; ++r) {
      const double v = static_cast<double>(X[r * D + c]);
      s += v, s2 += v * v;
    }
    const double mean = s / static_cast<double>(n);
    acc += std::sqrt(std::max(0.0, s2 / static_cast<double>(n) - mean * mean));
  }
  return acc / static_cast<double>(D);
}

}  // namespace jepa::eval
