// A user-written masking policy, in the user's own file: "future prediction".
//
// The context is every token of the first `context_frames` time steps except a random fraction of
// spatial positions; the target is a random spatial block in every later time step. It satisfies
// jepa::masking::MaskingPolicy (num_generators() and a const sample()), draws all randomness from
// jepa::masking::mask_rng so it is deterministic in (seed, step, sample), and uses the library's
// batch rule (truncate_batch).
#pragma once

#include <algorithm>
#include <vector>

#include <jepa/masking/mask.hpp>

struct FuturePredictionMask {
  int context_frames = 1;      // in tokens of the time axis (tubelets)
  double drop_in_context = 0.25;
  double block_fraction = 0.3;  // target block area as a fraction of a frame

  int num_generators() const { return 1; }

  std::vector<jepa::masking::MaskBatch> sample(const jepa::nn::TokenGrid& g, std::uint64_t seed, std::uint64_t step,
                                               jepa::index_t batch) const {
    if (g.t <= context_frames)
      jepa::fail_field("FuturePredictionMask.context_frames", context_frames,
                       jepa::detail::cat("must be smaller than the clip's ", g.t, " token time steps"));
    std::vector<jepa::masking::MaskPair> pairs;
    for (jepa::index_t b = 0; b < batch; ++b) {
      jepa::Rng rng = jepa::masking::mask_rng(seed, step, static_cast<std::uint64_t>(b), 0);
      jepa::masking::MaskPair p;
      for (jepa::index_t t = 0; t < context_frames; ++t)
        for (jepa::index_t s = 0; s < g.h * g.w; ++s)
          if (rng.uniform() >= drop_in_context) p.context.push_back(t * g.h * g.w + s);
      const auto side_h = std::max<jepa::index_t>(1, static_cast<jepa::index_t>(g.h * std::sqrt(block_fraction)));
      const auto side_w = std::max<jepa::index_t>(1, static_cast<jepa::index_t>(g.w * std::sqrt(block_fraction)));
      const auto top = static_cast<jepa::index_t>(rng.uniform_int(static_cast<std::uint32_t>(g.h - side_h + 1)));
      const auto left = static_cast<jepa::index_t>(rng.uniform_int(static_cast<std::uint32_t>(g.w - side_w + 1)));
      for (jepa::index_t t = context_frames; t < g.t; ++t)
        for (jepa::index_t y = top; y < top + side_h; ++y)
          for (jepa::index_t x = left; x < left + side_w; ++x) p.target.push_back((t * g.h + y) * g.w + x);
      pairs.push_back(std::move(p));
    }
    return {jepa::masking::truncate_batch(pairs)};
  }
};
