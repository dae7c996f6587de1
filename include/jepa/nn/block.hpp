// jepa/nn/block.hpp — the pre-norm transformer block of every JEPA encoder and predictor.
//
//   x_mid = x_in  + Attn(LN1(x_in))           (the add and LN2 in one pass where the backend fuses them)
//   x_out = x_mid + MLP(LN2(x_mid))            (no layer-scale, no CLS token; recipe_facts §1.2)
// Shapes: x (B,N,D) as (M = B·N, D).
// Accumulation contract: parameter gradients accumulate. The residual-stream gradient `dres` (M,D)
// is updated IN PLACE: on entry it holds ∂L/∂x_out, on return ∂L/∂x_in. This is the one place where
// an input gradient accumulates, which is what lets deep self-supervision inject gradient at tapped
// blocks during the encoder's backward walk.
#pragma once

#include <string>

#include "jepa/core/binder.hpp"
#include "jepa/nn/attention.hpp"
#include "jepa/nn/layer_norm.hpp"
#include "jepa/nn/mlp.hpp"

namespace jepa::nn {

template <class T>
struct BlockCache {
  T* ln1 = nullptr;       // (M,D)
  T* ln1_mean = nullptr;  // (M)
  T* ln1_rstd = nullptr;  // (M)
  AttentionCache<T> attn;
  T* x_mid = nullptr;  // (M,D)
  T* ln2 = nullptr;    // (M,D)
  T* ln2_mean = nullptr;
  T* ln2_rstd = nullptr;
  MlpCache<T> mlp;
};
template <class T>
struct BlockWorkspace {
  T* d_ln = nullptr;  // (M,D)
  AttentionWorkspace<T> attn;
  MlpWorkspace<T> mlp;
};

struct BlockConfig {
  index_t dim = 0, heads = 0, mlp_hidden = 0;
  MlpKind mlp = MlpKind::gelu;
  double eps = 1e-6;
};

template <Real T, class Backend>
class Block {
 public:
  Block() = default;
  /// block_ordinal: 1-based depth l for the residual rescale 1/√(2l) of attn.proj and mlp.fc2.
  Block(ParamLayout& L, const std::string& name, const BlockConfig& c, int block_ordinal)
      : cfg_(c),
        norm1_(L, name + ".norm1", c.dim, c.eps),
        attn_(L, name + ".attn", c.dim, c.heads, block_ordinal),
        norm2_(L, name + ".norm2", c.dim, c.eps),
        mlp_(L, name + ".mlp", c.dim, c.mlp_hidden, c.mlp, block_ordinal) {}

  const BlockConfig& config() const { return cfg_; }

  void forward(const T* P, const T* x_in, index_t B, index_t N, const RopeTables<T>& rope, const BlockCache<T>& c,
               T* x_out, const backend::AttnMask& mask = {}) const {
    const index_t M = B * N, D = cfg_.dim;
    norm1_.forward(P, x_in, M, c.ln1, c.ln1_mean, c.ln1_rstd);
    attn_.forward(P, c.ln1, B, N, rope, c.attn, c.x_mid, mask);
    norm2_.forward_residual(P, c.x_mid, x_in, c.x_mid, M, c.ln2, c.ln2_mean, c.ln2_rstd);  // fused where the backend can
    mlp_.forward(P, c.ln2, M, c.mlp, x_out);
    Backend::template add<T>(x_out, c.x_mid, x_out, M * D);
  }

  void backward(const T* P, T* G, const T* x_in, const BlockCache<T>& c, const RopeTables<T>& rope, T* dres,
                index_t B, index_t N, const BlockWorkspace<T>& ws, const backend::AttnMask& mask = {}) const {
    const index_t M = B * N;
    mlp_.backward(P, G, c.ln2, c.mlp, dres, M, ws.d_ln, ws.mlp);
    norm2_.backward(P, G, c.x_mid, c.ln2_mean, c.ln2_rstd, ws.d_ln, M, dres, /*accumulate_dx=*/true);
    attn_.backward(P, G, c.ln1, c.attn, rope, dres, B, N, ws.d_ln, ws.attn, mask);
    norm1_.backward(P, G, x_in, c.ln1_mean, c.ln1_rstd, ws.d_ln, M, dres, /*accumulate_dx=*/true);
  }

  /// Requests the forward cache of one block for B·N rows. Without `train` (inference: no backward
  /// follows) a GELU MLP keeps no pre-activation and runs fc1 with its GELU fused.
  void plan_cache(Binder<T>& b, const std::string& name, index_t B, index_t N, BlockCache<T>& c,
                  bool train = true) const {
    const index_t M = B * N, D = cfg_.dim, Hd = cfg_.mlp_hidden;
    b.request(c.ln1, name + ".ln1", {M, D});
    b.request(c.ln1_mean, name + ".ln1_mean", {M});
    b.request(c.ln1_rstd, name + ".ln1_rstd", {M});
    b.request(c.attn.qkv, name + ".attn.qkv", {M, 3 * D});
    b.request(c.attn.o, name + ".attn.o", {M, D});
    b.request(c.attn.lse, name + ".attn.lse", {B, cfg_.heads, N});
    b.request(c.x_mid, name + ".x_mid", {M, D});
    b.request(c.ln2, name + ".ln2", {M, D});
    b.request(c.ln2_mean, name + ".ln2_mean", {M});
    b.request(c.ln2_rstd, name + ".ln2_rstd", {M});
    if (train || cfg_.mlp != MlpKind::gelu) b.request(c.mlp.h1, name + ".mlp.h1", {M, Hd});
    if (cfg_.mlp == MlpKind::swiglu) b.request(c.mlp.h2, name + ".mlp.h2", {M, Hd});
    b.request(c.mlp.a, name + ".mlp.a", {M, Hd});
  }
  /// Requests the backward scratch shared by all blocks.
  void plan_workspace(Binder<T>& b, const std::string& name, index_t B, index_t N, BlockWorkspace<T>& w) const {
    const index_t M = B * N, D = cfg_.dim, Hd = cfg_.mlp_hidden;
    b.request(w.d_ln, name + ".d_ln", {M, D});
    b.request(w.attn.d_o, name + ".attn.d_o", {M, D});
    b.request(w.attn.d_qkv, name + ".attn.d_qkv", {M, 3 * D});
    b.request(w.mlp.d_a, name + ".mlp.d_a", {M, Hd});
    b.request(w.mlp.d_h1, name + ".mlp.d_h1", {M, Hd});
    if (cfg_.mlp == MlpKind::swiglu) {
      b.request(w.mlp.d_h2, name + ".mlp.d_h2", {M, Hd});
      b.request(w.mlp.d_x2, name + ".mlp.d_x2", {M, D});
    }
  }

 private:
  BlockConfig cfg_;
  LayerNorm<T, Backend> norm1_;
  Attention<T, Backend> attn_;
  LayerNorm<T, Backend> norm2_;
  Mlp<T, Backend> mlp_;
};

}  // namespace jepa::nn
