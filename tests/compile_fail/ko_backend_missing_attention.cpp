// expect: jepa: Backend must define fused `attention_forward` and `attention_backward`
// A user backend that forwards everything to the CPU backend but forgot the fused attention.
#include "jepa/backend/cpu/backend.hpp"
#include "jepa/models/vit_encoder.hpp"
#include "jepa/tokenizers/tubelet.hpp"

struct MyBackend {
  static constexpr jepa::MemorySpace space = jepa::MemorySpace::host;
  using Arena = jepa::HostArena;
  using C = jepa::backend::Cpu;
  template <class T, class... A> static void gemm(A... a) { C::gemm<T>(a...); }
  template <class T, class... A> static void linear_forward(A... a) { C::linear_forward<T>(a...); }
  template <class T, class... A> static void linear_backward(A... a) { C::linear_backward<T>(a...); }
  template <class T, class... A> static void layer_norm_forward(A... a) { C::layer_norm_forward<T>(a...); }
  template <class T, class... A> static void layer_norm_backward(A... a) { C::layer_norm_backward<T>(a...); }
  template <class T, class... A> static void gelu_forward(A... a) { C::gelu_forward<T>(a...); }
  template <class T, class... A> static void gelu_backward(A... a) { C::gelu_backward<T>(a...); }
  template <class T, class... A> static void swiglu_forward(A... a) { C::swiglu_forward<T>(a...); }
  template <class T, class... A> static void swiglu_backward(A... a) { C::swiglu_backward<T>(a...); }
  template <class T, class... A> static void add(A... a) { C::add<T>(a...); }
  template <class T, class... A> static void add_row_vector(A... a) { C::add_row_vector<T>(a...); }
  template <class T, class... A> static void sum_rows_accumulate(A... a) { C::sum_rows_accumulate<T>(a...); }
  template <class T, class... A> static void rope_forward(A... a) { C::rope_forward<T>(a...); }
  template <class T, class... A> static void rope_backward(A... a) { C::rope_backward<T>(a...); }
  template <class T, class... A> static void im2col_tubelet(A... a) { C::im2col_tubelet<T>(a...); }
  template <class T, class... A> static void col2im_tubelet(A... a) { C::col2im_tubelet<T>(a...); }
  template <class T, class... A> static void gather_rows(A... a) { C::gather_rows<T>(a...); }
  template <class T, class... A> static void scatter_add_rows(A... a) { C::scatter_add_rows<T>(a...); }
  // no attention_forward / attention_backward
};
using Bad = jepa::models::VitEncoder<2, jepa::tokenizers::Tubelet<2, 16>, jepa::models::RopeTiled,
                                     jepa::models::FinalNorm, float, MyBackend>;
int main() { Bad e(jepa::models::VitConfig{}); (void)e; }
