// jepa/data/transforms.hpp — frame sampling and the recipe's clip transforms (RGB frames → normalised
// float clips). Pure functions of their inputs and a jepa::Rng; no I/O, no FFmpeg.
//
// Output layout everywhere: (3,F,S,S) float, index ((c·F + f)·S + y)·S + x, normalised per channel
// with the ImageNet mean/std of synthetic_video.hpp, exactly what the encoder consumes.
//
//   sample_frame_indices            V-JEPA 2 frame sampling (src/datasets/video_dataset.py, fps mode)
//   sample_frame_indices_fixed_step V-JEPA 1 sampling (`sampling_rate` = frame_step)
//   RandomResizedCrop               V-JEPA 2 training augmentation (app/vjepa/transforms.py):
//                                   one box per clip, bilinear (align_corners = false), flip, normalise
//   EvalTransform                   V-JEPA 2 eval / hub preprocessing: OpenCV INTER_LINEAR short-side
//                                   resize to int(crop·256/224), centre crop, /255, normalise
//   frames_to_clip                  /255 + normalise only (frames already at the model size)
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "jepa/core/error.hpp"
#include "jepa/core/rng.hpp"
#include "jepa/data/synthetic_video.hpp"  // kImagenetMean, kImagenetStd
#include "jepa/io/image.hpp"              // io::RgbFrame

namespace jepa::data {

using io::RgbFrame;

/// Python's round(): nearest integer, ties to even (round(18.5) = 18, round(19.5) = 20).
inline double round_half_even(double v) {
  const double r = std::round(v);  // ties away from zero
  if (std::abs(v - std::trunc(v)) == 0.5) return 2.0 * std::round(v / 2.0);
  return r;
}

/// numpy.linspace(start, stop, num) with endpoint = True, reproduced operation for operation:
/// step = (stop − start)/(num − 1); y_i = i·step + start (y_i = i/(num−1)·(stop − start) + start
/// when step == 0); y_{num−1} = stop exactly; num = 1 gives [start]; num <= 0 gives [].
inline std::vector<double> linspace(double start, double stop, std::int64_t num) {
  std::vector<double> y;
  if (num <= 0) return y;
  y.resize(static_cast<std::size_t>(num));
  const double div = static_cast<double>(num - 1), delta = stop - start;
  if (num > 1) {
    const double step = delta / div;
    for (std::int64_t i = 0; i < num; ++i) {
      const double k = static_cast<double>(i);
      y[static_cast<std::size_t>(i)] = (step == 0 ? k / div * delta : k * step) + start;
    }
    y.back() = stop;
  } else {
    y[0] = 0.0 * delta + start;
  }
  return y;
}

/// V-JEPA 2's frame step in fps mode: ceil(native_fps) div target_fps (30 → 7 and 25 → 6 for a
/// target of 4 fps; 29.97 counts as 30). The reference asserts the step is > 0; here a video slower
/// than the target gets step 1 (every frame) instead of an error.
inline int frame_step_for_fps(double native_fps, int target_fps) {
  check_field(target_fps >= 1, "target_fps", target_fps, "must be >= 1");
  check_field(std::isfinite(native_fps) && native_fps > 0, "native_fps", native_fps, "must be a positive frame rate");
  const auto c = static_cast<std::int64_t>(std::ceil(native_fps));
  return static_cast<int>(std::max<std::int64_t>(1, c / target_fps));
}

/// V-JEPA clip sampling with a given frame step (video_dataset.py, num_clips = 1):
///   clip_len = frames·step.
///   video_len > clip_len: end ~ U{clip_len, …, video_len − 1} (end = clip_len when !random_start),
///     start = end − clip_len, indices = trunc(clip(linspace(start, end, frames), start, end − 1)).
///     Both linspace endpoints are included, so the effective stride is clip_len/(frames − 1) > step.
///   video_len <= clip_len (short video): n = video_len div step;
///     indices = trunc(clip(linspace(0, video_len, n) ++ [video_len]·(frames − n), 0, video_len − 1)),
///     i.e. the tail is padded with the last frame.
/// One draw from `rng` (uniform_int) in the long case, none otherwise.
inline std::vector<std::int64_t> sample_clip_indices(std::int64_t video_len, int frames, int step, Rng& rng,
                                                     bool random_start = true) {
  check_field(video_len >= 1, "video_len", video_len, "a video must have at least one frame");
  check_field(frames >= 1, "frames", frames, "must be >= 1");
  check_field(step >= 1, "frame_step", step, "must be >= 1");
  const std::int64_t clip_len = static_cast<std::int64_t>(frames) * step;
  std::vector<double> pos;
  double lo, hi;
  if (video_len > clip_len) {
    std::int64_t end = clip_len;
    if (random_start) {
      const std::int64_t range = video_len - clip_len;  // end ∈ [clip_len, video_len)
      end += range <= std::int64_t{std::numeric_limits<std::uint32_t>::max()}
                 ? static_cast<std::int64_t>(rng.uniform_int(static_cast<std::uint32_t>(range)))
                 : std::min(range - 1, static_cast<std::int64_t>(rng.uniform() * static_cast<double>(range)));
    }
    const std::int64_t start = end - clip_len;
    pos = linspace(static_cast<double>(start), static_cast<double>(end), frames);
    lo = static_cast<double>(start);
    hi = static_cast<double>(end - 1);
  } else {
    const std::int64_t n = video_len / step;
    pos = linspace(0.0, static_cast<double>(video_len), n);
    pos.resize(static_cast<std::size_t>(frames), static_cast<double>(video_len));
    lo = 0.0;
    hi = static_cast<double>(video_len - 1);
  }
  std::vector<std::int64_t> idx(pos.size());
  for (std::size_t i = 0; i < pos.size(); ++i) idx[i] = static_cast<std::int64_t>(std::clamp(pos[i], lo, hi));  // astype(int64): truncation
  return idx;
}

/// V-JEPA 2 frame sampling (fps mode): step = ceil(native_fps) div target_fps, then sample_clip_indices.
inline std::vector<std::int64_t> sample_frame_indices(std::int64_t video_len, double native_fps, int frames, int target_fps,
                                                      Rng& rng, bool random_start = true) {
  return sample_clip_indices(video_len, frames, frame_step_for_fps(native_fps, target_fps), rng, random_start);
}

/// V-JEPA 1 frame sampling: a fixed frame step (`sampling_rate`, 4 in the V-JEPA configs).
inline std::vector<std::int64_t> sample_frame_indices_fixed_step(std::int64_t video_len, int frames, int frame_step,
                                                                 Rng& rng, bool random_start = true) {
  return sample_clip_indices(video_len, frames, frame_step, rng, random_start);
}

/// A crop box in pixels: rows [top, top + height), columns [left, left + width).
struct CropBox {
  int top = 0, left = 0, height = 0, width = 0;
  bool operator==(const CropBox&) const = default;
};

namespace transform_detail {
/// Checks one frame: non-zero size with a full RGB buffer.
inline void check_frame(const RgbFrame& fr, const char* who) {
  if (fr.width <= 0 || fr.height <= 0 || fr.rgb.size() != static_cast<std::size_t>(fr.width) * static_cast<std::size_t>(fr.height) * 3)
    throw ShapeError(detail::cat("jepa: ", who, ": frame is ", fr.width, "x", fr.height, " with ", fr.rgb.size(),
                                 " bytes; need a non-empty RGB frame"));
}
/// Checks a clip: non-empty, every frame the same non-zero size with a full RGB buffer.
inline void check_frames(const std::vector<RgbFrame>& frames, const char* who) {
  if (frames.empty()) throw ShapeError(std::string("jepa: ") + who + ": the clip has no frames");
  const int W = frames[0].width, H = frames[0].height;
  for (std::size_t f = 0; f < frames.size(); ++f) {
    const auto& fr = frames[f];
    if (fr.width <= 0 || fr.height <= 0 || fr.width != W || fr.height != H ||
        fr.rgb.size() != static_cast<std::size_t>(W) * static_cast<std::size_t>(H) * 3)
      throw ShapeError(detail::cat("jepa: ", who, ": frame ", f, " is ", fr.width, "x", fr.height, " with ", fr.rgb.size(),
                                   " bytes; every frame must be ", W, "x", H, " RGB (and non-empty)"));
  }
}

/// PyTorch's source coordinates for F.interpolate(mode="bilinear", align_corners=False, no
/// antialias) along one axis: src = max((dst + 0.5)·(in/out) − 0.5, 0) in float, i0 = floor(src),
/// i1 = i0 + (i0 < in − 1), λ1 = src − i0, λ0 = 1 − λ1.
struct TorchLinearAxis {
  std::vector<int> i0, i1;
  std::vector<float> l0, l1;
  TorchLinearAxis(int in, int out) : i0(static_cast<std::size_t>(out)), i1(i0.size()), l0(i0.size()), l1(i0.size()) {
    const float scale = static_cast<float>(in) / static_cast<float>(out);
    for (int d = 0; d < out; ++d) {
      const float src = std::max(scale * (static_cast<float>(d) + 0.5f) - 0.5f, 0.0f);
      const int a = std::min(static_cast<int>(src), in - 1);
      const float lam = std::clamp(src - static_cast<float>(a), 0.0f, 1.0f);
      const auto k = static_cast<std::size_t>(d);
      i0[k] = a;
      i1[k] = a + (a < in - 1 ? 1 : 0);
      l1[k] = lam;
      l0[k] = 1.0f - lam;
    }
  }
};

/// OpenCV cv::resize(INTER_LINEAR) coefficients for 8-bit images along one axis (fixed-point path
/// of imgproc/resize.cpp): scale = 1/(out/in) in double; f = float((d + 0.5)·scale − 0.5);
/// s = floor(f), f −= s; weights a0 = rint((1 − f)·2048), a1 = rint(f·2048)
/// (INTER_RESIZE_COEF_SCALE = 2048); taps s and s + 1 clipped to [0, in − 1].
/// Horizontally (clamp = true) OpenCV also resets the border positions: s < 0 → (s, f) = (0, 0),
/// s >= in − 1 → (s, f) = (in − 1, 0). Vertically (clamp = false) it does not: f is kept and only the
/// row indices are clipped, which changes the fixed-point rounding of the border rows.
struct CvLinearAxis {
  std::vector<int> s0, s1, a0, a1;
  CvLinearAxis(int in, int out, bool clamp) : s0(static_cast<std::size_t>(out)), s1(s0.size()), a0(s0.size()), a1(s0.size()) {
    const double inv_scale = static_cast<double>(out) / static_cast<double>(in);
    const double scale = 1.0 / inv_scale;
    for (int d = 0; d < out; ++d) {
      float f = static_cast<float>((d + 0.5) * scale - 0.5);
      int s = static_cast<int>(std::floor(f));
      f -= static_cast<float>(s);
      if (clamp && s < 0) f = 0.0f, s = 0;
      if (clamp && s >= in - 1) f = 0.0f, s = in - 1;
      const auto k = static_cast<std::size_t>(d);
      s0[k] = std::clamp(s, 0, in - 1);
      s1[k] = std::clamp(s + 1, 0, in - 1);
      a0[k] = static_cast<int>(std::lrint((1.0f - f) * 2048.0f));
      a1[k] = static_cast<int>(std::lrint(f * 2048.0f));
    }
  }
};
}  // namespace transform_detail

/// RandomResizedCrop for clips, V-JEPA 2 semantics (src/datasets/utils/video/transforms.py
/// `_get_param_spatial_crop` + `random_resized_crop`, app/vjepa/transforms.py). Per clip:
///  1. Box, from the first frame's H×W, up to `max_tries` times: area = H·W;
///       target = U(scale_min, scale_max)·area;  aspect = exp(U(log ratio_min, log ratio_max));
///       w = round(√(target·aspect)), h = round(√(target/aspect))  (round half to even);
///       if 0 < w <= W and 0 < h <= H: top ~ U{0..H−h}, left ~ U{0..W−w}; accept.
///     Fallback (torchvision): in_ratio = W/H; in_ratio < ratio_min → w = W, h = round(W/ratio_min);
///     in_ratio > ratio_max → h = H, w = round(H·ratio_max); else the whole frame; centred with
///     top = (H−h) div 2, left = (W−w) div 2.
///  2. Every frame: the box resized to size×size by bilinear interpolation (align_corners = false,
///     no antialias, PyTorch's formula, in float on 0..255 values). Boxes smaller than `size`
///     (including frames smaller than the crop) are upsampled: that is allowed, not an error.
///  3. Horizontal flip of the whole clip when U(0,1) < flip_p (the uniform is always drawn).
///  4. Normalise: (v − 255·mean_c)/(255·std_c) (= ImageNet normalisation of v/255).
/// Draw order from `rng`: per try 2 uniforms (scale, aspect), then uniform_int(H−h+1) for top and
/// uniform_int(W−w+1) for left on success; then 1 uniform for the flip.
struct RandomResizedCrop {
  int size = 224;
  double scale_min = 0.3, scale_max = 1.0;
  double ratio_min = 0.75, ratio_max = 1.35;
  double flip_p = 0.5;
  int max_tries = 10;

  /// V-JEPA / V-JEPA 2 / 2.1 training augmentation: scale [0.3, 1], aspect [0.75, 1.35], flip 0.5.
  static RandomResizedCrop vjepa(int crop) { return RandomResizedCrop{crop, 0.3, 1.0, 0.75, 1.35, 0.5, 10}; }
  /// I-JEPA: scale [0.3, 1], torchvision's aspect [3/4, 4/3], no flip.
  static RandomResizedCrop ijepa(int crop) { return RandomResizedCrop{crop, 0.3, 1.0, 3.0 / 4.0, 4.0 / 3.0, 0.0, 10}; }

  void validate() const {
    check_field(size >= 1, "RandomResizedCrop.size", size, "must be >= 1");
    check_field(scale_min > 0 && scale_min <= scale_max && scale_max <= 1.0, "RandomResizedCrop.scale",
                detail::cat("[", scale_min, ", ", scale_max, "]"), "need 0 < scale_min <= scale_max <= 1");
    check_field(ratio_min > 0 && ratio_min <= ratio_max, "RandomResizedCrop.ratio", detail::cat("[", ratio_min, ", ", ratio_max, "]"),
                "need 0 < ratio_min <= ratio_max");
    check_field(flip_p >= 0 && flip_p <= 1, "RandomResizedCrop.flip_p", flip_p, "must be in [0, 1]");
    check_field(max_tries >= 0, "RandomResizedCrop.max_tries", max_tries, "must be >= 0");
  }

  /// Step 1 alone: the crop box for an H×W frame.
  CropBox sample_box(int height, int width, Rng& rng) const {
    validate();
    check_field<ShapeError>(height >= 1 && width >= 1, "RandomResizedCrop frame size", detail::cat(width, "x", height), "must be non-empty");
    const double area = static_cast<double>(height) * static_cast<double>(width);
    const double lr0 = std::log(ratio_min), lr1 = std::log(ratio_max);
    for (int t = 0; t < max_tries; ++t) {
      const double target = rng.uniform(scale_min, scale_max) * area;
      const double aspect = std::exp(rng.uniform(lr0, lr1));
      const double wd = round_half_even(std::sqrt(target * aspect)), hd = round_half_even(std::sqrt(target / aspect));
      if (wd > 0 && wd <= width && hd > 0 && hd <= height) {
        const int w = static_cast<int>(wd), h = static_cast<int>(hd);
        const int top = static_cast<int>(rng.uniform_int(static_cast<std::uint32_t>(height - h + 1)));
        const int left = static_cast<int>(rng.uniform_int(static_cast<std::uint32_t>(width - w + 1)));
        return {top, left, h, w};
      }
    }
    const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
    int w = width, h = height;
    if (in_ratio < ratio_min) h = static_cast<int>(round_half_even(w / ratio_min));
    else if (in_ratio > ratio_max) w = static_cast<int>(round_half_even(h * ratio_max));
    h = std::clamp(h, 1, height);
    w = std::clamp(w, 1, width);
    return {(height - h) / 2, (width - w) / 2, h, w};
  }

  /// Steps 2–4 with a given box and flip decision: (3,F,size,size) floats.
  std::vector<float> apply(const std::vector<RgbFrame>& frames, const CropBox& box, bool flip) const {
    transform_detail::check_frames(frames, "RandomResizedCrop");
    const int W = frames[0].width, H = frames[0].height;
    check_field<ShapeError>(box.top >= 0 && box.left >= 0 && box.height >= 1 && box.width >= 1 && box.top + box.height <= H &&
                                box.left + box.width <= W,
                            "RandomResizedCrop box", detail::cat(box.top, ",", box.left, " ", box.width, "x", box.height),
                            detail::cat("must lie inside the ", W, "x", H, " frame"));
    const int S = size;
    const std::size_t F = frames.size(), plane = static_cast<std::size_t>(S) * static_cast<std::size_t>(S);
    const transform_detail::TorchLinearAxis ay(box.height, S), ax(box.width, S);
    std::vector<float> out(3 * F * plane);
    float m[3], sd[3];
    for (int c = 0; c < 3; ++c) {
      m[c] = kImagenetMean[static_cast<std::size_t>(c)] * 255.0f;
      sd[c] = kImagenetStd[static_cast<std::size_t>(c)] * 255.0f;
    }
    for (std::size_t f = 0; f < F; ++f) {
      const auto& fr = frames[f];
      for (int y = 0; y < S; ++y) {
        const auto yk = static_cast<std::size_t>(y);
        const std::uint8_t* r0 = fr.at(box.left, box.top + ay.i0[yk]);
        const std::uint8_t* r1 = fr.at(box.left, box.top + ay.i1[yk]);
        for (int x = 0; x < S; ++x) {
          const auto xk = static_cast<std::size_t>(x);
          const int xo = flip ? S - 1 - x : x;
          const std::size_t c0 = static_cast<std::size_t>(ax.i0[xk]) * 3, c1 = static_cast<std::size_t>(ax.i1[xk]) * 3;
          for (int c = 0; c < 3; ++c) {
            const auto ck = static_cast<std::size_t>(c);
            const float v = ay.l0[yk] * (ax.l0[xk] * r0[c0 + ck] + ax.l1[xk] * r0[c1 + ck]) +
                            ay.l1[yk] * (ax.l0[xk] * r1[c0 + ck] + ax.l1[xk] * r1[c1 + ck]);
            out[(ck * F + f) * plane + yk * static_cast<std::size_t>(S) + static_cast<std::size_t>(xo)] = (v - m[c]) / sd[c];
          }
        }
      }
    }
    return out;
  }

  /// The whole transform: (3,F,size,size) normalised floats. Writes the box and flip used to
  /// `box_out` / `flip_out` when given.
  std::vector<float> operator()(const std::vector<RgbFrame>& frames, Rng& rng, CropBox* box_out = nullptr,
                                bool* flip_out = nullptr) const {
    transform_detail::check_frames(frames, "RandomResizedCrop");
    const CropBox box = sample_box(frames[0].height, frames[0].width, rng);
    const bool flip = rng.uniform() < flip_p;
    if (box_out) *box_out = box;
    if (flip_out) *flip_out = flip;
    return apply(frames, box, flip);
  }
};

/// V-JEPA 2 evaluation transform (app/vjepa eval_transform, hub `vjepa2_preprocessor`; §8.4):
///  1. Short side → S = int(crop·256/224) (292 for 256, 438 for 384), OpenCV INTER_LINEAR, no
///     antialias: W < H → (S, int(S·H/W)); else (int(S·W/H), S); nothing when the short side is
///     already S. The uint8 result is bit-exact with cv2.resize(INTER_LINEAR) (checked against the
///     OpenCV 4.14 and 5.0 x86-64 wheels on 300 random sizes, up- and down-scaling, including the
///     exact-2x case OpenCV routes to INTER_AREA): horizontal pass h = p0·a0 + p1·a1 (int), vertical
///     pass (((h0 >> 4)·b0 >> 16) + ((h1 >> 4)·b1 >> 16) + 2) >> 2, saturated to 0..255 (see
///     CvLinearAxis for the coefficients). OpenCV's scalar fallback, (h0·b0 + h1·b1 + 2^21) >> 22,
///     used on builds without SIMD, differs by 1 on 10–15 % of pixels.
///  2. Centre crop crop×crop at x1 = round((W' − crop)/2), y1 = round((H' − crop)/2), Python's
///     round (half to even).
///  3. v/255 in float, then (v − mean_c)/std_c.
/// Deterministic; frames smaller than the crop are upsampled by step 1.
struct EvalTransform {
  int crop = 224;

  int short_side() const { return crop * 256 / 224; }  // = int(crop·256/224): exact in integers

  /// Size (width, height) after step 1 for a W×H frame.
  std::pair<int, int> resized_size(int width, int height) const {
    const int S = short_side();
    if ((width <= height && width == S) || (height <= width && height == S)) return {width, height};
    if (width < height) return {S, static_cast<int>(static_cast<std::int64_t>(S) * height / width)};
    return {static_cast<int>(static_cast<std::int64_t>(S) * width / height), S};
  }
  /// Top-left corner (x1, y1) of the centre crop in a W'×H' resized frame.
  std::pair<int, int> crop_offset(int rwidth, int rheight) const {
    return {static_cast<int>(round_half_even((rwidth - crop) / 2.0)), static_cast<int>(round_half_even((rheight - crop) / 2.0))};
  }

  /// Step 1 alone (useful for tests and visualisation): the resized uint8 frame.
  RgbFrame resize(const RgbFrame& fr) const {
    transform_detail::check_frame(fr, "EvalTransform");
    const auto [rw, rh] = resized_size(fr.width, fr.height);
    if (rw == fr.width && rh == fr.height) return fr;
    RgbFrame out(rw, rh);
    resize_region(fr, rw, rh, 0, 0, rw, rh, [&](int x, int y, int c, int v) { out.at(x, y)[c] = static_cast<std::uint8_t>(v); });
    return out;
  }

  /// The whole transform: (3,F,crop,crop) normalised floats.
  std::vector<float> operator()(const std::vector<RgbFrame>& frames) const {
    check_field(crop >= 1, "EvalTransform.crop", crop, "must be >= 1");
    transform_detail::check_frames(frames, "EvalTransform");
    const auto [rw, rh] = resized_size(frames[0].width, frames[0].height);
    const auto [x1, y1] = crop_offset(rw, rh);
    check_field<ShapeError>(x1 >= 0 && y1 >= 0 && x1 + crop <= rw && y1 + crop <= rh, "EvalTransform resized frame",
                            detail::cat(rw, "x", rh), detail::cat("must be at least the crop ", crop, "x", crop));
    const std::size_t F = frames.size(), C = static_cast<std::size_t>(crop), plane = C * C;
    std::vector<float> out(3 * F * plane);
    for (std::size_t f = 0; f < F; ++f)
      resize_region(frames[f], rw, rh, x1, y1, crop, crop, [&](int x, int y, int c, int v) {
        const auto ck = static_cast<std::size_t>(c);
        const float v01 = static_cast<float>(v) / 255.0f;
        out[(ck * F + f) * plane + static_cast<std::size_t>(y) * C + static_cast<std::size_t>(x)] =
            (v01 - kImagenetMean[ck]) / kImagenetStd[ck];
      });
    return out;
  }

 private:
  /// Pixels [x1, x1+w) × [y1, y1+h) of fr resized to rw×rh (identity when the size is unchanged);
  /// emit(x − x1, y − y1, c, value 0..255).
  template <class Emit>
  static void resize_region(const RgbFrame& fr, int rw, int rh, int x1, int y1, int w, int h, Emit&& emit) {
    if (rw == fr.width && rh == fr.height) {
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
          for (int c = 0; c < 3; ++c) emit(x, y, c, fr.at(x1 + x, y1 + y)[c]);
      return;
    }
    const transform_detail::CvLinearAxis ax(fr.width, rw, true), ay(fr.height, rh, false);
    std::vector<std::int64_t> row0(static_cast<std::size_t>(w) * 3), row1(row0.size());
    auto hpass = [&](int sy, std::vector<std::int64_t>& row) {
      for (int x = 0; x < w; ++x) {
        const auto k = static_cast<std::size_t>(x1 + x);
        const std::uint8_t* p0 = fr.at(ax.s0[k], sy);
        const std::uint8_t* p1 = fr.at(ax.s1[k], sy);
        for (int c = 0; c < 3; ++c)
          row[static_cast<std::size_t>(x) * 3 + static_cast<std::size_t>(c)] =
              static_cast<std::int64_t>(p0[c]) * ax.a0[k] + static_cast<std::int64_t>(p1[c]) * ax.a1[k];
      }
    };
    for (int y = 0; y < h; ++y) {
      const auto k = static_cast<std::size_t>(y1 + y);
      hpass(ay.s0[k], row0);
      hpass(ay.s1[k], row1);
      for (int x = 0; x < w; ++x)
        for (int c = 0; c < 3; ++c) {
          const auto i = static_cast<std::size_t>(x) * 3 + static_cast<std::size_t>(c);
          // OpenCV's vectorised vertical pass (VResizeLinearVec_32s8u), which the x86-64 builds
          // use for every pixel: ((h0 >> 4)·b0 >> 16) + ((h1 >> 4)·b1 >> 16), + 2, >> 2.
          const std::int64_t v = ((((row0[i] >> 4) * ay.a0[k]) >> 16) + (((row1[i] >> 4) * ay.a1[k]) >> 16) + 2) >> 2;
          emit(x, y, c, static_cast<int>(std::clamp<std::int64_t>(v, 0, 255)));
        }
    }
  }
};

/// ClipToTensor + Normalize without any resizing: (3,F,H,W) floats (v/255 − mean_c)/std_c.
inline std::vector<float> frames_to_clip(const std::vector<RgbFrame>& frames) {
  transform_detail::check_frames(frames, "frames_to_clip");
  const std::size_t F = frames.size(), plane = static_cast<std::size_t>(frames[0].width) * static_cast<std::size_t>(frames[0].height);
  std::vector<float> out(3 * F * plane);
  for (std::size_t f = 0; f < F; ++f)
    for (std::size_t p = 0; p < plane; ++p)
      for (std::size_t c = 0; c < 3; ++c)
        out[(c * F + f) * plane + p] = (static_cast<float>(frames[f].rgb[p * 3 + c]) / 255.0f - kImagenetMean[c]) / kImagenetStd[c];
  return out;
}

}  // namespace jepa::data
