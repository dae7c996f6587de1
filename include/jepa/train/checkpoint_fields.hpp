// jepa/train/checkpoint_fields.hpp — the two checks every checkpoint of this library shares:
// never write non-finite parameters, and read run-position metadata as exact unsigned integers.
// `kind` names the file in messages ("checkpoint", "AC checkpoint"), so an error says which run's
// file was wrong.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "jepa/core/error.hpp"
#include "jepa/io/safetensors.hpp"
#include "jepa/nn/param.hpp"

namespace jepa::train::detail {

/// Throws NumericError naming the first parameter of `L` (laid out at `p`) that holds NaN or ±Inf.
template <class T>
void require_finite(const T* p, const nn::ParamLayout& L, const char* what, const char* kind = "checkpoint") {
  for (const auto& info : L.params())
    for (std::size_t i = 0; i < info.numel(); ++i)
      if (!std::isfinite(static_cast<double>(p[info.offset + i])))
        throw NumericError(jepa::detail::cat("jepa: refusing to write the ", kind, ": ", what,
                                             " parameter '", info.name, "' holds a non-finite value"));
}

/// `t` as an unsigned decimal integer: digits only (std::stoull would also take "-1" as 2^64 − 1, and
/// " 7" or "+7"), at most 2^64 − 1; nullopt otherwise.
inline std::optional<std::uint64_t> decimal_u64(std::string_view t) {
  if (t.empty() || t.size() > 20) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : t) {
    if (c < '0' || c > '9') return std::nullopt;
    const std::uint64_t d = static_cast<std::uint64_t>(c - '0');
    if (v > (~std::uint64_t{0} - d) / 10) return std::nullopt;  // above 2^64 − 1
    v = v * 10 + d;
  }
  return v;
}

/// The metadata field `key` of a checkpoint as an unsigned integer in [0, max]; IoError if absent,
/// not plain decimal digits (std::stoull would take "-1" as 2^64 − 1, and " 7" or "+7" too), out of
/// 64-bit range, or above `max`.
inline std::uint64_t meta_u64(const io::SafetensorsFile& f, const std::string& key, const char* kind = "checkpoint",
                              std::uint64_t max = ~std::uint64_t{0}) {
  const auto& m = f.metadata();
  const auto it = m.find(key);
  if (it == m.end())
    throw IoError(jepa::detail::cat("jepa: ", kind, " '", f.path(), "' lacks the metadata field '", key, "'"));
  const std::string& t = it->second;
  const auto parsed = decimal_u64(t);
  const bool digits = parsed.has_value();
  const std::uint64_t v = parsed.value_or(0);
  if (!digits)
    throw IoError(jepa::detail::cat("jepa: ", kind, " '", f.path(), "' metadata '", key, "' = '", t,
                                    "' is not an unsigned integer (decimal digits, at most 18446744073709551615)"));
  if (v > max)
    throw IoError(jepa::detail::cat("jepa: ", kind, " '", f.path(), "' metadata '", key, "' = ", v,
                                    " is out of range: at most ", max, " for this run; the file is corrupt or from another run"));
  return v;
}

/// A float64 log entry that must hold an integer in [lo, hi] (a step, a stage, a flag): converting
/// anything else (NaN, 1e300, 2.5) to an integer type would be undefined behaviour or silent garbage.
inline std::uint64_t log_u64(double v, double lo, double hi, const std::string& path, std::size_t row, const char* column,
                             const char* kind = "checkpoint") {
  if (!(v >= lo && v <= hi) || v != std::floor(v))
    throw IoError(jepa::detail::cat("jepa: ", kind, " '", path, "' train_log row ", row, " column '", column, "' = ", v,
                                    " is invalid: must be an integer in [", static_cast<std::uint64_t>(lo), ", ",
                                    static_cast<std::uint64_t>(hi), "]; the file is corrupt"));
  return static_cast<std::uint64_t>(v);
}

}  // namespace jepa::train::detail
