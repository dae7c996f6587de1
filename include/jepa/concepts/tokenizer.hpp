// jepa/concepts/tokenizer.hpp — what a user-written tokenizer policy must provide.
//
// A tokenizer maps a clip (B, C, F, H, W) to tokens on a (F/tubelet, H/patch, W/patch) grid with a
// learned linear map per tubelet (kernel = stride). It must expose:
//   static constexpr int tubelet;  static constexpr int patch;           (both ≥ 1)
//   static jepa::Shape weight_shape(jepa::index_t dim, jepa::index_t in_chans);   numel = dim·C·t·p·p
// check_tokenizer<T>() reports the first missing requirement with our own message (compile-fail
// tests in tests/compile_fail prove each message fires).
#pragma once

#include <concepts>

#include "jepa/core/tensor.hpp"

namespace jepa {

template <class T>
concept Tokenizer = requires(index_t d) {
  { T::tubelet } -> std::convertible_to<int>;
  { T::patch } -> std::convertible_to<int>;
  { T::weight_shape(d, d) } -> std::same_as<Shape>;
} && (T::tubelet >= 1) && (T::patch >= 1);

namespace detail {
template <class T>
constexpr bool check_tokenizer() {
  constexpr bool has_tubelet = requires { { T::tubelet } -> std::convertible_to<int>; };
  static_assert(has_tubelet, "jepa: Tokenizer must define `static constexpr int tubelet` (frames per token, >= 1)");
  constexpr bool has_patch = requires { { T::patch } -> std::convertible_to<int>; };
  static_assert(has_patch, "jepa: Tokenizer must define `static constexpr int patch` (pixels per token side, >= 1)");
  constexpr bool has_shape = requires(index_t d) { { T::weight_shape(d, d) } -> std::same_as<Shape>; };
  static_assert(has_shape, "jepa: Tokenizer must define `static jepa::Shape weight_shape(index_t dim, index_t in_chans)`");
  if constexpr (has_tubelet && has_patch) {
    static_assert(T::tubelet >= 1 && T::patch >= 1, "jepa: Tokenizer::tubelet and Tokenizer::patch must be >= 1");
  }
  return true;
}
}  // namespace detail

}  // namespace jepa
