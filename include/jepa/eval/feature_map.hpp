// jepa/eval/feature_map.hpp — PCA feature maps: the tokens of one time slice projected onto their top-3
// principal components and shown as RGB, next to the input frame (opt-in; not part of jepa.hpp).
//
//   Y = pca_project(tokens (h·w, D), 3)           (h·w, 3), each component min-max scaled to [0, 1]
//   pixel (y, x) of the map = Y[(y / p_h)·w + x / p_w]   nearest patch, p_h = H/h, p_w = W/w
//   image = [ frame (H×W) | 8 px white gap | map (H×W) ]   (the map alone when no frame is given)
// Tokens are the rows t'·h·w … (t'+1)·h·w − 1 of an encoder output (token n = t'·H'W' + h'·W' + w').
// The frame is a (3,H,W) float view with any strides, e.g. frame f of a (3,F,H,W) synthetic clip:
//   TensorView<const float, 3>(pixels + f·H·W, {3, H, W}, {F·H·W, W, 1}),
// by default ImageNet-normalised (as data::SyntheticVideo and the recipe's transforms deliver it) and
// mapped back to [0, 1]. Writing a PNG needs stb_image_write: link libstb, or define
// JEPA_PNG_IMPLEMENTATION in one translation unit (see io/png.hpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "jepa/core/error.hpp"
#include "jepa/core/tensor.hpp"
#include "jepa/data/synthetic_video.hpp"
#include "jepa/eval/pca.hpp"
#include "jepa/io/png.hpp"

namespace jepa::eval {

struct FeatureMapOptions {
  bool imagenet_normalized = true;  // undo (x − mean)/std before showing the frame
  int gap = 8;                      // white pixels between the frame and the map
};

/// Builds the side-by-side image. tokens (h·w, D) row-major; frame (3,H,W) (null data: map only, of
/// size H×W taken from the frame view's shape).
inline io::RgbImage pca_feature_image(const float* tokens, index_t h, index_t w, index_t D,
                                      TensorView<const float, 3> frame, const FeatureMapOptions& opt = {}) {
  if (!tokens) throw ShapeError("jepa: pca_feature_map tokens are null");
  if (h < 1 || w < 1 || h * w < 2)
    fail_field<ShapeError>("pca_feature_map grid", detail::cat(h, "x", w), "needs at least 2 tokens (h, w >= 1)");
  if (D < 3) fail_field<ShapeError>("pca_feature_map D", D, "needs >= 3 feature channels for 3 components");
  if (frame.size(0) != 3) fail_field<ShapeError>("pca_feature_map frame channels (dim 0)", frame.size(0), "must be 3 (RGB)");
  const index_t H = frame.size(1), W = frame.size(2);
  if (H < h || W < w || H % h || W % w)
    fail_field<ShapeError>("pca_feature_map frame size", detail::cat(H, "x", W),
                           detail::cat("must be a positive multiple of the ", h, "x", w, " token grid"));
  if (opt.gap < 0) fail_field<ShapeError>("FeatureMapOptions.gap", opt.gap, "must be >= 0");
  const auto pcs = pca_project(tokens, h * w, D, 3);
  const bool with_frame = frame.data() != nullptr;
  const int iw = static_cast<int>(W), ih = static_cast<int>(H);
  const int x0 = with_frame ? iw + opt.gap : 0;
  io::RgbImage img(x0 + iw, ih);
  std::fill(img.data.begin(), img.data.end(), std::uint8_t{255});
  const index_t ph = H / h, pw = W / w;
  for (index_t y = 0; y < H; ++y)
    for (index_t x = 0; x < W; ++x) {
      if (with_frame)
        for (int c = 0; c < 3; ++c) {
          float v = frame(c, y, x);
          if (opt.imagenet_normalized) v = v * data::kImagenetStd[c] + data::kImagenetMean[c];
          img.at(static_cast<int>(x), static_cast<int>(y))[c] = static_cast<std::uint8_t>(std::clamp(v, 0.0f, 1.0f) * 255.0f + 0.5f);
        }
      const index_t tok = (y / ph) * w + x / pw;
      for (int c = 0; c < 3; ++c)
        img.at(x0 + static_cast<int>(x), static_cast<int>(y))[c] =
            static_cast<std::uint8_t>(std::clamp(pcs[static_cast<std::size_t>(tok * 3 + c)], 0.0f, 1.0f) * 255.0f + 0.5f);
    }
  return img;
}

/// Writes the PCA feature map of one time slice beside its frame as a PNG at `path` (IoError on failure).
inline void pca_feature_map(const float* tokens, index_t h, index_t w, index_t D, TensorView<const float, 3> frame,
                            const std::string& path, const FeatureMapOptions& opt = {}) {
  io::write_png(path, pca_feature_image(tokens, h, w, D, frame, opt));
}

}  // namespace jepa::eval
