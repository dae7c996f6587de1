// jepa/nn/patch_embed.hpp — tubelet / patch embedding (a Conv3d or Conv2d with kernel = stride).
//
//   token(b, n) = W · vec(tubelet(b, n)) + bias        W (D, C·t·p·p) viewed from [D, C, t, p, p]
// Only the tokens listed in idx (B,K) are embedded: the convolution is per token, so embedding the
// kept tokens equals embedding all N and gathering K of them (recipe_facts §1.6), at K/N the cost.
// Shapes: clip (B,C,F,H,W); cols (B·K, C·t·p·p) = im2col of the kept tubelets (kept for backward);
// out (B,K,D).
// Accumulation contract: dW, db accumulate; dclip is overwritten (zero at pixels of tokens not kept).
#pragma once

#include <string>

#include "jepa/concepts/tokenizer.hpp"
#include "jepa/core/dtype.hpp"
#include "jepa/nn/param.hpp"

namespace jepa::nn {

template <class Tok, Real T, class Backend>
class PatchEmbed {
  static_assert(detail::check_tokenizer<Tok>());

 public:
  static constexpr index_t t = Tok::tubelet, p = Tok::patch;

  PatchEmbed() = default;
  PatchEmbed(ParamLayout& L, const std::string& name, index_t in_chans, index_t dim)
      : in_chans_(in_chans), dim_(dim) {
    w_ = L.add(name + ".proj.weight", Tok::weight_shape(dim, in_chans), Init::trunc_normal, 0.02);
    b_ = L.add(name + ".proj.bias", {dim}, Init::zeros);
  }
  index_t kernel_volume() const { return in_chans_ * t * p * p; }

  /// Embeds the K tokens idx (B,K) of clip (B,C,F,H,W) into out (B,K,D); fills cols (B·K, C·t·p·p).
  void forward(const T* P, const T* clip, index_t B, index_t F, index_t H, index_t W, const std::int64_t* idx,
               index_t K, T* cols, T* out) const {
    Backend::template im2col_tubelet<T>(clip, idx, cols, B, in_chans_, F, H, W, t, p, K);
    Backend::template linear_forward<T>(cols, P + w_, P + b_, out, B * K, kernel_volume(), dim_);
  }
  /// dcols (B·K, C·t·p·p) is scratch; dclip may be null (then dcols may be null too).
  void backward(const T* P, T* G, const T* cols, const T* dy, index_t B, index_t F, index_t H, index_t W,
                const std::int64_t* idx, index_t K, T* dcols, T* dclip) const {
    Backend::template linear_backward<T>(cols, P + w_, dy, dclip ? dcols : nullptr, G ? G + w_ : nullptr,
                                         G ? G + b_ : nullptr, B * K, kernel_volume(), dim_);
    if (dclip) Backend::template col2im_tubelet<T>(dcols, idx, dclip, B, in_chans_, F, H, W, t, p, K);
  }

 private:
  index_t in_chans_ = 3, dim_ = 0;
  std::size_t w_ = 0, b_ = 0;
};

}  // namespace jepa::nn
