// jepa/masking/mask.hpp — masks as token-index sets, the MaskingPolicy concept, and the batch rule.
//
// A mask splits the N tokens of one sample's grid into a context set (what the context encoder
// sees) and a target set (what the predictor must predict), both as ascending flat grid indices
// n = t'·H'W' + h'·W' + w'. A policy draws the masks of a whole batch at once because the recipe
// draws block SIZES once per batch (per generator) and block POSITIONS per sample.
//
// Determinism (DESIGN.md decision 11): every draw is a pure function of (seed, step, sample,
// generator) through the counter-based RNG — see mask_rng() — so CPU and GPU, any thread count, and
// a resumed run see identical masks.
//
// Batch rule (recipe_facts §3.1–3.2, pitfall 9.1.8): within a batch every context list is truncated
// to the batch-minimum context length and every target list to the batch-minimum target length;
// since lists are ascending, the HIGHEST indices are dropped. A truncated context token belongs to
// neither set.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "jepa/core/error.hpp"
#include "jepa/core/rng.hpp"
#include "jepa/core/tensor.hpp"
#include "jepa/nn/rope.hpp"

namespace jepa::masking {

using nn::TokenGrid;

/// One sample's masks: ascending, disjoint flat token indices.
struct MaskPair {
  std::vector<std::int64_t> context;
  std::vector<std::int64_t> target;
};

/// One generator's masks for a whole batch, after truncation: (B, Kc) and (B, Kt), row-major.
struct MaskBatch {
  index_t batch = 0, context_len = 0, target_len = 0;
  std::vector<std::int64_t> context;  // (B, Kc)
  std::vector<std::int64_t> target;   // (B, Kt)
  const std::int64_t* context_row(index_t b) const { return context.data() + b * context_len; }
  const std::int64_t* target_row(index_t b) const { return target.data() + b * target_len; }
};

/// The RNG of one draw: stream = (step, sample, generator) packed into 64 bits, so every sample of
/// every step has its own independent stream. sample = kBatchSample is the per-batch stream
/// (block sizes).
inline constexpr std::uint64_t kBatchSample = 0xFFFFF;
JEPA_HOST_DEVICE inline Rng mask_rng(std::uint64_t seed, std::uint64_t step, std::uint64_t sample, std::uint64_t generator) {
  return Rng(seed, (step << 24) | ((sample & 0xFFFFF) << 4) | (generator & 0xF));
}

/// Applies the batch rule to per-sample pairs and packs them. Throws if any sample has an empty
/// context or target (nothing to encode or nothing to predict).
inline MaskBatch truncate_batch(const std::vector<MaskPair>& pairs) {
  if (pairs.empty()) throw ShapeError("jepa: a mask batch needs at least one sample");
  MaskBatch mb;
  mb.batch = static_cast<index_t>(pairs.size());
  mb.context_len = static_cast<index_t>(pairs[0].context.size());
  mb.target_len = static_cast<index_t>(pairs[0].target.size());
  for (std::size_t b = 0; b < pairs.size(); ++b) {
    if (pairs[b].context.empty())
      throw ShapeError(jepa::detail::cat("jepa: mask of sample ", b, " leaves no context token (nothing to encode)"));
    if (pairs[b].target.empty())
      throw ShapeError(jepa::detail::cat("jepa: mask of sample ", b, " has no target token (nothing to predict)"));
    mb.context_len = std::min<index_t>(mb.context_len, static_cast<index_t>(pairs[b].context.size()));
    mb.target_len = std::min<index_t>(mb.target_len, static_cast<index_t>(pairs[b].target.size()));
  }
  for (const auto& p : pairs) {
    mb.context.insert(mb.context.end(), p.context.begin(), p.context.begin() + mb.context_len);
    mb.target.insert(mb.target.end(), p.target.begin(), p.target.begin() + mb.target_len);
  }
  return mb;
}

/// Checks that a MaskBatch is usable on `grid`: non-empty, in range, ascending rows, disjoint sets.
inline void validate(const MaskBatch& m, const TokenGrid& grid) {
  const index_t N = grid.size();
  if (m.batch <= 0) fail_field<ShapeError>("MaskBatch.batch", m.batch, "must be >= 1");
  if (m.context_len <= 0) fail_field<ShapeError>("MaskBatch.context_len", m.context_len, "the mask leaves no context token");
  if (m.target_len <= 0) fail_field<ShapeError>("MaskBatch.target_len", m.target_len, "the mask has no target token");
  if (static_cast<index_t>(m.context.size()) != m.batch * m.context_len ||
      static_cast<index_t>(m.target.size()) != m.batch * m.target_len)
    throw ShapeError(jepa::detail::cat("jepa: MaskBatch holds ", m.context.size(), " context and ", m.target.size(),
                                 " target indices; expected ", m.batch, "x", m.context_len, " and ", m.batch, "x",
                                 m.target_len));
  std::vector<std::uint8_t> seen(static_cast<std::size_t>(N));
  for (index_t b = 0; b < m.batch; ++b) {
    std::fill(seen.begin(), seen.end(), 0);
    for (int set = 0; set < 2; ++set) {
      const std::int64_t* row = set == 0 ? m.context_row(b) : m.target_row(b);
      const index_t len = set == 0 ? m.context_len : m.target_len;
      for (index_t k = 0; k < len; ++k) {
        if (row[k] < 0 || row[k] >= N)
          throw IndexError(jepa::detail::cat("jepa: mask index ", row[k], " of sample ", b, " is outside the ", grid.t, "x",
                                       grid.h, "x", grid.w, " token grid [0, ", N, ")"));
        if (k && row[k] <= row[k - 1])
          throw IndexError(jepa::detail::cat("jepa: mask rows must be strictly ascending (sample ", b, ", ",
                                       set == 0 ? "context" : "target", " position ", k, ")"));
        if (seen[static_cast<std::size_t>(row[k])]++)
          throw IndexError(jepa::detail::cat("jepa: token ", row[k], " of sample ", b, " is in both the context and the target"));
      }
    }
  }
}

// -------------------------------------------------------------------------------------------------
// The concept users implement.
//   struct MyMask {
//     int num_generators() const;                        // mask sets drawn per sample (>= 1)
//     std::vector<MaskBatch> sample(const TokenGrid& grid, std::uint64_t seed, std::uint64_t step,
//                                   index_t batch) const;  // one MaskBatch per generator
//   };
// sample() must be const and deterministic in (seed, step); use mask_rng() for its randomness.
// -------------------------------------------------------------------------------------------------
template <class P>
concept MaskingPolicy = requires(const P& p, const TokenGrid& g, std::uint64_t u, index_t b) {
  { p.num_generators() } -> std::convertible_to<int>;
  { p.sample(g, u, u, b) } -> std::same_as<std::vector<MaskBatch>>;
};

// -------------------------------------------------------------------------------------------------
// Optional, for data-parallel training: rows [first, first + count) of sample(grid, seed, step, B)
// for any B >= first + count, drawing only those rows.
//   std::vector<MaskBatch> sample_rows(const TokenGrid& grid, std::uint64_t seed, std::uint64_t step,
//                                      index_t first, index_t count, const BatchMin& batch_min) const;
// The batch rule needs the minimum lengths over ALL rows of the batch: the policy computes the minima
// over its own rows and calls batch_min(lengths) once, which replaces every entry by its minimum over
// the whole batch (an all-reduce(min) across the ranks that draw the other rows). An empty BatchMin
// means "these are all the rows". Policies without sample_rows still work in data-parallel training:
// every rank then draws the whole batch and keeps its rows.
// -------------------------------------------------------------------------------------------------
using BatchMin = std::function<void(std::vector<index_t>&)>;
template <class P>
concept RowSampling = requires(const P& p, const TokenGrid& g, std::uint64_t u, index_t b, const BatchMin& m) {
  { p.sample_rows(g, u, u, b, b, m) } -> std::same_as<std::vector<MaskBatch>>;
};

namespace detail {
template <class P>
constexpr bool check_masking_policy() {
  constexpr bool has_gen = requires(const P& p) { { p.num_generators() } -> std::convertible_to<int>; };
  static_assert(has_gen, "jepa: MaskingPolicy must define `int num_generators() const` (mask sets per sample)");
  constexpr bool has_sample_any = requires(P& p, const TokenGrid& g, std::uint64_t u, index_t b) { p.sample(g, u, u, b); };
  static_assert(has_sample_any,
                "jepa: MaskingPolicy must define `std::vector<jepa::masking::MaskBatch> sample(const TokenGrid&, "
                "std::uint64_t seed, std::uint64_t step, index_t batch) const`");
  if constexpr (has_sample_any) {
    constexpr bool is_const = requires(const P& p, const TokenGrid& g, std::uint64_t u, index_t b) { p.sample(g, u, u, b); };
    static_assert(is_const, "jepa: MaskingPolicy::sample must be const (masks are a pure function of seed and step)");
    if constexpr (is_const) {
      constexpr bool returns = requires(const P& p, const TokenGrid& g, std::uint64_t u, index_t b) {
        { p.sample(g, u, u, b) } -> std::same_as<std::vector<MaskBatch>>;
      };
      static_assert(returns, "jepa: MaskingPolicy::sample must return std::vector<jepa::masking::MaskBatch> (one per generator)");
    }
  }
  return true;
}
}  // namespace detail

}  // namespace jepa::masking
