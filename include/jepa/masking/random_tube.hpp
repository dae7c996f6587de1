// jepa/masking/random_tube.hpp — the two baseline masks of the V-JEPA ablations: random tubes and
// causal (past → future) prediction. One generator each.
//
// RandomTube{ratio}: per sample, M = int(H'W'·ratio) spatial positions (h', w') are drawn uniformly
// without replacement (partial Fisher–Yates on mask_rng(seed, step, b, 0)); target = those positions
// at every time step (tubes), context = every other token. All rows have the same lengths
// (Kc = (H'W' − M)·T', Kt = M·T'), so the batch rule truncates nothing.
//
// Causal{ratio}: context = every token of the first Tc = ceil(T'·(1 − ratio)) time steps, clamped to
// [1, T'−1]; target = every token of the later time steps. Needs T' ≥ 2. Deterministic (the same
// pair for every sample and step).
//
// Shapes and the batch rule: see mask.hpp. Shared checks live in multiblock.hpp's detail namespace.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "jepa/core/error.hpp"
#include "jepa/core/rng.hpp"
#include "jepa/masking/mask.hpp"
#include "jepa/masking/multiblock.hpp"

namespace jepa::masking {

class RandomTube {
 public:
  explicit RandomTube(double ratio = 0.9) : ratio_(ratio) {
    check_field(ratio > 0 && ratio < 1, "RandomTube.ratio", ratio,
                "the masked fraction of spatial positions must be in (0, 1)");
  }
  double ratio() const { return ratio_; }
  int num_generators() const { return 1; }

  /// Number of masked tubes on grid: int(H'W'·ratio).
  index_t num_tubes(const TokenGrid& grid) const {
    return static_cast<index_t>(static_cast<double>(grid.h * grid.w) * ratio_);
  }

  /// Untruncated pair of sample `sample` (independent of the batch size).
  MaskPair sample_pair(const TokenGrid& grid, std::uint64_t seed, std::uint64_t step, std::uint64_t sample,
                       int generator = 0) const {
    check_field<IndexError>(generator == 0, "RandomTube generator", generator, "RandomTube has one generator (0)");
    detail::check_sample(sample, "RandomTube");
    check(grid);
    Rng r = mask_rng(seed, step, sample, 0);
    return draw(grid, r);
  }

  std::vector<MaskBatch> sample(const TokenGrid& grid, std::uint64_t seed, std::uint64_t step, index_t batch) const {
    detail::check_batch(batch, "RandomTube");
    check(grid);
    std::vector<MaskPair> pairs(static_cast<std::size_t>(batch));
    for (index_t b = 0; b < batch; ++b) {
      Rng r = mask_rng(seed, step, static_cast<std::uint64_t>(b), 0);
      pairs[static_cast<std::size_t>(b)] = draw(grid, r);
    }
    return {truncate_batch(pairs)};
  }
  /// Rows [first, first + count) of sample(grid, seed, step, B) (mask.hpp, data-parallel drawing;
  /// every row has the same lengths, so the batch minimum changes nothing).
  std::vector<MaskBatch> sample_rows(const TokenGrid& grid, std::uint64_t seed, std::uint64_t step, index_t first,
                                     index_t count, const BatchMin& batch_min) const {
    detail::check_batch(count, "RandomTube");
    detail::check_batch(first + count, "RandomTube");
    check(grid);
    std::vector<MaskPair> pairs(static_cast<std::size_t>(count));
    for (index_t b = 0; b < count; ++b) {
      Rng r = mask_rng(seed, step, static_cast<std::uint64_t>(first + b), 0);
      pairs[static_cast<std::size_t>(b)] = draw(grid, r);
    }
    MaskBatch m = truncate_batch(pairs);
    std::vector<index_t> len{m.context_len, m.target_len};
    if (batch_min) batch_min(len);
    return {detail::pack(pairs, len[0], len[1])};
  }

 private:
  void check(const TokenGrid& grid) const {
    detail::check_grid(grid, "RandomTube");
    const index_t M = num_tubes(grid), HW = grid.h * grid.w;
    // ratio < 1 keeps int(H'W'·ratio) ≤ H'W' − 1, so only an empty target is possible.
    if (M < 1)
      fail_field("RandomTube.ratio", ratio_,
                 jepa::detail::cat("on the ", detail::grid_string(grid), " token grid it masks int(", HW, "*ratio) = 0 of ",
                                   HW, " tubes; at least 1 tube must be masked"));
  }

  MaskPair draw(const TokenGrid& grid, Rng& r) const {
    const index_t HW = grid.h * grid.w, M = num_tubes(grid);
    // Partial Fisher–Yates: perm[0 … M) is a uniform M-subset of {0 … H'W'−1}.
    std::vector<index_t> perm(static_cast<std::size_t>(HW));
    std::iota(perm.begin(), perm.end(), index_t{0});
    for (index_t i = 0; i < M; ++i) {
      const index_t j = i + static_cast<index_t>(r.uniform_int(static_cast<std::uint32_t>(HW - i)));
      std::swap(perm[static_cast<std::size_t>(i)], perm[static_cast<std::size_t>(j)]);
    }
    std::vector<std::uint8_t> tube(static_cast<std::size_t>(HW));
    for (index_t i = 0; i < M; ++i) tube[static_cast<std::size_t>(perm[static_cast<std::size_t>(i)])] = 1;
    MaskPair p;
    p.context.reserve(static_cast<std::size_t>((HW - M) * grid.t));
    p.target.reserve(static_cast<std::size_t>(M * grid.t));
    for (index_t t = 0; t < grid.t; ++t)
      for (index_t q = 0; q < HW; ++q) (tube[static_cast<std::size_t>(q)] ? p.target : p.context).push_back(t * HW + q);
    return p;
  }

  double ratio_;
};

class Causal {
 public:
  explicit Causal(double ratio = 0.5) : ratio_(ratio) {
    check_field(ratio > 0 && ratio < 1, "Causal.ratio", ratio, "the predicted fraction of time steps must be in (0, 1)");
  }
  double ratio() const { return ratio_; }
  int num_generators() const { return 1; }

  /// Context time steps: ceil(T'·(1 − ratio)) clamped to [1, T'−1]. The 1e-9 guard keeps products that
  /// are integers in exact arithmetic (10·0.3 = 3.0000000000000004 in binary) from rounding up.
  index_t context_steps(const TokenGrid& grid) const {
    const double x = static_cast<double>(grid.t) * (1.0 - ratio_);
    const auto tc = static_cast<index_t>(std::ceil(x - 1e-9));
    return std::clamp<index_t>(tc, 1, std::max<index_t>(grid.t - 1, 1));
  }

  MaskPair sample_pair(const TokenGrid& grid, std::uint64_t = 0, std::uint64_t = 0, std::uint64_t = 0,
                       int generator = 0) const {
    check_field<IndexError>(generator == 0, "Causal generator", generator, "Causal has one generator (0)");
    check(grid);
    const index_t split = context_steps(grid) * grid.h * grid.w;
    MaskPair p;
    p.context.resize(static_cast<std::size_t>(split));
    p.target.resize(static_cast<std::size_t>(grid.size() - split));
    std::iota(p.context.begin(), p.context.end(), std::int64_t{0});
    std::iota(p.target.begin(), p.target.end(), static_cast<std::int64_t>(split));
    return p;
  }

  std::vector<MaskBatch> sample(const TokenGrid& grid, std::uint64_t seed, std::uint64_t step, index_t batch) const {
    detail::check_batch(batch, "Causal");
    const MaskPair p = sample_pair(grid, seed, step);
    return {truncate_batch(std::vector<MaskPair>(static_cast<std::size_t>(batch), p))};
  }

 private:
  void check(const TokenGrid& grid) const {
    detail::check_grid(grid, "Causal");
    if (grid.t < 2)
      throw ShapeError(jepa::detail::cat("jepa: TokenGrid = ", detail::grid_string(grid),
                                         " is invalid for Causal: predicting later time steps from earlier ones "
                                         "needs T' >= 2 time steps"));
  }

  double ratio_;
};

}  // namespace jepa::masking
