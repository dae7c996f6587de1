// jepa/backend/scalar.hpp — scalar formulas shared by the CPU backend and the CUDA kernels.
//
// DESIGN.md decision 4: each formula is written once, JEPA_HOST_DEVICE, so both backends compute
// the same expression. Vectorised CPU paths must agree with these to rounding (tests check it).
//
//   gelu(x)   = x·Φ(x) = ½·x·(1 + erf(x/√2))                         (exact, erf form)
//   gelu'(x)  = Φ(x) + x·φ(x),  φ(x) = exp(−x²/2)/√(2π)
//   silu(x)   = x·σ(x);  silu'(x) = σ(x)·(1 + x·(1 − σ(x)))
//   smooth_l1(d; β) = ½d²/β if |d| < β else |d| − ½β
#pragma once

#include <cmath>

#include "jepa/config.hpp"

namespace jepa::scalar {

inline constexpr double kSqrtHalf = 0.70710678118654752440;
inline constexpr double kInvSqrt2Pi = 0.39894228040143267794;

template <class T>
JEPA_HOST_DEVICE inline T gelu(T x) {
  using std::erf;
  return T(0.5) * x * (T(1) + erf(x * T(kSqrtHalf)));
}
template <class T>
JEPA_HOST_DEVICE inline T gelu_grad(T x) {
  using std::erf;
  using std::exp;
  return T(0.5) * (T(1) + erf(x * T(kSqrtHalf))) + x * T(kInvSqrt2Pi) * exp(T(-0.5) * x * x);
}
template <class T>
JEPA_HOST_DEVICE inline T sigmoid(T x) {
  using std::exp;
  return T(1) / (T(1) + exp(-x));
}
template <class T>
JEPA_HOST_DEVICE inline T silu(T x) {
  return x * sigmoid(x);
}
template <class T>
JEPA_HOST_DEVICE inline T silu_grad(T x) {
  const T s = sigmoid(x);
  return s * (T(1) + x * (T(1) - s));
}
template <class T>
JEPA_HOST_DEVICE inline T smooth_l1(T d, T beta) {
  const T a = d < T(0) ? -d : d;
  return a < beta ? T(0.5) * d * d / beta : a - T(0.5) * beta;
}

/// One AdamW update of a single scalar, in PyTorch's order (torch.optim.AdamW, non-foreach):
///   p ← p·(1 − lr·wd);  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;
///   p ← p − (lr / bc1) · m / (√v / √bc2 + ε),   bc1 = 1 − β1^t, bc2 = 1 − β2^t
template <class T>
JEPA_HOST_DEVICE inline void adamw_step(T& p, T g, T& m, T& v, double lr, double wd, double beta1, double beta2,
                                        double eps, double bc1, double sqrt_bc2) {
  using std::sqrt;
  p = static_cast<T>(p * (1.0 - lr * wd));
  m = static_cast<T>(beta1 * m + (1.0 - beta1) * g);
  v = static_cast<T>(beta2 * v + (1.0 - beta2) * g * g);
  const double denom = sqrt(static_cast<double>(v)) / sqrt_bc2 + eps;
  p = static_cast<T>(p - (lr / bc1) * (m / denom));
}
/// EMA of the target encoder: θ̄ ← m·θ̄ + (1 − m)·θ.
template <class T>
JEPA_HOST_DEVICE inline T ema_lerp(T target, T online, double momentum) {
  return static_cast<T>(momentum * target + (1.0 - momentum) * online);
}

}  // namespace jepa::scalar
