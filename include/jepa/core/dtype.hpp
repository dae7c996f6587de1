// jepa/core/dtype.hpp — element types: float, double and bf16.
//
// bf16 is the upper half of an IEEE float32: 1 sign, 8 exponent, 7 mantissa bits. Conversion from
// float rounds to nearest, ties to even (as PyTorch and the CUDA intrinsics do); NaN stays NaN.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

#include "jepa/config.hpp"

namespace jepa {

struct bf16 {
  std::uint16_t bits = 0;

  bf16() = default;
  JEPA_HOST_DEVICE explicit bf16(float f) : bits(from_float(f)) {}
  JEPA_HOST_DEVICE explicit operator float() const { return to_float(bits); }

  static JEPA_HOST_DEVICE std::uint16_t from_float(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu) != 0)  // NaN: keep quiet NaN
      return static_cast<std::uint16_t>((u >> 16) | 0x0040u);
    const std::uint32_t lsb = (u >> 16) & 1u;  // round to nearest even
    u += 0x7fffu + lsb;
    return static_cast<std::uint16_t>(u >> 16);
  }
  static JEPA_HOST_DEVICE float to_float(std::uint16_t b) {
    const std::uint32_t u = static_cast<std::uint32_t>(b) << 16;
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
  }
  friend bool operator==(bf16 a, bf16 b) { return a.bits == b.bits; }
};
static_assert(sizeof(bf16) == 2 && std::is_trivially_copyable_v<bf16>);

enum class DType : std::uint8_t { f32, f64, bf16, i32, i64 };

constexpr std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::bf16: return 2;
    case DType::i32: return 4;
    case DType::i64: return 8;
  }
  return 0;
}

constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::bf16: return "bfloat16";
    case DType::i32: return "int32";
    case DType::i64: return "int64";
  }
  return "?";
}

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<bf16> { static constexpr DType value = DType::bf16; };
template <> struct dtype_of<std::int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<std::int64_t> { static constexpr DType value = DType::i64; };
template <class T> inline constexpr DType dtype_of_v = dtype_of<T>::value;

/// The floating-point element types a module may compute in on the CPU.
template <class T>
concept Real = std::is_same_v<T, float> || std::is_same_v<T, double>;

}  // namespace jepa
