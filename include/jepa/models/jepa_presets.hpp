// jepa/models/jepa_presets.hpp — the published JEPA models as composed types, at every encoder size.
//
//   family     encoder                                   predictor (Dp 384 unless micro)      masks            loss
//   ijepa      Patch2d<14>, 2-D sin-cos, final norm       depth 12 (16 for ViT-g), enc. heads, Multiblock2d     SmoothL1
//                                                         1 trunc-normal mask_token, 2-D sin-cos  (shared context)
//   vjepa      Tubelet<2,16>, 3-D sin-cos, final norm     depth 12, encoder heads, 2 mask tokens  Multiblock3d  L1
//                                                         (one per generator), 3-D sin-cos
//   vjepa2     Tubelet<2,16>, tiled RoPE, final norm      depth 12, 12 heads, 10 mask tokens,   Multiblock3d      L1
//                                                         tiled RoPE
//   vjepa2_1   MultiModal video+image, interleaved RoPE,  fusion MLP over 4 levels, depth 24     Multiblock3d      L1 + λ·context
//              4 taps, modality embeddings, interp. RoPE  (12 for ViT-B), 12 heads, 8 mask tokens, (video)        (1/√dist)
//                                                         context outputs, modality embeddings
// Every family also exists at `vit_micro` (D 64, depth 4) with a 2-block, 32-wide predictor, for tests.
// Policies are template parameters, so a user's own masking or loss policy plugs into any preset:
//   presets::VJepa2<presets::vit_large, float, backend::Cpu, MyMasking, MyLoss>
#pragma once

#include "jepa/losses/losses.hpp"
#include "jepa/masking/masking.hpp"
#include "jepa/models/jepa.hpp"
#include "jepa/models/presets.hpp"

namespace jepa::models::presets {

inline constexpr EncoderShape vit_micro{"vit_micro", 64, 4, 4, 256};

struct PredictorShape {
  int depth;
  index_t dim, heads, mlp_hidden, mask_tokens;
};
constexpr bool is_micro(const EncoderShape& S) { return S.embed_dim < 128; }
constexpr PredictorShape ijepa_predictor(const EncoderShape& S) {
  if (is_micro(S)) return {2, 32, 2, 128, 1};
  return {S.embed_dim == 1408 ? 16 : 12, 384, S.num_heads, 1536, 1};
}
constexpr PredictorShape vjepa_predictor(const EncoderShape& S) {
  if (is_micro(S)) return {2, 32, 2, 128, 2};
  return {12, 384, S.num_heads, 1536, 2};
}
constexpr PredictorShape vjepa2_predictor(const EncoderShape& S) {
  if (is_micro(S)) return {2, 32, 2, 128, 10};
  return {12, 384, 12, 1536, 10};
}
constexpr PredictorShape vjepa21_predictor(const EncoderShape& S) {
  if (is_micro(S)) return {2, 32, 2, 128, 8};
  return {S.depth == 12 ? 12 : 24, 384, 12, 1536, 8};
}

/// Everything needed to construct a composed model.
struct ModelConfig {
  VitConfig encoder;
  PredictorConfig predictor;
};
constexpr PredictorConfig predictor_config(const EncoderShape& S, const PredictorShape& p) {
  PredictorConfig c;
  c.encoder_dim = S.embed_dim;
  c.pred_dim = p.dim;
  c.num_heads = p.heads;
  c.mlp_hidden = p.mlp_hidden;
  c.num_mask_tokens = p.mask_tokens;
  return c;
}
inline ModelConfig ijepa_model_config(const EncoderShape& S) {
  ModelConfig m{ijepa_config(S), predictor_config(S, ijepa_predictor(S))};
  m.predictor.ijepa_naming = true;
  m.predictor.zero_init_mask_tokens = false;
  m.predictor.residual_rescale = false;
  return m;
}
inline ModelConfig vjepa_model_config(const EncoderShape& S) {
  ModelConfig m{vjepa_config(S), predictor_config(S, vjepa_predictor(S))};
  m.predictor.residual_rescale = false;
  return m;
}
inline ModelConfig vjepa2_model_config(const EncoderShape& S) {
  return {vjepa2_config(S), predictor_config(S, vjepa2_predictor(S))};
}
inline ModelConfig vjepa21_model_config(const EncoderShape& S) {
  ModelConfig m{vjepa21_config(S), predictor_config(S, vjepa21_predictor(S))};
  m.predictor.rope_interp_grid = 16;
  m.predictor.modality_embedding = true;
  m.predictor.predict_context = true;
  return m;
}

template <const EncoderShape& S, Real T = float, class B = backend::Cpu, class Masking = masking::Multiblock2d,
          class Loss = losses::MaskedLoss<losses::SmoothL1>>
using IJepa = Jepa<IJepaEncoder<S, T, B>, Predictor<ijepa_predictor(S).depth, SinCos2d, 1, T, B>, Masking, Loss>;
template <const EncoderShape& S, Real T = float, class B = backend::Cpu, class Masking = masking::Multiblock3d,
          class Loss = losses::MaskedLoss<losses::L1>>
using VJepa = Jepa<VJepaEncoder<S, T, B>, Predictor<vjepa_predictor(S).depth, SinCos3d<true>, 1, T, B>, Masking, Loss>;
template <const EncoderShape& S, Real T = float, class B = backend::Cpu, class Masking = masking::Multiblock3d,
          class Loss = losses::MaskedLoss<losses::L1>>
using VJepa2 = Jepa<VJepa2Encoder<S, T, B>, Predictor<vjepa2_predictor(S).depth, RopeTiled, 1, T, B>, Masking, Loss>;
template <const EncoderShape& S, Real T = float, class B = backend::Cpu, class Masking = masking::Multiblock3d,
          class Loss = losses::ContextLoss<losses::L1>>
using VJepa21 = Jepa<VJepa21Encoder<S, T, B>,
                     Predictor<vjepa21_predictor(S).depth, RopeInterleaved, VJepa21Encoder<S, T, B>::num_taps, T, B>,
                     Masking, Loss>;

/// Factories with the recipe's masking and loss; pass your own policies to replace them.
template <const EncoderShape& S, Real T = float, class B = backend::Cpu, class Masking = masking::Multiblock2d,
          class Loss = losses::MaskedLoss<losses::SmoothL1>>
IJepa<S, T, B, Masking, Loss> ijepa(Masking m = masking::Multiblock2d::ijepa(), Loss l = {}) {
  const auto c = ijepa_model_config(S);
  return IJepa<S, T, B, Masking, Loss>(c.encoder, c.predictor, std::move(m), std::move(l));
}
template <const EncoderShape& S, Real T = float, class B = backend::Cpu, class Masking = masking::Multiblock3d,
          class Loss = losses::MaskedLoss<losses::L1>>
VJepa<S, T, B, Masking, Loss> vjepa(Masking m = masking::Multiblock3d::vjepa(), Loss l = {}) {
  const auto c = vjepa_model_config(S);
  VJepa<S, T, B, Masking, Loss> model(c.encoder, c.predictor, std::move(m), std::move(l));
  model.mask_token_per_generator = true;
  return model;
}
template <const EncoderShape& S, Real T = float, class B = backend::Cpu, class Masking = masking::Multiblock3d,
          class Loss = losses::MaskedLoss<losses::L1>>
VJepa2<S, T, B, Masking, Loss> vjepa2(Masking m = masking::Multiblock3d::vjepa(), Loss l = {}) {
  const auto c = vjepa2_model_config(S);
  return VJepa2<S, T, B, Masking, Loss>(c.encoder, c.predictor, std::move(m), std::move(l));
}
template <const EncoderShape& S, Real T = float, class B = backend::Cpu, class Masking = masking::Multiblock3d,
          class Loss = losses::ContextLoss<losses::L1>>
VJepa21<S, T, B, Masking, Loss> vjepa2_1(Masking m = masking::Multiblock3d::vjepa(), Loss l = {}) {
  const auto c = vjepa21_model_config(S);
  return VJepa21<S, T, B, Masking, Loss>(c.encoder, c.predictor, std::move(m), std::move(l));
}

}  // namespace jepa::models::presets
