// The complete twin of ko_loss_policy.cpp, and the short way: derive from MaskedLoss and override ρ.
#include <cstdint>

#include "jepa/losses/losses.hpp"

struct MyLoss {
  double value(double d) const { return d * d * d * d; }
  double grad(double d) const { return 4 * d * d * d; }
  static constexpr bool has_context_term = false;
  double level_weight(int, int levels) const { return 1.0 / levels; }
  double context_lambda(std::uint64_t) const { return 0.0; }
  bool context_weighting() const { return false; }
};
static_assert(jepa::losses::detail::check_loss_policy<MyLoss>());
static_assert(jepa::losses::LossPolicy<MyLoss>);

struct Quartic : jepa::losses::MaskedLoss<> {
  double value(double d) const { return d * d * d * d; }
  double grad(double d) const { return 4 * d * d * d; }
};
static_assert(jepa::losses::LossPolicy<Quartic>);

// The device-ready form: the distance in its own struct (JEPA_HOST_DEVICE, trivially copyable), the
// policy from MaskedLoss<Rho> — what a device backend's loss kernel receives as `distance_type`.
struct QuarticRho {
  JEPA_HOST_DEVICE double value(double d) const { return d * d * d * d; }
  JEPA_HOST_DEVICE double grad(double d) const { return 4 * d * d * d; }
};
using DeviceQuartic = jepa::losses::MaskedLoss<QuarticRho>;
static_assert(jepa::losses::detail::check_loss_policy<DeviceQuartic>());
static_assert(jepa::losses::detail::check_device_distance<DeviceQuartic>());
static_assert(jepa::losses::detail::check_device_distance<jepa::losses::ContextLoss<jepa::losses::SmoothL1>>());
