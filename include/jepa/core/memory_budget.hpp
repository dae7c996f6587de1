// jepa/core/memory_budget.hpp — refuse an allocation the machine cannot hold, before making it.
//
// Linux overcommits: a 300 GiB aligned_alloc "succeeds", and the process is killed by the kernel's
// OOM killer when the pages are first touched (or std::bad_alloc ends it with SIGABRT). Every arena
// of the library (HostArena, so every parameter set, optimizer state and activation plan) asks
// `require_host_memory` first, which throws jepa::MemoryError with the size, what it was for and the
// memory this process can still use:
//   available = min(MemAvailable of /proc/meminfo, cgroup memory.max − memory.current)
// An allocation is refused when it exceeds `available` (a single arena above what is left cannot be
// held; smaller ones that together exceed it fail at the next arena, still before the kernel acts).
//
// JEPA_MEMORY_LIMIT (bytes, or with a K/M/G suffix) caps `available` — the tests use it to play a
// small machine; a user may set it to keep a run inside a share of a shared machine.
// Sizes are computed with saturating arithmetic (`bytes_of`), so absurd extents (a 10^6-pixel frame,
// 10^8 frames) give a huge estimate instead of wrapping around to a small one.
#pragma once

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>
#include <string_view>

#include "jepa/core/error.hpp"

namespace jepa {

/// a·b·… in bytes, saturating at SIZE_MAX instead of wrapping (negative factors count as 0).
template <class... I>
constexpr std::size_t bytes_of(I... factors) {
  std::size_t r = 1;
  for (long double f : {static_cast<long double>(factors)...}) {
    if (f <= 0) return 0;
    const long double next = static_cast<long double>(r) * f;
    if (next >= static_cast<long double>(std::numeric_limits<std::size_t>::max())) return std::numeric_limits<std::size_t>::max();
    r = static_cast<std::size_t>(next);
  }
  return r;
}

/// "1.5 GiB", "640 MiB", "12 KiB": a byte count for people.
inline std::string format_bytes(std::size_t bytes) {
  if (bytes == std::numeric_limits<std::size_t>::max()) return "more than 16 EiB";
  const char* unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 6) v /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, unit[u]);
  return buf;
}

namespace detail {
/// "123", "512M", "2G", "1.5g" → bytes; 0 when the text is not such a size.
inline std::size_t parse_byte_size(std::string_view s) {
  if (s.empty()) return 0;
  std::size_t i = 0;
  double v = 0, frac = 0, scale = 1;
  bool digits = false, dot = false;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (std::isdigit(static_cast<unsigned char>(c))) {
      digits = true;
      if (dot) scale /= 10, frac += (c - '0') * scale;
      else v = v * 10 + (c - '0');
    } else if (c == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
  }
  if (!digits) return 0;
  v += frac;
  if (i < s.size()) {
    const char u = static_cast<char>(std::toupper(static_cast<unsigned char>(s[i])));
    const double k = u == 'K' ? 1024.0 : u == 'M' ? 1048576.0 : u == 'G' ? 1073741824.0 : u == 'T' ? 1099511627776.0 : 0;
    if (k == 0) return 0;
    v *= k;
    ++i;
    if (i < s.size() && (s[i] == 'B' || s[i] == 'b' || s[i] == 'i')) ++i;
    if (i < s.size() && (s[i] == 'B' || s[i] == 'b')) ++i;
    if (i != s.size()) return 0;
  }
  if (v >= 1.8e19) return std::numeric_limits<std::size_t>::max();
  return static_cast<std::size_t>(v);
}

/// The first number in a file such as /sys/fs/cgroup/memory.max ("max" and unreadable → SIZE_MAX).
inline std::size_t read_size_file(const char* path) {
  std::ifstream f(path);
  std::string s;
  if (!(f >> s) || s == "max" || s.empty() || !std::isdigit(static_cast<unsigned char>(s[0])))
    return std::numeric_limits<std::size_t>::max();
  try {
    return static_cast<std::size_t>(std::stoull(s));
  } catch (const std::exception&) {
    return std::numeric_limits<std::size_t>::max();
  }
}
}  // namespace detail

/// Bytes this process can still allocate and touch: min(MemAvailable, the cgroup's headroom,
/// JEPA_MEMORY_LIMIT). SIZE_MAX when none of them is known (not Linux).
inline std::size_t available_host_memory() {
  std::size_t avail = std::numeric_limits<std::size_t>::max();
  {
    std::ifstream f("/proc/meminfo");
    std::string key;
    std::size_t kib = 0;
    std::string unit;
    while (f >> key >> kib) {
      std::getline(f, unit);
      if (key == "MemAvailable:") {
        avail = kib * std::size_t{1024};
        break;
      }
    }
  }
  // cgroup v2 (a container's limit), then v1.
  std::size_t limit = detail::read_size_file("/sys/fs/cgroup/memory.max");
  std::size_t used = detail::read_size_file("/sys/fs/cgroup/memory.current");
  if (limit == std::numeric_limits<std::size_t>::max()) {
    limit = detail::read_size_file("/sys/fs/cgroup/memory/memory.limit_in_bytes");
    used = detail::read_size_file("/sys/fs/cgroup/memory/memory.usage_in_bytes");
  }
  if (limit < (std::size_t{1} << 60) && used != std::numeric_limits<std::size_t>::max())
    avail = std::min(avail, limit > used ? limit - used : 0);
  if (const char* env = std::getenv("JEPA_MEMORY_LIMIT")) {
    const std::size_t cap = detail::parse_byte_size(env);
    if (cap > 0) avail = std::min(avail, cap);
  }
  return avail;
}

/// Throws MemoryError when `bytes` (for `what`, e.g. "the activations of the encoder") exceed what
/// this process can still use. `hint` is appended: what to lower.
inline void require_host_memory(std::size_t bytes, std::string_view what, std::string_view hint = {}) {
  if (bytes < (std::size_t{64} << 20)) return;  // small allocations: not worth reading /proc
  const std::size_t avail = available_host_memory();
  if (bytes <= avail) return;
  throw MemoryError(detail::cat("jepa: ", what, " needs ", format_bytes(bytes), " of memory, but only ",
                                format_bytes(avail), " is available on this machine",
                                std::getenv("JEPA_MEMORY_LIMIT") ? " (JEPA_MEMORY_LIMIT)" : "",
                                hint.empty() ? "" : "; ", hint));
}

}  // namespace jepa
