// expect: jepa: MaskingPolicy::sample must be const
// A user masking policy whose sample() mutates the policy (masks must be a pure function of seed and step).
#include "jepa/masking/mask.hpp"

struct MyMask {
  int calls = 0;
  int num_generators() const { return 1; }
  std::vector<jepa::masking::MaskBatch> sample(const jepa::masking::TokenGrid&, std::uint64_t, std::uint64_t,
                                               jepa::index_t) {
    ++calls;
    return {};
  }
};
static_assert(jepa::masking::detail::check_masking_policy<MyMask>());
