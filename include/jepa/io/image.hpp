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
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "jepa/core/error.hpp"

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

/// Decodes the image file at `path` as RGB. Throws IoError naming the file when it is missing, is
/// not a regular file, cannot be decoded (with stb_image's reason, e.g. "unknown image type",
/// "bad huffman code", "can't fopen") or decodes to a zero-sized picture.
inline RgbFrame read_image(const std::string& path) {
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(st)) throw IoError("jepa: image file '" + path + "' does not exist");
  if (!std::filesystem::is_regular_file(st)) throw IoError("jepa: image path '" + path + "' is not a regular file");
  int w = 0, h = 0, n = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> px(stbi_load(path.c_str(), &w, &h, &n, 3), stbi_image_free);
  if (!px) {
    const char* why = stbi_failure_reason();
    throw IoError("jepa: could not decode image file '" + path + "': " + (why ? why : "unknown stb_image error"));
  }
  if (w <= 0 || h <= 0) throw IoError("jepa: image file '" + path + "' has zero size");
  RgbFrame f(w, h);
  std::copy(px.get(), px.get() + f.rgb.size(), f.rgb.begin());
  return f;
}

}  // namespace jepa::io
