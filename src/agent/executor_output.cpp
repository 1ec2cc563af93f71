#include "agent/executor_output.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace stele {

RotatingFileSink::RotatingFileSink(std::string path, uint64_t max_bytes)
    : path_(std::move(path)), max_bytes_(max_bytes) {
  open();
}

void RotatingFileSink::open() {
  fd_.reset(::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640));
  struct stat st;
  size_ = fd_ && ::fstat(fd_.get(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

void RotatingFileSink::rotate() {
  fd_.reset();
  std::string old = path_ + ".1";
  ::rename(path_.c_str(), old.c_str());
  // The sandbox is writable by the task: never append to something it planted.
  ::unlink(path_.c_str());
  open();
}

void RotatingFileSink::write(std::string_view data) {
  while (!data.empty()) {
    if (size_ >= max_bytes_) rotate();
    if (!fd_) return;
    uint64_t room = max_bytes_ - size_;
    std::string_view part = data.substr(0, static_cast<size_t>(std::min<uint64_t>(room, data.size())));
    if (!write_all(fd_.get(), part)) return;
    size_ += part.size();
    data.remove_prefix(part.size());
  }
}

}  // namespace stele
