// examples/cli.hpp — the command-line reading every example shares.
//
//   for (examples::Args args(argc, argv); args.next();) {
//     if (args.is("--out")) o.out = args.value();
//     else if (args.is("--steps")) o.steps = args.count();
//     else if (args.is("--lr")) o.lr = args.number();
//     else args.unknown();
//   }
//
// Values are parsed strictly (the whole text must be the number; counts must be >= 0), and every
// mistake is a jepa::ConfigError naming the option and what it accepts, so `main` reports it in one
// line instead of std::stod's "stod".
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "jepa/backend/cpu/gemm.hpp"
#include "jepa/core/error.hpp"

namespace jepa::examples {

class Args {
 public:
  Args(int argc, char** argv) : argv_(argv + 1, argv + (argc > 0 ? argc : 1)) {}

  /// Moves to the next argument; false when there is none left.
  bool next() { return ++i_ < argv_.size(); }
  /// The current argument (an option such as "--steps", or a positional input).
  const std::string& flag() const { return argv_[i_]; }
  bool is(const char* name) const { return flag() == name; }
  bool is_option() const { return !flag().empty() && flag()[0] == '-'; }

  /// The value that follows the current option (consumed).
  std::string value() {
    if (i_ + 1 >= argv_.size()) throw ConfigError(jepa::detail::cat("jepa: option ", flag(), " needs a value (see --help)"));
    option_ = flag();
    return argv_[++i_];
  }
  /// The value as a finite real number ("nan" and "inf" are refused: no option means them).
  double number() {
    const std::string v = value();
    double d = 0;
    std::size_t pos = 0;
    try {
      d = std::stod(v, &pos);
    } catch (const std::exception&) {
    }
    if (pos == 0 || pos != v.size())
      throw ConfigError(jepa::detail::cat("jepa: option ", option_, " = '", v, "' is not a number"));
    if (!std::isfinite(d))
      throw ConfigError(jepa::detail::cat("jepa: option ", option_, " = '", v, "' is invalid: must be a finite number"));
    return d;
  }
  /// A finite number > 0 (learning rates, scales).
  double positive() {
    const double d = number();
    if (!(d > 0)) throw ConfigError(jepa::detail::cat("jepa: option ", option_, " = ", d, " is invalid: must be > 0"));
    return d;
  }
  /// A finite number in [lo, hi].
  double number_in(double lo, double hi) {
    const double d = number();
    if (!(d >= lo && d <= hi))
      throw ConfigError(jepa::detail::cat("jepa: option ", option_, " = ", d, " is invalid: must be in [", lo, ", ", hi, "]"));
    return d;
  }
  /// A count in [min, max] (e.g. [1, 2^30] for a batch size, so it also fits an int).
  std::uint64_t count_in(std::uint64_t min, std::uint64_t max) {
    const std::uint64_t n = count();
    if (n < min || n > max)
      throw ConfigError(jepa::detail::cat("jepa: option ", option_, " = ", n, " is invalid: must be in [", min, ", ", max, "]"));
    return n;
  }
  /// The value as an integer (any sign).
  long long integer() { return parse_integer(value()); }
  /// The value as a count: an integer >= 0.
  std::uint64_t count() {
    const std::string v = value();
    const long long n = parse_integer(v);
    if (n < 0) throw ConfigError(jepa::detail::cat("jepa: option ", option_, " = '", v, "' must be >= 0"));
    return static_cast<std::uint64_t>(n);
  }
  /// A comma-separated list of integers ("1,2,3"); empty items are skipped.
  std::vector<long long> integer_list() {
    const std::string v = value();
    std::vector<long long> out;
    for (std::size_t s = 0; s <= v.size();) {
      const std::size_t e = std::min(v.find(',', s), v.size());
      if (e > s) out.push_back(parse_integer(v.substr(s, e - s)));
      s = e + 1;
    }
    return out;
  }
  /// Throws for the current argument: an option nobody recognised.
  [[noreturn]] void unknown() const {
    throw ConfigError(jepa::detail::cat("jepa: unknown option '", flag(), "' (see --help)"));
  }

 private:
  long long parse_integer(const std::string& v) const {
    try {
      std::size_t pos = 0;
      const long long n = std::stoll(v, &pos);
      if (pos == v.size()) return n;
    } catch (const std::exception&) {
    }
    throw ConfigError(jepa::detail::cat("jepa: option ", option_, " = '", v, "' is not an integer"));
  }

  std::vector<std::string> argv_;
  std::size_t i_ = static_cast<std::size_t>(-1);
  std::string option_;
};

/// The last line of every program's --help: which CPU GEMM provider and instruction set run here
/// (a bad JEPA_GEMM is printed instead of failing the help).
inline void print_gemm_help_line() {
  try {
    std::printf("\nCPU GEMM on this machine: %s\n", jepa::backend::cpu::gemm_report().c_str());
  } catch (const jepa::Error& e) {
    std::printf("\nCPU GEMM on this machine: %s\n", e.what());
  }
}

}  // namespace jepa::examples
