// jepa/nn/mlp.hpp — the transformer MLP: GELU (every released JEPA model) or SwiGLU (`use_silu`).
//
//   GELU:    y = fc2(gelu(fc1 x))                 fc1 D→Hd, fc2 Hd→D, exact erf GELU
//   SwiGLU:  y = fc3(silu(fc1 x) ⊙ fc2 x)         fc1, fc2 D→Hd, fc3 Hd→D (recipe_facts §1.1)
// Shapes: x (M,D); hidden (M,Hd). The cache keeps the pre-activations and the activation output.
// Accumulation contract: parameter gradients accumulate; dx is overwritten.
#pragma once

#include <cmath>
#include <string>

#include "jepa/core/dtype.hpp"
#include "jepa/nn/linear.hpp"

namespace jepa::nn {

enum class MlpKind : std::uint8_t { gelu, swiglu };

template <class T>
struct MlpCache {
  T* h1 = nullptr;  // (M,Hd) fc1 x; null in inference (GELU: fc1 and its GELU run as one fused step)
  T* h2 = nullptr;  // (M,Hd) fc2 x (SwiGLU only)
  T* a = nullptr;   // (M,Hd) activation output
};
template <class T>
struct MlpWorkspace {
  T* d_a = nullptr;   // (M,Hd)
  T* d_h1 = nullptr;  // (M,Hd)
  T* d_h2 = nullptr;  // (M,Hd) SwiGLU only
  T* d_x2 = nullptr;  // (M,D)  SwiGLU only: the fc2 path's input gradient before it is summed into dx
};

template <Real T, class Backend>
class Mlp {
 public:
  Mlp() = default;
  Mlp(ParamLayout& L, const std::string& name, index_t dim, index_t hidden, MlpKind kind, int block_ordinal)
      : dim_(dim), hidden_(hidden), kind_(kind) {
    const double rescale = block_ordinal > 0 ? 1.0 / std::sqrt(2.0 * block_ordinal) : 1.0;
    fc1_ = Linear<T, Backend>(L, name + ".fc1", dim, hidden);
    if (kind == MlpKind::gelu) {
      fc2_ = Linear<T, Backend>(L, name + ".fc2", hidden, dim, true, rescale);
    } else {
      fc2_ = Linear<T, Backend>(L, name + ".fc2", dim, hidden);
      fc3_ = Linear<T, Backend>(L, name + ".fc3", hidden, dim, true, rescale);
    }
  }
  index_t hidden() const { return hidden_; }
  MlpKind kind() const { return kind_; }

  void forward(const T* P, const T* x, index_t M, const MlpCache<T>& c, T* y) const {
    if (kind_ == MlpKind::gelu && !c.h1) {  // inference: no pre-activation kept for a backward
      fc1_.forward_gelu(P, x, M, c.a);
      fc2_.forward(P, c.a, M, y);
      return;
    }
    fc1_.forward(P, x, M, c.h1);
    if (kind_ == MlpKind::gelu) {
      Backend::template gelu_forward<T>(c.h1, c.a, M * hidden_);
      fc2_.forward(P, c.a, M, y);
    } else {
      fc2_.forward(P, x, M, c.h2);
      Backend::template swiglu_forward<T>(c.h1, c.h2, c.a, M * hidden_);
      fc3_.forward(P, c.a, M, y);
    }
  }
  void backward(const T* P, T* G, const T* x, const MlpCache<T>& c, const T* dy, index_t M, T* dx,
                const MlpWorkspace<T>& ws) const {
    if (kind_ == MlpKind::gelu) {
      fc2_.backward(P, G, c.a, dy, M, ws.d_a);
      Backend::template gelu_backward<T>(c.h1, ws.d_a, ws.d_h1, M * hidden_);
      fc1_.backward(P, G, x, ws.d_h1, M, dx);
    } else {
      fc3_.backward(P, G, c.a, dy, M, ws.d_a);
      Backend::template swiglu_backward<T>(c.h1, c.h2, ws.d_a, ws.d_h1, ws.d_h2, M * hidden_);
      fc1_.backward(P, G, x, ws.d_h1, M, dx);
      fc2_.backward(P, G, x, ws.d_h2, M, ws.d_x2);  // x feeds fc1 and fc2: dx = d_h1·W1 + d_h2·W2
      Backend::template add<T>(dx, ws.d_x2, dx, M * dim_);
    }
  }

 private:
  index_t dim_ = 0, hidden_ = 0;
  MlpKind kind_ = MlpKind::gelu;
  Linear<T, Backend> fc1_, fc2_, fc3_;
};

}  // namespace jepa::nn
