// jepa/losses/losses.hpp — loss policies of the JEPA objective (recipe_facts §4, §3.4).
//
// A loss policy supplies the elementwise distance ρ(d) on d = prediction − target and its
// derivative, how the L output levels are weighted, and whether (and how strongly, at a given step)
// the 2.1 dense context term is added:
//   L = Σ_l w_l · mean_{b,k,c}  ρ(ẑ_t − h_t)                                 (prediction term)
//     + λ(step) · Σ_l w_l · mean_{b,k,c}  ω_k · ρ(ẑ_c − h_c)                 (context term, 2.1)
// averaged over the mask generators, with ω_k = 1/√dist_k (distance from context token k to the
// nearest target token) when distance weighting is on, else 1. Equal level weights w_l = 1/L give
// the recipe's "mean over the L·D channels" (2.1 levels are equal-weight channel chunks).
//   L1 (V-JEPA, V-JEPA 2, 2.1, 2-AC): ρ(d) = |d|          ρ'(d) = sign(d)  (0 at 0, as PyTorch)
//   SmoothL1 (I-JEPA, β = 1):        ρ(d) = ½d²/β if |d| < β else |d| − ½β
//   L2:                              ρ(d) = d²             ρ'(d) = 2d
#pragma once

#include <cmath>
#include <concepts>
#include <cstdint>
#include <string_view>
#include <type_traits>
#include <vector>

#include "jepa/backend/scalar.hpp"
#include "jepa/config.hpp"
#include "jepa/core/error.hpp"

namespace jepa::losses {

// ---------------------------------------------------------------------------------------------------
// Elementwise distances (shared host/device formulas).
// ---------------------------------------------------------------------------------------------------
struct L1 {
  static constexpr std::string_view name = "l1";
  JEPA_HOST_DEVICE double value(double d) const { return d < 0 ? -d : d; }
  JEPA_HOST_DEVICE double grad(double d) const { return d > 0 ? 1.0 : (d < 0 ? -1.0 : 0.0); }
};
struct SmoothL1 {
  static constexpr std::string_view name = "smooth_l1";
  double beta = 1.0;
  JEPA_HOST_DEVICE double value(double d) const { return scalar::smooth_l1(d, beta); }
  JEPA_HOST_DEVICE double grad(double d) const {
    const double a = d < 0 ? -d : d;
    return a < beta ? d / beta : (d > 0 ? 1.0 : -1.0);
  }
};
struct L2 {
  static constexpr std::string_view name = "l2";
  JEPA_HOST_DEVICE double value(double d) const { return d * d; }
  JEPA_HOST_DEVICE double grad(double d) const { return 2 * d; }
};

// ---------------------------------------------------------------------------------------------------
// The 2.1 λ schedule (Lambda_LinearWarmupHold): 0 before `start`, linear to λ at `end`, then λ.
// With progressive = false, λ is constant (the 2.1 cooldown).
// ---------------------------------------------------------------------------------------------------
struct LambdaSchedule {
  double value = 0.5;
  std::uint64_t start = 15000, end = 30000;
  bool progressive = true;
  double operator()(std::uint64_t it) const {
    if (!progressive) return value;
    if (it < start) return 0.0;
    if (it >= end) return value;
    return value * static_cast<double>(it - start) / static_cast<double>(end - start);
  }
  void validate() const {
    check_field(std::isfinite(value) && value >= 0, "LambdaSchedule.value", value, "must be finite and >= 0");
    check_field(!progressive || end > start, "LambdaSchedule.end", end, jepa::detail::cat("must be > start (", start, ")"));
  }
};

// ---------------------------------------------------------------------------------------------------
// Loss policies.
// ---------------------------------------------------------------------------------------------------
/// Prediction term only: V-JEPA, V-JEPA 2 (Rho = L1), I-JEPA (Rho = SmoothL1).
template <class Rho = L1>
struct MaskedLoss : Rho {
  static constexpr bool has_context_term = false;
  /// The elementwise distance alone (trivially copyable: what a device kernel receives by value).
  using distance_type = Rho;
  /// Per-level weights (empty = equal, 1/L each).
  std::vector<double> level_weights;
  double level_weight(int l, int L) const { return level_weights.empty() ? 1.0 / L : level_weights.at(static_cast<std::size_t>(l)); }
  double context_lambda(std::uint64_t) const { return 0.0; }
  bool context_weighting() const { return false; }
};

/// V-JEPA 2.1: prediction term + λ(step)·(distance-weighted) dense context term.
template <class Rho = L1>
struct ContextLoss : Rho {
  static constexpr bool has_context_term = true;
  using distance_type = Rho;
  std::vector<double> level_weights;
  LambdaSchedule lambda;
  /// 1/√dist weights (2.1 pretraining); false in the 2.1 cooldown.
  bool weight_distance = true;
  double level_weight(int l, int L) const { return level_weights.empty() ? 1.0 / L : level_weights.at(static_cast<std::size_t>(l)); }
  double context_lambda(std::uint64_t step) const { return lambda(step); }
  bool context_weighting() const { return weight_distance; }
};

// ---------------------------------------------------------------------------------------------------
// The concept, and a checker that names the first missing requirement.
// ---------------------------------------------------------------------------------------------------
template <class P>
concept LossPolicy = requires(const P& p, double d, std::uint64_t step, int l) {
  { p.value(d) } -> std::convertible_to<double>;
  { p.grad(d) } -> std::convertible_to<double>;
  { p.level_weight(l, l) } -> std::convertible_to<double>;
  { p.context_lambda(step) } -> std::convertible_to<double>;
  { p.context_weighting() } -> std::convertible_to<bool>;
  { P::has_context_term } -> std::convertible_to<bool>;
};

namespace detail {
/// The class that declares a (non-overloaded) member function: for one inherited from a base, the base.
template <class M>
struct declaring_class {};
template <class C, class R, class... A>
struct declaring_class<R (C::*)(A...) const> { using type = C; };
template <class C, class R, class... A>
struct declaring_class<R (C::*)(A...) const noexcept> { using type = C; };
template <class C, class R, class... A>
struct declaring_class<R (C::*)(A...)> { using type = C; };
template <class C, class R, class... A>
struct declaring_class<R (C::*)(A...) noexcept> { using type = C; };

template <class P>
constexpr bool check_loss_policy() {
  static_assert(requires(const P& p, double d) { { p.value(d) } -> std::convertible_to<double>; },
                "jepa: LossPolicy must define `double value(double d) const`: the elementwise distance rho(d) of d = prediction - target");
  static_assert(requires(const P& p, double d) { { p.grad(d) } -> std::convertible_to<double>; },
                "jepa: LossPolicy must define `double grad(double d) const`: the derivative rho'(d)");
  // A policy derived from MaskedLoss<L1> that overrides value() alone would inherit L1's sign(d) as
  // its derivative and train on a gradient that is not the loss's: value and grad must come together.
  if constexpr (requires {
                  typename declaring_class<decltype(&P::value)>::type;
                  typename declaring_class<decltype(&P::grad)>::type;
                })
    static_assert(std::is_same_v<typename declaring_class<decltype(&P::value)>::type,
                                 typename declaring_class<decltype(&P::grad)>::type>,
                  "jepa: LossPolicy declares value(d) and grad(d) in different classes: a loss that overrides "
                  "rho(d) = value(d) must also override grad(d) = rho'(d), or the inherited derivative of its base "
                  "(e.g. L1's sign(d)) would be used");
  static_assert(requires { { P::has_context_term } -> std::convertible_to<bool>; },
                "jepa: LossPolicy must define `static constexpr bool has_context_term` (true for the 2.1 dense context loss)");
  static_assert(requires(const P& p, int l) { { p.level_weight(l, l) } -> std::convertible_to<double>; },
                "jepa: LossPolicy must define `double level_weight(int level, int levels) const` (derive from jepa::losses::MaskedLoss<> for the defaults)");
  static_assert(requires(const P& p, std::uint64_t s) { { p.context_lambda(s) } -> std::convertible_to<double>; },
                "jepa: LossPolicy must define `double context_lambda(std::uint64_t step) const` (0 without a context term)");
  static_assert(requires(const P& p) { { p.context_weighting() } -> std::convertible_to<bool>; },
                "jepa: LossPolicy must define `bool context_weighting() const` (1/sqrt(distance) weights on the context term)");
  return true;
}

/// On a device backend (models::Jepa on backend::Cuda) the loss kernels receive the elementwise
/// distance by value: the policy must name it as `distance_type` (MaskedLoss<Rho> and ContextLoss<Rho>
/// do), a trivially copyable struct with JEPA_HOST_DEVICE value(d) / grad(d), and must not override
/// value(d) on top of it (the kernel would compute the distance_type's, not the policy's).
template <class P>
constexpr bool check_device_distance() {
  static_assert(requires { typename P::distance_type; },
                "jepa: on a device backend the LossPolicy must declare `using distance_type = Rho;`: the trivially "
                "copyable struct with JEPA_HOST_DEVICE value(d) / grad(d) that the device loss kernel receives (derive "
                "from jepa::losses::MaskedLoss<Rho> or ContextLoss<Rho> and write your distance as Rho)");
  if constexpr (requires { typename P::distance_type; }) {
    static_assert(std::is_trivially_copyable_v<typename P::distance_type>,
                  "jepa: LossPolicy::distance_type must be trivially copyable (it is passed to a device kernel)");
    if constexpr (requires { typename declaring_class<decltype(&P::value)>::type; })
      static_assert(std::is_same_v<typename declaring_class<decltype(&P::value)>::type, typename P::distance_type> ||
                        !std::is_base_of_v<typename P::distance_type, P>,
                    "jepa: this LossPolicy overrides value(d) but its distance_type is the base it inherits from: the "
                    "device kernel would compute the base's distance. Put value(d)/grad(d) in their own struct Rho "
                    "and derive from MaskedLoss<Rho> / ContextLoss<Rho>");
  }
  return true;
}
}  // namespace detail

}  // namespace jepa::losses
