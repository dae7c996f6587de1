// jepa/io/atomic_file.hpp — replacing a file so that a crash leaves the old one or the new one.
//
// The convention every writer of the library follows (safetensors, .npy, the training log and plot):
// write "<path>.tmp.<pid>", fsync it, rename it over <path>, fsync the directory. A kill at any moment
// leaves either the previous file or the new one whole; what it can leave behind is the temporary,
// which train::prepare_run_directory recognises by its name (temporary_pid) and removes.
//
//   temporary_for(path)                 "<path>.tmp.<pid of this process>"
//   temporary_pid(name)                 the pid of such a name, 0 for any other name
//   replace_atomic(tmp, path)           the rename half, for files written by other code (PNG)
//   write_atomic(path, {parts…}, what)  the whole sequence for bytes in memory; IoError with the
//                                       system's reason, naming the file as `what` ("the .npy file")
//   check_writable(path, option)        before the work: can an output file be written there?
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <string_view>
#include <system_error>

#include "jepa/core/error.hpp"

namespace jepa::io {

/// The temporary name for an atomic write of `path` by this process.
inline std::string temporary_for(const std::string& path) { return jepa::detail::cat(path, ".tmp.", ::getpid()); }

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

namespace detail {
using jepa::detail::cat;  // io::detail shadows jepa::detail in this namespace's headers
inline void fsync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);  // some file systems cannot fsync a directory (EINVAL): nothing to do there
  ::close(fd);
}
}  // namespace detail

/// Renames the finished temporary `tmp` over `path` and makes the rename durable.
inline void replace_atomic(const std::string& tmp, const std::string& path) {
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw IoError(jepa::detail::cat("jepa: cannot replace '", path, "': ", std::strerror(e)));
  }
  detail::fsync_directory(std::filesystem::path(path).parent_path());
}

/// Writes the concatenation of `parts` to `path` atomically (see the header).
inline void write_atomic(const std::string& path, std::initializer_list<std::string_view> parts, std::string_view what = "file") {
  const std::string tmp = temporary_for(path);
  auto fail = [&](int err) {
    throw IoError(jepa::detail::cat("jepa: cannot write ", what, " '", path, "': ", std::strerror(err),
                                    " (the previous file, if any, is kept)"));
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) fail(errno);
  int err = 0;
  for (std::string_view part : parts)
    for (std::size_t done = 0; !err && done < part.size();) {
      const ssize_t n = ::write(fd, part.data() + done, part.size() - done);
      if (n >= 0) done += static_cast<std::size_t>(n);
      else if (errno != EINTR) err = errno;
    }
  if (!err && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && !err) err = errno;
  if (err) {
    ::unlink(tmp.c_str());
    fail(err);
  }
  replace_atomic(tmp, path);
}

/// Checks that a file can be created at `path` (or an existing one overwritten) by doing so: opens
/// it for writing and removes it again when it did not exist. Programs call it for every output
/// before the work, so a typo in a directory name is reported at once and not after an hour of
/// encoding. Throws IoError naming `what` (e.g. "--png"), the path and the system's reason.
inline void check_writable(const std::string& path, std::string_view what) {
  if (path.empty()) throw IoError(jepa::detail::cat("jepa: ", what, " is an empty path"));
  std::error_code ec;
  const bool existed = std::filesystem::exists(path, ec);
  if (existed && std::filesystem::is_directory(path, ec))
    throw IoError(jepa::detail::cat("jepa: ", what, " '", path, "' is a directory; give a file name"));
  errno = 0;
  std::FILE* f = std::fopen(path.c_str(), existed ? "r+b" : "wb");  // r+b: an existing file is not truncated
  if (!f) throw IoError(jepa::detail::cat("jepa: ", what, " '", path, "' cannot be written: ", std::strerror(errno)));
  std::fclose(f);
  if (!existed) std::filesystem::remove(path, ec);
}

}  // namespace jepa::io
