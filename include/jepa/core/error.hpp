// jepa/core/error.hpp — the exception types every library entry point throws.
//
// Library code never aborts or exits (DESIGN.md decision 8). Each message names the field, the value
// that was given and what is allowed, e.g.
//   "jepa: VitConfig.num_heads = 5 is invalid: embed_dim (64) must be divisible by num_heads"
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace jepa {

/// Base of every exception thrown by jepa.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};
/// A configuration value (preset field, hyperparameter) is outside its allowed set.
class ConfigError : public Error { using Error::Error; };
/// A tensor argument has the wrong rank, extent or layout.
class ShapeError : public Error { using Error::Error; };
/// An index (token index, tap index, key) is out of range.
class IndexError : public Error { using Error::Error; };
/// A file could not be read or written, or its contents are malformed.
class IoError : public Error { using Error::Error; };
/// The numerics went wrong (NaN/Inf where a finite value is required).
class NumericError : public Error { using Error::Error; };
/// A configuration needs more memory than the machine has available (core/memory_budget.hpp); thrown
/// before anything that large is allocated, with the estimate and what is available.
class MemoryError : public Error { using Error::Error; };
/// A CUDA, cuBLAS or driver call failed (thrown with file:line by the CUDA backend).
class DeviceError : public Error { using Error::Error; };

namespace detail {
template <class... Args>
std::string cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
}  // namespace detail

/// Throws E with "jepa: <field> = <value> is invalid: <allowed>".
template <class E = ConfigError, class V>
[[noreturn]] void fail_field(std::string_view field, const V& value, std::string_view allowed) {
  throw E(detail::cat("jepa: ", field, " = ", value, " is invalid: ", allowed));
}

/// Checks a condition on a named field; on failure throws E naming field, value and allowed set.
template <class E = ConfigError, class V>
void check_field(bool ok, std::string_view field, const V& value, std::string_view allowed) {
  if (!ok) fail_field<E>(field, value, allowed);
}

}  // namespace jepa
