// jepa/models/frame_encoder.hpp — per-frame encoding with a frozen encoder, as V-JEPA 2-AC does it
// (recipe_facts §6.1, §8.4).
//
// Each frame (3, H, W) is duplicated along time into one tubelet (3, t, H, W) of the encoder's video
// tokenizer (t = 2 for V-JEPA 2), encoded on its own in an inference state (no gradient: the encoder
// is frozen), and layer-normed without affine parameters (`normalize_reps`, eps 1e-5 as
// F.layer_norm's default):
//   z = LN(encoder(repeat_t(frame)))          (HW, D) per frame, HW = (H/p)·(W/p)
// Frames of a batch are stacked frame by frame, so N frames give (N, HW, D) — for B clips of T frames
// this is exactly the predictor's (B, T·HW, D) input.
// The encoder's parameters are only read. Frames are encoded `chunk` at a time (one planned State,
// reused), so any N works without re-planning.
#pragma once

#include <algorithm>
#include <optional>
#include <vector>

#include "jepa/models/vit_encoder.hpp"
#include "jepa/tokenizers/tubelet.hpp"

namespace jepa::models {

template <class Encoder>
class FrameEncoder {
 public:
  using T = typename Encoder::value_type;
  using Backend = typename Encoder::backend_type;
  static constexpr int tubelet = Encoder::video_tokenizer_type::tubelet;

  /// `params` are the frozen encoder weights (read only; they must outlive this object). Frames are
  /// height×width; `chunk` frames are encoded per encoder call.
  FrameEncoder(const Encoder& enc, const T* params, index_t height, index_t width, index_t chunk = 16,
               double ln_eps = 1e-5)
      : enc_(&enc), params_(params), geom_{tubelet, height, width}, chunk_(chunk), ln_eps_(ln_eps) {
    if (!params) throw ConfigError("jepa: FrameEncoder needs the encoder's parameters (got null)");
    check_field(chunk >= 1, "FrameEncoder chunk", chunk, "must be >= 1");
    grid_ = enc.grid(geom_);  // validates the resolution against the patch size
    if (grid_.t != 1)
      fail_field("FrameEncoder tubelet", tubelet, "one frame repeated into one tubelet must give one time step");
  }

  const Encoder& encoder() const { return *enc_; }
  /// The frozen encoder weights this object reads.
  const T* params() const { return params_; }
  /// Tokens per frame HW.
  index_t tokens_per_frame() const { return grid_.h * grid_.w; }
  index_t grid_h() const { return grid_.h; }
  index_t grid_w() const { return grid_.w; }
  /// Feature width D.
  index_t dim() const { return enc_->config().embed_dim; }
  index_t height() const { return geom_.height; }
  index_t width() const { return geom_.width; }

  /// frames (N, 3, H, W), normalised as the encoder expects → out (N, HW, D), layer-normed.
  void encode(const T* frames, index_t N, T* out) {
    if (!frames || !out) throw ShapeError("jepa: FrameEncoder::encode: frames or output buffer is empty (null)");
    if (N < 1) fail_field<ShapeError>("frames to encode", N, "must be >= 1");
    const index_t H = geom_.height, W = geom_.width, C = enc_->config().in_chans, HW = tokens_per_frame(), D = dim();
    for (index_t n0 = 0; n0 < N; n0 += chunk_) {
      const index_t n = std::min(chunk_, N - n0);
      auto& st = n == chunk_ ? state_ : tail_;  // full chunks and the last partial one keep their own State
      if (!st || st->batch() != n) st.emplace(enc_->make_state(Mode::inference, n, geom_));
      clip_.resize(static_cast<std::size_t>(n * C * tubelet * H * W));
      tokenizers::repeat_frames(frames + n0 * C * H * W, n, C, H, W, tubelet, clip_.data());
      enc_->forward(params_, TensorView<const T, 5>(clip_.data(), {n, C, tubelet, H, W}), nullptr, *st);
      Backend::template layer_norm_forward<T>(enc_->output(*st).data(), nullptr, nullptr, out + n0 * HW * D, nullptr,
                                              nullptr, n * HW, D, static_cast<T>(ln_eps_));
    }
  }
  std::vector<T> encode(const T* frames, index_t N) {
    std::vector<T> out(static_cast<std::size_t>(N * tokens_per_frame() * dim()));
    encode(frames, N, out.data());
    return out;
  }

 private:
  const Encoder* enc_;
  const T* params_;
  InputGeometry geom_;
  nn::TokenGrid grid_;
  index_t chunk_;
  double ln_eps_;
  std::optional<typename Encoder::State> state_, tail_;
  std::vector<T> clip_;
};

}  // namespace jepa::models
