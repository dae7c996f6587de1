// jepa/train/ac_objective.hpp — the V-JEPA 2-AC training loss: teacher forcing plus an
// auto-regressive rollout (recipe_facts §6.4), forward and backward.
//
// Given normalised frame features h_0 … h_{T−1} (the frozen encoder's per-frame output, layer-normed:
// models/frame_encoder.hpp), actions a_0 … a_{T−2} and states s_0 … s_{T−1} of B trajectories, with
// LN the non-affine layer norm (eps 1e-5) and P the AC predictor:
//   teacher forcing:  ẑ_{1:T−1} = LN(P(h_{0:T−2}, a_{0:T−2}, s_{0:T−2}))
//                     L_tf   = mean |ẑ_{1:T−1} − h_{1:T−1}|            over B·(T−1)·HW·D elements
//   rollout (K = auto_steps, 2 in the recipe): for n = 1 … K−1
//                     ẑ_{n+1} = LN(P([h_0, ẑ_1, …, ẑ_n], a_{0:n}, s_{0:n}))  at its last step
//                     L_roll = mean |[ẑ_1 … ẑ_K] − h_{1:K}|             over B·K·HW·D elements
//   L = L_tf + L_roll
// ẑ_1 is the teacher-forced prediction, with its gradient: nothing is stopped (the recipe's June 2025
// form, predicting ẑ_2 from (h_0, ẑ_1)); the states are the ground-truth ones.
// backward() walks the rollout passes from the last to the first, adding each pass's input gradient
// onto the predictions it consumed, then the teacher-forcing pass.
//
// Accumulation contract: backward() ACCUMULATES into the predictor's parameter gradients G.
#pragma once

#include <cmath>
#include <optional>
#include <vector>

#include "jepa/core/error.hpp"
#include "jepa/models/ac_predictor.hpp"

namespace jepa::train {

struct AcLossReport {
  double loss = 0;             // L_tf + L_roll
  double teacher_forcing = 0;  // L_tf
  double rollout = 0;          // L_roll
  double copy_baseline = 0;    // diagnostic: mean |h_t − h_{t+1}|, L_tf of a model that predicts "nothing moves"
};

template <class Predictor>
class AcObjective {
 public:
  using T = typename Predictor::value_type;
  using Backend = typename Predictor::backend_type;

  /// B trajectories of `frames` frames each; rollout over `auto_steps` predictions (1 ≤ K ≤ frames−1).
  AcObjective(const Predictor& pred, index_t batch, index_t frames, index_t auto_steps = 2, double ln_eps = 1e-5)
      : pred_(&pred), B_(batch), T_(frames), K_(auto_steps), eps_(ln_eps) {
    check_field<ShapeError>(batch >= 1, "AcObjective batch", batch, "must be >= 1");
    check_field<ShapeError>(frames >= 2, "AcObjective frames", frames,
                            "teacher forcing predicts frames 1..T-1 from frames 0..T-2, so T >= 2");
    check_field(auto_steps >= 1 && auto_steps <= frames - 1, "AcObjective auto_steps", auto_steps,
                jepa::detail::cat("the rollout predicts frames 1..K with actions 0..K-1: need 1 <= K <= frames - 1 = ",
                                  frames - 1));
    const auto& c = pred.config();
    HW_ = c.tokens_per_frame(), D_ = c.encoder_dim, A_ = c.action_dim, Sd_ = c.state_dim;
    tf_.emplace(pred.make_state(models::Mode::training, B_, T_ - 1));
    hin_.resize(sz(B_ * (T_ - 1) * HW_ * D_));
    s_tf_.resize(sz(B_ * (T_ - 1) * Sd_));
    ztf_.resize(sz(B_ * (T_ - 1) * HW_ * D_));
    ztf_mean_.resize(sz(B_ * (T_ - 1) * HW_));
    ztf_rstd_.resize(ztf_mean_.size());
    d_ztf_.resize(ztf_.size());
    d_out_tf_.resize(ztf_.size());
    for (index_t n = 1; n < K_; ++n) {
      Pass p;
      p.state.emplace(pred.make_state(models::Mode::training, B_, n + 1));
      p.in.resize(sz(B_ * (n + 1) * HW_ * D_));
      p.a.resize(sz(B_ * (n + 1) * A_));
      p.s.resize(sz(B_ * (n + 1) * Sd_));
      p.raw.resize(sz(B_ * HW_ * D_));
      p.z.resize(p.raw.size());
      p.mean.resize(sz(B_ * HW_));
      p.rstd.resize(p.mean.size());
      p.dz.resize(p.raw.size());
      p.draw.resize(p.raw.size());
      p.dout.resize(p.in.size());
      p.din.resize(p.in.size());
      passes_.push_back(std::move(p));
    }
  }

  index_t batch() const { return B_; }
  index_t frames() const { return T_; }
  index_t auto_steps() const { return K_; }

  /// h (B, T·HW, D) normalised frame features; actions (B, T−1, A); states (B, T, Sd). The three
  /// buffers are read again by backward(): keep them alive until then.
  AcLossReport forward(const T* P, const T* h, const T* actions, const T* states) {
    if (!h || !actions || !states) throw ShapeError("jepa: AcObjective::forward: features, actions or states are empty (null)");
    const index_t B = B_, Tm = T_ - 1, HW = HW_, D = D_, F = HW * D;
    h_ = h;
    // Teacher forcing on frames 0..T−2 with actions 0..T−2 and states 0..T−2.
    for (index_t b = 0; b < B; ++b) {
      Backend::template copy<T>(h + b * T_ * F, hin_.data() + b * Tm * F, Tm * F);
      Backend::template copy<T>(states + b * T_ * Sd_, s_tf_.data() + b * Tm * Sd_, Tm * Sd_);
    }
    pred_->forward(P, TensorView<const T, 3>(hin_.data(), {B, Tm * HW, D}), TensorView<const T, 3>(actions, {B, Tm, A_}),
                   TensorView<const T, 3>(s_tf_.data(), {B, Tm, Sd_}), *tf_);
    Backend::template layer_norm_forward<T>(pred_->output(*tf_).data(), nullptr, nullptr, ztf_.data(), ztf_mean_.data(),
                                            ztf_rstd_.data(), B * Tm * HW, D, static_cast<T>(eps_));
    AcLossReport r;
    const double inv_tf = 1.0 / static_cast<double>(B * Tm * F);
    for (index_t b = 0; b < B; ++b) {
      r.teacher_forcing += l1(ztf_.data() + b * Tm * F, h + (b * T_ + 1) * F, Tm * F, inv_tf, d_ztf_.data() + b * Tm * F, false);
      for (index_t i = 0; i < Tm * F; ++i)
        r.copy_baseline += std::fabs(static_cast<double>(h[b * T_ * F + i]) - static_cast<double>(h[b * T_ * F + F + i]));
    }
    r.copy_baseline *= inv_tf;
    // Rollout: pass n feeds [h_0, ẑ_1 … ẑ_n] with actions/states 0..n and keeps its last step.
    for (index_t n = 1; n < K_; ++n) {
      Pass& p = passes_[static_cast<std::size_t>(n - 1)];
      for (index_t b = 0; b < B; ++b) {
        T* in = p.in.data() + b * (n + 1) * F;
        Backend::template copy<T>(h + b * T_ * F, in, F);
        Backend::template copy<T>(ztf_.data() + b * Tm * F, in + F, F);
        for (index_t j = 2; j <= n; ++j) Backend::template copy<T>(passes_[j - 2].z.data() + b * F, in + j * F, F);
        Backend::template copy<T>(actions + b * Tm * A_, p.a.data() + b * (n + 1) * A_, (n + 1) * A_);
        Backend::template copy<T>(states + b * T_ * Sd_, p.s.data() + b * (n + 1) * Sd_, (n + 1) * Sd_);
      }
      pred_->forward(P, TensorView<const T, 3>(p.in.data(), {B, (n + 1) * HW, D}),
                     TensorView<const T, 3>(p.a.data(), {B, n + 1, A_}), TensorView<const T, 3>(p.s.data(), {B, n + 1, Sd_}),
                     *p.state);
      const T* out = pred_->output(*p.state).data();
      for (index_t b = 0; b < B; ++b) Backend::template copy<T>(out + (b * (n + 1) + n) * F, p.raw.data() + b * F, F);
      Backend::template layer_norm_forward<T>(p.raw.data(), nullptr, nullptr, p.z.data(), p.mean.data(), p.rstd.data(),
                                              B * HW, D, static_cast<T>(eps_));
    }
    const double inv_roll = 1.0 / static_cast<double>(B * K_ * F);
    for (index_t b = 0; b < B; ++b) {
      // ẑ_1 is the teacher-forced prediction of frame 1: its rollout gradient adds onto d_ztf.
      r.rollout += l1(ztf_.data() + b * Tm * F, h + (b * T_ + 1) * F, F, inv_roll, d_ztf_.data() + b * Tm * F, true);
      for (index_t k = 2; k <= K_; ++k) {
        Pass& p = passes_[static_cast<std::size_t>(k - 2)];
        r.rollout += l1(p.z.data() + b * F, h + (b * T_ + k) * F, F, inv_roll, p.dz.data() + b * F, false);
      }
    }
    r.loss = r.teacher_forcing + r.rollout;
    if (!std::isfinite(r.loss))
      throw NumericError(jepa::detail::cat("jepa: the AC loss is not finite (teacher forcing ", r.teacher_forcing,
                                           ", rollout ", r.rollout, ")"));
    have_forward_ = true;
    return r;
  }

  /// Accumulates ∂L/∂θ of the last forward into G.
  void backward(const T* P, T* G) {
    if (!have_forward_) throw ConfigError("jepa: AcObjective::backward needs a forward first");
    have_forward_ = false;
    const index_t B = B_, Tm = T_ - 1, HW = HW_, D = D_, F = HW * D;
    for (index_t n = K_ - 1; n >= 1; --n) {
      Pass& p = passes_[static_cast<std::size_t>(n - 1)];
      // d ẑ_{n+1} is complete: only the loss and the later passes (already walked) consume it.
      std::fill(p.dout.begin(), p.dout.end(), T(0));
      Backend::template layer_norm_backward<T>(p.raw.data(), nullptr, p.mean.data(), p.rstd.data(), p.dz.data(),
                                               p.draw.data(), nullptr, nullptr, B * HW, D, false);
      for (index_t b = 0; b < B; ++b) Backend::template copy<T>(p.draw.data() + b * F, p.dout.data() + (b * (n + 1) + n) * F, F);
      pred_->backward(P, G, *p.state, p.dout.data(), p.din.data());
      for (index_t b = 0; b < B; ++b) {
        const T* din = p.din.data() + b * (n + 1) * F;
        Backend::template axpy<T>(T(1), din + F, d_ztf_.data() + b * Tm * F, F);  // → ẑ_1
        for (index_t j = 2; j <= n; ++j) Backend::template axpy<T>(T(1), din + j * F, passes_[j - 2].dz.data() + b * F, F);
      }
    }
    Backend::template layer_norm_backward<T>(pred_->output(*tf_).data(), nullptr, ztf_mean_.data(), ztf_rstd_.data(),
                                             d_ztf_.data(), d_out_tf_.data(), nullptr, nullptr, B * Tm * HW, D, false);
    pred_->backward(P, G, *tf_, d_out_tf_.data(), nullptr);
  }

  /// Teacher-forced predictions ẑ_{1:T−1}, normalised: (B, (T−1)·HW, D).
  TensorView<const T, 3> teacher_forced() const { return {ztf_.data(), {B_, (T_ - 1) * HW_, D_}}; }
  /// Rollout prediction ẑ_k for k = 2 … K (normalised, (B, HW, D)); ẑ_1 is teacher_forced() frame 0.
  TensorView<const T, 3> rollout(index_t k) const {
    if (k < 2 || k > K_) fail_field<IndexError>("rollout step k", k, jepa::detail::cat("must be in [2, ", K_, "]"));
    return {passes_[static_cast<std::size_t>(k - 2)].z.data(), {B_, HW_, D_}};
  }

 private:
  struct Pass {
    std::optional<typename Predictor::State> state;
    std::vector<T> in, a, s, raw, z, mean, rstd, dz, draw, dout, din;
  };
  static std::size_t sz(index_t n) { return static_cast<std::size_t>(n); }

  /// Σ |x − y|·scale into the return value; g = sign(x − y)·scale (0 at 0, as PyTorch), written or added.
  static double l1(const T* x, const T* y, index_t n, double scale, T* g, bool add) {
    double s = 0;
    for (index_t i = 0; i < n; ++i) {
      const double d = static_cast<double>(x[i]) - static_cast<double>(y[i]);
      s += std::fabs(d);
      const T gi = static_cast<T>(d > 0 ? scale : (d < 0 ? -scale : 0.0));
      g[i] = add ? g[i] + gi : gi;
    }
    return s * scale;
  }

  const Predictor* pred_;
  index_t B_, T_, K_;
  double eps_;
  index_t HW_ = 0, D_ = 0, A_ = 0, Sd_ = 0;
  const T* h_ = nullptr;
  std::optional<typename Predictor::State> tf_;
  std::vector<T> hin_, s_tf_, ztf_, ztf_mean_, ztf_rstd_, d_ztf_, d_out_tf_;
  std::vector<Pass> passes_;
  bool have_forward_ = false;
};

}  // namespace jepa::train
