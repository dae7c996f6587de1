// jepa/concepts/backend.hpp — what a backend must provide for the modules to run on it.
//
// A backend is a stateless type whose static member templates are the primitives the modules are
// written in (DESIGN.md decision 4): GEMM, linear, layer norm, GELU/SwiGLU, RoPE, fused attention,
// token gather/scatter, tubelet im2col/col2im, elementwise adds, plus `space` (where its pointers
// live) and `Arena` (how activations are allocated). backend::Cpu is the reference; check_backend<B>
// names the first missing primitive with our own message (tests/compile_fail/ko_backend_*).
#pragma once

#include <concepts>
#include <cstdint>

#include "jepa/backend/attention_args.hpp"
#include "jepa/core/tensor.hpp"

namespace jepa {

namespace detail {
template <class B, class T>
concept backend_has_memory = requires(const T* a, T* c, T s, index_t n) {
  B::template copy<T>(a, c, n);
  B::template zero<T>(c, n);
  B::template axpy<T>(s, a, c, n);
};
template <class B, class T>
concept backend_has_gemm = requires(const T* a, T* c, T s, index_t n) {
  B::template gemm<T>(false, true, n, n, n, s, a, n, a, n, s, c, n);
};
template <class B, class T>
concept backend_has_linear = requires(const T* a, T* c, index_t n) {
  B::template linear_forward<T>(a, a, a, c, n, n, n);
  B::template linear_gelu_forward<T>(a, a, a, c, n, n, n);
  B::template linear_backward<T>(a, a, a, c, c, c, n, n, n);
};
template <class B, class T>
concept backend_has_layer_norm = requires(const T* a, T* c, index_t n, T eps) {
  B::template layer_norm_forward<T>(a, a, a, c, c, c, n, n, eps);
  B::template layer_norm_backward<T>(a, a, a, a, a, c, c, c, n, n, false);
};
template <class B, class T>
concept backend_has_activations = requires(const T* a, T* c, index_t n) {
  B::template gelu_forward<T>(a, c, n);
  B::template gelu_backward<T>(a, a, c, n);
  B::template swiglu_forward<T>(a, a, c, n);
  B::template swiglu_backward<T>(a, a, a, c, c, n);
  B::template add<T>(a, a, c, n);
  B::template add_row_vector<T>(c, a, n, n);
  B::template sum_rows_accumulate<T>(a, c, n, n);
};
template <class B, class T>
concept backend_has_rope = requires(T* c, const T* a, index_t n) {
  B::template rope_forward<T>(c, n, n, n, n, n, a, a);
  B::template rope_backward<T>(c, n, n, n, n, n, a, a);
};
template <class B, class T>
concept backend_has_attention = requires(const backend::AttnShape& s, backend::AttnOperand<const T> ci,
                                         backend::AttnOperand<T> o, T* lse, const T* clse, const backend::AttnMask& m) {
  B::template attention_forward<T>(s, ci, ci, ci, o, lse, m);
  B::template attention_backward<T>(s, ci, ci, ci, ci, ci, clse, o, o, o, m);
};
template <class B, class T>
concept backend_has_tokens = requires(const T* a, T* c, const std::int64_t* idx, index_t n) {
  B::template im2col_tubelet<T>(a, idx, c, n, n, n, n, n, n, n, n);
  B::template col2im_tubelet<T>(a, idx, c, n, n, n, n, n, n, n, n);
  B::template gather_rows<T>(a, idx, c, n, n, n, n);
  B::template scatter_add_rows<T>(a, idx, c, n, n, n, n);
};
}  // namespace detail

template <class B, class T = float>
concept Backend = requires {
  { B::space } -> std::convertible_to<MemorySpace>;
  typename B::Arena;
} && detail::backend_has_memory<B, T> && detail::backend_has_gemm<B, T> && detail::backend_has_linear<B, T> && detail::backend_has_layer_norm<B, T> &&
                  detail::backend_has_activations<B, T> && detail::backend_has_rope<B, T> &&
                  detail::backend_has_attention<B, T> && detail::backend_has_tokens<B, T>;

namespace detail {
/// Reports the first missing requirement of backend B for scalar type T.
template <class B, class T>
constexpr bool check_backend() {
  constexpr bool has_space = requires { { B::space } -> std::convertible_to<MemorySpace>; };
  static_assert(has_space, "jepa: Backend must define `static constexpr jepa::MemorySpace space` (host or device)");
  constexpr bool has_arena = requires { typename B::Arena; };
  static_assert(has_arena, "jepa: Backend must define `using Arena = ...` (an arena type with resize/data/ptr<T>)");
  static_assert(backend_has_memory<B, T>, "jepa: Backend must define `copy(src, dst, n)`, `zero(p, n)` and `axpy(alpha, x, y, n)`");
  static_assert(backend_has_gemm<B, T>,
                "jepa: Backend must define `template <class T> static void gemm(bool ta, bool tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)`");
  static_assert(backend_has_linear<B, T>, "jepa: Backend must define `linear_forward`, `linear_gelu_forward` and `linear_backward` (see backend/cpu/backend.hpp)");
  static_assert(backend_has_layer_norm<B, T>, "jepa: Backend must define `layer_norm_forward` and `layer_norm_backward`");
  static_assert(backend_has_activations<B, T>,
                "jepa: Backend must define gelu/swiglu forward+backward, add, add_row_vector and sum_rows_accumulate");
  static_assert(backend_has_rope<B, T>, "jepa: Backend must define `rope_forward` and `rope_backward`");
  static_assert(backend_has_attention<B, T>,
                "jepa: Backend must define fused `attention_forward` and `attention_backward` over AttnOperand views");
  static_assert(backend_has_tokens<B, T>,
                "jepa: Backend must define im2col_tubelet, col2im_tubelet, gather_rows and scatter_add_rows");
  return true;
}
}  // namespace detail

}  // namespace jepa
