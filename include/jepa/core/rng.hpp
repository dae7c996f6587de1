// jepa/core/rng.hpp — counter-based random numbers (Philox-4x32-10, Salmon et al., SC'11).
//
// A stream of random numbers is a pure function of (seed, stream, counter): block i of stream s is
// philox(key = seed, counter = (i_lo, i_hi, s_lo, s_hi)). Nothing depends on thread count or call
// order, so parallel initialisation, masks drawn on the CPU or the GPU, and a resumed run all see the
// same numbers (DESIGN.md decision 11). The round function is JEPA_HOST_DEVICE so CUDA kernels
// reproduce the CPU draws bit for bit.
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>

#include "jepa/config.hpp"

namespace jepa {

struct Philox4x32 {
  using ctr_t = std::uint32_t[4];
  static constexpr std::uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  static constexpr std::uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;

  /// Ten rounds of Philox on counter c with key k; writes 4 words to out.
  static JEPA_HOST_DEVICE void block(const std::uint32_t c_in[4], std::uint32_t k0, std::uint32_t k1,
                                     std::uint32_t out[4]) {
    std::uint32_t c0 = c_in[0], c1 = c_in[1], c2 = c_in[2], c3 = c_in[3];
    for (int r = 0; r < 10; ++r) {
      const std::uint64_t p0 = static_cast<std::uint64_t>(kM0) * c0;
      const std::uint64_t p1 = static_cast<std::uint64_t>(kM1) * c2;
      const std::uint32_t hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
      const std::uint32_t hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
      c0 = hi1 ^ c1 ^ k0;
      c1 = lo1;
      c2 = hi0 ^ c3 ^ k1;
      c3 = lo0;
      k0 += kW0;
      k1 += kW1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
  }
};

/// Uniform float in [0, 1) from the top 24 bits of a word (exactly representable).
JEPA_HOST_DEVICE inline float uniform01(std::uint32_t w) { return static_cast<float>(w >> 8) * (1.0f / 16777216.0f); }
/// Uniform double in [0, 1) from 53 bits of two words.
JEPA_HOST_DEVICE inline double uniform01(std::uint32_t hi, std::uint32_t lo) {
  const std::uint64_t v = (static_cast<std::uint64_t>(hi) << 21) ^ (lo >> 11);
  return static_cast<double>(v & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
}

/// A sequential reader over one (seed, stream): the n-th 32-bit word it returns is word n % 4 of
/// Philox block n / 4. `skip_to(n)` jumps anywhere in O(1).
class Rng {
 public:
  JEPA_HOST_DEVICE Rng(std::uint64_t seed, std::uint64_t stream, std::uint64_t counter = 0)
      : seed_(seed), stream_(stream) {
    skip_to(counter);
  }

  JEPA_HOST_DEVICE void skip_to(std::uint64_t word) {
    block_ = word / 4;
    lane_ = static_cast<int>(word % 4);
    refill();
  }
  /// Index of the next word to be returned (save this to resume the stream exactly).
  JEPA_HOST_DEVICE std::uint64_t position() const { return block_ * 4 + static_cast<std::uint64_t>(lane_); }
  JEPA_HOST_DEVICE std::uint64_t seed() const { return seed_; }
  JEPA_HOST_DEVICE std::uint64_t stream() const { return stream_; }

  JEPA_HOST_DEVICE std::uint32_t next_u32() {
    if (lane_ == 4) {
      ++block_;
      lane_ = 0;
      refill();
    }
    return buf_[lane_++];
  }
  /// Uniform in [0, 1), double precision.
  JEPA_HOST_DEVICE double uniform() {
    const std::uint32_t hi = next_u32();
    const std::uint32_t lo = next_u32();
    return uniform01(hi, lo);
  }
  JEPA_HOST_DEVICE double uniform(double a, double b) { return a + (b - a) * uniform(); }
  /// Uniform integer in [0, n) (n > 0), by rejection so there is no modulo bias.
  JEPA_HOST_DEVICE std::uint32_t uniform_int(std::uint32_t n) {
    const std::uint32_t limit = static_cast<std::uint32_t>(0x100000000ull - (0x100000000ull % n));
    for (;;) {
      const std::uint32_t w = next_u32();
      if (n == 0 || limit == 0 || w < limit) return n ? w % n : 0;
    }
  }
  /// Standard normal by Box–Muller (uses two uniforms per draw; the second value is discarded so the
  /// stream position is a simple function of the number of draws).
  JEPA_HOST_DEVICE double normal() {
    double u1 = uniform();
    const double u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }
  /// Normal(mean, std) truncated to [a, b] by rejection (PyTorch trunc_normal_ semantics: absolute
  /// bounds, not multiples of std).
  JEPA_HOST_DEVICE double trunc_normal(double mean, double std, double a, double b) {
    for (;;) {
      const double v = mean + std * normal();
      if (v >= a && v <= b) return v;
    }
  }

 private:
  JEPA_HOST_DEVICE void refill() {
    const std::uint32_t c[4] = {static_cast<std::uint32_t>(block_), static_cast<std::uint32_t>(block_ >> 32),
                                static_cast<std::uint32_t>(stream_), static_cast<std::uint32_t>(stream_ >> 32)};
    Philox4x32::block(c, static_cast<std::uint32_t>(seed_), static_cast<std::uint32_t>(seed_ >> 32), buf_);
  }
  std::uint64_t seed_, stream_;
  std::uint64_t block_ = 0;
  int lane_ = 0;
  std::uint32_t buf_[4] = {0, 0, 0, 0};
};

}  // namespace jepa
