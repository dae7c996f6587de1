// jepa/eval/pca.hpp — principal components of token features, for PCA feature maps.
//
// For features X (N, D): centre, form the covariance C = XcᵀXc/(N−1) (D×D), take its top-k
// eigenvectors V (D, k), and project: Y = Xc·V (N, k). Each output column is then min-max scaled to
// [0, 1] so three components can be shown as RGB.
#pragma once

#include <Eigen/Dense>
#include <algorithm>
#include <vector>

#include "jepa/core/error.hpp"
#include "jepa/core/tensor.hpp"

namespace jepa::eval {

/// Returns (N, k) row-major projections onto the top-k principal components, each scaled to [0, 1].
inline std::vector<float> pca_project(const float* X, index_t N, index_t D, index_t k) {
  if (N < 2 || D < 1 || k < 1 || k > D)
    throw ShapeError(detail::cat("jepa: pca_project needs N >= 2, 1 <= k <= D (got N=", N, ", D=", D, ", k=", k, ")"));
  using Mat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic>;
  Mat x = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(X, N, D).cast<double>();
  x.rowwise() -= x.colwise().mean();
  const Mat cov = (x.transpose() * x) / static_cast<double>(N - 1);
  Eigen::SelfAdjointEigenSolver<Mat> es(cov);
  const Mat V = es.eigenvectors().rightCols(k).rowwise().reverse();  // largest eigenvalue first
  Mat y = x * V;
  std::vector<float> out(static_cast<std::size_t>(N * k));
  for (index_t c = 0; c < k; ++c) {
    const double lo = y.col(c).minCoeff(), hi = y.col(c).maxCoeff();
    for (index_t i = 0; i < N; ++i) out[i * k + c] = static_cast<float>(hi > lo ? (y(i, c) - lo) / (hi - lo) : 0.5);
  }
  return out;
}

}  // namespace jepa::eval
