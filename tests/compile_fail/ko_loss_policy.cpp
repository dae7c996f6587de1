// case missing_value: jepa: LossPolicy must define `double value\(double d\) const`
// case missing_grad: jepa: LossPolicy must define `double grad\(double d\) const`
// case missing_context_flag: jepa: LossPolicy must define `static constexpr bool has_context_term`
// case missing_level_weight: jepa: LossPolicy must define `double level_weight\(int level, int levels\) const`
// case missing_lambda: jepa: LossPolicy must define `double context_lambda\(std::uint64_t step\) const`
// case missing_weighting: jepa: LossPolicy must define `bool context_weighting\(\) const`
// case value_without_grad: jepa: LossPolicy declares value\(d\) and grad\(d\) in different classes
// case device_without_distance_type: jepa: on a device backend the LossPolicy must declare `using distance_type = Rho;`
// case device_value_over_distance_type: jepa: this LossPolicy overrides value\(d\) but its distance_type is the base
// A user loss policy missing one requirement at a time (see ok_loss_policy.cpp for the complete one).
#include <cstdint>

#include "jepa/losses/losses.hpp"

struct MyLoss {
#ifndef JEPA_KO_missing_value
  double value(double d) const { return d * d * d * d; }
#endif
#ifndef JEPA_KO_missing_grad
  double grad(double d) const { return 4 * d * d * d; }
#endif
#ifndef JEPA_KO_missing_context_flag
  static constexpr bool has_context_term = false;
#endif
#ifndef JEPA_KO_missing_level_weight
  double level_weight(int, int levels) const { return 1.0 / levels; }
#endif
#ifndef JEPA_KO_missing_lambda
  double context_lambda(std::uint64_t) const { return 0.0; }
#endif
#ifndef JEPA_KO_missing_weighting
  bool context_weighting() const { return false; }
#endif
};
static_assert(jepa::losses::detail::check_loss_policy<MyLoss>());

#ifdef JEPA_KO_value_without_grad
// Derived from MaskedLoss<L1> with a new rho but L1's derivative left in place.
struct Quadratic : jepa::losses::MaskedLoss<> {
  double value(double d) const { return d * d; }
};
static_assert(jepa::losses::detail::check_loss_policy<Quadratic>());
#endif

#ifdef JEPA_KO_device_without_distance_type
// A complete host policy (MyLoss) is not enough on a device backend: the kernel needs its distance.
static_assert(jepa::losses::detail::check_device_distance<MyLoss>());
#endif

#ifdef JEPA_KO_device_value_over_distance_type
// value/grad overridden together (fine on the host), but distance_type still names the L1 base.
struct Quartic : jepa::losses::MaskedLoss<> {
  double value(double d) const { return d * d * d * d; }
  double grad(double d) const { return 4 * d * d * d; }
};
static_assert(jepa::losses::detail::check_loss_policy<Quartic>());
static_assert(jepa::losses::detail::check_device_distance<Quartic>());
#endif
