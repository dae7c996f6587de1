// jepa/train/checkpoint_fields.hpp — the two checks every checkpoint of this library shares:
// never write non-finite parameters, and read run-position metadata as exact unsigned integers.
// `kind` names the file in messages ("checkpoint", "AC checkpoint"), so an error says which run's
// file was wrong.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

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

/// The metadata field `key` of a checkpoint as an unsigned integer; IoError if absent or not a number.
inline std::uint64_t meta_u64(const io::SafetensorsFile& f, const std::string& key, const char* kind = "checkpoint") {
  const auto& m = f.metadata();
  const auto it = m.find(key);
  if (it == m.end())
    throw IoError(jepa::detail::cat("jepa: ", kind, " '", f.path(), "' lacks the metadata field '", key, "'"));
  try {
    std::size_t pos = 0;
    const auto v = std::stoull(it->second, &pos);
    if (pos != it->second.size()) throw std::invalid_argument(it->second);
    return v;
  } catch (const std::exception&) {
    throw IoError(jepa::detail::cat("jepa: ", kind, " '", f.path(), "' metadata '", key, "' = '", it->second,
                                    "' is not an unsigned integer"));
  }
}

}  // namespace jepa::train::detail
