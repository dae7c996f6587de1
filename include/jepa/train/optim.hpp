// jepa/train/optim.hpp — AdamW with the recipe's parameter groups, gradient-norm clipping and the EMA
// of the target encoder, each one pass over a model's parameter buffers.
//
// Parameter groups (recipe_facts §5.1): every tensor of rank ≥ 2 is decayed (weights, conv kernels,
// mask tokens, modality embeddings); rank-1 tensors (biases, LayerNorm) are not. This is the
// ParamInfo::weight_decay flag of the layout, so groups need no bookkeeping. Moments are fp32 (or the
// parameter type) in the same layout; parameters are the fp32 master weights (to_bf16 makes the
// bf16 copy a mixed-precision forward would read).
// A tensor whose gradient is exactly zero this step did not take part in the loss (a mask token of
// another frames-per-clip group, the image tokenizer in a video-only step): like PyTorch's AdamW for
// .grad = None, it is skipped — no weight decay, no moment update.
//   AdamW (PyTorch order, β = (0.9, 0.999), ε = 1e-8):
//     p ← p(1 − lr·wd);  m ← β1m + (1−β1)g;  v ← β2v + (1−β2)g²;  p ← p − lr/bc1 · m/(√v/√bc2 + ε)
//   clip_grad_norm: n = √(Σ g²) over all groups; if n > c: g ← g·c/(n + 1e-6)
//   EMA: θ̄ ← m·θ̄ + (1 − m)·θ
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "jepa/backend/scalar.hpp"
#include "jepa/config.hpp"
#include "jepa/core/dtype.hpp"
#include "jepa/core/error.hpp"
#include "jepa/nn/param.hpp"

namespace jepa::train {

struct AdamWConfig {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
};

template <class T>
class AdamW {
 public:
  /// One group per (parameters, gradients) pair sharing a layout: typically the encoder and the
  /// predictor of a model.
  struct Group {
    nn::ParameterSet<T>* params;
    nn::ParameterSet<T>* grads;
  };

  AdamW(std::vector<Group> groups, AdamWConfig cfg = {}) : groups_(std::move(groups)), cfg_(cfg) {
    for (const auto& g : groups_) {
      if (!g.params || !g.grads) throw ConfigError("jepa: AdamW group needs parameters and gradients");
      if (g.params->numel() != g.grads->numel())
        throw ShapeError(jepa::detail::cat("jepa: AdamW group parameters (", g.params->numel(), ") and gradients (",
                                     g.grads->numel(), ") differ in size"));
      m_.emplace_back(g.params->layout());
      v_.emplace_back(g.params->layout());
    }
  }

  /// One update with learning rate `lr` and weight decay `wd` (applied to decayed tensors only).
  void step(double lr, double wd) {
    ++t_;
    const double bc1 = 1.0 - std::pow(cfg_.beta1, static_cast<double>(t_));
    const double sqrt_bc2 = std::sqrt(1.0 - std::pow(cfg_.beta2, static_cast<double>(t_)));
    for (std::size_t gi = 0; gi < groups_.size(); ++gi) {
      T* P = groups_[gi].params->data();
      const T* G = groups_[gi].grads->data();
      T* M = m_[gi].data();
      T* V = v_[gi].data();
      for (const auto& p : groups_[gi].params->layout().params()) {
        const double w = p.weight_decay ? wd : 0.0;
        const std::size_t o = p.offset, n = p.numel();
        if (std::all_of(G + o, G + o + n, [](T g) { return g == T(0); })) continue;  // unused this step
        JEPA_OMP(parallel for schedule(static) if (n > 65536))
        for (std::size_t i = o; i < o + n; ++i)
          scalar::adamw_step(P[i], G[i], M[i], V[i], lr, w, cfg_.beta1, cfg_.beta2, cfg_.eps, bc1, sqrt_bc2);
      }
    }
  }

  std::uint64_t steps_taken() const { return t_; }
  void set_steps_taken(std::uint64_t t) { t_ = t; }
  std::vector<nn::ParameterSet<T>>& first_moments() { return m_; }
  std::vector<nn::ParameterSet<T>>& second_moments() { return v_; }
  const std::vector<Group>& groups() const { return groups_; }

 private:
  std::vector<Group> groups_;
  AdamWConfig cfg_;
  std::vector<nn::ParameterSet<T>> m_, v_;
  std::uint64_t t_ = 0;
};

/// √(Σ g²) over every tensor of every gradient set, summed in a fixed order (deterministic).
template <class T>
double grad_norm(const std::vector<nn::ParameterSet<T>*>& grads) {
  double s = 0;
  for (const auto* g : grads)
    for (const auto& p : g->layout().params()) {
      const T* x = g->data() + p.offset;
      double part = 0;
      for (std::size_t i = 0; i < p.numel(); ++i) part += static_cast<double>(x[i]) * static_cast<double>(x[i]);
      s += part;
    }
  return std::sqrt(s);
}

/// PyTorch's clip_grad_norm_: scales all gradients by c/(n + 1e-6) when n > c. Returns n.
template <class T>
double clip_grad_norm(const std::vector<nn::ParameterSet<T>*>& grads, double max_norm) {
  const double n = grad_norm(grads);
  const double coef = max_norm / (n + 1e-6);
  if (coef < 1.0)
    for (auto* g : grads)
      for (std::size_t i = 0; i < g->numel(); ++i) g->data()[i] = static_cast<T>(g->data()[i] * coef);
  return n;
}

/// θ̄ ← m·θ̄ + (1 − m)·θ over the whole buffer (one fused pass; padding stays zero).
template <class T>
void ema_update(nn::ParameterSet<T>& target, const nn::ParameterSet<T>& online, double momentum) {
  if (target.numel() != online.numel())
    throw ShapeError(jepa::detail::cat("jepa: EMA target (", target.numel(), ") and online (", online.numel(),
                                 ") parameter buffers differ in size"));
  T* t = target.data();
  const T* o = online.data();
  const std::size_t n = target.numel();
  JEPA_OMP(parallel for schedule(static) if (n > 65536))
  for (std::size_t i = 0; i < n; ++i) t[i] = scalar::ema_lerp(t[i], o[i], momentum);
}

/// The bf16 copy of fp32 master weights that a mixed-precision forward reads (round to nearest even).
inline void to_bf16(const float* src, bf16* dst, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) dst[i] = bf16(src[i]);
}

}  // namespace jepa::train
