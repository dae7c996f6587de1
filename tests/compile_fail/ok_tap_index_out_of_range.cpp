// The valid twin of ko_tap_index_out_of_range.cpp: it must compile.
#include "jepa/models/vit_encoder.hpp"
#include "jepa/tokenizers/tubelet.hpp"

using Good = jepa::models::VitEncoder<12, jepa::tokenizers::Tubelet<2, 16>, jepa::models::RopeInterleaved,
                                      jepa::models::HierarchicalTaps<2, 5, 8, 11>>;
int ok_tap_index() { Good e(jepa::models::VitConfig{}); return static_cast<int>(e.param_count() > 0); }
