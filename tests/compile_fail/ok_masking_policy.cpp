// The valid twin of ko_masking_*.cpp: a complete user masking policy and every library policy
// satisfy the MaskingPolicy concept and its requirement-by-requirement check.
#include "jepa/masking/masking.hpp"

struct MyMask {
  int num_generators() const { return 1; }
  std::vector<jepa::masking::MaskBatch> sample(const jepa::masking::TokenGrid& grid, std::uint64_t seed,
                                               std::uint64_t step, jepa::index_t batch) const {
    return jepa::masking::RandomTube(0.5).sample(grid, seed, step, batch);
  }
};
static_assert(jepa::masking::MaskingPolicy<MyMask>);
static_assert(jepa::masking::detail::check_masking_policy<MyMask>());
static_assert(jepa::masking::detail::check_masking_policy<jepa::masking::Multiblock2d>());
static_assert(jepa::masking::detail::check_masking_policy<jepa::masking::Multiblock3d>());
static_assert(jepa::masking::detail::check_masking_policy<jepa::masking::RandomTube>());
static_assert(jepa::masking::detail::check_masking_policy<jepa::masking::Causal>());
