// jepa/data/synthetic_video.hpp — the built-in procedural video source (DESIGN.md decision 10).
//
// Each clip shows a few coloured shapes (disc, square, triangle) moving in straight lines over a
// textured background and occluding each other by depth. Everything is a pure function of
// (seed, index): clip `index` draws from Philox stream `index`, so any clip can be regenerated on
// its own, in any order, on any thread. Besides the frames, each clip carries its ground truth:
//   label       class of the largest shape (0 disc, 1 square, 2 triangle)
//   direction   its motion direction, quantised to 8 compass sectors
//   segmentation (F,H,W) int32: 0 background, s+1 for shape s (the visible one)
//   depth       (F,H,W) float: depth of the visible surface (background = 1)
// Frames are written as (3,F,H,W) floats normalised with the ImageNet mean and std, exactly as the
// recipe's transforms deliver them to the encoder.
#pragma once

#include "jepa/config.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

#include "jepa/core/error.hpp"
#include "jepa/core/rng.hpp"
#include "jepa/core/tensor.hpp"

namespace jepa::data {

inline constexpr std::array<float, 3> kImagenetMean{0.485f, 0.456f, 0.406f};
inline constexpr std::array<float, 3> kImagenetStd{0.229f, 0.224f, 0.225f};

struct SyntheticVideoConfig {
  index_t frames = 16, height = 224, width = 224;
  int min_shapes = 2, max_shapes = 4;
  std::uint64_t seed = 0;

  void validate() const {
    check_field(frames >= 1, "SyntheticVideoConfig.frames", frames, "must be >= 1");
    check_field(height >= 8 && width >= 8, "SyntheticVideoConfig.height/width",
                detail::cat(height, "x", width), "must be at least 8x8");
    check_field(min_shapes >= 1 && max_shapes >= min_shapes, "SyntheticVideoConfig.min_shapes/max_shapes",
                detail::cat(min_shapes, "/", max_shapes), "need 1 <= min_shapes <= max_shapes");
  }
};

struct SyntheticClip {
  std::vector<float> pixels;         // (3,F,H,W), normalised
  std::vector<std::int32_t> segmentation;  // (F,H,W)
  std::vector<float> depth;          // (F,H,W)
  int label = 0;                     // class of the largest shape
  int direction = 0;                 // its motion direction sector, 0..7 (0 = +x, counter-clockwise)
};

class SyntheticVideo {
 public:
  static constexpr int num_classes = 3;
  static constexpr int num_directions = 8;

  explicit SyntheticVideo(const SyntheticVideoConfig& c) : cfg_(c) { cfg_.validate(); }
  const SyntheticVideoConfig& config() const { return cfg_; }

  /// Renders clip `index` (any index, any order).
  SyntheticClip clip(std::uint64_t index) const {
    const index_t F = cfg_.frames, H = cfg_.height, W = cfg_.width;
    Rng rng(cfg_.seed, index);
    const int n = cfg_.min_shapes + static_cast<int>(rng.uniform_int(static_cast<std::uint32_t>(cfg_.max_shapes - cfg_.min_shapes + 1)));
    struct Shape2 {
      int kind;
      double x, y, vx, vy, r, z;
      std::array<float, 3> rgb;
    };
    std::vector<Shape2> shapes(static_cast<std::size_t>(n));
    const double side = static_cast<double>(std::min(H, W));
    for (auto& s : shapes) {
      s.kind = static_cast<int>(rng.uniform_int(3));
      s.r = side * rng.uniform(0.08, 0.22);
      s.x = rng.uniform(0.2, 0.8) * static_cast<double>(W);
      s.y = rng.uniform(0.2, 0.8) * static_cast<double>(H);
      const double speed = side * rng.uniform(0.01, 0.04), ang = rng.uniform(0.0, 2 * std::numbers::pi);
      s.vx = speed * std::cos(ang);
      s.vy = speed * std::sin(ang);
      s.z = rng.uniform(0.1, 0.9);
      for (auto& c : s.rgb) c = static_cast<float>(rng.uniform(0.1, 1.0));
    }
    // Background: a low-frequency colour gradient with a fine checker texture.
    const double bg_phase = rng.uniform(0.0, 2 * std::numbers::pi);
    const std::array<float, 3> bg{static_cast<float>(rng.uniform(0.0, 0.5)), static_cast<float>(rng.uniform(0.0, 0.5)),
                                  static_cast<float>(rng.uniform(0.0, 0.5))};
    SyntheticClip out;
    out.pixels.resize(static_cast<std::size_t>(3 * F * H * W));
    out.segmentation.assign(static_cast<std::size_t>(F * H * W), 0);
    out.depth.assign(static_cast<std::size_t>(F * H * W), 1.0f);
    const auto largest = std::max_element(shapes.begin(), shapes.end(), [](auto& a, auto& b) { return a.r < b.r; });
    out.label = largest->kind;
    const double a = std::atan2(largest->vy, largest->vx);
    out.direction = static_cast<int>(std::lround((a < 0 ? a + 2 * std::numbers::pi : a) / (std::numbers::pi / 4))) % 8;

    for (index_t f = 0; f < F; ++f)
      for (index_t y = 0; y < H; ++y)
        for (index_t x = 0; x < W; ++x) {
          const std::size_t pix = static_cast<std::size_t>((f * H + y) * W + x);
          const float checker = ((x / 8 + y / 8) % 2) ? 0.06f : 0.0f;
          const float grad = 0.5f + 0.5f * static_cast<float>(std::sin(bg_phase + 3.0 * static_cast<double>(x + y) / side));
          std::array<float, 3> rgb{bg[0] * grad + checker, bg[1] * grad + checker, bg[2] * (1 - grad) + checker};
          double best_z = 1.0;
          for (int s = 0; s < n; ++s) {
            const auto& sh = shapes[static_cast<std::size_t>(s)];
            const double cx = reflect(sh.x + sh.vx * static_cast<double>(f), static_cast<double>(W));
            const double cy = reflect(sh.y + sh.vy * static_cast<double>(f), static_cast<double>(H));
            if (sh.z < best_z && inside(sh.kind, static_cast<double>(x) + 0.5 - cx, static_cast<double>(y) + 0.5 - cy, sh.r)) {
              best_z = sh.z;
              rgb = sh.rgb;
              out.segmentation[pix] = s + 1;
              out.depth[pix] = static_cast<float>(sh.z);
            }
          }
          for (int c = 0; c < 3; ++c)
            out.pixels[static_cast<std::size_t>(c) * static_cast<std::size_t>(F * H * W) + pix] =
                (std::clamp(rgb[c], 0.0f, 1.0f) - kImagenetMean[c]) / kImagenetStd[c];
        }
    return out;
  }

  /// Writes clips [first, first+B) into a (B,3,F,H,W) buffer.
  void batch(std::uint64_t first, index_t B, float* out) const {
    const std::size_t per = static_cast<std::size_t>(3 * cfg_.frames * cfg_.height * cfg_.width);
JEPA_OMP(parallel for schedule(dynamic, 1))
    for (index_t b = 0; b < B; ++b) {
      const auto c = clip(first + static_cast<std::uint64_t>(b));
      std::copy(c.pixels.begin(), c.pixels.end(), out + static_cast<std::size_t>(b) * per);
    }
  }

 private:
  /// Bounces a coordinate off the walls [0, L].
  static double reflect(double v, double L) {
    const double period = 2 * L;
    double m = std::fmod(v, period);
    if (m < 0) m += period;
    return m <= L ? m : period - m;
  }
  static bool inside(int kind, double dx, double dy, double r) {
    switch (kind) {
      case 0: return dx * dx + dy * dy <= r * r;                       // disc
      case 1: return std::abs(dx) <= 0.85 * r && std::abs(dy) <= 0.85 * r;  // square
      default: {                                                       // upward triangle
        const double h = 1.5 * r;
        if (dy < -h / 2 || dy > h / 2) return false;
        const double half_w = (dy + h / 2) / h * r * 1.1;
        return std::abs(dx) <= half_w;
      }
    }
  }
  SyntheticVideoConfig cfg_;
};

}  // namespace jepa::data
