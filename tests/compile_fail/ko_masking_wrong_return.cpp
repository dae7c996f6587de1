// expect: jepa: MaskingPolicy::sample must return std::vector<jepa::masking::MaskBatch>
// A user masking policy that returns untruncated per-sample pairs instead of one MaskBatch per generator.
#include "jepa/masking/mask.hpp"

struct MyMask {
  int num_generators() const { return 1; }
  std::vector<jepa::masking::MaskPair> sample(const jepa::masking::TokenGrid&, std::uint64_t, std::uint64_t,
                                              jepa::index_t) const {
    return {};
  }
};
static_assert(jepa::masking::detail::check_masking_policy<MyMask>());
