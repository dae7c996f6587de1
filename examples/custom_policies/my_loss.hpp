// A user-written loss policy, in the user's own file: log-cosh, a smooth L1.
//
//   ρ(d) = log(cosh(d)) ≈ d²/2 near 0 and |d| − log 2 far away;  ρ'(d) = tanh(d)
// Deriving from jepa::losses::MaskedLoss<> supplies the rest of the LossPolicy concept (equal level
// weights, no context term); only the elementwise distance and its derivative are the user's.
#pragma once

#include <cmath>

#include <jepa/losses/losses.hpp>

struct LogCoshLoss : jepa::losses::MaskedLoss<> {
  double value(double d) const {
    const double a = std::abs(d);
    return a + std::log1p(std::exp(-2 * a)) - std::log(2.0);  // log cosh, stable for large |d|
  }
  double grad(double d) const { return std::tanh(d); }
};
