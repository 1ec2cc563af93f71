#include "docker/build_context.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "artifact/tar_writer.h"

namespace stele::docker {

namespace {

constexpr const char* kLabel = "docker build context";

class FileSink : public artifact::TarSink {
 public:
  ~FileSink() {
    if (fd_ >= 0) ::close(fd_);
  }
  Result<void> open(const std::string& path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd_ < 0) return fail(std::string(kLabel) + ": cannot create " + path + ": " + std::strerror(errno));
    return {};
  }
  Result<void> write(const char* p, size_t n) override {
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return fail(std::string(kLabel) + ": write: " + std::strerror(errno));
      p += w, n -= static_cast<size_t>(w);
    }
    return {};
  }

 private:
  int fd_ = -1;
};

}  // namespace

Result<void> write_build_context(const std::string& context_dir, const std::string& tar_path) {
  std::vector<artifact::TreeEntry> entries;
  if (auto r = artifact::collect_tree(context_dir, kLabel, entries); !r) return r;
  std::sort(entries.begin(), entries.end(),
            [](const artifact::TreeEntry& a, const artifact::TreeEntry& b) { return a.rel < b.rel; });
  FileSink sink;
  if (auto r = sink.open(tar_path); !r) return r;
  artifact::TarWriter tar(sink, kLabel);
  for (const auto& e : entries)
    if (auto r = tar.add(e, context_dir); !r) return r;
  return tar.finish();
}

}  // namespace stele::docker
