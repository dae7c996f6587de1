// jepa/nn/linear.hpp — y = x·Wᵀ + b.
//
// Shapes: x (M, in), W (out, in) [PyTorch layout], b (out), y (M, out); M = B·N rows.
// Accumulation contract: dW += dyᵀ·x and db += Σ_rows dy (parameter gradients accumulate, which is
// what gradient accumulation over micro-batches needs); dx = dy·W is OVERWRITTEN (skipped if null).
#pragma once

#include <string>

#include "jepa/core/dtype.hpp"
#include "jepa/nn/param.hpp"

namespace jepa::nn {

template <Real T, class Backend>
class Linear {
 public:
  Linear() = default;
  /// Registers `<name>.weight` (out, in) and, if bias, `<name>.bias` (out). `init_scale` multiplies
  /// the trunc-normal weight (the residual rescale 1/√(2l)).
  Linear(ParamLayout& L, const std::string& name, index_t in, index_t out, bool bias = true,
         double init_scale = 1.0)
      : in_(in), out_(out), has_bias_(bias) {
    w_ = L.add(name + ".weight", {out, in}, Init::trunc_normal, 0.02, init_scale);
    if (bias) b_ = L.add(name + ".bias", {out}, Init::zeros);
  }

  index_t in_features() const { return in_; }
  index_t out_features() const { return out_; }

  void forward(const T* P, const T* x, index_t M, T* y) const {
    Backend::template linear_forward<T>(x, P + w_, has_bias_ ? P + b_ : nullptr, y, M, in_, out_);
  }
  /// y = gelu(x·Wᵀ + b) without the pre-activation (inference; one fused matmul where the backend can).
  void forward_gelu(const T* P, const T* x, index_t M, T* y) const {
    Backend::template linear_gelu_forward<T>(x, P + w_, has_bias_ ? P + b_ : nullptr, y, M, in_, out_);
  }
  /// G may be null (no parameter gradients, e.g. a frozen module); dx may be null.
  void backward(const T* P, T* G, const T* x, const T* dy, index_t M, T* dx) const {
    Backend::template linear_backward<T>(x, P + w_, dy, dx, G ? G + w_ : nullptr,
                                         (G && has_bias_) ? G + b_ : nullptr, M, in_, out_);
  }

 private:
  index_t in_ = 0, out_ = 0;
  bool has_bias_ = true;
  std::size_t w_ = 0, b_ = 0;
};

}  // namespace jepa::nn
