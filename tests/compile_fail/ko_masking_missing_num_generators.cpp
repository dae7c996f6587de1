// expect: jepa: MaskingPolicy must define `int num_generators
// A user masking policy that forgot to say how many mask sets it draws per sample.
#include "jepa/masking/mask.hpp"

struct MyMask {
  std::vector<jepa::masking::MaskBatch> sample(const jepa::masking::TokenGrid&, std::uint64_t, std::uint64_t,
                                               jepa::index_t) const {
    return {};
  }
};
static_assert(jepa::masking::detail::check_masking_policy<MyMask>());
