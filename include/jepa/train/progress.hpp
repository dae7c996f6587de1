// jepa/train/progress.hpp — the progress line of long runs: rate and ETA.
//
// On a terminal the line is redrawn in place after every step; in a log file (stderr not a tty) a
// full line is written at the first step, every ~5 % of the run and at the end, so logs stay short.
//   rate = steps done / elapsed,   ETA = steps left / rate
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <unistd.h>

namespace jepa::train {

/// "1h05m" / "3m07s"; "--" for a non-finite or negative duration (no rate yet).
inline std::string format_hms(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--";
  const long v = static_cast<long>(seconds + 0.5);
  char b[32];
  if (v >= 3600) std::snprintf(b, sizeof b, "%ldh%02ldm", v / 3600, (v / 60) % 60);
  else std::snprintf(b, sizeof b, "%ldm%02lds", v / 60, v % 60);
  return b;
}

class ProgressLine {
 public:
  /// `total`: the run's length in steps (sets the log-file cadence).
  explicit ProgressLine(std::uint64_t total)
      : t0_(std::chrono::steady_clock::now()), tty_(::isatty(::fileno(stderr)) != 0),
        every_(total / 20 > 0 ? total / 20 : 1) {}

  /// After a step: `done` steps taken by this call of run(), `step` the run's global step, `left` the
  /// steps this call still has to take. Prints "<what>  |  <rate> steps/s  elapsed …  ETA …" when due.
  void update(std::uint64_t done, std::uint64_t step, std::uint64_t left, bool finished, const std::string& what) {
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    const double rate = static_cast<double>(done) / el;
    printed_ = true;
    if (tty_ || done == 1 || step % every_ == 0 || finished)
      std::fprintf(stderr, "%s%s  |  %.2f steps/s  elapsed %s  ETA %s%s", tty_ ? "\r" : "", what.c_str(), rate,
                   format_hms(el).c_str(), format_hms(static_cast<double>(left) / rate).c_str(), tty_ ? "   " : "\n");
  }
  /// Ends the in-place line on a terminal.
  ~ProgressLine() {
    if (printed_ && tty_) std::fprintf(stderr, "\n");
  }

 private:
  std::chrono::steady_clock::time_point t0_;
  bool tty_;
  std::uint64_t every_;
  bool printed_ = false;
};

}  // namespace jepa::train
