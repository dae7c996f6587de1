// case missing_space: jepa: Backend must define `static constexpr jepa::MemorySpace space`
// case missing_arena: jepa: Backend must define `using Arena = ...`
// case missing_memory: jepa: Backend must define `copy\(src, dst, n\)`, `zero\(p, n\)` and `axpy
// case missing_gemm: jepa: Backend must define `template <class T> static void gemm
// case missing_linear: jepa: Backend must define `linear_forward`, `linear_gelu_forward` and `linear_backward`
// case missing_layer_norm: jepa: Backend must define `layer_norm_forward` and `layer_norm_backward`
// case missing_activations: jepa: Backend must define gelu/swiglu forward\+backward
// case missing_rope: jepa: Backend must define `rope_forward` and `rope_backward`
// case missing_attention: jepa: Backend must define fused `attention_forward` and `attention_backward`
// case missing_tokens: jepa: Backend must define im2col_tubelet, col2im_tubelet, gather_rows and scatter_add_rows
// A user backend that forwards to the CPU backend, missing one group of primitives at a time.
#include "jepa/backend/cpu/backend.hpp"
#include "jepa/models/vit_encoder.hpp"
#include "jepa/tokenizers/tubelet.hpp"

#define JEPA_FWD(fn) \
  template <class T, class... A> static void fn(A... a) { C::fn<T>(a...); }

struct MyBackend {
  using C = jepa::backend::Cpu;
#ifndef JEPA_KO_missing_space
  static constexpr jepa::MemorySpace space = jepa::MemorySpace::host;
#endif
#ifndef JEPA_KO_missing_arena
  using Arena = jepa::HostArena;
#endif
#ifndef JEPA_KO_missing_memory
  JEPA_FWD(copy)
  JEPA_FWD(zero)
  JEPA_FWD(axpy)
#endif
#ifndef JEPA_KO_missing_gemm
  JEPA_FWD(gemm)
#endif
#ifndef JEPA_KO_missing_linear
  JEPA_FWD(linear_forward)
  JEPA_FWD(linear_gelu_forward)
  JEPA_FWD(linear_backward)
#endif
#ifndef JEPA_KO_missing_layer_norm
  JEPA_FWD(layer_norm_forward)
  JEPA_FWD(layer_norm_backward)
#endif
#ifndef JEPA_KO_missing_activations
  JEPA_FWD(gelu_forward)
  JEPA_FWD(gelu_backward)
  JEPA_FWD(swiglu_forward)
  JEPA_FWD(swiglu_backward)
  JEPA_FWD(add)
  JEPA_FWD(add_row_vector)
  JEPA_FWD(sum_rows_accumulate)
#endif
#ifndef JEPA_KO_missing_rope
  JEPA_FWD(rope_forward)
  JEPA_FWD(rope_backward)
#endif
#ifndef JEPA_KO_missing_attention
  JEPA_FWD(attention_forward)
  JEPA_FWD(attention_backward)
#endif
#ifndef JEPA_KO_missing_tokens
  JEPA_FWD(im2col_tubelet)
  JEPA_FWD(col2im_tubelet)
  JEPA_FWD(gather_rows)
  JEPA_FWD(scatter_add_rows)
#endif
};
using Model = jepa::models::VitEncoder<2, jepa::tokenizers::Tubelet<2, 16>, jepa::models::RopeTiled,
                                       jepa::models::FinalNorm, float, MyBackend>;
int main() { Model e(jepa::models::VitConfig{}); (void)e; }
