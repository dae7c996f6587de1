// jepa/io/safetensors.hpp — checkpoints as safetensors files: validated mmap reading, atomic writing
// (DESIGN.md decision 9). Opt-in, not part of jepa.hpp; needs POSIX (open/mmap) and nlohmann-json.
//
// Format (github.com/huggingface/safetensors), all integers little-endian:
//   bytes [0, 8)        N: u64, the length of the header
//   bytes [8, 8+N)      UTF-8 JSON object, possibly padded with trailing spaces:
//                         {"__metadata__": {"key": "value", ...},                     (optional)
//                          "<name>": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]},
//                          ...}
//   bytes [8+N, EOF)    the data section. Tensor <name> is bytes [begin, end) of it, row-major ("C order"),
//                       little-endian. dtypes: BOOL U8 I8 I16 U16 I32 U32 I64 U64 F16 BF16 F32 F64
//                       F8_E4M3 F8_E5M2 (element sizes 1 1 1 2 2 4 4 8 8 2 2 4 8 1 1 bytes).
//
// Validation — SafetensorsFile checks all of this when it opens a file, before any accessor can run,
// so a malformed or truncated file is one jepa::IoError naming the file, the tensor and the rule,
// never an out-of-bounds read:
//   * the path is a regular file of at least 8 bytes;
//   * it is not a PyTorch checkpoint (a zip archive or a pickle, what torch.save writes): that is named
//     as such, with the tools/convert_checkpoint.py command that converts it;
//   * N ≤ file size − 8 and N ≤ 100,000,000 (the official reader's limit);
//   * the header is valid UTF-8 JSON, a JSON object, with no name given twice;
//   * "__metadata__", when present, is an object whose values are strings (or null);
//   * every other entry is an object with "dtype" (a string from the list above), "shape" (an array of
//     integers ≥ 0; [] is a scalar) and "data_offsets" (two integers 0 ≤ begin ≤ end); extra fields are
//     ignored, as the official reader does;
//   * end ≤ size of the data section (else: truncated file), and end − begin = numel · dtype size, with
//     no 64-bit overflow in numel · dtype size;
//   * sorted by offset, the tensors cover the data section exactly: no overlap, no hole, no trailing
//     bytes (the official reader's rule too).
// The header is parsed in one pass (a SAX handler that turns each entry into a TensorInfo as soon as it
// ends): time linear in N — about 2.5 s for 1,000,000 tensors (a 59 MB header) on one core — and memory
// for one entry's JSON at a time, whatever the number of tensors.
// SafetensorsFile::from_bytes applies the same rules to an in-memory copy (the fuzz target
// tests/fuzz/fuzz_safetensors.cpp drives it; tools/README.md has the runs).
// The file is mapped read-only (MAP_PRIVATE); raw() and view() point into the mapping and stay valid
// while the SafetensorsFile lives (moving it keeps them valid). As with any mmap reader, another
// process truncating the file in place while it is mapped makes later reads fault; SafetensorsWriter
// never does that (it replaces files by rename).
//
// Order: keys() lists tensors in data-section order (ascending begin; header order breaks ties between
// empty tensors), which is the order both this writer and the official one use for the header.
//
// Writing — SafetensorsWriter lays tensors out by decreasing element size (stably, so insertion order
// within one size), as the official writer does: with the header padded by spaces to make the data
// section start at an 8-byte aligned offset, every tensor is then aligned to its element size and the
// reader's view<T>() works on every tensor of a file written here. write() is atomic: it writes
// "<path>.tmp.<pid>" in the same directory, fsyncs it, renames it over <path> and fsyncs the
// directory; on failure the temporary file is removed and the previous <path>, if any, is untouched.
// (Two threads of one process must not write the same path at once: they would share the temporary.)
// The output is a pure function of the entries and metadata (bitwise-reproducible checkpoints).
//
// Content hash — safetensors has no checksum, so a flipped bit in the data loads silently. With
// SafetensorsWriter::set_content_hash(), write() also stores metadata "content_hash" =
// "xxh64:<16 hex digits>", the XXH64 (io/xxh64.hpp) of the data section; the header is not covered
// (its corruption is caught structurally at open, or changes a name or shape). SafetensorsFile::
// verify_content_hash() recomputes it: false when the file has none, true when it matches, IoError
// with both values when it does not. Opening a file does not check it (that would read every byte).
//
// read_range() copies a slice of a tensor (e.g. one entry of a stacked tensor), converting as read().
// Released checkpoints (sections, prefixes, Hugging Face names) load through models/checkpoint_keys.hpp.
//
// Parameters (nn/param.hpp): write_params() stores one tensor per ParamInfo under prefix + name
// (F32 for float, F64 for double); read_into() loads a ParamLayout by name, checking every shape
// exactly and converting F32/F64/BF16/F16 to the parameter type. It validates everything before it
// writes any parameter, so a failed load leaves the parameters as they were.
//
// Non-finite values. read_into() refuses a tensor holding a NaN or ±Inf (require_finite: IoError naming
// the file, the tensor and the first such element), for every layout it loads: model parameters,
// EMA targets and optimizer moments alike, with no option to load them anyway. None of these is
// non-finite in a healthy run: the trainer skips a step with a non-finite loss or gradient and never
// writes a checkpoint from non-finite parameters (conventions.md, tier 4), and Adam's moments are
// running averages of the finite gradients it applied. So a NaN there means a corrupt file or a diverged
// run that would otherwise give NaN features with exit status 0. The scan is one branch-free pass
// over the bytes in the file's dtype (an all-ones exponent field), before the copy. read(),
// read_range() and view() return what the file holds, NaN included: other tensors may hold NaN
// legitimately (a training log records the loss of a skipped step). find_non_finite() and
// require_finite() are there for loaders built on them.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

#include "jepa/core/dtype.hpp"
#include "jepa/core/error.hpp"
#include "jepa/core/tensor.hpp"
#include "jepa/io/atomic_file.hpp"
#include "jepa/io/xxh64.hpp"
#include "jepa/nn/param.hpp"

namespace jepa::io {

static_assert(std::endian::native == std::endian::little,
              "jepa: safetensors I/O stores tensors as little-endian bytes and copies them as they are; "
              "a big-endian host would need byte swapping, which is not implemented");

// ------------------------------------------------------------------------------------------------
// dtypes
// ------------------------------------------------------------------------------------------------

/// Every dtype of the safetensors format (jepa::DType covers only the ones the library computes in).
enum class SafetensorsDType : std::uint8_t {
  boolean, u8, i8, i16, u16, i32, u32, i64, u64, f16, bf16, f32, f64, f8_e4m3, f8_e5m2
};

inline constexpr SafetensorsDType kSafetensorsDTypes[] = {
    SafetensorsDType::boolean, SafetensorsDType::u8,  SafetensorsDType::i8,      SafetensorsDType::i16,
    SafetensorsDType::u16,     SafetensorsDType::i32, SafetensorsDType::u32,     SafetensorsDType::i64,
    SafetensorsDType::u64,     SafetensorsDType::f16, SafetensorsDType::bf16,    SafetensorsDType::f32,
    SafetensorsDType::f64,     SafetensorsDType::f8_e4m3, SafetensorsDType::f8_e5m2};

/// The header spelling: "F32", "BF16", "BOOL", ...
constexpr std::string_view safetensors_dtype_name(SafetensorsDType t) {
  switch (t) {
    case SafetensorsDType::boolean: return "BOOL";
    case SafetensorsDType::u8: return "U8";
    case SafetensorsDType::i8: return "I8";
    case SafetensorsDType::i16: return "I16";
    case SafetensorsDType::u16: return "U16";
    case SafetensorsDType::i32: return "I32";
    case SafetensorsDType::u32: return "U32";
    case SafetensorsDType::i64: return "I64";
    case SafetensorsDType::u64: return "U64";
    case SafetensorsDType::f16: return "F16";
    case SafetensorsDType::bf16: return "BF16";
    case SafetensorsDType::f32: return "F32";
    case SafetensorsDType::f64: return "F64";
    case SafetensorsDType::f8_e4m3: return "F8_E4M3";
    case SafetensorsDType::f8_e5m2: return "F8_E5M2";
  }
  return "?";
}

/// Bytes per element.
constexpr std::size_t safetensors_dtype_size(SafetensorsDType t) {
  switch (t) {
    case SafetensorsDType::boolean:
    case SafetensorsDType::u8:
    case SafetensorsDType::i8:
    case SafetensorsDType::f8_e4m3:
    case SafetensorsDType::f8_e5m2: return 1;
    case SafetensorsDType::i16:
    case SafetensorsDType::u16:
    case SafetensorsDType::f16:
    case SafetensorsDType::bf16: return 2;
    case SafetensorsDType::i32:
    case SafetensorsDType::u32:
    case SafetensorsDType::f32: return 4;
    case SafetensorsDType::i64:
    case SafetensorsDType::u64:
    case SafetensorsDType::f64: return 8;
  }
  return 0;
}

/// "BOOL, U8, ..., F8_E5M2": the allowed spellings, for error messages.
inline std::string safetensors_dtype_list() {
  std::string s;
  for (SafetensorsDType t : kSafetensorsDTypes) {
    if (!s.empty()) s.append(", ");
    s.append(safetensors_dtype_name(t));
  }
  return s;
}

/// Parses a header spelling ("F32"); nullopt for anything else (the match is case-sensitive, as in
/// the official reader).
inline std::optional<SafetensorsDType> parse_safetensors_dtype(std::string_view s) {
  for (SafetensorsDType t : kSafetensorsDTypes)
    if (safetensors_dtype_name(t) == s) return t;
  return std::nullopt;
}

constexpr SafetensorsDType to_safetensors(DType t) {
  switch (t) {
    case DType::f32: return SafetensorsDType::f32;
    case DType::f64: return SafetensorsDType::f64;
    case DType::bf16: return SafetensorsDType::bf16;
    case DType::i32: return SafetensorsDType::i32;
    case DType::i64: return SafetensorsDType::i64;
  }
  return SafetensorsDType::f32;
}

/// The jepa::DType of a safetensors dtype, where the library has one.
constexpr std::optional<DType> to_jepa(SafetensorsDType t) {
  switch (t) {
    case SafetensorsDType::f32: return DType::f32;
    case SafetensorsDType::f64: return DType::f64;
    case SafetensorsDType::bf16: return DType::bf16;
    case SafetensorsDType::i32: return DType::i32;
    case SafetensorsDType::i64: return DType::i64;
    default: return std::nullopt;
  }
}

/// The safetensors dtype stored for a C++ element type (bool is deliberately absent: a BOOL byte other
/// than 0/1 is not a valid bool; read BOOL tensors as std::uint8_t).
template <class T> struct safetensors_dtype_of;
template <> struct safetensors_dtype_of<float> { static constexpr auto value = SafetensorsDType::f32; };
template <> struct safetensors_dtype_of<double> { static constexpr auto value = SafetensorsDType::f64; };
template <> struct safetensors_dtype_of<bf16> { static constexpr auto value = SafetensorsDType::bf16; };
template <> struct safetensors_dtype_of<std::int8_t> { static constexpr auto value = SafetensorsDType::i8; };
template <> struct safetensors_dtype_of<std::uint8_t> { static constexpr auto value = SafetensorsDType::u8; };
template <> struct safetensors_dtype_of<std::int16_t> { static constexpr auto value = SafetensorsDType::i16; };
template <> struct safetensors_dtype_of<std::uint16_t> { static constexpr auto value = SafetensorsDType::u16; };
template <> struct safetensors_dtype_of<std::int32_t> { static constexpr auto value = SafetensorsDType::i32; };
template <> struct safetensors_dtype_of<std::uint32_t> { static constexpr auto value = SafetensorsDType::u32; };
template <> struct safetensors_dtype_of<std::int64_t> { static constexpr auto value = SafetensorsDType::i64; };
template <> struct safetensors_dtype_of<std::uint64_t> { static constexpr auto value = SafetensorsDType::u64; };
template <class T> inline constexpr SafetensorsDType safetensors_dtype_of_v = safetensors_dtype_of<T>::value;

/// Element types the reader and writer accept: float, double, bf16 and the fixed-width integers.
template <class T>
concept SafetensorsElement = requires { safetensors_dtype_of<T>::value; };

/// IEEE binary16 → float, exactly (subnormals, ±inf and NaN included).
inline float f16_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu;
  std::uint32_t mant = h & 0x3ffu;
  std::uint32_t u;
  if (exp == 0x1f) {
    u = sign | 0x7f800000u | (mant << 13);  // inf / NaN (payload kept)
  } else if (exp != 0) {
    u = sign | ((exp + 112u) << 23) | (mant << 13);  // rebias 15 → 127
  } else if (mant == 0) {
    u = sign;  // ±0
  } else {     // subnormal: mant · 2^-24; normalise so the leading 1 reaches bit 10
    std::uint32_t shift = 0;
    while (!(mant & 0x400u)) {
      mant <<= 1;
      ++shift;
    }
    u = sign | ((113u - shift) << 23) | ((mant & 0x3ffu) << 13);
  }
  return std::bit_cast<float>(u);
}

// ------------------------------------------------------------------------------------------------
// Descriptions, options and reports
// ------------------------------------------------------------------------------------------------

/// One tensor of a file: dtype, shape and its byte range [begin, end) in the data section.
struct TensorInfo {
  std::string name;
  SafetensorsDType dtype = SafetensorsDType::f32;
  Shape shape;
  std::size_t begin = 0, end = 0;
  std::size_t bytes() const { return end - begin; }
  /// Elements (validated at open: equals bytes() / element size, no overflow).
  std::size_t numel() const { return bytes() / safetensors_dtype_size(dtype); }
  /// The jepa::DType, where the library has one.
  std::optional<DType> jepa_dtype() const { return to_jepa(dtype); }
};

/// The "__metadata__" key of the content hash (SafetensorsWriter::set_content_hash,
/// SafetensorsFile::verify_content_hash): "xxh64:<16 hex digits>", XXH64 of the data section.
inline constexpr std::string_view kContentHashKey = "content_hash";

/// How read_into() maps file keys onto a ParamLayout.
struct LoadOptions {
  /// File key = prefix + parameter name (e.g. "encoder." or "module.backbone.").
  std::string prefix;
  /// Parameter names (without the prefix) that may be absent from the file; they are left untouched.
  /// An entry ending in '*' matches every name that starts with the part before it ("norms_block.*").
  std::vector<std::string> allow_missing;
  /// Every parameter may be absent (loads whatever matches).
  bool allow_any_missing = false;
  /// Throw if the file has keys under `prefix` that name no parameter of the layout. Keys outside the
  /// prefix belong to something else (another model, optimizer state) and are never "unexpected".
  bool strict = false;
};

/// What read_into() did. Keys are file keys (prefix included).
struct LoadReport {
  std::size_t loaded = 0;               // parameters copied from the file
  std::vector<std::string> missing;     // parameters absent from the file (allowed by the options)
  std::vector<std::string> unexpected;  // file keys under the prefix that name no parameter
};

namespace detail {

using jepa::detail::cat;

/// At most `max` bytes of `s` for quoting file content in messages: control bytes and invalid UTF-8
/// become '?', so a message is always printable UTF-8 whatever the file holds.
inline std::string printable(std::string_view s, std::size_t max = 160) {
  std::string out;
  std::size_t i = 0;
  while (i < s.size() && out.size() < max) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out.push_back(c < 0x20 || c == 0x7f ? '?' : static_cast<char>(c));
      ++i;
      continue;
    }
    const std::size_t len = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    bool ok = len != 0 && i + len <= s.size();
    for (std::size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
    if (ok) {  // no overlong forms, surrogates or code points past U+10FFFF
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0) && !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90);
    }
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out.push_back('?');
      ++i;
    }
  }
  if (i < s.size()) out.append(cat("... (", s.size(), " bytes)"));
  return out;
}

inline std::string errno_text(int e) { return std::generic_category().message(e); }

template <class T>
constexpr std::string_view cpp_name() {
  if constexpr (std::is_same_v<T, float>) return "float";
  else if constexpr (std::is_same_v<T, double>) return "double";
  else if constexpr (std::is_same_v<T, bf16>) return "jepa::bf16";
  else if constexpr (std::is_same_v<T, std::int8_t>) return "std::int8_t";
  else if constexpr (std::is_same_v<T, std::uint8_t>) return "std::uint8_t";
  else if constexpr (std::is_same_v<T, std::int16_t>) return "std::int16_t";
  else if constexpr (std::is_same_v<T, std::uint16_t>) return "std::uint16_t";
  else if constexpr (std::is_same_v<T, std::int32_t>) return "std::int32_t";
  else if constexpr (std::is_same_v<T, std::uint32_t>) return "std::uint32_t";
  else if constexpr (std::is_same_v<T, std::int64_t>) return "std::int64_t";
  else if constexpr (std::is_same_v<T, std::uint64_t>) return "std::uint64_t";
  else return "?";
}

constexpr bool is_float_dtype(SafetensorsDType t) {
  return t == SafetensorsDType::f32 || t == SafetensorsDType::f64 || t == SafetensorsDType::bf16 ||
         t == SafetensorsDType::f16;
}
constexpr bool is_int_dtype(SafetensorsDType t) {
  switch (t) {
    case SafetensorsDType::boolean:
    case SafetensorsDType::u8:
    case SafetensorsDType::i8:
    case SafetensorsDType::i16:
    case SafetensorsDType::u16:
    case SafetensorsDType::i32:
    case SafetensorsDType::u32:
    case SafetensorsDType::i64:
    case SafetensorsDType::u64: return true;
    default: return false;
  }
}

/// Whether read<T>() converts dtype t: the exact dtype always; F32/F64/BF16/F16 into float and double;
/// every integer dtype and BOOL into every integer type (with a range check per element).
template <class T>
constexpr bool readable_as(SafetensorsDType t) {
  if (t == safetensors_dtype_of_v<T>) return true;
  if constexpr (std::is_floating_point_v<T>) return is_float_dtype(t);
  else if constexpr (std::is_integral_v<T>) return is_int_dtype(t);
  else return false;
}

/// Loads element i of a little-endian array of S (no alignment needed).
template <class S>
inline S load(const std::byte* p, std::size_t i) {
  S v;
  std::memcpy(&v, p + i * sizeof(S), sizeof(S));
  return v;
}

/// a · b, or nullopt on 64-bit overflow.
inline std::optional<std::uint64_t> checked_mul(std::uint64_t a, std::uint64_t b) {
  std::uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

inline std::size_t common_prefix(std::string_view a, std::string_view b) {
  std::size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return i;
}

/// An fd closed on scope exit.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }
  /// Closes now; returns close()'s errno (0 on success).
  int reset() {
    int e = 0;
    if (fd_ >= 0 && ::close(fd_) != 0) e = errno;
    fd_ = -1;
    return e;
  }

 private:
  int fd_;
};

/// The bytes of a whole file: a read-only mapping (unmapped on destruction), or an owned heap copy
/// (SafetensorsFile::from_bytes). Movable; data() is 16-byte aligned either way (page-aligned when
/// mapped, operator new[]'s alignment when owned), so views of aligned tensors stay aligned.
class MappedFile {
 public:
  MappedFile() = default;
  MappedFile(void* p, std::size_t n) : p_(p), n_(n) {}
  /// An owned copy of `bytes` (empty input gives an empty, non-null-free buffer).
  static MappedFile copy_of(std::span<const std::byte> bytes) {
    MappedFile m;
    m.owned_ = std::make_unique<std::byte[]>(std::max<std::size_t>(bytes.size(), 1));
    if (!bytes.empty()) std::memcpy(m.owned_.get(), bytes.data(), bytes.size());
    m.n_ = bytes.size();
    return m;
  }
  ~MappedFile() { reset(); }
  MappedFile(MappedFile&& o) noexcept
      : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)), owned_(std::move(o.owned_)) {}
  MappedFile& operator=(MappedFile&& o) noexcept {
    if (this != &o) {
      reset();
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
      owned_ = std::move(o.owned_);
    }
    return *this;
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const std::byte* data() const { return owned_ ? owned_.get() : static_cast<const std::byte*>(p_); }
  std::size_t size() const { return n_; }
  bool mapped() const { return p_ != nullptr; }

 private:
  void reset() {
    if (p_) ::munmap(p_, n_);
    p_ = nullptr;
    owned_.reset();
    n_ = 0;
  }
  void* p_ = nullptr;
  std::size_t n_ = 0;
  std::unique_ptr<std::byte[]> owned_;
};

inline bool name_allowed(const std::vector<std::string>& patterns, std::string_view name) {
  for (const std::string& p : patterns) {
    if (!p.empty() && p.back() == '*') {
      if (name.starts_with(std::string_view(p).substr(0, p.size() - 1))) return true;
    } else if (p == name) {
      return true;
    }
  }
  return false;
}

/// Scans n little-endian IEEE values of width U (uint32 for F32, uint64 for F64, uint16 for BF16 and
/// F16) at p: the index of the first whose exponent bits are all ones (NaN when the mantissa is not 0,
/// else ±Inf), or n. A value x is non-finite iff (x & exp) == exp. Blocks of 1024 are OR-reduced
/// without branches (vectorised, memory-bound); only a block with a hit is rescanned for its index.
template <class U>
inline std::size_t first_non_finite(const std::byte* p, std::size_t n, U exp) {
  constexpr std::size_t kBlock = 1024;
  for (std::size_t b = 0; b < n; b += kBlock) {
    const std::size_t e = std::min(n, b + kBlock);
    unsigned hit = 0;
    for (std::size_t i = b; i < e; ++i) hit |= static_cast<unsigned>((load<U>(p, i) & exp) == exp);
    if (hit)
      for (std::size_t i = b; i < e; ++i)
        if ((load<U>(p, i) & exp) == exp) return i;
  }
  return n;
}

/// `s` as one shell word: unchanged when it holds only characters no shell treats specially, else in
/// single quotes (a ' inside becomes '\'').
inline std::string shell_word(std::string_view s) {
  const bool plain = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("_-./+=:,@%").find(c) != std::string_view::npos;
  });
  if (plain) return std::string(s);
  std::string q = "'";
  for (char c : s) q.append(c == '\'' ? std::string_view("'\\''") : std::string_view(&c, 1));
  return q + "'";
}

/// SAX handler for a safetensors header. Each top-level member is handed to on_member(name, value) as
/// soon as its value is complete and then dropped, so the work is linear in the header length and the
/// memory bounded by one member. (nlohmann's callback parser, used before, scans the enclosing object
/// for a discarded value at the end of every object: one scan of the top level per tensor, quadratic
/// in the number of tensors: 12.8 s for 50,000 entries, 57 s for 100,000 on a 2-core AMD EPYC.)
///   * a name given twice at the top level throws Duplicate (nlohmann's DOM would keep only the last);
///     inside a member the last value of a repeated key wins, as in nlohmann's DOM;
///   * an object or array opened inside more than max_depth enclosing containers throws TooDeep (a
///     valid header nests 3 deep), before a hostile header can build a deep DOM;
///   * a syntax or UTF-8 error rethrows nlohmann's parse_error (same messages as json::parse).
/// A root that is not an object is parsed to its end (so syntax errors still win) and only its type
/// name is kept.
template <class OnMember>
class HeaderSax {
 public:
  using json = nlohmann::json;
  struct TooDeep {};
  struct Duplicate {
    std::string name;
  };

  HeaderSax(std::size_t max_depth, OnMember on_member) : max_depth_(max_depth), on_member_(std::move(on_member)) {}

  bool root_is_object() const { return root_is_object_; }
  /// The JSON type name of the root ("object", "array", "number", ...); empty before parsing.
  const std::string& root_type() const { return root_type_; }

  bool null() { return value(json(nullptr)); }
  bool boolean(bool b) { return value(json(b)); }
  bool number_integer(json::number_integer_t v) { return value(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return value(json(v)); }
  bool number_float(json::number_float_t v, const json::string_t&) { return value(json(v)); }
  bool string(json::string_t& s) { return value(json(std::move(s))); }
  bool binary(json::binary_t& b) { return value(json::binary(std::move(b))); }
  bool start_object(std::size_t) { return open(json::object()); }
  bool start_array(std::size_t) { return open(json::array()); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool key(json::string_t& k) {
    if (at_top_level()) {
      if (!seen_.insert(k).second) throw Duplicate{k};
      name_ = std::move(k);
    } else if (stack_.back()) {
      slot_ = &(*stack_.back())[k];
    }
    return true;
  }
  template <class Exception>
  bool parse_error(std::size_t, const std::string&, const Exception& e) {
    throw e;
  }

 private:
  /// Inside the root object, between its members.
  bool at_top_level() const { return root_is_object_ && stack_.size() == 1; }

  /// Stores a finished value where it belongs; returns it, or nullptr when it is not kept.
  json* place(json&& v) {
    if (stack_.empty()) {  // the root itself
      root_type_ = v.type_name();
      return nullptr;
    }
    if (at_top_level()) {
      member_ = std::move(v);
      return &member_;
    }
    json* top = stack_.back();
    if (!top) return nullptr;  // inside a root that is not an object
    if (top->is_array()) {
      top->push_back(std::move(v));
      return &top->back();  // stable: nothing is appended to `top` while this element is open
    }
    *slot_ = std::move(v);
    return slot_;
  }
  bool value(json&& v) {
    const bool member = at_top_level();
    place(std::move(v));
    if (member) emit();
    return true;
  }
  bool open(json&& v) {
    if (stack_.size() > max_depth_) throw TooDeep{};
    if (stack_.empty() && v.is_object()) {
      root_is_object_ = true;
      root_type_ = "object";
      stack_.push_back(nullptr);  // members are handed out, not stored
      return true;
    }
    stack_.push_back(place(std::move(v)));
    return true;
  }
  bool close() {
    stack_.pop_back();
    if (at_top_level()) emit();
    return true;
  }
  void emit() {
    on_member_(name_, std::as_const(member_));
    member_ = json();
  }

  std::size_t max_depth_;
  OnMember on_member_;
  bool root_is_object_ = false;
  std::string root_type_;
  std::vector<json*> stack_;  // open containers, outermost first; nullptr: not stored
  json* slot_ = nullptr;      // where the value of the current key of an inner object goes
  std::string name_;          // the current top-level member
  json member_;               // its value
  std::unordered_set<std::string> seen_;
};

}  // namespace detail

// ------------------------------------------------------------------------------------------------
// Reader
// ------------------------------------------------------------------------------------------------

/// A validated, memory-mapped safetensors file (see the header comment for the rules). Movable, not
/// copyable; every accessor is const and thread-safe.
class SafetensorsFile {
 public:
  /// The official reader's limit on the header length.
  static constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;
  /// Deepest JSON nesting accepted in a header (a valid one nests 3 levels).
  static constexpr int kMaxDepth = 16;

  /// Opens, maps and validates `path`; throws IoError naming the file and the problem.
  explicit SafetensorsFile(const std::filesystem::path& path) : path_(path.string()) {
    detail::UniqueFd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));  // no FIFO hang
    if (fd.get() < 0) {
      const int e = errno;
      fail(detail::cat("cannot be opened: ", detail::errno_text(e),
                       e == ENOENT ? " (check the path and the working directory)" : ""));
    }
    struct stat st{};
    if (::fstat(fd.get(), &st) != 0) fail(detail::cat("cannot be inspected (fstat): ", detail::errno_text(errno)));
    if (S_ISDIR(st.st_mode)) fail("is a directory, not a file; pass the path of a .safetensors file");
    if (!S_ISREG(st.st_mode)) fail("is not a regular file (a device, pipe or socket); only regular files can be mapped");
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (size == 0) fail("is empty (0 bytes); a safetensors file starts with an 8-byte little-endian header length");
    if (size < 8)
      fail(detail::cat("has only ", size,
                       " bytes; a safetensors file starts with an 8-byte little-endian header length (truncated file?)"));
    void* p = ::mmap(nullptr, static_cast<std::size_t>(size), PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (p == MAP_FAILED) fail(detail::cat("cannot be memory-mapped: ", detail::errno_text(errno)));
    map_ = detail::MappedFile(p, static_cast<std::size_t>(size));
    parse();
  }

  /// Validates an in-memory safetensors image (copied; the caller's buffer may go away). `name`
  /// stands for the path in error messages. Same rules and errors as opening a file, minus the
  /// file-system ones; used by the fuzz target (tests/fuzz/fuzz_safetensors.cpp) and for files
  /// that arrive over a network or out of an archive.
  static SafetensorsFile from_bytes(std::span<const std::byte> bytes, std::string name = "<memory>") {
    SafetensorsFile f(FromBytes{}, std::move(name));
    if (bytes.empty()) f.fail("is empty (0 bytes); a safetensors file starts with an 8-byte little-endian header length");
    if (bytes.size() < 8)
      f.fail(detail::cat("has only ", bytes.size(),
                         " bytes; a safetensors file starts with an 8-byte little-endian header length (truncated file?)"));
    f.map_ = detail::MappedFile::copy_of(bytes);
    f.parse();
    return f;
  }

  SafetensorsFile(SafetensorsFile&&) noexcept = default;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept = default;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  /// Number of tensors.
  std::size_t size() const { return tensors_.size(); }
  /// Tensor names in data-section order.
  const std::vector<std::string>& keys() const { return keys_; }
  bool contains(std::string_view name) const { return index_.find(name) != index_.end(); }
  /// All tensors, in keys() order.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  /// dtype, shape and byte range of `name`; IoError naming the key and the closest keys if absent.
  const TensorInfo& info(std::string_view name) const { return tensors_[find(name)]; }
  /// The "__metadata__" entries (empty if the file has none).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  std::size_t file_size() const { return map_.size(); }
  std::size_t header_size() const { return static_cast<std::size_t>(data_offset_ - 8); }
  /// File offset of the data section (8 + header length).
  std::size_t data_offset() const { return static_cast<std::size_t>(data_offset_); }
  std::size_t data_size() const { return map_.size() - data_offset(); }

  /// The bytes of `name` in the mapping (zero-copy).
  std::span<const std::byte> raw(std::string_view name) const {
    const TensorInfo& t = info(name);
    return {data() + t.begin, t.bytes()};
  }

  /// Zero-copy typed view of `name`. The dtype must be exactly that of T and the data aligned for T
  /// (always true for files written by SafetensorsWriter or the official writer); otherwise IoError
  /// telling to use read<T>(), which converts and copies.
  template <SafetensorsElement T>
  std::span<const T> view(std::string_view name) const {
    const TensorInfo& t = info(name);
    if (t.dtype != safetensors_dtype_of_v<T>)
      fail_tensor(name, detail::cat("has dtype ", safetensors_dtype_name(t.dtype), "; view<", detail::cpp_name<T>(),
                                    "> needs dtype ", safetensors_dtype_name(safetensors_dtype_of_v<T>),
                                    " exactly (it is zero-copy); use read<", detail::cpp_name<T>(),
                                    ">(), which converts, or raw()"));
    if (t.numel() == 0) return {};
    const std::byte* p = data() + t.begin;
    if (reinterpret_cast<std::uintptr_t>(p) % alignof(T) != 0)
      fail_tensor(name, detail::cat("starts at file offset ", data_offset() + t.begin, ", which is not a multiple of ",
                                    alignof(T), ", so it cannot be viewed in place as ", detail::cpp_name<T>(),
                                    "; use read<", detail::cpp_name<T>(), ">(), which copies"));
    return {reinterpret_cast<const T*>(p), t.numel()};
  }

  /// Copies `name` into dst[0, n), converting: any dtype to itself; F32/F64/BF16/F16 to float or
  /// double; any integer dtype or BOOL to any integer type (each value range-checked). `n` must be the
  /// tensor's element count.
  template <SafetensorsElement T>
  void read(std::string_view name, T* dst, std::size_t n) const {
    const TensorInfo& t = info(name);
    if (n != t.numel())
      fail_tensor(name, detail::cat("has ", t.numel(), " elements (shape ", t.shape, ", dtype ",
                                    safetensors_dtype_name(t.dtype), ") but the destination expects ", n));
    read_range<T>(name, 0, dst, n);
  }

  /// Copies elements [first, first + n) of `name` (flat row-major order) into dst[0, n), converting
  /// as read() does; e.g. one slice along dim 0 of a stacked tensor. IoError when the range does not
  /// lie inside the tensor.
  template <SafetensorsElement T>
  void read_range(std::string_view name, std::size_t first, T* dst, std::size_t n) const {
    const TensorInfo& t = info(name);
    if (first > t.numel() || n > t.numel() - first)
      fail_tensor(name, detail::cat("has ", t.numel(), " elements (shape ", t.shape, "); elements [", first, ", ",
                                    first, " + ", n, ") lie outside it"));
    check_readable<T>(t);
    const std::byte* src = data() + t.begin + first * safetensors_dtype_size(t.dtype);
    if (t.dtype == safetensors_dtype_of_v<T>) {
      if (n) std::memcpy(static_cast<void*>(dst), src, n * sizeof(T));
      return;
    }
    if constexpr (std::is_floating_point_v<T>) {
      switch (t.dtype) {
        case SafetensorsDType::f32:
          for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<T>(detail::load<float>(src, i));
          break;
        case SafetensorsDType::f64:
          for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<T>(detail::load<double>(src, i));
          break;
        case SafetensorsDType::bf16:
          for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<T>(bf16::to_float(detail::load<std::uint16_t>(src, i)));
          break;
        case SafetensorsDType::f16:
          for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<T>(f16_to_float(detail::load<std::uint16_t>(src, i)));
          break;
        default: break;  // excluded by check_readable
      }
    } else if constexpr (std::is_integral_v<T>) {
      switch (t.dtype) {
        case SafetensorsDType::boolean:
          for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<T>(detail::load<std::uint8_t>(src, i) != 0);
          break;
        case SafetensorsDType::u8: convert_ints<std::uint8_t>(name, src, dst, n); break;
        case SafetensorsDType::i8: convert_ints<std::int8_t>(name, src, dst, n); break;
        case SafetensorsDType::i16: convert_ints<std::int16_t>(name, src, dst, n); break;
        case SafetensorsDType::u16: convert_ints<std::uint16_t>(name, src, dst, n); break;
        case SafetensorsDType::i32: convert_ints<std::int32_t>(name, src, dst, n); break;
        case SafetensorsDType::u32: convert_ints<std::uint32_t>(name, src, dst, n); break;
        case SafetensorsDType::i64: convert_ints<std::int64_t>(name, src, dst, n); break;
        case SafetensorsDType::u64: convert_ints<std::uint64_t>(name, src, dst, n); break;
        default: break;  // excluded by check_readable
      }
    }
  }

  /// read() into a new vector.
  template <SafetensorsElement T>
  std::vector<T> read(std::string_view name) const {
    std::vector<T> v(info(name).numel());
    read<T>(name, v.data(), v.size());
    return v;
  }

  /// Loads every parameter of `layout` into `params` (a buffer laid out by it, e.g.
  /// ParameterSet<T>::data()) from key options.prefix + name. Shapes must match exactly; F32, F64, BF16
  /// and F16 convert to T; every value must be finite (require_finite). Everything is checked before
  /// anything is written, the data scan last (after the cheap checks on the header).
  template <Real T>
  LoadReport read_into(const nn::ParamLayout& layout, T* params, const LoadOptions& opt = {}) const {
    LoadReport rep;
    std::vector<std::pair<const nn::ParamInfo*, const TensorInfo*>> plan;
    std::vector<const nn::ParamInfo*> absent;
    for (const nn::ParamInfo& p : layout.params()) {
      const std::string key = opt.prefix + p.name;
      const auto it = index_.find(key);
      if (it == index_.end()) {
        if (opt.allow_any_missing || detail::name_allowed(opt.allow_missing, p.name))
          rep.missing.push_back(key);
        else
          absent.push_back(&p);
        continue;
      }
      const TensorInfo& t = tensors_[it->second];
      if (t.shape != p.shape)
        fail_tensor(key, detail::cat("has shape ", t.shape, " in the file but the model's parameter '", p.name,
                                     "' has shape ", p.shape, "; shapes must match exactly"));
      if (!detail::is_float_dtype(t.dtype))
        fail_tensor(key, detail::cat("has dtype ", safetensors_dtype_name(t.dtype), " but the model's parameter '", p.name,
                                     "' holds real numbers; parameters load from F32, F64, BF16 or F16 tensors"));
      plan.emplace_back(&p, &t);
    }
    if (!absent.empty()) fail_absent(absent, opt);
    for (const TensorInfo& t : tensors_)
      if (t.name.starts_with(opt.prefix) && !layout.contains(t.name.substr(opt.prefix.size())))
        rep.unexpected.push_back(t.name);
    if (opt.strict && !rep.unexpected.empty()) {
      std::string list;
      for (std::size_t i = 0; i < rep.unexpected.size() && i < 5; ++i)
        list.append(detail::cat(i ? ", '" : "'", detail::printable(rep.unexpected[i]), "'"));
      fail(detail::cat(rep.unexpected.size(), " key(s)", opt.prefix.empty() ? "" : " under prefix '" + opt.prefix + "'",
                       " name no parameter of the model (", list, rep.unexpected.size() > 5 ? ", ..." : "",
                       "): the file holds another model, or another size of it; a strict load forbids unexpected keys "
                       "(LoadOptions::strict in C++; resuming training always loads strictly)"));
    }
    for (const auto& [p, t] : plan) require_finite_range(*t, 0, t->numel());
    for (const auto& [p, t] : plan) read<T>(t->name, params + p->offset, p->numel());
    rep.loaded = plan.size();
    return rep;
  }

  /// The first NaN or ±Inf among elements [first, first + n) of `name` (n = npos: to the end), as an
  /// element index from the start of the tensor (flat, row-major); nullopt when all are finite or the
  /// dtype is not F32, F64, BF16 or F16. IoError when the range lies outside the tensor.
  std::optional<std::size_t> find_non_finite(std::string_view name, std::size_t first = 0,
                                             std::size_t n = std::string_view::npos) const {
    const TensorInfo& t = info(name);
    return first_non_finite(t, first, clamp_range(t, first, n));
  }

  /// IoError when elements [first, first + n) of `name` (n = npos: to the end) hold a NaN or ±Inf:
  ///   "tensor 'blocks.3.attn.qkv.weight' holds a non-finite value (NaN) at element 12 (index [0, 12] of
  ///    shape [96, 32]); the weights are corrupt or the training diverged".
  /// read_into() calls it on every tensor it loads; read(), read_range() and view() do not (they return
  /// what the file holds: a training log may record a NaN loss).
  void require_finite(std::string_view name, std::size_t first = 0, std::size_t n = std::string_view::npos) const {
    const TensorInfo& t = info(name);
    require_finite_range(t, first, clamp_range(t, first, n));
  }

  /// Checks the content hash that SafetensorsWriter::set_content_hash() stores: metadata
  /// kContentHashKey ("content_hash") = "xxh64:<16 hex digits>", XXH64 (seed 0, io/xxh64.hpp) of the
  /// data section (every byte after the header). Returns false when the file has no such entry (nothing
  /// to check), true when the hash matches; IoError naming the file with the stored and the computed
  /// hash when they differ (a bit flip or a damaged copy), or when the entry is not of that form. One
  /// pass over the data section (memory-bound: ~GB/s; the first read of a cold file is disk-bound).
  bool verify_content_hash() const {
    const auto it = metadata_.find(std::string(kContentHashKey));
    if (it == metadata_.end()) return false;
    const std::string& stored = it->second;
    const std::string_view tag = "xxh64:";
    std::uint64_t expected = 0;
    bool ok = stored.size() == tag.size() + 16 && stored.starts_with(tag);
    for (std::size_t i = tag.size(); ok && i < stored.size(); ++i) {
      const char c = stored[i];
      const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      ok = d >= 0;
      expected = expected << 4 | static_cast<std::uint64_t>(d < 0 ? 0 : d);
    }
    if (!ok)
      fail(detail::cat("has metadata ", kContentHashKey, " = '", detail::printable(stored),
                       "', which is not a content hash this reader knows; the form is 'xxh64:' followed by 16 hex digits"));
    const std::uint64_t computed = xxh64(data(), data_size());
    if (computed != expected)
      fail(detail::cat("fails its content check: the data section (", data_size(), " bytes after the header) hashes to ",
                       xxh64_text(computed), " but the file records ", kContentHashKey, " = ", xxh64_text(expected),
                       "; the file was damaged after it was written (disk, copy or transfer error): restore it from "
                       "another copy, or delete it to start over"));
    return true;
  }

 private:
  struct FromBytes {};
  SafetensorsFile(FromBytes, std::string name) : path_(std::move(name)) {}

  const std::byte* data() const { return map_.data() + data_offset_; }

  /// n, or the elements from `first` to the end when n = npos; IoError when [first, first + n) is not
  /// inside the tensor.
  std::size_t clamp_range(const TensorInfo& t, std::size_t first, std::size_t n) const {
    if (n == std::string_view::npos && first <= t.numel()) n = t.numel() - first;
    if (first > t.numel() || n > t.numel() - first)
      fail_tensor(t.name, detail::cat("has ", t.numel(), " elements (shape ", t.shape, "); elements [", first, ", ",
                                      first, " + ", n, ") lie outside it"));
    return n;
  }

  std::optional<std::size_t> first_non_finite(const TensorInfo& t, std::size_t first, std::size_t n) const {
    const std::byte* p = data() + t.begin + first * safetensors_dtype_size(t.dtype);
    std::size_t i = n;
    switch (t.dtype) {
      case SafetensorsDType::f32: i = detail::first_non_finite<std::uint32_t>(p, n, 0x7f800000u); break;
      case SafetensorsDType::f64: i = detail::first_non_finite<std::uint64_t>(p, n, 0x7ff0000000000000ull); break;
      case SafetensorsDType::bf16: i = detail::first_non_finite<std::uint16_t>(p, n, 0x7f80u); break;
      case SafetensorsDType::f16: i = detail::first_non_finite<std::uint16_t>(p, n, 0x7c00u); break;
      default: break;  // integers are always finite; F8 formats are not read as numbers here
    }
    if (i == n) return std::nullopt;
    return first + i;
  }

  void require_finite_range(const TensorInfo& t, std::size_t first, std::size_t n) const {
    const auto i = first_non_finite(t, first, n);
    if (!i) return;
    const std::byte* p = data() + t.begin;
    bool nan = false, negative = false;
    switch (t.dtype) {  // NaN: mantissa ≠ 0 under an all-ones exponent; the sign bit tells -Inf from +Inf
      case SafetensorsDType::f32: {
        const auto u = detail::load<std::uint32_t>(p, *i);
        nan = (u & 0x007fffffu) != 0, negative = (u >> 31) != 0;
        break;
      }
      case SafetensorsDType::f64: {
        const auto u = detail::load<std::uint64_t>(p, *i);
        nan = (u & 0x000fffffffffffffull) != 0, negative = (u >> 63) != 0;
        break;
      }
      default: {  // BF16 (7 mantissa bits), F16 (10)
        const auto u = detail::load<std::uint16_t>(p, *i);
        nan = (u & (t.dtype == SafetensorsDType::bf16 ? 0x007fu : 0x03ffu)) != 0, negative = (u >> 15) != 0;
        break;
      }
    }
    std::string where;
    if (t.shape.rank() > 1) {  // the multi-index of flat element i, row-major
      std::vector<index_t> idx(t.shape.rank());
      std::size_t r = *i;
      for (std::size_t d = t.shape.rank(); d-- > 0;) {
        const auto e = static_cast<std::size_t>(t.shape[d]);
        idx[d] = static_cast<index_t>(r % e);
        r /= e;
      }
      where = detail::cat(" (index ", Shape(std::move(idx)), " of shape ", t.shape, ")");
    }
    fail_tensor(t.name, detail::cat("holds a non-finite value (", nan ? "NaN" : negative ? "-Inf" : "+Inf", ") at element ", *i,
                                    where, "; the weights are corrupt or the training diverged"));
  }

  [[noreturn]] void fail(std::string_view what) const {
    throw IoError(detail::cat("jepa: safetensors file '", path_, "' ", what));
  }
  [[noreturn]] void fail_tensor(std::string_view key, std::string_view what) const {
    throw IoError(detail::cat("jepa: safetensors file '", path_, "': tensor '", detail::printable(key), "' ", what));
  }

  std::size_t find(std::string_view name) const {
    const auto it = index_.find(name);
    if (it != index_.end()) return it->second;
    fail(detail::cat("has no tensor named '", detail::printable(name), "' (", nearest(name), ")"));
  }

  /// "the file has N tensors; closest: 'a', 'b', 'c'" — by longest common prefix, then file order.
  std::string nearest(std::string_view name, std::size_t k = 3) const {
    if (keys_.empty()) return "the file has no tensors";
    std::vector<std::pair<std::size_t, std::size_t>> score;  // (-prefix, index)
    score.reserve(keys_.size());
    for (std::size_t i = 0; i < keys_.size(); ++i) score.emplace_back(detail::common_prefix(keys_[i], name), i);
    const std::size_t m = std::min(k, score.size());
    std::partial_sort(score.begin(), score.begin() + static_cast<std::ptrdiff_t>(m), score.end(),
                      [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
    std::string s = detail::cat("the file has ", keys_.size(), " tensor", keys_.size() == 1 ? "" : "s", "; closest: ");
    for (std::size_t i = 0; i < m; ++i) s.append(detail::cat(i ? ", '" : "'", detail::printable(keys_[score[i].second]), "'"));
    return s;
  }

  template <class T>
  void check_readable(const TensorInfo& t) const {
    if (detail::readable_as<T>(t.dtype)) return;
    std::string_view hint = detail::is_int_dtype(t.dtype)     ? "read it as an integer type (e.g. std::int64_t)"
                            : detail::is_float_dtype(t.dtype) ? "read it as float or double"
                                                              : "use raw() and decode it yourself";
    fail_tensor(t.name, detail::cat("has dtype ", safetensors_dtype_name(t.dtype), ", which cannot be read as ",
                                    detail::cpp_name<T>(), " (", detail::cpp_name<T>(), " reads ",
                                    std::is_floating_point_v<T> ? "F32, F64, BF16 and F16"
                                    : std::is_integral_v<T>     ? "every integer dtype and BOOL"
                                                                : std::string_view(safetensors_dtype_name(safetensors_dtype_of_v<T>)),
                                    "); ", hint));
  }

  template <class S, class T>
  void convert_ints(std::string_view name, const std::byte* src, T* dst, std::size_t n) const {
    for (std::size_t i = 0; i < n; ++i) {
      const S v = detail::load<S>(src, i);
      if (!std::in_range<T>(v))
        fail_tensor(name, detail::cat("element ", i, " = ", +v, " does not fit in ", detail::cpp_name<T>(),
                                      "; read it as a wider type (std::int64_t)"));
      dst[i] = static_cast<T>(v);
    }
  }

  void fail_absent(const std::vector<const nn::ParamInfo*>& absent, const LoadOptions& opt) const {
    std::string list;
    for (std::size_t i = 0; i < absent.size() && i < 5; ++i)
      list.append(detail::cat(i ? ", '" : "'", opt.prefix, absent[i]->name, "'"));
    // A wrong prefix is the usual cause: look for a key that ends with the first missing name.
    const std::string& first = absent.front()->name;
    std::string hint;
    for (const std::string& k : keys_)
      if (k.size() >= first.size() && k.ends_with(first)) {
        const std::string pre = k.substr(0, k.size() - first.size());
        if (pre != opt.prefix)
          hint = detail::cat("; the file has '", detail::printable(k), "': its keys start with '", detail::printable(pre), "'",
                             opt.prefix.empty() ? std::string() : detail::cat(", not '", detail::printable(opt.prefix), "'"),
                             ": set the key prefix to \"", detail::printable(pre), "\" (LoadOptions::prefix = \"",
                             detail::printable(pre), "\" in C++; the programs choose the prefix themselves, so from a "
                             "program it means the file is not the checkpoint it expects)");
        break;
      }
    if (hint.empty())
      hint = "; for '" + opt.prefix + first + "': " + nearest(opt.prefix + first) +
             " (the file may hold another model, or another size of it)";
    fail(detail::cat("lacks ", absent.size(), " parameter(s) of the model: ", list, absent.size() > 5 ? ", ..." : "",
                     hint, "; to load anyway, let parameters be absent (LoadOptions::allow_missing in C++)"));
  }

  /// A PyTorch checkpoint passed as safetensors. torch.save writes a zip archive ("PK\3\4"; entry
  /// "<name>/data.pkl" first) since PyTorch 1.6 and a bare pickle before (0x80, then the protocol 2..5).
  /// Either prefix also reads as a plausible header length (0x0280 = 640 bytes), so it counts only when
  /// the file cannot be safetensors: the length is impossible, or byte 8 (where every header starts
  /// with '{') is something else.
  void refuse_pytorch(std::uint64_t n) const {
    const auto* b = reinterpret_cast<const unsigned char*>(map_.data());
    const std::size_t size = map_.size();
    const bool zip = b[0] == 'P' && b[1] == 'K' && b[2] == 3 && b[3] == 4;
    const bool pickle = b[0] == 0x80 && b[1] >= 2 && b[1] <= 5;
    if (!zip && !pickle) return;
    if (n <= size - 8 && n <= kMaxHeaderBytes && size > 8 && b[8] == '{') return;
    // Legacy torch.save: pickle protocol 2, then the LONG1 magic number 0x1950a86a20f9469cfc6c.
    static constexpr unsigned char kLegacyMagic[] = {0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
    bool torch = pickle && size >= 2 + sizeof kLegacyMagic && std::memcmp(b + 2, kLegacyMagic, sizeof kLegacyMagic) == 0;
    if (zip) {  // local file header: name length at 26 (u16), the name at 30
      const std::size_t len = size >= 30 ? b[26] | (std::size_t{b[27]} << 8) : 0;
      const std::string_view first = size >= 30 + len ? std::string_view(reinterpret_cast<const char*>(b + 30), len) : "";
      torch = first.ends_with("data.pkl");
    }
    const std::filesystem::path in(path_);
    std::filesystem::path out = in;
    out.replace_extension(in.extension() == ".safetensors" ? ".converted.safetensors" : ".safetensors");
    if (in.extension() == ".tar") out.replace_extension("").replace_extension(".safetensors");  // x.pth.tar
    const std::string command = detail::cat("`python3 tools/convert_checkpoint.py ", detail::shell_word(path_), " ",
                                            detail::shell_word(out.string()), "`");
    const std::string_view how = " (any Python with PyTorch; the script is in the jepa source tree)";
    if (torch)
      throw IoError(detail::cat("jepa: '", path_, "' is a PyTorch checkpoint (.pt, ", zip ? "zip" : "legacy pickle",
                                " format), not safetensors: convert it once with ", command, how));
    throw IoError(detail::cat("jepa: '", path_, "' is ", zip ? "a zip archive" : "a Python pickle",
                              ", not a safetensors file; if it is a PyTorch checkpoint (.pt, .pth), convert it once with ",
                              command, how));
  }

  void parse() {
    const std::byte* base = map_.data();
    const std::uint64_t n = detail::load<std::uint64_t>(base, 0);
    const std::uint64_t after = map_.size() - 8;
    refuse_pytorch(n);
    if (n > after)
      fail(detail::cat("is malformed: its header length field says ", n, " bytes but only ", after,
                       " bytes follow it (truncated file, or not a safetensors file)"));
    if (n > kMaxHeaderBytes)
      fail(detail::cat("is malformed: its header length field says ", n, " bytes, more than the ", kMaxHeaderBytes,
                       " allowed (not a safetensors file?)"));
    data_offset_ = 8 + n;
    const std::size_t data_size = map_.size() - static_cast<std::size_t>(data_offset_);

    // One pass over the header: each member becomes a TensorInfo (or the metadata) as soon as it is
    // parsed (detail::HeaderSax).
    const char* h = reinterpret_cast<const char*>(base + 8);
    std::vector<TensorInfo> ts;
    const auto on_member = [&](const std::string& key, const nlohmann::json& v) {
      if (key == "__metadata__") parse_metadata(v);
      else ts.push_back(parse_tensor(key, v, data_size));
    };
    using Sax = detail::HeaderSax<decltype(on_member)>;
    Sax sax(static_cast<std::size_t>(kMaxDepth), on_member);
    try {
      nlohmann::json::sax_parse(h, h + n, &sax);
    } catch (const Sax::TooDeep&) {
      fail(detail::cat("is malformed: its header nests JSON values more than ", kMaxDepth,
                       " levels deep; a safetensors header nests 3 levels"));
    } catch (const Sax::Duplicate& d) {
      fail(detail::cat("is malformed: its header names '", detail::printable(d.name), "' more than once; names must be unique"));
    } catch (const nlohmann::json::exception& e) {
      fail(detail::cat("is malformed: its header (", n, " bytes) is not valid UTF-8 JSON: ", detail::printable(e.what(), 240)));
    }
    if (!sax.root_is_object())
      fail(detail::cat("is malformed: its header must be a JSON object {name: {dtype, shape, data_offsets}, ...}, found a JSON ",
                       sax.root_type()));

    // Coverage: sorted by (begin, end), each tensor starts where the previous one ends.
    std::vector<std::size_t> idx(ts.size());
    std::iota(idx.begin(), idx.end(), std::size_t{0});
    std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
      return ts[a].begin != ts[b].begin ? ts[a].begin < ts[b].begin : ts[a].end < ts[b].end;
    });
    std::size_t pos = 0;
    const TensorInfo* prev = nullptr;
    for (std::size_t i : idx) {
      const TensorInfo& t = ts[i];
      if (t.begin > pos)
        fail(detail::cat("is malformed: bytes [", pos, ", ", t.begin, ") of the data section belong to no tensor (a hole ",
                         prev ? detail::cat("between tensor '", detail::printable(prev->name), "' and ") : std::string("before "),
                         "tensor '", detail::printable(t.name), "'); tensors must cover the data section without holes"));
      if (t.begin < pos)
        fail(detail::cat("is malformed: tensor '", detail::printable(t.name), "' (bytes [", t.begin, ", ", t.end,
                         ")) overlaps tensor '", detail::printable(prev->name), "' (bytes [", prev->begin, ", ", prev->end,
                         ")); tensors must not overlap"));
      pos = t.end;
      prev = &t;
    }
    if (pos != data_size)
      fail(detail::cat("is malformed: its data section has ", data_size, " bytes but the tensors cover only the first ", pos,
                       "; the ", data_size - pos, " bytes after ",
                       prev ? detail::cat("tensor '", detail::printable(prev->name), "'") : std::string("the header"),
                       " belong to no tensor"));

    for (std::size_t i : idx) {
      index_.emplace(ts[i].name, tensors_.size());
      keys_.push_back(ts[i].name);
      tensors_.push_back(std::move(ts[i]));
    }
  }

  void parse_metadata(const nlohmann::json& v) {
    if (v.is_null()) return;
    if (!v.is_object())
      fail(detail::cat("is malformed: its \"__metadata__\" must be an object of string values, found a JSON ", v.type_name()));
    for (const auto& [k, s] : v.items()) {
      if (!s.is_string())
        fail(detail::cat("is malformed: \"__metadata__\" entry '", detail::printable(k), "' is a JSON ", s.type_name(),
                         "; metadata values must be strings"));
      metadata_.emplace(k, s.get<std::string>());
    }
  }

  /// A non-negative integer below 2^63 from a JSON number, or nullopt.
  static std::optional<std::uint64_t> json_uint(const nlohmann::json& x) {
    if (x.is_number_unsigned()) {
      const auto u = x.get<std::uint64_t>();
      if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return u;
      return std::nullopt;
    }
    if (x.is_number_integer()) {
      const auto s = x.get<std::int64_t>();
      if (s >= 0) return static_cast<std::uint64_t>(s);
    }
    return std::nullopt;
  }

  TensorInfo parse_tensor(const std::string& key, const nlohmann::json& v, std::size_t data_size) const {
    const auto bad = [&](std::string_view what) { fail_tensor(key, detail::cat("is malformed: ", what)); };
    if (!v.is_object())
      bad(detail::cat("its entry must be an object {\"dtype\", \"shape\", \"data_offsets\"}, found a JSON ", v.type_name()));
    TensorInfo t;
    t.name = key;

    const auto dt = v.find("dtype");
    if (dt == v.end() || !dt->is_string())
      bad(detail::cat("it needs a string field \"dtype\" (one of ", safetensors_dtype_list(), ")",
                      dt == v.end() ? std::string() : detail::cat(", found a JSON ", dt->type_name())));
    const auto parsed = parse_safetensors_dtype(dt->get_ref<const std::string&>());
    if (!parsed)
      fail_tensor(key, detail::cat("has unknown dtype \"", detail::printable(dt->get_ref<const std::string&>()),
                                   "\"; allowed: ", safetensors_dtype_list()));
    t.dtype = *parsed;

    const auto sh = v.find("shape");
    if (sh == v.end() || !sh->is_array())
      bad(detail::cat("it needs an array field \"shape\" of integers >= 0",
                      sh == v.end() ? std::string() : detail::cat(", found a JSON ", sh->type_name())));
    std::uint64_t numel = 1;
    bool overflow = false;
    for (std::size_t d = 0; d < sh->size(); ++d) {
      const nlohmann::json& x = (*sh)[d];
      const auto e = json_uint(x);
      if (!e)
        fail_tensor(key, detail::cat("has shape ", detail::printable(sh->dump(), 120), " whose entry ", d, " (",
                                     detail::printable(x.dump(), 40), ") is ",
                                     x.is_number_integer() ? (x.is_number_unsigned() ? "too large" : "negative")
                                                           : "not an integer",
                                     "; extents must be integers >= 0"));
      t.shape.dims.push_back(static_cast<index_t>(*e));
      const auto m = detail::checked_mul(numel, *e);
      if (!m) overflow = true;
      else numel = *m;
    }
    const auto bytes = overflow ? std::nullopt : detail::checked_mul(numel, safetensors_dtype_size(t.dtype));
    if (!bytes)
      fail_tensor(key, detail::cat("has shape ", t.shape, " with dtype ", safetensors_dtype_name(t.dtype),
                                   ", more bytes than fit in 64 bits"));

    const auto off = v.find("data_offsets");
    if (off == v.end() || !off->is_array() || off->size() != 2)
      bad(detail::cat("it needs a field \"data_offsets\": [begin, end] with two integers",
                      off == v.end() ? std::string() : detail::cat(", found ", detail::printable(off->dump(), 80))));
    const auto b = json_uint((*off)[0]), e = json_uint((*off)[1]);
    if (!b || !e)
      fail_tensor(key, detail::cat("has data_offsets ", detail::printable(off->dump(), 80),
                                   "; offsets must be integers >= 0 (bytes from the start of the data section)"));
    if (*b > *e)
      fail_tensor(key, detail::cat("has data_offsets [", *b, ", ", *e, "] with begin > end; begin must be <= end"));
    if (*e > data_size)
      fail_tensor(key, detail::cat("ends at byte ", *e, " but the data section has ", data_size, " bytes (truncated file?)"));
    if (*bytes != *e - *b)
      fail_tensor(key, detail::cat("has dtype ", safetensors_dtype_name(t.dtype), " and shape ", t.shape, ", i.e. ", *bytes,
                                   " bytes, but its data_offsets [", *b, ", ", *e, "] span ", *e - *b,
                                   " bytes; end - begin must equal numel x dtype size"));
    t.begin = static_cast<std::size_t>(*b);
    t.end = static_cast<std::size_t>(*e);
    return t;
  }

  std::string path_;
  detail::MappedFile map_;
  std::uint64_t data_offset_ = 8;
  std::vector<TensorInfo> tensors_;  // data-section order
  std::vector<std::string> keys_;
  std::map<std::string, std::size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

// ------------------------------------------------------------------------------------------------
// Writer
// ------------------------------------------------------------------------------------------------

/// Collects tensors and metadata, then writes one safetensors file atomically (see the header
/// comment). add()/add_raw()/add_params() keep the caller's pointer, which must stay valid until
/// write() returns; add_copy()/add_scalar() copy the values.
class SafetensorsWriter {
 public:
  SafetensorsWriter& set_metadata(std::string key, std::string value) {
    check_utf8(key, "metadata key");
    check_utf8(value, "metadata value of '" + key + "'");
    metadata_[std::move(key)] = std::move(value);
    return *this;
  }
  SafetensorsWriter& set_metadata(const std::map<std::string, std::string>& m) {
    for (const auto& [k, v] : m) set_metadata(k, v);
    return *this;
  }
  /// When enabled, write() stores metadata kContentHashKey = "xxh64:<16 hex digits>", the XXH64 (seed 0)
  /// of the data section (every byte after the header), for SafetensorsFile::verify_content_hash(). It
  /// costs one more read of the tensors before writing (memory-bound, several GB/s); it replaces a value
  /// set for that key with set_metadata(). Off by default: released-weight files stay byte-identical to
  /// the official writer's (tools/convert_checkpoint.py).
  SafetensorsWriter& set_content_hash(bool enabled = true) {
    content_hash_ = enabled;
    return *this;
  }
  bool content_hash_enabled() const { return content_hash_; }

  /// Tensor `name` of shape `shape`, numel(shape) elements at `data` (not copied).
  template <SafetensorsElement T>
  SafetensorsWriter& add(std::string name, Shape shape, const T* data) {
    return add_raw(std::move(name), safetensors_dtype_of_v<T>, std::move(shape), data);
  }
  /// Same, with the values copied into the writer.
  template <SafetensorsElement T>
  SafetensorsWriter& add_copy(std::string name, Shape shape, const std::vector<T>& values) {
    const std::size_t bytes = checked_bytes(name, safetensors_dtype_of_v<T>, shape);
    if (bytes != values.size() * sizeof(T))
      throw IoError(detail::cat("jepa: SafetensorsWriter: tensor '", detail::printable(name), "' has shape ", shape, " (",
                                bytes / sizeof(T), " elements) but ", values.size(), " values were given"));
    std::vector<std::byte> owned(bytes);
    if (bytes) std::memcpy(owned.data(), values.data(), bytes);
    push(std::move(name), safetensors_dtype_of_v<T>, std::move(shape), nullptr, std::move(owned));
    return *this;
  }
  /// A rank-0 tensor (e.g. the training step), copied.
  template <SafetensorsElement T>
  SafetensorsWriter& add_scalar(std::string name, T value) {
    return add_copy(std::move(name), Shape{}, std::vector<T>{value});
  }
  /// Raw little-endian bytes of any dtype (F16, U8, BOOL, ...): numel(shape) · size(dtype) bytes at
  /// `data` (not copied).
  SafetensorsWriter& add_raw(std::string name, SafetensorsDType dtype, Shape shape, const void* data) {
    push(std::move(name), dtype, std::move(shape), static_cast<const std::byte*>(data), {});
    return *this;
  }
  /// One tensor per parameter of `layout`, named prefix + name, F32 for float and F64 for double
  /// (parameters, gradients or optimizer moments: add_params(layout, m, "adam.m.")).
  template <Real T>
  SafetensorsWriter& add_params(const nn::ParamLayout& layout, const T* params, std::string_view prefix = "") {
    for (const nn::ParamInfo& p : layout.params()) add(std::string(prefix) + p.name, p.shape, params + p.offset);
    return *this;
  }

  std::size_t size() const { return entries_.size(); }
  bool contains(std::string_view name) const { return names_.find(name) != names_.end(); }

  /// The padded JSON header that write() emits (its length makes 8 + length a multiple of 8); with the
  /// content hash enabled this hashes the data.
  std::string header() const {
    const std::vector<std::size_t> order = layout_order();
    return make_header(order, data_hash(order));
  }
  /// Total bytes of the file write() emits.
  std::size_t file_size() const {
    const std::vector<std::size_t> order = layout_order();  // the hash's value does not change the length
    std::size_t n = 8 + make_header(order, content_hash_ ? std::optional<std::uint64_t>(0) : std::nullopt).size();
    for (const Entry& e : entries_) n += e.bytes;
    return n;
  }

  /// Writes the file atomically; IoError naming the path, the failing step and the errno text.
  void write(const std::filesystem::path& path) const {
    const std::string target = path.string();
    const std::vector<std::size_t> order = layout_order();
    const std::string head = make_header(order, data_hash(order));
    const std::string tmp = temporary_for(target);
    const auto fail = [&](std::string_view step, int e) -> void {
      throw IoError(detail::cat("jepa: cannot write safetensors file '", target, "': ", step, " failed: ",
                                detail::errno_text(e), " (the previous file, if any, is unchanged)"));
    };

    struct Temp {  // closes and removes the temporary file unless released
      std::string path;
      detail::UniqueFd fd;
      bool keep = false;
      ~Temp() {
        fd.reset();
        if (!keep) ::unlink(path.c_str());
      }
    };
    const int raw_fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (raw_fd < 0) fail(detail::cat("creating the temporary file '", tmp, "'"), errno);
    Temp t{tmp, detail::UniqueFd(raw_fd)};

    // Small pieces are gathered in a buffer; large tensors go straight from the caller's memory.
    std::vector<char> buf;
    constexpr std::size_t kBuf = std::size_t{1} << 20;
    buf.reserve(kBuf);
    const auto write_all = [&](const char* p, std::size_t n) {
      while (n) {
        const ssize_t w = ::write(t.fd.get(), p, std::min<std::size_t>(n, std::size_t{1} << 30));
        if (w < 0) {
          if (errno == EINTR) continue;
          fail(detail::cat("writing the temporary file '", tmp, "'"), errno);
        }
        p += w;
        n -= static_cast<std::size_t>(w);
      }
    };
    const auto put = [&](const void* p, std::size_t n) {
      const char* c = static_cast<const char*>(p);
      if (buf.size() + n > kBuf) {
        write_all(buf.data(), buf.size());
        buf.clear();
      }
      if (n >= kBuf) write_all(c, n);
      else buf.insert(buf.end(), c, c + n);
    };
    const std::uint64_t hlen = head.size();
    put(&hlen, 8);
    put(head.data(), head.size());
    for (std::size_t i : order) put(entries_[i].ptr(), entries_[i].bytes);
    write_all(buf.data(), buf.size());
    if (::fsync(t.fd.get()) != 0) fail(detail::cat("fsync of the temporary file '", tmp, "'"), errno);
    if (const int e = t.fd.reset()) fail(detail::cat("closing the temporary file '", tmp, "'"), e);
    if (::rename(tmp.c_str(), target.c_str()) != 0)
      fail(detail::cat("renaming the temporary file '", tmp, "' over it"), errno);
    t.keep = true;

    // Make the rename durable. Some file systems cannot fsync a directory (EINVAL): nothing to do there.
    std::filesystem::path dir = path.parent_path();
    if (dir.empty()) dir = ".";
    detail::UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    int e = dfd.get() < 0 ? errno : 0;
    if (!e && ::fsync(dfd.get()) != 0 && errno != EINVAL) e = errno;
    if (e)
      throw IoError(detail::cat("jepa: safetensors file '", target, "' was written, but fsync of its directory '",
                                dir.string(), "' failed: ", detail::errno_text(e),
                                " (the new file may not survive a power loss)"));
  }

 private:
  struct Entry {
    std::string name;
    SafetensorsDType dtype;
    Shape shape;
    std::size_t bytes = 0;
    const std::byte* data = nullptr;
    std::vector<std::byte> owned;
    const std::byte* ptr() const { return owned.empty() ? data : owned.data(); }
  };

  static void check_utf8(const std::string& s, std::string_view what) {
    try {
      (void)nlohmann::json(s).dump();
    } catch (const nlohmann::json::exception&) {
      throw IoError(detail::cat("jepa: SafetensorsWriter: ", what, " '", detail::printable(s),
                                "' is not valid UTF-8; safetensors headers are UTF-8 JSON"));
    }
  }

  [[noreturn]] static void fail_entry(std::string_view name, std::string_view what) {
    throw IoError(detail::cat("jepa: SafetensorsWriter: tensor '", detail::printable(name), "' ", what));
  }

  /// numel(shape) · size(dtype), checked: extents ≥ 0, no overflow.
  static std::size_t checked_bytes(std::string_view name, SafetensorsDType dtype, const Shape& shape) {
    std::uint64_t numel = 1;
    for (index_t d : shape.dims) {
      if (d < 0) fail_entry(name, detail::cat("has shape ", shape, " with a negative extent; extents must be >= 0"));
      const auto m = detail::checked_mul(numel, static_cast<std::uint64_t>(d));
      if (!m) fail_entry(name, detail::cat("has shape ", shape, ", more elements than fit in 64 bits"));
      numel = *m;
    }
    const auto bytes = detail::checked_mul(numel, safetensors_dtype_size(dtype));
    if (!bytes || *bytes > std::numeric_limits<std::size_t>::max() / 2)
      fail_entry(name, detail::cat("has shape ", shape, ", more bytes than can be written"));
    return static_cast<std::size_t>(*bytes);
  }

  /// Validates and appends an entry; the writer is unchanged if this throws.
  void push(std::string name, SafetensorsDType dtype, Shape shape, const std::byte* data, std::vector<std::byte> owned) {
    if (name == "__metadata__") fail_entry(name, "uses the reserved name \"__metadata__\"; use set_metadata() for metadata");
    if (contains(name)) fail_entry(name, "was added twice; tensor names must be unique");
    check_utf8(name, "tensor name");
    const std::size_t bytes = checked_bytes(name, dtype, shape);
    if (owned.empty() && bytes && !data) fail_entry(name, detail::cat("has ", bytes, " bytes of data but a null pointer"));
    entries_.push_back(Entry{name, dtype, std::move(shape), bytes, data, std::move(owned)});
    names_.insert(std::move(name));
  }

  /// Entry indices in data order: decreasing element size, stable.
  std::vector<std::size_t> layout_order() const {
    std::vector<std::size_t> order(entries_.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return safetensors_dtype_size(entries_[a].dtype) > safetensors_dtype_size(entries_[b].dtype);
    });
    return order;
  }

  /// XXH64 of the data section write() emits (the tensors in `order`, back to back), when enabled.
  std::optional<std::uint64_t> data_hash(const std::vector<std::size_t>& order) const {
    if (!content_hash_) return std::nullopt;
    Xxh64 h;
    for (std::size_t i : order) h.update(entries_[i].ptr(), entries_[i].bytes);
    return h.digest();
  }

  std::string make_header(const std::vector<std::size_t>& order, std::optional<std::uint64_t> hash) const {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    std::map<std::string, std::string> meta = metadata_;  // sorted keys: the output is a function of the content
    if (hash) meta[std::string(kContentHashKey)] = xxh64_text(*hash);
    if (!meta.empty()) {
      nlohmann::ordered_json m = nlohmann::ordered_json::object();
      for (const auto& [k, v] : meta) m[k] = v;
      j["__metadata__"] = std::move(m);
    }
    std::size_t pos = 0;
    for (std::size_t i : order) {
      const Entry& e = entries_[i];
      nlohmann::ordered_json t = nlohmann::ordered_json::object();
      t["dtype"] = std::string(safetensors_dtype_name(e.dtype));
      t["shape"] = e.shape.dims;
      t["data_offsets"] = {pos, pos + e.bytes};
      j[e.name] = std::move(t);
      pos += e.bytes;
    }
    std::string h = j.dump();
    h.append((8 - (8 + h.size()) % 8) % 8, ' ');
    return h;
  }

  std::vector<Entry> entries_;
  std::set<std::string, std::less<>> names_;
  std::map<std::string, std::string> metadata_;
  bool content_hash_ = false;
};

/// Writes one tensor per parameter of `layout` (prefix + name; F32 for float, F64 for double) with
/// `metadata`, atomically. For extra tensors (optimizer moments, step) use SafetensorsWriter directly.
template <Real T>
void write_params(const std::filesystem::path& path, const nn::ParamLayout& layout, const T* params,
                  std::string_view prefix = "", const std::map<std::string, std::string>& metadata = {}) {
  SafetensorsWriter w;
  w.set_metadata(metadata);
  w.add_params(layout, params, prefix);
  w.write(path);
}

/// Opens `path` and loads `layout` from it (SafetensorsFile::read_into).
template <Real T>
LoadReport read_params(const std::filesystem::path& path, const nn::ParamLayout& layout, T* params,
                       const LoadOptions& opt = {}) {
  return SafetensorsFile(path).read_into(layout, params, opt);
}

}  // namespace jepa::io
