// jepa/train/schedules.hpp — the recipe's learning-rate, weight-decay and EMA schedules, exactly as
// coded (recipe_facts §5.1). Schedulers step once per iteration BEFORE the forward pass, with the
// step counter starting at 1; horizons use T_max = int(ipe_scale·epochs·ipe), so some schedules never
// reach their nominal end (pitfall 9.1.12).
//
//   WarmupCosine:  s < W:  lr = start + (s/W)·(ref − start)
//                  s ≥ W:  q = (s − W)/(T_max − W), lr = max(final, final + (ref − final)·½(1 + cos πq))
//                  (V-JEPA 2's "constant" phase is this with ref = final.)
//   LinearDecay:   lr = ref + (s/T_max)·(final − ref)      (2 / 2.1 cooldown: ends near 1.06e-4, not 1e-6)
//   CosineWD:      wd = final + (ref − final)·½(1 + cos(π·s/T_max)), clamped not to pass `final`
//   WSD (2-AC):    linear warmup start→ref over W, constant until T_max − anneal, linear to final
//   EMA momentum:  m_s = ema0 + s·(ema1 − ema0)/horizon   (2.1: horizon without ipe_scale, m ≤ ema1)
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <optional>
#include <string>

#include "jepa/core/error.hpp"

namespace jepa::train {

struct WarmupCosine {
  double start = 1e-4, ref = 5.25e-4, final = 5.25e-4;
  std::uint64_t warmup = 12000, t_max = 15000;
  double operator()(std::uint64_t s) const {
    if (s < warmup) return start + static_cast<double>(s) / static_cast<double>(warmup) * (ref - start);
    const double q = static_cast<double>(s - warmup) / static_cast<double>(std::max<std::uint64_t>(1, t_max - warmup));
    return std::max(final, final + (ref - final) * 0.5 * (1.0 + std::cos(std::numbers::pi * q)));
  }
};

struct LinearDecay {
  double ref = 5.25e-4, final = 1e-6;
  std::uint64_t t_max = 15000;
  double operator()(std::uint64_t s) const {
    return ref + static_cast<double>(s) / static_cast<double>(t_max) * (final - ref);
  }
};

struct CosineWD {
  double ref = 0.04, final = 0.04;
  std::uint64_t t_max = 15000;
  double operator()(std::uint64_t s) const {
    const double wd = final + (ref - final) * 0.5 * (1.0 + std::cos(std::numbers::pi * static_cast<double>(s) / static_cast<double>(t_max)));
    return final <= ref ? std::max(final, wd) : std::min(final, wd);
  }
};

struct WSD {
  double start = 0, ref = 4.25e-4, final = 0;
  std::uint64_t warmup = 4500, t_max = 94500, anneal = 4500;
  double operator()(std::uint64_t s) const {
    if (s < warmup) return start + static_cast<double>(s) / static_cast<double>(warmup) * (ref - start);
    if (s + anneal < t_max) return ref;
    const double q = std::min(1.0, static_cast<double>(s - (t_max - anneal)) / static_cast<double>(std::max<std::uint64_t>(1, anneal)));
    return ref + q * (final - ref);
  }
};

struct EmaSchedule {
  double ema0 = 0.99925, ema1 = 0.99925;
  double horizon = 1;  // steps over which ema0 → ema1
  bool clamp = false;  // 2.1 clamps m ≤ ema1
  double operator()(std::uint64_t s) const {
    const double m = ema0 + static_cast<double>(s) * (ema1 - ema0) / horizon;
    return clamp ? std::min(m, ema1) : m;
  }
};

/// The learning-rate schedule of one training stage.
struct LrSchedule {
  enum class Kind { warmup_cosine, linear_decay, wsd } kind = Kind::warmup_cosine;
  WarmupCosine cosine;
  LinearDecay decay;
  WSD wsd;
  double operator()(std::uint64_t s) const {
    switch (kind) {
      case Kind::warmup_cosine: return cosine(s);
      case Kind::linear_decay: return decay(s);
      case Kind::wsd: return wsd(s);
    }
    return 0;
  }
};

/// How a stage sets the 2.1 dense context term (losses::ContextLoss): the official configs differ
/// between stages. Pretraining: λ ramps (`lambda_progressive: true`, 0 before `start`, linear to the
/// value at `end`) and each context token is weighted by 1/√dist (`weight_distance_loss: true`). The
/// cooldown configs set `lambda_progressive: false` (λ held at its value, 0.5) and
/// `weight_distance_loss: false` (every context token weighs 1). The trainer applies the stage's
/// settings to the model's loss policy before every step of the stage, so a resume inside a stage
/// gets them too; λ's value, start and end stay those of the policy.
struct ContextTermSettings {
  bool lambda_progressive = true;
  bool weight_distance = true;
};

/// A stage of the recipe in the papers' units: epochs of `ipe` iterations, horizons scaled by
/// ipe_scale. `steps()` is what the loop actually runs (epochs·ipe).
struct Stage {
  std::string name = "pretrain";
  LrSchedule lr;
  CosineWD wd;
  EmaSchedule ema;
  double clip_grad = 0;             // 0 = no clipping (V-JEPA 1: 10, after warmup only)
  std::uint64_t clip_after = 0;     // clipping starts after this step
  /// The 2.1 context term in this stage; nullopt = as the model's loss policy was constructed.
  /// Set on a stage of a model without a context term, it is a ConfigError (Trainer construction).
  std::optional<ContextTermSettings> context;
  std::uint64_t epochs = 800, ipe = 300;
  double ipe_scale = 1.25;
  std::uint64_t steps() const { return epochs * ipe; }
  std::uint64_t horizon() const { return static_cast<std::uint64_t>(ipe_scale * static_cast<double>(epochs * ipe)); }
};

/// Recipe stages (recipe_facts §5.2). `epochs`/`ipe` may be rescaled for short runs with scaled().
struct Recipes {
  /// V-JEPA 2 pretraining: warmup 1e-4 → 5.25e-4 over 40 epochs, then constant; WD 0.04; EMA 0.99925.
  static Stage vjepa2_pretrain(std::uint64_t epochs = 800, std::uint64_t ipe = 300, double ref_lr = 5.25e-4) {
    Stage s;
    s.name = "pretrain";
    s.epochs = epochs, s.ipe = ipe, s.ipe_scale = 1.25;
    s.lr.kind = LrSchedule::Kind::warmup_cosine;
    s.lr.cosine = {1e-4, ref_lr, ref_lr, 40 * ipe, s.horizon()};
    s.wd = {0.04, 0.04, s.horizon()};
    s.ema = {0.99925, 0.99925, static_cast<double>(s.horizon()), false};
    return s;
  }
  /// V-JEPA 2 cooldown: linear decay from 5.25e-4 toward 1e-6 over T_max = 1.25·40·300 (ends ≈ 1.06e-4).
  static Stage vjepa2_cooldown(std::uint64_t epochs = 40, std::uint64_t ipe = 300, double ref_lr = 5.25e-4) {
    Stage s = vjepa2_pretrain(epochs, ipe, ref_lr);
    s.name = "cooldown";
    s.lr.kind = LrSchedule::Kind::linear_decay;
    s.lr.decay = {ref_lr, 1e-6, s.horizon()};
    return s;
  }
  /// V-JEPA 2.1: as V-JEPA 2 with peak 6e-4; EMA clamped; the cooldown ends near 1.21e-4.
  /// The context term ramps λ and weights by 1/√dist (ContextTermSettings).
  static Stage vjepa21_pretrain(std::uint64_t epochs = 1000, std::uint64_t ipe = 300) {
    Stage s = vjepa2_pretrain(epochs, ipe, 6e-4);
    s.ema = {0.99925, 0.99925, static_cast<double>(epochs * ipe), true};
    s.context = ContextTermSettings{true, true};
    return s;
  }
  /// The cooldown holds λ constant at its value (0.5) and drops the distance weighting.
  static Stage vjepa21_cooldown(std::uint64_t epochs = 40, std::uint64_t ipe = 300) {
    Stage s = vjepa2_cooldown(epochs, ipe, 6e-4);
    s.ema = {0.99925, 0.99925, static_cast<double>(epochs * ipe), true};
    s.context = ContextTermSettings{false, false};
    return s;
  }
  /// V-JEPA 1: 2e-4 → 6.25e-4 over 40 epochs then cosine to 1e-6 (horizon 112.5k); WD 0.04 → 0.4
  /// cosine; EMA 0.998 → 1.0; clip 10 after warmup.
  static Stage vjepa(std::uint64_t epochs = 300, std::uint64_t ipe = 300) {
    Stage s;
    s.name = "pretrain";
    s.epochs = epochs, s.ipe = ipe, s.ipe_scale = 1.25;
    s.lr.cosine = {2e-4, 6.25e-4, 1e-6, 40 * ipe, s.horizon()};
    s.wd = {0.04, 0.4, s.horizon()};
    s.ema = {0.998, 1.0, static_cast<double>(s.horizon()), false};
    s.clip_grad = 10.0;
    s.clip_after = 40 * ipe;
    return s;
  }
  /// I-JEPA: 2e-4 → 1e-3 over 40 epochs, cosine to 1e-6 (ipe_scale 1); WD 0.04 → 0.4; EMA 0.996 → 1.0.
  static Stage ijepa(std::uint64_t epochs = 300, std::uint64_t ipe = 300) {
    Stage s;
    s.name = "pretrain";
    s.epochs = epochs, s.ipe = ipe, s.ipe_scale = 1.0;
    s.lr.cosine = {2e-4, 1e-3, 1e-6, 40 * ipe, s.horizon()};
    s.wd = {0.04, 0.4, s.horizon()};
    s.ema = {0.996, 1.0, static_cast<double>(s.horizon()), false};
    return s;
  }
};

}  // namespace jepa::train
