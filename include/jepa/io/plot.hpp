// jepa/io/plot.hpp — line plots as PNG (loss curves), with no plotting library.
//
// Series are drawn as anti-alias-free polylines on a white canvas with axes, tick labels and a legend;
// text uses stb_easy_font (a header-only bitmap font from Debian's libstb-dev). Optional log-scale y.
#pragma once

#include <stb/stb_easy_font.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "jepa/io/png.hpp"

namespace jepa::io {

struct Series {
  std::string name;
  std::vector<double> x, y;
  std::array<std::uint8_t, 3> color{31, 119, 180};
};

namespace detail {
inline void put(RgbImage& img, int x, int y, const std::array<std::uint8_t, 3>& c) {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  std::uint8_t* p = img.at(x, y);
  p[0] = c[0], p[1] = c[1], p[2] = c[2];
}
inline void line(RgbImage& img, int x0, int y0, int x1, int y1, const std::array<std::uint8_t, 3>& c, int thick = 1) {
  const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  int err = dx + dy;
  for (;;) {
    for (int t = 0; t < thick; ++t) put(img, x0, y0 + t, c), put(img, x0 + t, y0, c);
    if (x0 == x1 && y0 == y1) break;
    const int e2 = 2 * err;
    if (e2 >= dy) err += dy, x0 += sx;
    if (e2 <= dx) err += dx, y0 += sy;
  }
}
/// Draws text with its top-left corner at (x, y), scaled by an integer factor.
inline void text(RgbImage& img, int x, int y, const std::string& s, int scale = 1,
                 std::array<std::uint8_t, 3> c = {20, 20, 20}) {
  static char buf[60000];
  const int quads = stb_easy_font_print(0, 0, const_cast<char*>(s.c_str()), nullptr, buf, sizeof buf);
  const float* v = reinterpret_cast<const float*>(buf);
  for (int q = 0; q < quads; ++q) {  // each quad: 4 vertices of (x, y, z, rgba)
    const float* a = v + q * 16;
    const int qx0 = static_cast<int>(a[0]), qy0 = static_cast<int>(a[1]);
    const int qx1 = static_cast<int>(a[8]), qy1 = static_cast<int>(a[9]);
    for (int yy = qy0 * scale; yy < qy1 * scale; ++yy)
      for (int xx = qx0 * scale; xx < qx1 * scale; ++xx) put(img, x + xx, y + yy, c);
  }
}
inline std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, (std::abs(v) >= 1e4 || (std::abs(v) < 1e-2 && v != 0)) ? "%.2e" : "%.3g", v);
  return b;
}
}  // namespace detail

/// Writes a PNG line plot of `series` to `path`.
inline void write_line_plot(const std::string& path, const std::vector<Series>& series, const std::string& title,
                            const std::string& xlabel, bool log_y = false, int width = 900, int height = 520) {
  RgbImage img(width, height);
  std::fill(img.data.begin(), img.data.end(), std::uint8_t{255});
  const int L = 80, R = width - 20, T = 40, Bm = height - 60;
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  auto ty = [&](double y) { return log_y ? std::log10(std::max(y, 1e-12)) : y; };
  for (const auto& s : series)
    for (std::size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, ty(s.y[i])), y1 = std::max(y1, ty(s.y[i]));
    }
  if (!(x1 > x0)) x1 = x0 + 1;
  if (!(y1 > y0)) y1 = y0 + 1;
  const double pad = 0.05 * (y1 - y0);
  y0 -= pad, y1 += pad;
  auto px = [&](double x) { return L + static_cast<int>((x - x0) / (x1 - x0) * (R - L)); };
  auto py = [&](double y) { return Bm - static_cast<int>((ty(y) - y0) / (y1 - y0) * (Bm - T)); };
  const std::array<std::uint8_t, 3> axis{60, 60, 60}, grid{225, 225, 225};
  for (int k = 0; k <= 5; ++k) {  // grid and tick labels
    const int gy = Bm - k * (Bm - T) / 5, gx = L + k * (R - L) / 5;
    detail::line(img, L, gy, R, gy, grid);
    detail::line(img, gx, T, gx, Bm, grid);
    const double yv = y0 + (y1 - y0) * k / 5.0;
    detail::text(img, 4, gy - 4, detail::fmt(log_y ? std::pow(10.0, yv) : yv));
    detail::text(img, gx - 10, Bm + 8, detail::fmt(x0 + (x1 - x0) * k / 5.0));
  }
  detail::line(img, L, T, L, Bm, axis);
  detail::line(img, L, Bm, R, Bm, axis);
  for (const auto& s : series)
    for (std::size_t i = 1; i < s.x.size() && i < s.y.size(); ++i)
      if (std::isfinite(s.y[i - 1]) && std::isfinite(s.y[i]))
        detail::line(img, px(s.x[i - 1]), py(s.y[i - 1]), px(s.x[i]), py(s.y[i]), s.color, 2);
  detail::text(img, L, 10, title, 2);
  detail::text(img, (L + R) / 2 - 20, height - 24, xlabel);
  int ly = T + 6;
  for (const auto& s : series) {
    detail::line(img, R - 170, ly + 3, R - 150, ly + 3, s.color, 2);
    detail::text(img, R - 144, ly, s.name);
    ly += 14;
  }
  write_png(path, img);
}

}  // namespace jepa::io
