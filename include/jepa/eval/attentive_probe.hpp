// jepa/eval/attentive_probe.hpp — the attentive probe of V-JEPA 2 / 2.1 frozen evaluation
// (recipe_facts §7.1, pitfall §9.1.20): a classifier trained on top of frozen encoder tokens.
//
//   x_0 = features                                   (B,N,D), frozen encoder output
//   x_{l+1} = Block_l(x_l)        l < d − 1          pre-norm self-attention blocks on the TOKENS
//                                                    (before the cross-attention, as V2 does), LN eps
//                                                    1e-5, GELU, mlp 4·D, qkv bias, no RoPE, no pos-embed
//   Cross-attention block with learned queries Q (n_q, D), trunc_normal(0.02):
//     y   = LN1(x_{d−1})                             (B,N,D)
//     q   = Q·W_qᵀ + b_q                             (n_q,D), the same for every clip
//     [k | v] = y·W_kvᵀ + b_kv                       (B,N,2D), heads contiguous inside k and v
//     o_h = softmax(q_h k_hᵀ/√Dh) v_h                fused attention, Nq = n_q, Nk = N (no N×N buffer)
//     q1  = Q + o                                    NO output projection (V2 comments it out)
//     q2  = q1 + MLP(LN2(q1))                        (B,n_q,D)
//   logits = flatten(q2)·W_linᵀ + b_lin              (B,C); flatten (B,n_q,D) → (B, n_q·D)
// With n_q = 1 (every classification probe of the recipe) the head is exactly V2's Linear(D → C) on
// the squeezed query. For n_q > 1 the queries are concatenated into one head (a library choice; the
// EK100 probe instead gives each query its own classifier). No LayerNorm precedes the head (§7.1).
//
// Parameters carry the official probe checkpoint keys (V2 `AttentiveClassifier`):
//   pooler.query_tokens [1,n_q,D]; pooler.blocks.i.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.*;
//   pooler.cross_attention_block.{norm1, xattn.q, xattn.kv, norm2, mlp.fc1, mlp.fc2}.*; linear.{weight,bias}.
// Init (§7.1): trunc_normal(0.02) weights, zero biases, LN (1, 0); block i's attn.proj and mlp.fc2
// are divided by √(2(i+1)); the cross block's mlp.fc2 by √(2·max(1, d − 1)).
//
// Backward (∂L/∂logits in, hand-written):
//   dq2 = dlogits·W_lin;  dq1 = dq2 + LN2ᵀ(MLPᵀ(dq2));  ∂Q += Σ_b dq1_b (the residual)
//   (dq, dk, dv) = attentionᵀ(do = dq1);  ∂Q += W_qᵀ-backward(Σ_b dq_b);  dy = [dk | dv]·W_kv
//   dx_{d−1} = LN1ᵀ(dy);  blocks walk back on the residual stream;  d_features = dx_0.
// Accumulation contract: parameter gradients ACCUMULATE (G += ∂L/∂θ); the feature gradient is
// OVERWRITTEN. Memory: make_state plans every activation and backward buffer of a (B,N) shape in one
// arena (jepa::Binder); Mode::inference keeps one block cache and no backward buffers.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "jepa/backend/attention_args.hpp"
#include "jepa/backend/cpu/backend.hpp"
#include "jepa/concepts/backend.hpp"
#include "jepa/core/binder.hpp"
#include "jepa/core/error.hpp"
#include "jepa/core/tensor.hpp"
#include "jepa/eval/linear_probe.hpp"
#include "jepa/models/vit_encoder.hpp"
#include "jepa/nn/block.hpp"
#include "jepa/nn/layer_norm.hpp"
#include "jepa/nn/linear.hpp"
#include "jepa/nn/mlp.hpp"
#include "jepa/nn/param.hpp"

namespace jepa::eval {

using models::Mode;

struct AttentiveProbeConfig {
  index_t dim = 768;        // D: the encoder width
  index_t num_heads = 12;   // H (V2 / 2.1 configs: 16; the ViT-B demo: 12)
  index_t num_queries = 1;  // n_q (1 for classification)
  int depth = 4;            // d: d − 1 self-attention blocks, then the cross-attention block
  index_t mlp_hidden = 0;   // Hd; 0 means 4·D (mlp_ratio 4)
  index_t num_classes = 0;  // C
  double eps = 1e-5;        // the pooler's LayerNorms are PyTorch's default (§9.1.20)

  index_t hidden() const { return mlp_hidden > 0 ? mlp_hidden : 4 * dim; }
  index_t head_dim() const { return num_heads > 0 ? dim / num_heads : 0; }
  void validate() const {
    check_field(dim > 0, "AttentiveProbeConfig.dim", dim, "must be > 0 (the feature width D)");
    check_field(num_heads > 0, "AttentiveProbeConfig.num_heads", num_heads, "must be > 0");
    check_field(dim % num_heads == 0, "AttentiveProbeConfig.num_heads", num_heads,
                detail::cat("dim (", dim, ") must be divisible by num_heads"));
    check_field(num_queries >= 1, "AttentiveProbeConfig.num_queries", num_queries, "must be >= 1");
    check_field(depth >= 1, "AttentiveProbeConfig.depth", depth,
                "must be >= 1 (depth − 1 self-attention blocks + the cross-attention block)");
    check_field(mlp_hidden >= 0, "AttentiveProbeConfig.mlp_hidden", mlp_hidden, "must be >= 0 (0 = 4·dim)");
    check_field(num_classes >= 2, "AttentiveProbeConfig.num_classes", num_classes, "a classifier needs >= 2 classes");
    check_field(eps > 0 && std::isfinite(eps), "AttentiveProbeConfig.eps", eps, "must be a finite value > 0");
  }
};

template <Real T = float, class Backend = backend::Cpu>
class AttentiveProbe {
  static_assert(jepa::detail::check_backend<Backend, T>());

 public:
  using value_type = T;
  using backend_type = Backend;

  explicit AttentiveProbe(const AttentiveProbeConfig& cfg) : cfg_(cfg) {
    cfg_.validate();
    const index_t D = cfg_.dim, nq = cfg_.num_queries;
    const std::string px = "pooler.";
    query_ = layout_.add(px + "query_tokens", {1, nq, D}, nn::Init::trunc_normal, 0.02);
    const nn::BlockConfig bc{D, cfg_.num_heads, cfg_.hidden(), nn::MlpKind::gelu, cfg_.eps};
    for (int l = 0; l + 1 < cfg_.depth; ++l) blocks_.emplace_back(layout_, px + "blocks." + std::to_string(l), bc, l + 1);
    const std::string cx = px + "cross_attention_block.";
    norm1_ = nn::LayerNorm<T, Backend>(layout_, cx + "norm1", D, cfg_.eps);
    q_ = nn::Linear<T, Backend>(layout_, cx + "xattn.q", D, D);
    kv_ = nn::Linear<T, Backend>(layout_, cx + "xattn.kv", D, 2 * D);
    norm2_ = nn::LayerNorm<T, Backend>(layout_, cx + "norm2", D, cfg_.eps);
    mlp_ = nn::Mlp<T, Backend>(layout_, cx + "mlp", D, cfg_.hidden(), nn::MlpKind::gelu, std::max(1, cfg_.depth - 1));
    head_ = nn::Linear<T, Backend>(layout_, "linear", nq * D, cfg_.num_classes);
  }

  const AttentiveProbeConfig& config() const { return cfg_; }
  const nn::ParamLayout& layout() const { return layout_; }
  std::size_t param_count() const { return layout_.count(); }
  index_t num_blocks() const { return static_cast<index_t>(blocks_.size()); }

  // -----------------------------------------------------------------------------------------------
  // State: every activation (and, in training mode, every backward buffer) of one (B, N) shape.
  // -----------------------------------------------------------------------------------------------
  class State {
   public:
    Mode mode() const { return mode_; }
    index_t batch() const { return B_; }
    index_t tokens() const { return N_; }
    index_t batch_capacity() const { return capB_; }
    index_t token_capacity() const { return capN_; }
    /// Use B <= batch_capacity() clips of N <= token_capacity() tokens from the next forward on (the
    /// buffers are reused: a last partial batch or shorter clips need no new State).
    void set_shape(index_t B, index_t N) {
      if (B < 1 || B > capB_) fail_field<ShapeError>("batch", B, detail::cat("must be in [1, ", capB_, "] (the planned batch)"));
      if (N < 1 || N > capN_) fail_field<ShapeError>("tokens", N, detail::cat("must be in [1, ", capN_, "] (the planned tokens)"));
      B_ = B;
      N_ = N;
    }
    const MemoryPlan& plan() const { return plan_; }
    std::size_t bytes() const { return arena_.bytes(); }

   private:
    friend class AttentiveProbe;
    Mode mode_ = Mode::training;
    index_t B_ = 0, N_ = 0, capB_ = 0, capN_ = 0;
    const T* features_ = nullptr;  // x_0, owned by the caller
    MemoryPlan plan_{MemoryCategory::activations};
    typename Backend::Arena arena_;
    std::vector<T*> x_;                      // x_1 … x_{d−1} (training) or 2 ping-pong buffers (inference)
    std::vector<nn::BlockCache<T>> caches_;  // d − 1 (training) or 1 (inference)
    T *ln1_ = nullptr, *ln1_mean_ = nullptr, *ln1_rstd_ = nullptr;  // (M,D), (M), (M)
    T* kv_ = nullptr;                                              // (M,2D)  [k | v]
    T* q_ = nullptr;                                               // (B,n_q,D) q replicated per clip
    T* o_ = nullptr;                                               // (B,n_q,D)
    T* lse_ = nullptr;                                             // (B,H,n_q)
    T* q1_ = nullptr;                                              // (B,n_q,D)
    T *ln2_ = nullptr, *ln2_mean_ = nullptr, *ln2_rstd_ = nullptr;  // (B·n_q,D), (B·n_q) ×2
    nn::MlpCache<T> mlp_;                                          // (B·n_q,Hd)
    T* q2_ = nullptr;                                              // (B,n_q,D) pooled queries
    T* logits_ = nullptr;                                          // (B,C)
    // backward (training only)
    T* dlogits_ = nullptr;  // (B,C)
    T* dres_q_ = nullptr;   // (B,n_q,D) residual gradient of the query stream
    T* d_ln2_ = nullptr;    // (B,n_q,D)
    nn::MlpWorkspace<T> mlp_ws_{};
    T* dq_ = nullptr;       // (B,n_q,D)
    T* dq_sum_ = nullptr;   // (n_q,D)
    T* d_query_ = nullptr;  // (n_q,D)
    T* dkv_ = nullptr;      // (M,2D)
    T* d_ln1_ = nullptr;    // (M,D)
    T* dres_x_ = nullptr;   // (M,D) residual gradient of the token stream (with blocks)
    nn::BlockWorkspace<T> ws_{};
  };

  /// Plans and allocates the buffers for `batch` clips of `tokens` tokens (the encoder's N, or the
  /// concatenated segments of the multi-view protocol, §7.2).
  State make_state(index_t batch, index_t tokens, Mode mode = Mode::training) const {
    if (batch < 1) fail_field<ShapeError>("batch", batch, "the batch is empty; must be >= 1");
    if (tokens < 1) fail_field<ShapeError>("tokens", tokens, "no tokens; must be >= 1");
    State s;
    s.mode_ = mode;
    s.B_ = s.capB_ = batch;
    s.N_ = s.capN_ = tokens;
    const index_t B = batch, N = tokens, D = cfg_.dim, nq = cfg_.num_queries, M = B * N, Q = B * nq;
    const index_t Hd = cfg_.hidden(), C = cfg_.num_classes;
    const bool train = mode == Mode::training;
    const std::size_t nb = blocks_.size();
    s.x_.assign(nb == 0 ? 0 : (train ? nb : std::min<std::size_t>(nb, 2)), nullptr);
    s.caches_.assign(nb == 0 ? 0 : (train ? nb : 1), {});

    Binder<T> b(MemoryCategory::activations);
    for (std::size_t i = 0; i < s.x_.size(); ++i) b.request(s.x_[i], "pooler.x." + std::to_string(i + 1), {M, D});
    for (std::size_t i = 0; i < s.caches_.size(); ++i)
      blocks_[i].plan_cache(b, train ? "pooler.blocks." + std::to_string(i) : "pooler.block", B, N, s.caches_[i], train);
    const std::string cx = "pooler.cross_attention_block.";
    b.request(s.ln1_, cx + "ln1", {M, D});
    b.request(s.ln1_mean_, cx + "ln1_mean", {M});
    b.request(s.ln1_rstd_, cx + "ln1_rstd", {M});
    b.request(s.kv_, cx + "xattn.kv", {M, 2 * D});
    b.request(s.q_, cx + "xattn.q", {B, nq, D});
    b.request(s.o_, cx + "xattn.o", {B, nq, D});
    b.request(s.lse_, cx + "xattn.lse", {B, cfg_.num_heads, nq});
    b.request(s.q1_, cx + "q1", {B, nq, D});
    b.request(s.ln2_, cx + "ln2", {Q, D});
    b.request(s.ln2_mean_, cx + "ln2_mean", {Q});
    b.request(s.ln2_rstd_, cx + "ln2_rstd", {Q});
    b.request(s.mlp_.h1, cx + "mlp.h1", {Q, Hd});
    b.request(s.mlp_.a, cx + "mlp.a", {Q, Hd});
    b.request(s.q2_, cx + "q2", {B, nq, D});
    b.request(s.logits_, "linear.logits", {B, C});
    if (train) {
      b.request(s.dlogits_, "workspace.d_logits", {B, C});
      b.request(s.dres_q_, "workspace.d_query_stream", {B, nq, D});
      b.request(s.d_ln2_, "workspace.d_ln2", {Q, D});
      b.request(s.mlp_ws_.d_a, "workspace.mlp.d_a", {Q, Hd});
      b.request(s.mlp_ws_.d_h1, "workspace.mlp.d_h1", {Q, Hd});
      b.request(s.dq_, "workspace.d_q", {B, nq, D});
      b.request(s.dq_sum_, "workspace.d_q_sum", {nq, D});
      b.request(s.d_query_, "workspace.d_query", {nq, D});
      b.request(s.dkv_, "workspace.d_kv", {M, 2 * D});
      b.request(s.d_ln1_, "workspace.d_ln1", {M, D});
      if (nb > 0) {
        b.request(s.dres_x_, "workspace.d_token_stream", {M, D});
        blocks_[0].plan_workspace(b, "workspace.block", B, N, s.ws_);
      }
    }
    s.plan_ = b.plan();
    b.bind(s.arena_);
    return s;
  }

  /// Runs the probe on features (B,N,D) (contiguous; B, N those of the State). The features are read
  /// again by backward: keep them alive and unchanged until then.
  void forward(const T* P, TensorView<const T, 3> features, State& s) const {
    LinearDenseProbe<T, Backend>::check_features(features, s, cfg_.dim);
    const index_t B = s.B_, N = s.N_, D = cfg_.dim, nq = cfg_.num_queries, M = B * N, Q = B * nq;
    const bool train = s.mode_ == Mode::training;
    s.features_ = features.data();
    const nn::RopeTables<T> no_rope{};
    const T* x = s.features_;
    for (std::size_t l = 0; l < blocks_.size(); ++l) {
      T* xo = train ? s.x_[l] : s.x_[l % s.x_.size()];
      blocks_[l].forward(P, x, B, N, no_rope, s.caches_[train ? l : 0], xo);
      x = xo;
    }
    // Cross-attention of the learned queries over LN1(x).
    norm1_.forward(P, x, M, s.ln1_, s.ln1_mean_, s.ln1_rstd_);
    kv_.forward(P, s.ln1_, M, s.kv_);
    q_.forward(P, P + query_, nq, s.q_);
    for (index_t b = 1; b < B; ++b) Backend::template copy<T>(s.q_, s.q_ + b * nq * D, nq * D);
    Backend::template attention_forward<T>(attn_shape(B, N), q_operand<const T>(s.q_), k_operand<const T>(s.kv_, N),
                                           v_operand<const T>(s.kv_, N), q_operand<T>(s.o_), s.lse_, backend::AttnMask{});
    for (index_t b = 0; b < B; ++b) Backend::template add<T>(s.o_ + b * nq * D, P + query_, s.q1_ + b * nq * D, nq * D);
    norm2_.forward(P, s.q1_, Q, s.ln2_, s.ln2_mean_, s.ln2_rstd_);
    mlp_.forward(P, s.ln2_, Q, s.mlp_, s.q2_);
    Backend::template add<T>(s.q2_, s.q1_, s.q2_, Q * D);
    head_.forward(P, s.q2_, B, s.logits_);
  }

  /// Logits (B,C) of the last forward.
  TensorView<const T, 2> logits(const State& s) const { return {s.logits_, {s.B_, cfg_.num_classes}}; }
  /// Pooled query tokens (B,n_q,D) of the last forward (the probe's representation before the head).
  TensorView<const T, 3> pooled(const State& s) const { return {s.q2_, {s.B_, cfg_.num_queries, cfg_.dim}}; }

  /// Mean softmax cross-entropy of the last forward's logits against labels (B) in [0, C); fills the
  /// logits gradient that backward reads.
  double loss(State& s, const std::int32_t* labels) const {
    require_training(s, "loss");
    return softmax_cross_entropy(s.logits_, labels, s.B_, cfg_.num_classes, s.dlogits_);
  }
  /// The logits gradient buffer (B,C) that backward reads (loss() fills it; a caller may write its own).
  T* logits_grad(State& s) const {
    require_training(s, "logits_grad");
    return s.dlogits_;
  }

  /// G += ∂L/∂θ for the logits gradient in the State; d_features (B,N,D) is overwritten when not null.
  void backward(const T* P, T* G, State& s, T* d_features = nullptr) const {
    require_training(s, "backward");
    if (!s.features_) throw ConfigError("jepa: AttentiveProbe::backward needs a forward on this State first");
    const index_t B = s.B_, N = s.N_, D = cfg_.dim, nq = cfg_.num_queries, M = B * N, Q = B * nq;
    const std::size_t nb = blocks_.size();
    // Head: dq2 = dlogits·W_lin (B, n_q·D) = the query-stream residual gradient.
    head_.backward(P, G, s.q2_, s.dlogits_, B, s.dres_q_);
    // q2 = q1 + MLP(LN2(q1)).
    mlp_.backward(P, G, s.ln2_, s.mlp_, s.dres_q_, Q, s.d_ln2_, s.mlp_ws_);
    norm2_.backward(P, G, s.q1_, s.ln2_mean_, s.ln2_rstd_, s.d_ln2_, Q, s.dres_q_, /*accumulate_dx=*/true);
    // q1 = Q + o: the learned queries receive Σ_b dq1_b directly.
    if (G)
      for (index_t b = 0; b < B; ++b) Backend::template axpy<T>(T(1), s.dres_q_ + b * nq * D, G + query_, nq * D);
    // o = attention(q, k, v), do = dq1.
    Backend::template attention_backward<T>(
        attn_shape(B, N), q_operand<const T>(s.q_), k_operand<const T>(s.kv_, N), v_operand<const T>(s.kv_, N),
        q_operand<const T>(s.o_), q_operand<const T>(s.dres_q_), s.lse_, q_operand<T>(s.dq_), k_operand<T>(s.dkv_, N),
        v_operand<T>(s.dkv_, N), backend::AttnMask{});
    // q = Q·W_qᵀ + b_q is shared by the batch: its gradient is the batch sum.
    Backend::template copy<T>(s.dq_, s.dq_sum_, nq * D);
    for (index_t b = 1; b < B; ++b) Backend::template axpy<T>(T(1), s.dq_ + b * nq * D, s.dq_sum_, nq * D);
    q_.backward(P, G, P + query_, s.dq_sum_, nq, G ? s.d_query_ : nullptr);
    if (G) Backend::template axpy<T>(T(1), s.d_query_, G + query_, nq * D);
    // [k | v] = LN1(x)·W_kvᵀ + b_kv.
    kv_.backward(P, G, s.ln1_, s.dkv_, M, s.d_ln1_);
    const T* x_last = nb == 0 ? s.features_ : s.x_[nb - 1];
    if (nb == 0) {  // no blocks: LN1's input gradient is the feature gradient (skipped when null)
      norm1_.backward(P, G, x_last, s.ln1_mean_, s.ln1_rstd_, s.d_ln1_, M, d_features, false);
      return;
    }
    norm1_.backward(P, G, x_last, s.ln1_mean_, s.ln1_rstd_, s.d_ln1_, M, s.dres_x_, false);
    const nn::RopeTables<T> no_rope{};
    for (std::size_t l = nb; l-- > 0;) {
      const T* xin = l == 0 ? s.features_ : s.x_[l - 1];
      blocks_[l].backward(P, G, xin, s.caches_[l], no_rope, s.dres_x_, B, N, s.ws_);
    }
    if (d_features) Backend::template copy<T>(s.dres_x_, d_features, M * D);
  }

  /// Predicted classes (B) of the last forward.
  void predict(const State& s, std::int32_t* pred) const { argmax_rows(s.logits_, s.B_, cfg_.num_classes, pred); }

 private:
  void require_training(const State& s, const char* what) const {
    if (s.mode_ != Mode::training)
      throw ConfigError(detail::cat("jepa: AttentiveProbe::", what,
                                    " needs a State made with Mode::training (this one is inference)"));
  }
  backend::AttnShape attn_shape(index_t B, index_t N) const {
    const index_t Dh = cfg_.head_dim();
    return {B, cfg_.num_heads, cfg_.num_queries, N, Dh, 1.0 / std::sqrt(static_cast<double>(Dh))};
  }
  /// Head h of a (B,n_q,D) buffer (q, o and their gradients).
  template <class U>
  backend::AttnOperand<U> q_operand(U* base) const {
    return {base, cfg_.num_queries * cfg_.dim, cfg_.dim, cfg_.head_dim()};
  }
  /// Head h of the k / v half of the packed (B,N,2D) [k | v] buffer.
  template <class U>
  backend::AttnOperand<U> k_operand(U* base, index_t N) const {
    return {base, N * 2 * cfg_.dim, 2 * cfg_.dim, cfg_.head_dim()};
  }
  template <class U>
  backend::AttnOperand<U> v_operand(U* base, index_t N) const {
    return {base + cfg_.dim, N * 2 * cfg_.dim, 2 * cfg_.dim, cfg_.head_dim()};
  }

  AttentiveProbeConfig cfg_;
  nn::ParamLayout layout_;
  std::size_t query_ = 0;
  std::vector<nn::Block<T, Backend>> blocks_;
  nn::LayerNorm<T, Backend> norm1_, norm2_;
  nn::Linear<T, Backend> q_, kv_, head_;
  nn::Mlp<T, Backend> mlp_;
};

}  // namespace jepa::eval
