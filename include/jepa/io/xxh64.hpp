// jepa/io/xxh64.hpp — XXH64, the 64-bit xxHash (Yann Collet's published algorithm, written here from
// its specification), used as the content hash of safetensors checkpoints (io/safetensors.hpp).
//
// A checksum against accidental corruption (bit flips, truncated copies), not a cryptographic hash.
// Arithmetic is mod 2^64 on little-endian 64-/32-bit lanes, with the primes
//   P1 = 0x9E3779B185EBCA87  P2 = 0xC2B2AE3D27D4EB4F  P3 = 0x165667B19E3779F9
//   P4 = 0x85EBCA77C2B2AE63  P5 = 0x27D4EB2F165667C5
//   round(acc, x) = rotl(acc + x·P2, 31) · P1
//   merge(h, v)   = (h ^ round(0, v)) · P1 + P4
// Input of length L ≥ 32: four accumulators v = (seed + P1 + P2, seed + P2, seed, seed − P1) each
// absorb every fourth 8-byte lane of each 32-byte stripe with round(); then
//   h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18), merged with v1..v4 in turn.
// L < 32: h = seed + P5. Then h += L, and the tail (< 32 bytes) is folded in:
//   each 8-byte lane x: h = rotl(h ^ round(0, x), 27) · P1 + P4
//   a 4-byte lane  x: h = rotl(h ^ x·P1, 23) · P2 + P3
//   each byte      x: h = rotl(h ^ x·P5, 11) · P1
// and avalanched: h ^= h >> 33; h ·= P2; h ^= h >> 29; h ·= P3; h ^= h >> 32.
// The four independent multiply chains run at several GB/s on one core.
//
// Xxh64 hashes a stream fed in pieces of any size (the result equals xxh64() of the concatenation);
// xxh64() hashes one buffer.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace jepa::io {

class Xxh64 {
 public:
  static constexpr std::uint64_t P1 = 0x9E3779B185EBCA87ull;
  static constexpr std::uint64_t P2 = 0xC2B2AE3D27D4EB4Full;
  static constexpr std::uint64_t P3 = 0x165667B19E3779F9ull;
  static constexpr std::uint64_t P4 = 0x85EBCA77C2B2AE63ull;
  static constexpr std::uint64_t P5 = 0x27D4EB2F165667C5ull;

  explicit Xxh64(std::uint64_t seed = 0) : seed_(seed), v_{seed + P1 + P2, seed + P2, seed, seed - P1} {}

  /// Appends n bytes at p.
  Xxh64& update(const void* p, std::size_t n) {
    const auto* in = static_cast<const unsigned char*>(p);
    total_ += n;
    if (buffered_ + n < 32) {  // not a whole stripe yet
      if (n) std::memcpy(buf_ + buffered_, in, n);
      buffered_ += n;
      return *this;
    }
    if (buffered_) {  // complete the pending stripe
      const std::size_t take = 32 - buffered_;
      std::memcpy(buf_ + buffered_, in, take);
      stripes(buf_, 32);
      in += take;
      n -= take;
      buffered_ = 0;
    }
    const std::size_t whole = n & ~std::size_t{31};
    stripes(in, whole);
    buffered_ = n - whole;
    if (buffered_) std::memcpy(buf_, in + whole, buffered_);
    return *this;
  }

  /// The hash of everything appended so far (the state is unchanged; more may be appended).
  std::uint64_t digest() const {
    std::uint64_t h;
    if (total_ >= 32) {
      h = std::rotl(v_[0], 1) + std::rotl(v_[1], 7) + std::rotl(v_[2], 12) + std::rotl(v_[3], 18);
      for (std::uint64_t v : v_) h = (h ^ round(0, v)) * P1 + P4;
    } else {
      h = seed_ + P5;
    }
    h += total_;
    const unsigned char* t = buf_;
    std::size_t n = buffered_;
    for (; n >= 8; t += 8, n -= 8) h = std::rotl(h ^ round(0, load64(t)), 27) * P1 + P4;
    if (n >= 4) {
      h = std::rotl(h ^ (std::uint64_t{load32(t)} * P1), 23) * P2 + P3;
      t += 4;
      n -= 4;
    }
    for (; n; ++t, --n) h = std::rotl(h ^ (std::uint64_t{*t} * P5), 11) * P1;
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
  }

 private:
  static constexpr std::uint64_t round(std::uint64_t acc, std::uint64_t x) { return std::rotl(acc + x * P2, 31) * P1; }
  static std::uint64_t load64(const unsigned char* p) {
    std::uint64_t x;
    std::memcpy(&x, p, 8);
    if constexpr (std::endian::native == std::endian::big) x = __builtin_bswap64(x);
    return x;
  }
  static std::uint32_t load32(const unsigned char* p) {
    std::uint32_t x;
    std::memcpy(&x, p, 4);
    if constexpr (std::endian::native == std::endian::big) x = __builtin_bswap32(x);
    return x;
  }
  /// Absorbs n bytes (a multiple of 32); the accumulators live in registers for the loop.
  void stripes(const unsigned char* p, std::size_t n) {
    std::uint64_t a = v_[0], b = v_[1], c = v_[2], d = v_[3];
    for (const unsigned char* end = p + n; p != end; p += 32) {
      a = round(a, load64(p));
      b = round(b, load64(p + 8));
      c = round(c, load64(p + 16));
      d = round(d, load64(p + 24));
    }
    v_[0] = a, v_[1] = b, v_[2] = c, v_[3] = d;
  }

  std::uint64_t seed_;
  std::uint64_t v_[4];
  std::uint64_t total_ = 0;
  unsigned char buf_[32] = {};
  std::size_t buffered_ = 0;
};

/// XXH64 of n bytes at p.
inline std::uint64_t xxh64(const void* p, std::size_t n, std::uint64_t seed = 0) { return Xxh64(seed).update(p, n).digest(); }

/// "xxh64:" followed by the hash as 16 lowercase hex digits (the form stored in safetensors metadata).
inline std::string xxh64_text(std::uint64_t h) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string s = "xxh64:";
  for (int i = 60; i >= 0; i -= 4) s.push_back(hex[(h >> i) & 0xf]);
  return s;
}

}  // namespace jepa::io
