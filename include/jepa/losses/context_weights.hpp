// jepa/losses/context_weights.hpp — the 2.1 context-loss distance weights (recipe_facts §3.4).
//
// For each context token c of a sample, dist_c = min over that sample's target tokens t of the
// Euclidean distance between their grid coordinates (d, h, w) in token units (d counted in
// tubelets, equal axis weights). The weight is ω_c = 1/√dist_c, in (0, 1] since dist ≥ 1 for two
// distinct tokens. Examples: dist 1 → 1, √2 → 0.841, 2 → 0.7071, 4 → 0.5.
// Cost: O(Kc·Kt) per sample — a few million operations for a 16×256² clip, once per step.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "jepa/core/error.hpp"
#include "jepa/core/tensor.hpp"
#include "jepa/nn/rope.hpp"

namespace jepa::losses {

/// Writes ω (B, Kc) for context indices (B, Kc) and target indices (B, Kt) on `grid`.
template <class T>
void context_distance_weights(const std::int64_t* ctx, index_t Kc, const std::int64_t* tgt, index_t Kt, index_t B,
                              const nn::TokenGrid& grid, T* weights) {
  if (Kt < 1) throw ShapeError("jepa: context distance weights need at least one target token per sample");
  const index_t hw = grid.h * grid.w;
  index_t bad = -1;  // an exception may not leave an OpenMP region: record, then throw after it
  JEPA_OMP(parallel for schedule(static) if (B * Kc * Kt > 100000))
  for (index_t bk = 0; bk < B * Kc; ++bk) {
    const index_t b = bk / Kc;
    const std::int64_t c = ctx[bk];
    const double cd = static_cast<double>(c / hw), ch = static_cast<double>((c % hw) / grid.w),
                 cw = static_cast<double>(c % grid.w);
    double best = std::numeric_limits<double>::infinity();
    for (index_t k = 0; k < Kt; ++k) {
      const std::int64_t t = tgt[b * Kt + k];
      const double dd = static_cast<double>(t / hw) - cd, dh = static_cast<double>((t % hw) / grid.w) - ch,
                   dw = static_cast<double>(t % grid.w) - cw;
      const double d2 = dd * dd + dh * dh + dw * dw;
      if (d2 < best) best = d2;
    }
    if (!(best >= 1.0)) {
      JEPA_OMP(atomic write)
      bad = bk;
      continue;
    }
    weights[bk] = static_cast<T>(1.0 / std::sqrt(std::sqrt(best)));
  }
  if (bad >= 0)
    throw IndexError(jepa::detail::cat("jepa: context token ", ctx[bad], " of sample ", bad / Kc, " is also a target token"));
}

}  // namespace jepa::losses
