// jepa/train/run_dir.hpp — the run directory of a training run: checked before the first step and
// cleaned of the temporaries a killed run leaves behind.
//
//   prepare_run_directory(dir, "--out")   creates `dir`, proves it writable (a probe file is created,
//                                         written, fsynced and removed) and removes stale temporaries;
//                                         a bad path fails now, naming the option, not after N steps
// The files of a run are replaced atomically (io/atomic_file.hpp).
//
// Temporaries are "<name>.tmp.<pid>" (io::temporary_for, the convention of every writer). One is
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
#include "jepa/io/atomic_file.hpp"

namespace jepa::train {

namespace detail {
inline bool process_alive(long pid) { return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM); }
}  // namespace detail

/// Removes the stale "<name>.tmp.<pid>" files of `dir` (see the header); returns their names.
inline std::vector<std::string> remove_stale_temporaries(const std::filesystem::path& dir) {
  std::vector<std::string> removed;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const long pid = io::temporary_pid(name);
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

}  // namespace jepa::train
