// jepa/losses/objective.hpp — evaluating a loss policy on predictions against gathered targets.
//
//   level_loss = Σ_l w_l · 1/(B·K·D) · Σ_{b,k,c} ω_bk · ρ(ẑ[b,k,l·D+c] − h_l[b, idx[b,k], c])
//   ∂/∂ẑ[b,k,l·D+c] = scale · w_l · ω_bk · ρ'(·) / (B·K·D)        (written, not accumulated)
// Targets h_l are (B,N,D) per level, already normalised; idx (B,K) picks the rows. Rows are summed
// in a fixed order, so the value does not depend on the thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "jepa/config.hpp"
#include "jepa/core/tensor.hpp"
#include "jepa/losses/losses.hpp"

namespace jepa::losses {

template <class T, class Loss>
double level_loss(const Loss& loss, const T* pred, index_t B, index_t K, index_t L, index_t D,
                  const std::vector<const T*>& targets, index_t N, const std::int64_t* idx, const T* omega,
                  double grad_scale, T* dpred) {
  std::vector<double> row(static_cast<std::size_t>(B * K));
  const double inv = 1.0 / static_cast<double>(B * K * D);
  std::vector<double> w(static_cast<std::size_t>(L));
  for (index_t l = 0; l < L; ++l) w[l] = loss.level_weight(static_cast<int>(l), static_cast<int>(L));
  JEPA_OMP(parallel for schedule(static) if (B * K * L * D > 65536))
  for (index_t r = 0; r < B * K; ++r) {
    const index_t b = r / K;
    const double om = omega ? static_cast<double>(omega[r]) : 1.0;
    double acc = 0;
    for (index_t l = 0; l < L; ++l) {
      const T* p = pred + r * L * D + l * D;
      const T* h = targets[static_cast<std::size_t>(l)] + (b * N + idx[r]) * D;
      double part = 0;
      for (index_t c = 0; c < D; ++c) {
        const double d = static_cast<double>(p[c]) - static_cast<double>(h[c]);
        part += loss.value(d);
        if (dpred) dpred[r * L * D + l * D + c] = static_cast<T>(grad_scale * w[l] * om * loss.grad(d) * inv);
      }
      acc += w[l] * part;
    }
    row[static_cast<std::size_t>(r)] = om * acc;
  }
  double total = 0;
  for (double v : row) total += v;
  return total * inv;
}

}  // namespace jepa::losses
