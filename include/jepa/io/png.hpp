// jepa/io/png.hpp — writing RGB images as PNG (opt-in; not part of jepa.hpp).
//
// Uses stb_image_write (Debian's libstb-dev). Exactly one translation unit of the program must
// define JEPA_PNG_IMPLEMENTATION before including this header, or link libstb, which already
// contains the implementation (the examples link it through CMake).
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "jepa/core/error.hpp"
#include "jepa/io/atomic_file.hpp"  // check_writable

#ifdef JEPA_PNG_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#endif
#include <stb/stb_image_write.h>

namespace jepa::io {

/// An 8-bit RGB image, row-major (H, W, 3).
struct RgbImage {
  int width = 0, height = 0;
  std::vector<std::uint8_t> data;
  RgbImage() = default;
  RgbImage(int w, int h) : width(w), height(h), data(static_cast<std::size_t>(w) * h * 3) {}
  std::uint8_t* at(int x, int y) { return data.data() + (static_cast<std::size_t>(y) * width + x) * 3; }
};

/// Writes `img` to `path`; throws IoError naming the file and the system's reason on failure.
inline void write_png(const std::string& path, const RgbImage& img) {
  if (img.width <= 0 || img.height <= 0) throw IoError("jepa: cannot write an empty image to '" + path + "'");
  errno = 0;
  if (!stbi_write_png(path.c_str(), img.width, img.height, 3, img.data.data(), img.width * 3))
    throw IoError(detail::cat("jepa: could not write PNG file '", path, "': ",
                              errno ? std::strerror(errno) : "stb_image_write failed (image too large for PNG?)"));
}

}  // namespace jepa::io
