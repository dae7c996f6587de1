// jepa/tokenizers/tubelet.hpp — tokenizer policies: how pixels become tokens.
//
//   Tubelet<t, p>: video (B,3,F,H,W) → tokens on the (F/t, H/p, W/p) grid, one token per t×p×p
//                  tubelet, flattened (c, frame, row, col) to match the Conv3d weight [D,3,t,p,p].
//                  Token index n = t'·H'W' + h'·W' + w' (time-major, recipe_facts §1.4).
//   Patch2d<p>:    image (B,3,H,W) → (H/p, W/p) grid, Conv2d weight [D,3,p,p] (I-JEPA).
// The 2.1 image tokenizer is Tubelet<1, p> (Conv3d weight [D,3,1,p,p]).
#pragma once

#include <string_view>

#include "jepa/core/tensor.hpp"

namespace jepa::tokenizers {

template <int T, int P>
struct Tubelet {
  static_assert(T >= 1 && P >= 1, "jepa: Tubelet<t, p> needs t >= 1 and p >= 1");
  static constexpr int tubelet = T;
  static constexpr int patch = P;
  static constexpr std::string_view name = "Tubelet";
  /// Shape of `patch_embed.proj.weight`, as the official Conv3d stores it.
  static Shape weight_shape(index_t dim, index_t in_chans) { return {dim, in_chans, T, P, P}; }
};

template <int P>
struct Patch2d {
  static_assert(P >= 1, "jepa: Patch2d<p> needs p >= 1");
  static constexpr int tubelet = 1;
  static constexpr int patch = P;
  static constexpr std::string_view name = "Patch2d";
  static Shape weight_shape(index_t dim, index_t in_chans) { return {dim, in_chans, P, P}; }
};

/// The V-JEPA / V-JEPA 2 image convention: an image (B,C,H,W) becomes a clip (B,C,F,H,W) of F
/// identical frames that goes through the video tokenizer (F = 16 in pretraining and image evals).
template <class T>
void repeat_frames(const T* image, index_t B, index_t C, index_t H, index_t W, index_t frames, T* clip) {
  const index_t plane = H * W;
  for (index_t bc = 0; bc < B * C; ++bc)
    for (index_t f = 0; f < frames; ++f)
      for (index_t p = 0; p < plane; ++p) clip[(bc * frames + f) * plane + p] = image[bc * plane + p];
}

}  // namespace jepa::tokenizers
