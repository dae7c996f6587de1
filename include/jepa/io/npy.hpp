// jepa/io/npy.hpp — writing arrays as NumPy .npy files (format version 1.0), e.g. extracted features
// for Python (numpy.load). Header-only, no dependencies; reading goes through xtensor's xnpy in the
// tests (tests/support/fixtures.hpp) or numpy.
//
// Layout: "\x93NUMPY" 1 0, a little-endian u16 header length, an ASCII dict
// {'descr': '<f4', 'fortran_order': False, 'shape': (d0, d1, ...), } padded with spaces and a final
// '\n' so that the data starts at a multiple of 64 bytes, then the row-major little-endian data.
// The file is replaced atomically (io/atomic_file.hpp); IoError naming the path and the reason on
// failure.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "jepa/core/error.hpp"
#include "jepa/core/tensor.hpp"
#include "jepa/io/atomic_file.hpp"

namespace jepa::io {

template <class T> struct npy_descr;
template <> struct npy_descr<float> { static constexpr std::string_view value = "<f4"; };
template <> struct npy_descr<double> { static constexpr std::string_view value = "<f8"; };
template <> struct npy_descr<std::int64_t> { static constexpr std::string_view value = "<i8"; };
template <> struct npy_descr<std::int32_t> { static constexpr std::string_view value = "<i4"; };
template <> struct npy_descr<std::uint8_t> { static constexpr std::string_view value = "|u1"; };

/// The .npy header (magic, version, length, dict) for `shape` of T.
template <class T>
std::string npy_header(const Shape& shape) {
  std::string dict = "{'descr': '";
  dict.append(npy_descr<T>::value);
  dict.append("', 'fortran_order': False, 'shape': (");
  for (std::size_t i = 0; i < shape.rank(); ++i) {
    dict.append(std::to_string(shape[i]));
    if (shape.rank() == 1 || i + 1 < shape.rank()) dict.append(",");
    if (i + 1 < shape.rank()) dict.append(" ");
  }
  dict.append("), }");
  const std::size_t unpadded = 10 + dict.size() + 1;  // magic 6 + version 2 + length 2, dict, '\n'
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict.push_back('\n');
  std::string h("\x93NUMPY\x01\x00", 8);
  const auto n = static_cast<std::uint16_t>(dict.size());
  h.push_back(static_cast<char>(n & 0xff));
  h.push_back(static_cast<char>(n >> 8));
  return h + dict;
}

/// Writes numel(shape) values at `data` as a .npy file.
template <class T>
void write_npy(const std::filesystem::path& path, const Shape& shape, const T* data) {
  for (const index_t d : shape.dims)
    if (d < 0) throw ShapeError(jepa::detail::cat("jepa: write_npy '", path.string(), "': shape ", shape, " has a negative extent"));
  const std::string head = npy_header<T>(shape);
  const std::size_t n = static_cast<std::size_t>(shape.numel());
  write_atomic(path.string(), {head, std::string_view(reinterpret_cast<const char*>(data), n * sizeof(T))}, ".npy file");
}
template <class T>
void write_npy(const std::filesystem::path& path, const Shape& shape, const std::vector<T>& v) {
  if (static_cast<index_t>(v.size()) != shape.numel())
    throw ShapeError(jepa::detail::cat("jepa: write_npy '", path.string(), "': shape ", shape, " needs ", shape.numel(),
                                       " values, got ", v.size()));
  write_npy(path, shape, v.data());
}

}  // namespace jepa::io
