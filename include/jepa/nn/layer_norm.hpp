// jepa/nn/layer_norm.hpp — LayerNorm over the channel dimension (eps 1e-6 in every JEPA model).
//
//   y = (x − μ)/√(σ² + ε) ⊙ w + b,  per row of an (M, D) matrix; saves μ, 1/√(σ²+ε) (M) for backward.
// Accumulation contract: dw, db accumulate; dx is overwritten, or accumulated when the caller asks
// (the residual stream: a block adds the LN input gradient onto the running residual gradient).
#pragma once

#include <string>

#include "jepa/core/dtype.hpp"
#include "jepa/nn/param.hpp"

namespace jepa::nn {

template <Real T, class Backend>
class LayerNorm {
 public:
  LayerNorm() = default;
  LayerNorm(ParamLayout& L, const std::string& name, index_t dim, double eps = 1e-6) : dim_(dim), eps_(eps) {
    w_ = L.add(name + ".weight", {dim}, Init::ones);
    b_ = L.add(name + ".bias", {dim}, Init::zeros);
  }
  index_t dim() const { return dim_; }

  void forward(const T* P, const T* x, index_t M, T* y, T* mean, T* rstd) const {
    Backend::template layer_norm_forward<T>(x, P + w_, P + b_, y, mean, rstd, M, dim_, static_cast<T>(eps_));
  }
  /// sum = a + r (the residual stream), then y = LN(sum). A backend that defines
  /// `add_layer_norm_forward` does both in one pass (backend::Cuda); otherwise add, then forward.
  /// The values are the same either way; sum may alias a or r.
  void forward_residual(const T* P, const T* a, const T* r, T* sum, index_t M, T* y, T* mean, T* rstd) const {
    if constexpr (requires {
                    Backend::template add_layer_norm_forward<T>(a, r, sum, P, P, y, mean, rstd, M, dim_, T{});
                  }) {
      Backend::template add_layer_norm_forward<T>(a, r, sum, P + w_, P + b_, y, mean, rstd, M, dim_,
                                                  static_cast<T>(eps_));
    } else {
      Backend::template add<T>(a, r, sum, M * dim_);
      forward(P, sum, M, y, mean, rstd);
    }
  }
  void backward(const T* P, T* G, const T* x, const T* mean, const T* rstd, const T* dy, index_t M, T* dx,
                bool accumulate_dx) const {
    Backend::template layer_norm_backward<T>(x, P + w_, mean, rstd, dy, dx, G ? G + w_ : nullptr,
                                             G ? G + b_ : nullptr, M, dim_, accumulate_dx);
  }

 private:
  index_t dim_ = 0;
  double eps_ = 1e-6;
  std::size_t w_ = 0, b_ = 0;
};

}  // namespace jepa::nn
