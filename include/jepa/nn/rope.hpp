// jepa/nn/rope.hpp — 3-D rotary position embedding (recipe_facts §1.5.4), both published pairings.
//
// Per head of width Dh: s = 2·⌊⌊Dh/3⌋/2⌋ channels each for depth (time), height and width, laid out
// [d-block | h-block | w-block | unrotated remainder]. In a block of s channels with m = s/2,
// ω_k = 10000^(−k/m) and θ_k = pos·ω_k. Channel j of a block uses the angle
//   Tiled (V-JEPA 2, 2-AC):         θ_{j mod m}   — pair (2i, 2i+1) mixes two frequencies; not a
//                                                   rotation, kept because the released weights need it
//   Interleaved (V-JEPA 2.1):       θ_{⌊j/2⌋}     — pair i is a true rotation by θ_i
// and the backend applies out[2i] = x[2i]·C[2i] − x[2i+1]·S[2i], out[2i+1] = x[2i+1]·C[2i+1] + x[2i]·S[2i+1].
//
// Positions come from each token's ORIGINAL flat grid index n (also after masking):
//   d = n div (H'W'),  h = (n mod H'W') div W',  w = n mod W'.
// 2.1 `interpolate_rope`: h ← h·(G0−1)/(H'−1), w ← w·(G0−1)/(W'−1) with G0 the pretraining grid
// (256/p); time is never rescaled; a grid side of 1 keeps position 0.
#pragma once

#include "jepa/config.hpp"

#include <cmath>
#include <cstdint>
#include <vector>

#include "jepa/core/error.hpp"
#include "jepa/core/tensor.hpp"

namespace jepa::nn {

enum class RopePairing : std::uint8_t { tiled, interleaved };

/// Channels per axis for head dimension Dh: s = 2·⌊⌊Dh/3⌋/2⌋.
constexpr index_t rope_axis_channels(index_t head_dim) { return 2 * ((head_dim / 3) / 2); }

/// The token grid (T', H', W') of one input.
struct TokenGrid {
  index_t t = 1, h = 1, w = 1;
  index_t size() const { return t * h * w; }
  friend bool operator==(const TokenGrid&, const TokenGrid&) = default;
};

/// Float grid coordinates (d, h, w) of flat token index n on `grid`, with optional 2.1 spatial
/// interpolation to an interp_grid × interp_grid pretraining grid (0 = off).
inline void rope_position(std::int64_t n, const TokenGrid& grid, index_t interp_grid, double out[3]) {
  const index_t hw = grid.h * grid.w;
  out[0] = static_cast<double>(n / hw);
  double h = static_cast<double>((n % hw) / grid.w);
  double w = static_cast<double>(n % grid.w);
  if (interp_grid > 0) {
    if (grid.h > 1) h *= static_cast<double>(interp_grid - 1) / static_cast<double>(grid.h - 1);
    if (grid.w > 1) w *= static_cast<double>(interp_grid - 1) / static_cast<double>(grid.w - 1);
  }
  out[1] = h;
  out[2] = w;
}

/// Per-row cos/sin tables (rows, 3s) for the rotated channels of one head, shared by all heads.
///  rows = number of (b, k) tokens; idx (rows) are their flat grid indices.
template <class T>
void rope_tables(const std::int64_t* idx, index_t rows, const TokenGrid& grid, index_t head_dim,
                 RopePairing pairing, index_t interp_grid, T* cos_out, T* sin_out) {
  const index_t s = rope_axis_channels(head_dim);
  if (s <= 0) fail_field("head_dim", head_dim, "3-D RoPE needs head_dim >= 6 (2·⌊⌊Dh/3⌋/2⌋ > 0 channels per axis)");
  const index_t m = s / 2, rot = 3 * s;
  std::vector<double> omega(static_cast<std::size_t>(m));
  for (index_t k = 0; k < m; ++k) omega[k] = std::pow(10000.0, -static_cast<double>(k) / static_cast<double>(m));
JEPA_OMP(parallel for schedule(static) if (rows > 256))
  for (index_t r = 0; r < rows; ++r) {
    double pos[3];
    rope_position(idx[r], grid, interp_grid, pos);
    for (int axis = 0; axis < 3; ++axis)
      for (index_t j = 0; j < s; ++j) {
        const index_t k = pairing == RopePairing::tiled ? j % m : j / 2;
        const double theta = pos[axis] * omega[k];
        cos_out[r * rot + axis * s + j] = static_cast<T>(std::cos(theta));
        sin_out[r * rot + axis * s + j] = static_cast<T>(std::sin(theta));
      }
  }
}

/// The tables of every token of `grid` in grid order: cos (N, 3s) then sin (N, 3s) in one array. Row n
/// equals what rope_tables gives for index n (each row is a function of its index alone), so a device
/// backend uploads this once and gathers rows by token index instead of uploading tables per step.
template <class T>
std::vector<T> rope_grid_tables(const TokenGrid& grid, index_t head_dim, RopePairing pairing, index_t interp_grid) {
  const index_t N = grid.size(), rot = 3 * rope_axis_channels(head_dim);
  std::vector<std::int64_t> all(static_cast<std::size_t>(N));
  for (index_t n = 0; n < N; ++n) all[static_cast<std::size_t>(n)] = n;
  std::vector<T> cs(static_cast<std::size_t>(2 * N * rot));
  rope_tables<T>(all.data(), N, grid, head_dim, pairing, interp_grid, cs.data(), cs.data() + N * rot);
  return cs;
}

/// What a module needs to apply RoPE: per-row tables (rows, rot) and rot = 3s. Null tables = no RoPE.
template <class T>
struct RopeTables {
  const T* cos = nullptr;
  const T* sin = nullptr;
  index_t rot = 0;
  bool enabled() const { return cos != nullptr; }
};

}  // namespace jepa::nn
