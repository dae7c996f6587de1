// jepa/nn/pos_embed.hpp — fixed sin-cos position tables (recipe_facts §1.5.1–1.5.3).
//
// 1-D, n channels (n even), position p: ω_k = 10000^(−k/(n/2)), k < n/2,
//   e(p) = [sin(p·ω_0) … sin(p·ω_{n/2−1}), cos(p·ω_0) … cos(p·ω_{n/2−1})]      (sines first)
// 3-D (V-JEPA 1; V-JEPA 2 when RoPE is off), tokens in (t, h, w) row-major order:
//   uniform_power = false: d gets D/2 channels, h and w get D/4 each;
//   uniform_power = true:  each axis gets n = 2·⌈D/6⌉ channels; [d | h | w] is truncated to D channels.
// 2-D: I-JEPA puts the column (w) in the first half and the row (h) in the second; the V-JEPA repos'
//   helper uses [row | col]. Both are offered.
#pragma once

#include <cmath>
#include <vector>

#include "jepa/core/error.hpp"
#include "jepa/core/tensor.hpp"

namespace jepa::nn {

/// Writes the n-channel 1-D table value of position `pos` to out[0..n).
template <class T>
void sincos_1d(double pos, index_t n, T* out) {
  if (n <= 0 || n % 2) fail_field("sincos_1d channels", n, "must be a positive even number");
  const index_t half = n / 2;
  for (index_t k = 0; k < half; ++k) {
    const double omega = std::pow(10000.0, -static_cast<double>(k) / static_cast<double>(half));
    out[k] = static_cast<T>(std::sin(pos * omega));
    out[half + k] = static_cast<T>(std::cos(pos * omega));
  }
}

/// (T'·H'·W', D) table for the 3-D grid.
template <class T>
std::vector<T> sincos_3d_table(index_t D, index_t t, index_t h, index_t w, bool uniform_power) {
  index_t nd, nh, nw;
  if (uniform_power) {
    nd = nh = nw = 2 * ((D + 5) / 6);
  } else {
    if (D % 4) fail_field("embed_dim", D, "3-D sin-cos without uniform_power needs a multiple of 4");
    nd = D / 2;
    nh = nw = D / 4;
  }
  if (nd % 2 || nh % 2) fail_field("embed_dim", D, "3-D sin-cos needs an even number of channels per axis");
  std::vector<T> table(static_cast<std::size_t>(t * h * w * D));
  std::vector<T> row(static_cast<std::size_t>(nd + nh + nw));
  for (index_t a = 0; a < t; ++a)
    for (index_t b = 0; b < h; ++b)
      for (index_t c = 0; c < w; ++c) {
        sincos_1d<T>(static_cast<double>(a), nd, row.data());
        sincos_1d<T>(static_cast<double>(b), nh, row.data() + nd);
        sincos_1d<T>(static_cast<double>(c), nw, row.data() + nd + nh);
        const index_t n = (a * h + b) * w + c;
        for (index_t j = 0; j < D; ++j) table[n * D + j] = row[j];  // truncation to D channels
      }
  return table;
}

enum class SinCos2dOrder : std::uint8_t { col_row /* I-JEPA */, row_col /* V-JEPA repos */ };

/// (H'·W', D) table for a 2-D grid; first half of the channels encodes the first axis of `order`.
template <class T>
std::vector<T> sincos_2d_table(index_t D, index_t h, index_t w, SinCos2dOrder order) {
  if (D % 4) fail_field("embed_dim", D, "2-D sin-cos needs a multiple of 4");
  std::vector<T> table(static_cast<std::size_t>(h * w * D));
  for (index_t b = 0; b < h; ++b)
    for (index_t c = 0; c < w; ++c) {
      T* row = table.data() + (b * w + c) * D;
      const double first = order == SinCos2dOrder::col_row ? c : b;
      const double second = order == SinCos2dOrder::col_row ? b : c;
      sincos_1d<T>(first, D / 2, row);
      sincos_1d<T>(second, D / 2, row + D / 2);
    }
  return table;
}

}  // namespace jepa::nn
