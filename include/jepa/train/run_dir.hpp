// jepa/train/run_dir.hpp — the run directory of a training run: checked before the first step,
// written atomically, and cleaned of the temporaries a killed run leaves behind.
//
//   prepare_run_directory(dir, "--out")   creates `dir`, proves it writable (a probe file is created,
//                                         written, fsynced and removed) and removes stale temporaries;
//                                         a bad path fails now, naming the option, not after N steps
//   write_text_atomic(path, text)         "<path>.tmp.<pid>" → fsync → rename over path → fsync dir:
//                                         a kill at any moment leaves the old or the new file whole
//   replace_atomic(tmp, path)             the rename half, for files written by other code (PNG)
//
// Temporaries are "<name>.tmp.<pid>" (the convention of io/safetensors.hpp and io/npy.hpp). One is
// stale when no process with that pid is alive, or when it is this process's own pid at start (pid
// reuse); those are removed. A temporary of a live process (another run writing the same directory)
// is left alone.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "jepa/core/error.hpp"

namespace jepa::train {

namespace detail {
/// The pid of a "<name>.tmp.<pid>" file name, or 0 when the name is not one.
inline long temporary_pid(std::string_view name) {
  const auto at = name.rfind(".tmp.");
  if (at == std::string_view::npos || at == 0) return 0;
  const std::string_view digits = name.substr(at + 5);
  if (digits.empty() || digits.size() > 9) return 0;
  long pid = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return 0;
    pid = pid * 10 + (c - '0');
  }
  return pid;
}

inline bool process_alive(long pid) { return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM); }

inline void fsync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);  // some file systems cannot fsync a directory (EINVAL): nothing to do there
  ::close(fd);
}
}  // namespace detail

/// Removes the stale "<name>.tmp.<pid>" files of `dir` (see the header); returns their names.
inline std::vector<std::string> remove_stale_temporaries(const std::filesystem::path& dir) {
  std::vector<std::string> removed;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const long pid = detail::temporary_pid(name);
    if (pid == 0 || !it->is_regular_file(ec)) continue;
    if (pid != static_cast<long>(::getpid()) && detail::process_alive(pid)) continue;
    std::error_code rm;
    if (std::filesystem::remove(it->path(), rm)) removed.push_back(name);
  }
  return removed;
}

/// Checks and creates the run directory given by `option` (e.g. "--out"); see the header.
/// Returns the stale temporaries it removed.
inline std::vector<std::string> prepare_run_directory(const std::string& dir, std::string_view option = "TrainConfig.out_dir") {
  namespace fs = std::filesystem;
  if (dir.empty())
    throw ConfigError(jepa::detail::cat("jepa: ", option, " is empty: give the run directory (it is created if missing)"));
  std::error_code ec;
  const fs::path p(dir);
  const auto st = fs::status(p, ec);
  if (fs::exists(st) && !fs::is_directory(st))
    throw ConfigError(jepa::detail::cat("jepa: ", option, " '", dir, "' is not a directory (it is ",
                                        fs::is_regular_file(st) ? "a file" : "a device or special file",
                                        "): give a directory for the run's log, plot and checkpoints"));
  if (!fs::exists(st)) {
    fs::create_directories(p, ec);
    if (ec)
      throw IoError(jepa::detail::cat("jepa: ", option, " '", dir, "' cannot be created: ", ec.message()));
  }
  const std::string probe = (p / jepa::detail::cat(".jepa-write-probe.tmp.", ::getpid())).string();
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  int err = fd < 0 ? errno : 0;
  if (fd >= 0) {
    if (::write(fd, "x", 1) != 1 || ::fsync(fd) != 0) err = errno;
    ::close(fd);
    ::unlink(probe.c_str());
  }
  if (err)
    throw IoError(jepa::detail::cat("jepa: ", option, " '", dir, "' is not writable: ", std::strerror(err),
                                    "; give a directory this user can write"));
  return remove_stale_temporaries(p);
}

/// Renames the finished temporary `tmp` over `path` and makes the rename durable.
inline void replace_atomic(const std::string& tmp, const std::string& path) {
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw IoError(jepa::detail::cat("jepa: cannot replace '", path, "': ", std::strerror(e)));
  }
  detail::fsync_directory(std::filesystem::path(path).parent_path());
}

/// The temporary name for an atomic write of `path` by this process.
inline std::string temporary_for(const std::string& path) { return jepa::detail::cat(path, ".tmp.", ::getpid()); }

/// Writes `text` to `path` atomically (see the header); IoError with the reason on failure.
inline void write_text_atomic(const std::string& path, std::string_view text) {
  const std::string tmp = temporary_for(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) throw IoError(jepa::detail::cat("jepa: cannot write '", path, "': ", std::strerror(errno)));
  std::size_t done = 0;
  int err = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  if (!err && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && !err) err = errno;
  if (err) {
    ::unlink(tmp.c_str());
    throw IoError(jepa::detail::cat("jepa: cannot write '", path, "': ", std::strerror(err), " (the previous file is kept)"));
  }
  replace_atomic(tmp, path);
}

}  // namespace jepa::train
