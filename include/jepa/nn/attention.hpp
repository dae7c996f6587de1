// jepa/nn/attention.hpp — multi-head self-attention with packed qkv and optional 3-D RoPE.
//
//   qkv = x·W_qkvᵀ + b_qkv          (M, 3D), channels [q | k | v], heads contiguous inside each
//   q, k ← RoPE(q, k)               in place, per head, v untouched (recipe_facts §1.5.4)
//   o_h = softmax(q_h k_hᵀ/√Dh + mask) v_h   fused, no N×N buffer (backend attention)
//   y = o·W_projᵀ + b_proj          (M, D)
// Shapes: x (B,N,D) as (M = B·N, D). The cache keeps the rotated qkv, o and the row log-sum-exp.
// Accumulation contract: parameter gradients accumulate; dx is overwritten.
#pragma once

#include <cmath>
#include <string>

#include "jepa/backend/attention_args.hpp"
#include "jepa/core/dtype.hpp"
#include "jepa/nn/linear.hpp"
#include "jepa/nn/rope.hpp"

namespace jepa::nn {

template <class T>
struct AttentionCache {
  T* qkv = nullptr;  // (B,N,3D), q and k rotated
  T* o = nullptr;    // (B,N,D) attention output before the projection
  T* lse = nullptr;  // (B,H,N)
};
template <class T>
struct AttentionWorkspace {
  T* d_o = nullptr;    // (B,N,D)
  T* d_qkv = nullptr;  // (B,N,3D)
};

template <Real T, class Backend>
class Attention {
 public:
  Attention() = default;
  /// `block_ordinal` is l in the residual rescale 1/√(2l) of proj.weight (0 = no rescale).
  Attention(ParamLayout& L, const std::string& name, index_t dim, index_t heads, int block_ordinal)
      : dim_(dim), heads_(heads), head_dim_(dim / heads),
        qkv_(L, name + ".qkv", dim, 3 * dim, true),
        proj_(L, name + ".proj", dim, dim, true, block_ordinal > 0 ? 1.0 / std::sqrt(2.0 * block_ordinal) : 1.0) {}

  index_t dim() const { return dim_; }
  index_t heads() const { return heads_; }
  index_t head_dim() const { return head_dim_; }

  void forward(const T* P, const T* x, index_t B, index_t N, const RopeTables<T>& rope, const AttentionCache<T>& c,
               T* y, const backend::AttnMask& mask = {}) const {
    const index_t M = B * N, D = dim_;
    qkv_.forward(P, x, M, c.qkv);
    if (rope.enabled()) {
      // q and k are adjacent in the packed row [q | k | v], so their 2·H heads take one rotation pass
      // (the same per-token angles for every head): one launch for the whole q/k path.
      Backend::template rope_forward<T>(c.qkv, M, 2 * heads_, 3 * D, head_dim_, rope.rot, rope.cos, rope.sin);
    }
    Backend::template attention_forward<T>(shape(B, N), operand<const T>(c.qkv, N, 0), operand<const T>(c.qkv, N, D),
                                           operand<const T>(c.qkv, N, 2 * D), out_operand<T>(c.o, N), c.lse, mask);
    proj_.forward(P, c.o, M, y);
  }

  void backward(const T* P, T* G, const T* x, const AttentionCache<T>& c, const RopeTables<T>& rope, const T* dy,
                index_t B, index_t N, T* dx, const AttentionWorkspace<T>& ws, const backend::AttnMask& mask = {}) const {
    const index_t M = B * N, D = dim_;
    proj_.backward(P, G, c.o, dy, M, ws.d_o);
    Backend::template attention_backward<T>(
        shape(B, N), operand<const T>(c.qkv, N, 0), operand<const T>(c.qkv, N, D), operand<const T>(c.qkv, N, 2 * D),
        out_operand<const T>(c.o, N), out_operand<const T>(ws.d_o, N), c.lse, operand<T>(ws.d_qkv, N, 0),
        operand<T>(ws.d_qkv, N, D), operand<T>(ws.d_qkv, N, 2 * D), mask);
    if (rope.enabled()) {
      Backend::template rope_backward<T>(ws.d_qkv, M, 2 * heads_, 3 * D, head_dim_, rope.rot, rope.cos, rope.sin);
    }
    qkv_.backward(P, G, x, ws.d_qkv, M, dx);
  }

 private:
  backend::AttnShape shape(index_t B, index_t N) const {
    return {B, heads_, N, N, head_dim_, 1.0 / std::sqrt(static_cast<double>(head_dim_))};
  }
  /// Head h of the q/k/v part at channel offset `off` of the packed (B,N,3D) buffer.
  template <class U>
  backend::AttnOperand<U> operand(U* base, index_t N, index_t off) const {
    return {base + off, N * 3 * dim_, 3 * dim_, head_dim_};
  }
  template <class U>
  backend::AttnOperand<U> out_operand(U* base, index_t N) const {
    return {base, N * dim_, dim_, head_dim_};
  }

  index_t dim_ = 0, heads_ = 0, head_dim_ = 0;
  Linear<T, Backend> qkv_, proj_;
};

}  // namespace jepa::nn
