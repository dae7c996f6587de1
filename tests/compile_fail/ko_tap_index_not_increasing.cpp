// expect: jepa: HierarchicalTaps indices must be strictly increasing
#include "jepa/models/vit_encoder.hpp"
#include "jepa/tokenizers/tubelet.hpp"

using Bad = jepa::models::VitEncoder<12, jepa::tokenizers::Tubelet<2, 16>, jepa::models::RopeInterleaved,
                                     jepa::models::HierarchicalTaps<5, 2, 8, 11>>;
int main() { Bad e(jepa::models::VitConfig{}); (void)e; }
