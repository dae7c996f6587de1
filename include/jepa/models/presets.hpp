// jepa/models/presets.hpp — the published encoder shapes and the model types built from them.
//
// Shapes (recipe_facts §1.1; LN eps 1e-6, qkv bias, exact GELU everywhere):
//   name                    D     depth heads Dh   MLP hidden
//   vit_tiny               192    12    3    64     768
//   vit_small              384    12    6    64    1536
//   vit_base               768    12   12    64    3072
//   vit_large             1024    24   16    64    4096
//   vit_huge              1280    32   16    80    5120
//   vit_giant             1408    40   16    88    6144   (I-JEPA ViT-g)
//   vit_giant_xformers    1408    40   22    64    6144   (the V-JEPA 2 / 2-AC / 2.1 "ViT-g")
//   vit_gigantic          1664    48   16   104    8192   (2.1 module; the V2 module's typo gives 6656)
//   vit_gigantic_xformers 1664    48   26    64    8192   (the 2.1 "ViT-G")
// Model families (template aliases; the depth of the shape becomes the template parameter):
//   VJepa2Encoder<S>   Tubelet<2,16>, RoPE tiled,        final norm       (V-JEPA 2, 2-AC)
//   VJepa21Encoder<S>  MultiModal<Tubelet<2,16>, Tubelet<1,16>> with modality embeddings, RoPE
//                      interleaved, 4 hierarchical taps, interpolate_rope G0=16
//   VJepaEncoder<S>    Tubelet<2,16>, 3-D sin-cos (uniform power), final norm, no residual rescale
//   IJepaEncoder<S>    Patch2d<14>, 2-D sin-cos, final norm, no residual rescale
#pragma once

#include <string_view>

#include "jepa/models/vit_encoder.hpp"
#include "jepa/tokenizers/multimodal.hpp"
#include "jepa/tokenizers/tubelet.hpp"

namespace jepa::models::presets {

struct EncoderShape {
  std::string_view name;
  index_t embed_dim;
  int depth;
  index_t num_heads;
  index_t mlp_hidden;
  constexpr index_t head_dim() const { return embed_dim / num_heads; }
};

inline constexpr EncoderShape vit_tiny{"vit_tiny", 192, 12, 3, 768};
inline constexpr EncoderShape vit_small{"vit_small", 384, 12, 6, 1536};
inline constexpr EncoderShape vit_base{"vit_base", 768, 12, 12, 3072};
inline constexpr EncoderShape vit_large{"vit_large", 1024, 24, 16, 4096};
inline constexpr EncoderShape vit_huge{"vit_huge", 1280, 32, 16, 5120};
inline constexpr EncoderShape vit_giant{"vit_giant", 1408, 40, 16, 6144};
inline constexpr EncoderShape vit_giant_xformers{"vit_giant_xformers", 1408, 40, 22, 6144};
inline constexpr EncoderShape vit_gigantic{"vit_gigantic", 1664, 48, 16, 8192};
inline constexpr EncoderShape vit_gigantic_xformers{"vit_gigantic_xformers", 1664, 48, 26, 8192};

inline constexpr EncoderShape all_shapes[] = {vit_tiny,  vit_small,          vit_base,     vit_large,
                                              vit_huge,  vit_giant,          vit_giant_xformers,
                                              vit_gigantic, vit_gigantic_xformers};

/// Runtime configuration of an encoder of shape S. `rope_interp_grid` is 16 for 2.1 (256/16).
constexpr VitConfig config(const EncoderShape& S, index_t rope_interp_grid = 0, bool residual_rescale = true) {
  VitConfig c;
  c.embed_dim = S.embed_dim;
  c.num_heads = S.num_heads;
  c.mlp_hidden = S.mlp_hidden;
  c.rope_interp_grid = rope_interp_grid;
  c.residual_rescale = residual_rescale;
  return c;
}

template <const EncoderShape& S, Real T = float, class Backend = backend::Cpu>
using VJepa2Encoder = VitEncoder<S.depth, tokenizers::Tubelet<2, 16>, RopeTiled, FinalNorm, T, Backend>;
/// The 2.1 tokenizer: Tubelet<2,16> for video, Tubelet<1,16> (`patch_embed_img`) for 1-frame images,
/// with the img/video modality embeddings.
using VJepa21Tokenizer = tokenizers::MultiModal<tokenizers::Tubelet<2, 16>, tokenizers::Tubelet<1, 16>, true>;
template <const EncoderShape& S, Real T = float, class Backend = backend::Cpu>
using VJepa21Encoder = VitEncoder<S.depth, VJepa21Tokenizer, RopeInterleaved, default_taps_t<S.depth>, T, Backend>;
template <const EncoderShape& S, Real T = float, class Backend = backend::Cpu>
using VJepaEncoder = VitEncoder<S.depth, tokenizers::Tubelet<2, 16>, SinCos3d<true>, FinalNorm, T, Backend>;
template <const EncoderShape& S, Real T = float, class Backend = backend::Cpu>
using IJepaEncoder = VitEncoder<S.depth, tokenizers::Patch2d<14>, SinCos2d, FinalNorm, T, Backend>;

/// Configs matching the families above.
constexpr VitConfig vjepa2_config(const EncoderShape& S) { return config(S); }
constexpr VitConfig vjepa21_config(const EncoderShape& S) { return config(S, 16); }
constexpr VitConfig vjepa_config(const EncoderShape& S) { return config(S, 0, false); }
constexpr VitConfig ijepa_config(const EncoderShape& S) { return config(S, 0, false); }

}  // namespace jepa::models::presets
