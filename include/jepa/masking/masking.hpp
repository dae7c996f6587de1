// jepa/masking/masking.hpp — umbrella for the masking policies: the MaskPair / MaskBatch types, the
// MaskingPolicy concept and batch rule (mask.hpp), the I-JEPA and V-JEPA multi-block masks
// (multiblock.hpp) and the random-tube and causal baselines (random_tube.hpp).
#pragma once

#include "jepa/masking/mask.hpp"
#include "jepa/masking/multiblock.hpp"
#include "jepa/masking/random_tube.hpp"
