// jepa/models/inference.hpp — feature extraction with released weights: encode clips and images,
// per-layer taps, pooled features, and the predictor's masked prediction, all forward-only.
// Opt-in (loads through jepa/models/checkpoint_keys.hpp: POSIX + nlohmann-json); not part of jepa.hpp.
//
//   FeatureExtractor<Encoder>   owns an encoder and its parameters;
//     encode(clip (B,C,F,H,W))                    → Features: tokens (B,N,D), taps, layers, pooled (B,D)
//     encode_context(clip, keep (B,K))            → the same on a token subset (masked encoding, §1.6)
//     encode_image(images (B,C,H,W))              → V-JEPA 2: the image repeated to `image_frames` frames
//                                                   (default one tubelet, as the HF port and the 2-AC
//                                                   pipeline feed single frames; 16 = the IN1K eval
//                                                   protocol); 2.1: a 1-frame clip through
//                                                   patch_embed_img + img_mod_embed; I-JEPA: Patch2d
//   MaskedPredictor<Predictor>  owns a predictor and its parameters;
//     predict(z (B,Kc,L·D), ctx (B,Kc), tgt (B,Kt), grid) → targets (B,Kt,L·Dout) [+ context (B,Kc,L·Dout)]
//   predict_masked(extractor, predictor, clip, ctx, tgt)  encodes the context tokens alone and predicts
//                                                   the targets, as one training step's forward does
//                                                   (§2.5), without any gradient state.
//
// Features: tokens = the encoder output (the final norm for V-JEPA 2 / I-JEPA; norms_block[3] of the
// last tap for 2.1, what "the 2.1 features" are, §1.7); taps = the 2.1 hierarchical taps (shallow →
// deep, each through its own norms_block.j); layers = the outputs of the requested blocks (the official
// `out_layers`: each block's output through the same final norm; raw for 2.1, which has none);
// pooled = the mean of `tokens` over the N tokens (B,D). Token n = t'·H'W' + h'·W' + w'.
// Resolution and frame count are free (multiples of the patch and tubelet): RoPE takes any grid.
//
// Memory: Mode::inference States (one shared block cache, two residual buffers, no gradient or
// optimizer buffers), planned once per (batch, geometry, kept tokens, layers) and reused while those
// stay the same; parameters live in one ParameterSet.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "jepa/core/error.hpp"
#include "jepa/core/tensor.hpp"
#include "jepa/models/checkpoint_keys.hpp"
#include "jepa/models/predictor.hpp"
#include "jepa/models/vit_encoder.hpp"
#include "jepa/nn/param.hpp"
#include "jepa/tokenizers/tubelet.hpp"

namespace jepa::models {

/// The result of one encode call. Every tensor is row-major and owned.
template <Real T>
struct Features {
  index_t batch = 0, tokens_per_sample = 0, dim = 0;
  nn::TokenGrid grid;                     // (T', H', W') of the input
  std::vector<std::int64_t> token_index;  // (B,N) grid index of every row (0…N−1 for a full input)
  std::vector<T> tokens;                  // (B,N,D)
  std::vector<std::vector<T>> taps;       // 2.1: num_taps × (B,N,D), shallow → deep
  std::vector<int> layer_ids;             // the requested blocks, in request order
  std::vector<std::vector<T>> layers;     // one (B,N,D) per requested block
  std::vector<T> pooled;                  // (B,D)

  TensorView<const T, 3> view() const { return {tokens.data(), {batch, tokens_per_sample, dim}}; }
  /// The channel concatenation of the taps (B,N,L·D), shallow → deep: the 2.1 predictor's input.
  std::vector<T> concat_taps() const {
    const std::size_t L = taps.size(), rows = static_cast<std::size_t>(batch * tokens_per_sample),
                      D = static_cast<std::size_t>(dim);
    std::vector<T> out(rows * L * D);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t j = 0; j < L; ++j) std::copy_n(taps[j].data() + r * D, D, out.data() + (r * L + j) * D);
    return out;
  }
};

/// Options of one encode call.
struct EncodeOptions {
  /// Blocks whose outputs to return in Features::layers (0-based, distinct).
  std::vector<int> layers;
  /// V-JEPA 2 / 1 images: frames the image is repeated to (0 = one tubelet). Ignored by encoders with
  /// an image tokenizer (2.1) or a 2-D patch embedding (I-JEPA).
  index_t image_frames = 0;
  /// Compute the pooled features.
  bool pooled = true;
};

template <class Encoder>
class FeatureExtractor {
 public:
  using T = typename Encoder::value_type;
  using encoder_type = Encoder;
  /// 2.1 (MultiModal): images go through the image tokenizer as 1-frame clips.
  static constexpr bool image_tokenizer = tokenizers::is_multimodal_v<typename Encoder::tokenizer_type>;
  /// I-JEPA style: one frame per token grid (Patch2d or any tubelet of 1 without an image tokenizer).
  static constexpr bool single_frame = !image_tokenizer && Encoder::video_tokenizer_type::tubelet == 1;

  explicit FeatureExtractor(const VitConfig& cfg) : enc_(cfg), P_(enc_.layout()) { P_.zero(); }

  const Encoder& encoder() const { return enc_; }
  nn::ParameterSet<T>& params() { return P_; }
  const nn::ParameterSet<T>& params() const { return P_; }

  /// Loads the encoder from a checkpoint (load_encoder: the recipe's default section, strict keys,
  /// exact shapes; an IoError naming the fitting preset otherwise).
  WeightsReport load(const Checkpoint& ck, WeightsOptions opt = {}) { return load_encoder(ck, enc_, P_.data(), std::move(opt)); }
  /// The recipe's random initialisation (for tests and demos without weights).
  void init(std::uint64_t seed) { P_.init(seed); }

  /// Encodes clips (B,C,F,H,W), every token.
  Features<T> encode(TensorView<const T, 5> clip, const EncodeOptions& opt = {}) {
    return run(clip, nullptr, 0, opt);
  }
  /// Encodes only the tokens keep (B,K) of each clip (grid indices, distinct per row): the context
  /// encoding of the predictor's forward.
  Features<T> encode_context(TensorView<const T, 5> clip, const std::int64_t* keep, index_t K, const EncodeOptions& opt = {}) {
    if (!keep) throw ShapeError("jepa: encode_context needs the (B,K) indices of the tokens to keep (got null)");
    return run(clip, keep, K, opt);
  }
  /// Encodes images (B,C,H,W): see the header comment for how each family sees an image.
  Features<T> encode_image(TensorView<const T, 4> images, const EncodeOptions& opt = {}) {
    if (!images.data()) throw ShapeError("jepa: encode_image got an empty image batch (null data)");
    if (!images.is_contiguous()) throw ShapeError("jepa: encode_image needs contiguous (B,C,H,W) images");
    const index_t B = images.size(0), C = images.size(1), H = images.size(2), W = images.size(3);
    index_t F = 1;
    if constexpr (!image_tokenizer && !single_frame) {
      F = opt.image_frames > 0 ? opt.image_frames : Encoder::video_tokenizer_type::tubelet;
      if (opt.image_frames < 0) fail_field<ShapeError>("EncodeOptions.image_frames", opt.image_frames, "must be >= 0 (0 = one tubelet)");
    }
    if (F == 1) return run(TensorView<const T, 5>(images.data(), {B, C, 1, H, W}), nullptr, 0, opt);
    image_clip_.resize(static_cast<std::size_t>(B * C * F * H * W));
    tokenizers::repeat_frames(images.data(), B, C, H, W, F, image_clip_.data());
    return run(TensorView<const T, 5>(image_clip_.data(), {B, C, F, H, W}), nullptr, 0, opt);
  }

  /// The State the last call used (its plan says what was allocated: never a gradient buffer).
  const typename Encoder::State* last_state() const { return state_ ? &*state_ : nullptr; }

 private:
  Features<T> run(TensorView<const T, 5> clip, const std::int64_t* keep, index_t K, const EncodeOptions& opt) {
    if (!clip.data()) throw ShapeError("jepa: encode got an empty clip (null data)");
    const InputGeometry g{clip.size(2), clip.size(3), clip.size(4)};
    const index_t B = clip.size(0);
    const nn::TokenGrid grid = enc_.grid(g);
    const index_t N = keep ? K : grid.size();
    if (!state_ || state_->batch() != B || !(state_->geometry() == g) || state_->capacity() != N ||
        state_->layers() != opt.layers)
      state_.emplace(enc_.make_state(Mode::inference, B, g, N, opt.layers));
    auto& s = *state_;
    enc_.forward(P_.data(), clip, keep, s);

    Features<T> f;
    const index_t D = enc_.config().embed_dim;
    f.batch = B, f.tokens_per_sample = N, f.dim = D, f.grid = grid;
    f.token_index.assign(s.token_indices(), s.token_indices() + B * N);
    const auto out = enc_.output(s);
    f.tokens.assign(out.data(), out.data() + out.numel());
    if constexpr (Encoder::num_taps > 0)
      for (int j = 0; j < Encoder::num_taps; ++j) {
        const auto t = enc_.output(s, j);
        f.taps.emplace_back(t.data(), t.data() + t.numel());
      }
    f.layer_ids = opt.layers;
    for (std::size_t j = 0; j < opt.layers.size(); ++j) {
      const auto l = enc_.layer_output(s, static_cast<int>(j));
      f.layers.emplace_back(l.data(), l.data() + l.numel());
    }
    if (opt.pooled) {
      f.pooled.assign(static_cast<std::size_t>(B * D), T(0));
      for (index_t b = 0; b < B; ++b) {
        T* p = f.pooled.data() + b * D;
        for (index_t n = 0; n < N; ++n) {
          const T* row = f.tokens.data() + (b * N + n) * D;
          for (index_t d = 0; d < D; ++d) p[d] += row[d];
        }
        for (index_t d = 0; d < D; ++d) p[d] /= static_cast<T>(N);
      }
    }
    return f;
  }

  Encoder enc_;
  nn::ParameterSet<T> P_;
  std::optional<typename Encoder::State> state_;
  std::vector<T> image_clip_;
};

/// The predictor's outputs.
template <Real T>
struct Prediction {
  index_t batch = 0, targets_per_sample = 0, context_per_sample = 0, width = 0;
  std::vector<T> targets;  // (B,Kt,W) in the order of the target indices
  std::vector<T> context;  // (B,Kc,W): 2.1's dense context prediction (empty otherwise)
};

template <class Pred>
class MaskedPredictor {
 public:
  using T = typename Pred::value_type;
  using predictor_type = Pred;

  explicit MaskedPredictor(const PredictorConfig& cfg) : pred_(cfg), P_(pred_.layout()) { P_.zero(); }

  const Pred& predictor() const { return pred_; }
  nn::ParameterSet<T>& params() { return P_; }
  WeightsReport load(const Checkpoint& ck, WeightsOptions opt = {}) { return load_predictor(ck, pred_, P_.data(), std::move(opt)); }
  void init(std::uint64_t seed) { P_.init(seed); }

  /// z (B,Kc,L·D) context features, ctx (B,Kc) and tgt (B,Kt) grid indices on `grid` (disjoint per
  /// row). mask_index 0 is the token the recipe trains (§2.3); modality picks the 2.1 embedding.
  /// For parity with the official predictor, `grid` is its construction grid (crop/p square per
  /// frame, §1.5.4); predict_masked passes the input's own grid.
  Prediction<T> predict(const T* z, index_t B, const std::int64_t* ctx, index_t Kc, const std::int64_t* tgt, index_t Kt,
                        const nn::TokenGrid& grid, index_t mask_index = 0, Modality modality = Modality::video) {
    if (!z || !ctx || !tgt) throw ShapeError("jepa: MaskedPredictor::predict needs features and both index lists (got null)");
    if (!state_ || state_->batch() != B || state_->context_capacity() != Kc || state_->target_capacity() != Kt ||
        !(grid_ == grid)) {
      state_.emplace(pred_.make_state(Mode::inference, B, Kc, Kt, grid));
      grid_ = grid;
    }
    pred_.forward(P_.data(), z, ctx, tgt, *state_, mask_index, modality);
    Prediction<T> p;
    p.batch = B, p.targets_per_sample = Kt, p.context_per_sample = Kc, p.width = pred_.output_width();
    const auto t = pred_.target_output(*state_);
    p.targets.assign(t.data(), t.data() + t.numel());
    if (pred_.config().predict_context) {
      const auto c = pred_.context_output(*state_);
      p.context.assign(c.data(), c.data() + c.numel());
    }
    return p;
  }

 private:
  Pred pred_;
  nn::ParameterSet<T> P_;
  std::optional<typename Pred::State> state_;
  nn::TokenGrid grid_;
};

/// The predictor's input from encoder features: the output itself for a 1-level predictor (V-JEPA 2,
/// I-JEPA, distilled 2.1), the concatenated taps for an L-level one (2.1 ViT-g/G, L = num_taps).
template <Real T, class Pred>
std::vector<T> predictor_input(const Features<T>& f, const Pred&) {
  if constexpr (Pred::levels == 1) {
    return f.tokens;
  } else {
    if (static_cast<int>(f.taps.size()) != Pred::levels)
      fail_field<ShapeError>("predictor levels", Pred::levels,
                             jepa::detail::cat("the encoder provides ", f.taps.size(), " tap(s); an L-level predictor takes L taps"));
    return f.concat_taps();
  }
}

/// Encodes the context tokens ctx (B,Kc) of clips (B,C,F,H,W) and predicts the targets tgt (B,Kt) on
/// the clip's token grid.
template <class Enc, class Pred>
Prediction<typename Enc::value_type> predict_masked(FeatureExtractor<Enc>& ex, MaskedPredictor<Pred>& mp,
                                                    TensorView<const typename Enc::value_type, 5> clip,
                                                    const std::int64_t* ctx, index_t Kc, const std::int64_t* tgt,
                                                    index_t Kt, index_t mask_index = 0) {
  const auto f = ex.encode_context(clip, ctx, Kc, {.layers = {}, .image_frames = 0, .pooled = false});
  const auto z = predictor_input(f, mp.predictor());
  return mp.predict(z.data(), f.batch, ctx, Kc, tgt, Kt, f.grid, mask_index, Modality::video);
}

}  // namespace jepa::models
