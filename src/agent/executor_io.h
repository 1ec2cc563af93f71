// Small POSIX helpers shared by the executor, cgroups and TaskRunner: an
// owning fd and whole-file reads/writes. All fds are opened O_CLOEXEC and
// paths are never followed through a final symlink (sandboxes are writable
// by the task user). Thread-compatible; no global state.
#pragma once
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace stele {

// Owns one file descriptor; closes it on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Whole file, or nullopt when it cannot be opened/read (errno kept).
std::optional<std::string> read_file(const std::string& path);
// Truncates/creates `path` (mode 0644) and writes `data`. The error names the path.
Result<void> write_file(const std::string& path, std::string_view data, mode_t mode = 0644);
// Writes `path`.tmp and renames it over `path`, so readers see the old or the
// new content, never a mix. A stale tmp (even a symlink planted by the task)
// is unlinked first and the tmp is created O_EXCL.
Result<void> write_file_atomic(const std::string& path, std::string_view data, mode_t mode = 0644);
// write(2) until done or a real error (EINTR retried). Returns false on error.
bool write_all(int fd, std::string_view data);
// "<what>: <strerror(errno)>"
std::string errno_message(const std::string& what, int err);
// Wall-clock and monotonic milliseconds.
int64_t wall_ms();
int64_t mono_ms();

}  // namespace stele
