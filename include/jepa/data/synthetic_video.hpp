// jepa/data/synthetic_video.hpp — the built-in procedural video source (DESIGN.md decision 10).
//
// Each clip shows a few shapes (disc, square, triangle) moving in straight lines in front of a static
// background and occluding each other by depth. Everything is a pure function of (seed, index):
// clip `index` draws from Philox stream `index`, so any clip can be regenerated on its own, in any
// order, on any thread. Besides the frames, each clip carries its ground truth:
//   label       class of the main (largest) shape (0 disc, 1 square, 2 triangle)
//   direction   its motion direction (displacement from the first to the last frame), quantised to
//               8 compass sectors (0 = +x, counter-clockwise with y pointing down the image)
//   segmentation (F,H,W) int32: 0 background, s+1 for shape s (the visible one)
//   depth       (F,H,W) float: depth of the visible surface (background = 1)
// Frames are written as (3,F,H,W) floats normalised with the ImageNet mean and std, exactly as the
// recipe's transforms deliver them to the encoder.
//
// Why the scene looks the way it does (so that the dense and motion labels are not readable off
// single pixels — a random encoder would then score as well as a trained one):
//   - every surface (background and shapes) has its own random colour c₁ (uniform in [0.05, 0.95]³),
//     shaded by a faint texture towards c₂ = c₁ ± contrast: t(p) = ½ + ¼(sin(k₁·p + φ₁) + sin(k₂·p + φ₂))
//     (background wavelengths 1/14–1/8 of the frame side, shapes 1/4–1/2). Shapes and background draw
//     their colours from the same distribution, so no fixed colour means "shape": what separates a
//     shape is that it differs from its surroundings, its texture scale and its motion — functions of
//     a neighbourhood, not of one pixel. A shape's texture moves with it; the background is static.
//   - depth has the cues of real scenes: nearer shapes are larger (r ∝ 1.3 − 0.6z) and farther
//     surfaces are hazier (colour ← (1 − 0.35z)·colour + 0.35z·fog).
//   - the main shape is the largest; it moves at 6–9 % of the frame side per frame (in an 8-frame clip
//     of 16-pixel patches at 64², 1.5–2.3 patches from the first to the last tubelet: the motion is
//     visible at the token grid, as large motions are in SSv2-like data) on a path chosen to stay
//     inside the frame for the whole clip, so its direction label is what the clip shows. The other
//     shapes drift at 0–3 %.
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
  double contrast = 0.15;  // a texture's second colour is within ±contrast of its first, per channel

  void validate() const {
    check_field(frames >= 1, "SyntheticVideoConfig.frames", frames, "must be >= 1");
    check_field(height >= 8 && width >= 8, "SyntheticVideoConfig.height/width",
                detail::cat(height, "x", width), "must be at least 8x8");
    check_field(min_shapes >= 1 && max_shapes >= min_shapes, "SyntheticVideoConfig.min_shapes/max_shapes",
                detail::cat(min_shapes, "/", max_shapes), "need 1 <= min_shapes <= max_shapes");
    check_field(contrast >= 0 && contrast <= 1, "SyntheticVideoConfig.contrast", contrast, "must be in [0, 1]");
  }
};

struct SyntheticClip {
  std::vector<float> pixels;         // (3,F,H,W), normalised
  std::vector<std::int32_t> segmentation;  // (F,H,W)
  std::vector<float> depth;          // (F,H,W)
  int label = 0;                     // class of the main (largest) shape
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
    const double side = static_cast<double>(std::min(H, W)), span = static_cast<double>(std::max<index_t>(F - 1, 1));
    std::vector<Shape> shapes(static_cast<std::size_t>(n));
    for (std::size_t s = 0; s < shapes.size(); ++s) {
      auto& sh = shapes[s];
      const bool main = s == 0;  // shape 0 is the labelled one: the largest, with a clean path
      sh.kind = static_cast<int>(rng.uniform_int(3));
      sh.z = rng.uniform(0.1, 0.9);
      // Nearer is larger: r = side·u·(1.3 − 0.6z); main u ∈ [0.3, 0.4] (r ≥ 0.228·side), others
      // u ∈ [0.07, 0.11] (r ≤ 0.137·side), so the main shape is always the largest. The main shape
      // covers ~30 % of the frame, so at a coarse patch grid its tokens are not a rare class.
      sh.r = side * (main ? rng.uniform(0.3, 0.4) : rng.uniform(0.07, 0.11)) * (1.3 - 0.6 * sh.z);
      const double speed = side * (main ? rng.uniform(0.06, 0.09) : rng.uniform(0.0, 0.03));
      const double ang = rng.uniform(0.0, 2 * std::numbers::pi);
      sh.vx = speed * std::cos(ang);
      sh.vy = speed * std::sin(ang);
      // Path midpoint: the main shape's centre stays inside [0.1, 0.9] of the frame for the whole clip.
      const double hx = std::abs(sh.vx) * span / 2, hy = std::abs(sh.vy) * span / 2;
      const double lox = std::min(0.5 * W, 0.1 * W + hx), hix = std::max(0.5 * W, 0.9 * W - hx);
      const double loy = std::min(0.5 * H, 0.1 * H + hy), hiy = std::max(0.5 * H, 0.9 * H - hy);
      const double mx = main ? rng.uniform(lox, hix) : rng.uniform(0.1, 0.9) * W;
      const double my = main ? rng.uniform(loy, hiy) : rng.uniform(0.1, 0.9) * H;
      sh.x = mx - sh.vx * span / 2;
      sh.y = my - sh.vy * span / 2;
      sh.tex = Texture::draw(rng, side, 1.0 / 4, 1.0 / 2, cfg_.contrast);
    }
    const Texture bg = Texture::draw(rng, side, 1.0 / 14, 1.0 / 8, cfg_.contrast);
    SyntheticClip out;
    out.pixels.resize(static_cast<std::size_t>(3 * F * H * W));
    out.segmentation.assign(static_cast<std::size_t>(F * H * W), 0);
    out.depth.assign(static_cast<std::size_t>(F * H * W), 1.0f);
    out.label = shapes[0].kind;
    {
      const double dx = reflect(shapes[0].x + shapes[0].vx * span, W) - reflect(shapes[0].x, W);
      const double dy = reflect(shapes[0].y + shapes[0].vy * span, H) - reflect(shapes[0].y, H);
      const double a = std::atan2(dy, dx);
      out.direction = static_cast<int>(std::lround((a < 0 ? a + 2 * std::numbers::pi : a) / (std::numbers::pi / 4))) % 8;
    }
    constexpr std::array<float, 3> fog{0.55f, 0.55f, 0.6f};
    for (index_t f = 0; f < F; ++f) {
      std::vector<double> cx(shapes.size()), cy(shapes.size());
      for (std::size_t s = 0; s < shapes.size(); ++s) {
        cx[s] = reflect(shapes[s].x + shapes[s].vx * static_cast<double>(f), static_cast<double>(W));
        cy[s] = reflect(shapes[s].y + shapes[s].vy * static_cast<double>(f), static_cast<double>(H));
      }
      for (index_t y = 0; y < H; ++y)
        for (index_t x = 0; x < W; ++x) {
          const std::size_t pix = static_cast<std::size_t>((f * H + y) * W + x);
          const double px = static_cast<double>(x) + 0.5, py = static_cast<double>(y) + 0.5;
          int vis = -1;
          double z = 1.0;
          for (std::size_t s = 0; s < shapes.size(); ++s)
            if (shapes[s].z < z && inside(shapes[s].kind, px - cx[s], py - cy[s], shapes[s].r)) {
              z = shapes[s].z;
              vis = static_cast<int>(s);
            }
          auto rgb = vis < 0 ? bg.colour(px, py) : shapes[static_cast<std::size_t>(vis)].tex.colour(px - cx[static_cast<std::size_t>(vis)], py - cy[static_cast<std::size_t>(vis)]);
          const float haze = 0.35f * static_cast<float>(z);
          for (int c = 0; c < 3; ++c) rgb[c] = (1 - haze) * rgb[c] + haze * fog[c];
          out.segmentation[pix] = vis + 1;
          out.depth[pix] = static_cast<float>(z);
          for (int c = 0; c < 3; ++c)
            out.pixels[static_cast<std::size_t>(c) * static_cast<std::size_t>(F * H * W) + pix] =
                (std::clamp(rgb[c], 0.0f, 1.0f) - kImagenetMean[c]) / kImagenetStd[c];
        }
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
  /// A surface texture: colours c₁, c₂ blended by t(p) = ½ + ¼(sin(k₁·p + φ₁) + sin(k₂·p + φ₂)).
  struct Texture {
    std::array<float, 3> c1, c2;
    double k1x, k1y, k2x, k2y, p1, p2;
    static Texture draw(Rng& rng, double side, double min_wavelength, double max_wavelength, double contrast) {
      Texture t;
      for (auto& c : t.c1) c = static_cast<float>(rng.uniform(0.05, 0.95));
      for (std::size_t i = 0; i < 3; ++i)
        t.c2[i] = static_cast<float>(std::clamp(t.c1[i] + rng.uniform(-contrast, contrast), 0.0, 1.0));
      const auto wave = [&](double& kx, double& ky) {  // wavelength given as a fraction of the frame side
        const double k = 2 * std::numbers::pi / (side * rng.uniform(min_wavelength, max_wavelength));
        const double a = rng.uniform(0.0, std::numbers::pi);
        kx = k * std::cos(a);
        ky = k * std::sin(a);
      };
      wave(t.k1x, t.k1y);
      wave(t.k2x, t.k2y);
      t.p1 = rng.uniform(0.0, 2 * std::numbers::pi);
      t.p2 = rng.uniform(0.0, 2 * std::numbers::pi);
      return t;
    }
    std::array<float, 3> colour(double x, double y) const {
      const float t = static_cast<float>(0.5 + 0.25 * (std::sin(k1x * x + k1y * y + p1) + std::sin(k2x * x + k2y * y + p2)));
      return {c1[0] + t * (c2[0] - c1[0]), c1[1] + t * (c2[1] - c1[1]), c1[2] + t * (c2[2] - c1[2])};
    }
  };
  struct Shape {
    int kind;
    double x, y, vx, vy, r, z;  // centre at frame 0, velocity (px/frame), size, depth
    Texture tex;
  };

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
