// jepa/io/image.hpp — reading still images (PNG, JPEG, BMP, TGA, GIF, PNM, …) as 8-bit RGB
// (opt-in; not part of jepa.hpp).
//
// Decoding is stb_image (Debian's libstb-dev). Every image is converted to 3 channels: grey is
// replicated, alpha is dropped (not blended), 16-bit PNGs are reduced to 8 bits, a GIF gives its
// first frame. Exactly one translation unit of the program must define JEPA_STB_IMAGE_IMPLEMENTATION
// before including this header, or the program links libstb, which already contains the
// implementation (the jepa::video CMake target links it).
//
// RgbFrame is also the frame type of jepa/io/video.hpp and the input of jepa/data/transforms.hpp.
#pragma once

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "jepa/core/error.hpp"
#include "jepa/core/memory_budget.hpp"

#ifdef JEPA_STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_IMPLEMENTATION
#endif
#include <stb/stb_image.h>

namespace jepa::io {

/// One 8-bit RGB picture, row-major (height, width, 3): rgb[(y·width + x)·3 + c], c = R, G, B.
struct RgbFrame {
  int width = 0, height = 0;
  std::vector<std::uint8_t> rgb;

  RgbFrame() = default;
  RgbFrame(int w, int h) : width(w), height(h), rgb(static_cast<std::size_t>(w) * static_cast<std::size_t>(h) * 3) {}
  bool empty() const { return width <= 0 || height <= 0 || rgb.empty(); }
  const std::uint8_t* at(int x, int y) const { return rgb.data() + (static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x)) * 3; }
  std::uint8_t* at(int x, int y) { return rgb.data() + (static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x)) * 3; }
};

namespace detail_image {
/// Width and height from a PNG or JPEG header, read directly: stbi_info refuses to report the size
/// of an image it considers too large, which is exactly when the size is worth saying.
inline bool header_size(const std::string& path, long long& w, long long& h) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!f) return false;
  unsigned char b[24];
  if (std::fread(b, 1, 24, f.get()) != 24) return false;
  const auto be16 = [](const unsigned char* p) { return (static_cast<long long>(p[0]) << 8) | p[1]; };
  if (std::memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0 && std::memcmp(b + 12, "IHDR", 4) == 0) {
    w = (be16(b + 16) << 16) | be16(b + 18);
    h = (be16(b + 20) << 16) | be16(b + 22);
    return true;
  }
  if (b[0] != 0xFF || b[1] != 0xD8) return false;
  long long at = 2;  // JPEG: walk the marker segments to the first SOFn
  for (int guard = 0; guard < 1000; ++guard) {
    unsigned char m[9];
    if (std::fseek(f.get(), static_cast<long>(at), SEEK_SET) != 0 || std::fread(m, 1, 4, f.get()) != 4 || m[0] != 0xFF) return false;
    const int marker = m[1];
    if (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC) {
      if (std::fread(m + 4, 1, 5, f.get()) != 5) return false;
      h = be16(m + 5);
      w = be16(m + 7);
      return true;
    }
    at += 2 + be16(m + 2);
  }
  return false;
}

/// stb_image's failure reason ("unknown image type", "too large", "bad huffman code", …) as a sentence
/// about the file.
inline std::string explain_failure(const std::string& path, const char* why_c) {
  const std::string why = why_c ? why_c : "no reason given";
  long long w = 0, h = 0;
  const bool header = header_size(path, w, h);
  if (why == "unknown image type")
    return "jepa: image file '" + path +
           "' is not a readable image (stb: unknown image type; readable formats: PNG, JPEG, BMP, TGA, GIF, PSD, HDR, PIC, PNM)";
  if (why == "too large")
    return header ? detail::cat("jepa: image file '", path, "' is ", w, "x", h,
                                ", larger than stb_image decodes (at most 2^30 bytes of pixels for PNG, 2^31 for JPEG, about ",
                                "18000x18000 RGB); scale it down first")
                  : "jepa: image file '" + path + "' is larger than stb_image decodes (stb: too large); scale it down first";
  if (why == "outofmem")
    return "jepa: image file '" + path + "' could not be decoded: out of memory" +
           (header ? detail::cat(" (it is ", w, "x", h, ")") : std::string());
  if (why == "can't fopen") return "jepa: image file '" + path + "' cannot be opened: " + std::strerror(errno);
  return "jepa: image file '" + path + "' is damaged or in an unsupported variant of its format, and could not be decoded (stb: " + why + ")";
}
}  // namespace detail_image

/// Decodes the image file at `path` as RGB. Throws IoError naming the file when it is missing, is
/// not a regular file, cannot be decoded (a sentence saying why, with stb_image's reason, e.g.
/// "is not a readable image (stb: unknown image type)", "is 30000x30000, larger than stb_image
/// decodes") or decodes to a zero-sized picture; MemoryError when its decoded pixels do not fit in
/// the memory left (jepa/core/memory_budget.hpp), before decoding.
inline RgbFrame read_image(const std::string& path) {
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(st)) throw IoError("jepa: image file '" + path + "' does not exist");
  if (!std::filesystem::is_regular_file(st)) throw IoError("jepa: image path '" + path + "' is not a regular file");
  int w = 0, h = 0, n = 0;
  if (stbi_info(path.c_str(), &w, &h, &n) && w > 0 && h > 0) {
    // stb's own limits (sides up to 2^24, pixel bytes below 2^31), said before the memory check so
    // an impossible file gets the same answer on every machine.
    if (w > (1 << 24) || h > (1 << 24) || bytes_of(w, h, std::max(n, 3)) > static_cast<std::size_t>(INT_MAX))
      throw IoError(detail_image::explain_failure(path, "too large"));
    // stb's decoded pixels, the RgbFrame copy, and the decoder's own full-size buffer (PNG's
    // inflated rows, JPEG's component planes): refused before decoding, not by the OOM killer.
    require_host_memory(bytes_of(w, h, 3) * 2 + bytes_of(w, h, std::max(n, 1)),
                        detail::cat("decoding image file '", path, "' (", w, "x", h, ")"),
                        "the model needs far fewer pixels: scale the image down first");
  }
  std::unique_ptr<stbi_uc, void (*)(void*)> px(stbi_load(path.c_str(), &w, &h, &n, 3), stbi_image_free);
  if (!px) throw IoError(detail_image::explain_failure(path, stbi_failure_reason()));
  if (w <= 0 || h <= 0) throw IoError("jepa: image file '" + path + "' has zero size");
  RgbFrame f(w, h);
  std::copy(px.get(), px.get() + f.rgb.size(), f.rgb.begin());
  return f;
}

}  // namespace jepa::io
