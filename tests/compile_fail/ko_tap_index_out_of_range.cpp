// expect: jepa: tap index out of range: every HierarchicalTaps index must be < Depth
// A 12-block encoder cannot tap block 12 (taps are 0-based block indices).
#include "jepa/models/vit_encoder.hpp"
#include "jepa/tokenizers/tubelet.hpp"

using Bad = jepa::models::VitEncoder<12, jepa::tokenizers::Tubelet<2, 16>, jepa::models::RopeInterleaved,
                                     jepa::models::HierarchicalTaps<2, 5, 8, 12>>;
int main() { Bad e(jepa::models::VitConfig{}); (void)e; }
