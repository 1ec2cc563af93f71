#include "artifact/artifact_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace stele::artifact {
namespace fs = std::filesystem;

namespace {

std::string errno_text() { return std::strerror(errno); }

Result<void> fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fail("artifacts: cannot open " + dir + ": " + errno_text(), 500);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return fail("artifacts: fsync " + dir + ": " + errno_text(), 500);
  return {};
}

}  // namespace

// ---------- ArtifactWriter ----------

ArtifactWriter::ArtifactWriter(std::string expected, std::string tmp, std::string final_path, std::string dir, int fd)
    : expected_(std::move(expected)), tmp_(std::move(tmp)), final_(std::move(final_path)), dir_(std::move(dir)), fd_(fd) {}

ArtifactWriter::ArtifactWriter(ArtifactWriter&& o) noexcept
    : expected_(std::move(o.expected_)), tmp_(std::move(o.tmp_)), final_(std::move(o.final_)),
      dir_(std::move(o.dir_)), fd_(std::exchange(o.fd_, -1)), hash_(std::move(o.hash_)) {}

ArtifactWriter& ArtifactWriter::operator=(ArtifactWriter&& o) noexcept {
  if (this != &o) {
    discard();
    expected_ = std::move(o.expected_), tmp_ = std::move(o.tmp_), final_ = std::move(o.final_);
    dir_ = std::move(o.dir_), fd_ = std::exchange(o.fd_, -1), hash_ = std::move(o.hash_);
  }
  return *this;
}

ArtifactWriter::~ArtifactWriter() { discard(); }

void ArtifactWriter::discard() {
  if (fd_ < 0) return;
  ::close(fd_);
  ::unlink(tmp_.c_str());
  fd_ = -1;
}

Result<void> ArtifactWriter::write(std::string_view chunk) {
  if (fd_ < 0) return fail("artifacts: writer already finished", 500);
  hash_.update(chunk);
  for (const char* p = chunk.data(); !chunk.empty();) {
    ssize_t n = ::write(fd_, p, chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return discard(), fail("artifacts: write " + tmp_ + ": " + errno_text(), 500);
    p += n, chunk.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Result<std::string> ArtifactWriter::commit() {
  if (fd_ < 0) return fail("artifacts: writer already finished", 500);
  std::string got = hash_.final();
  if (got != expected_) return discard(), fail("digest mismatch: expected " + expected_ + ", got " + got, 422);
  if (::fsync(fd_) != 0) return discard(), fail("artifacts: fsync " + tmp_ + ": " + errno_text(), 500);
  ::close(fd_);
  fd_ = -1;
  if (::rename(tmp_.c_str(), final_.c_str()) != 0) {
    ::unlink(tmp_.c_str());
    return fail("artifacts: rename to " + final_ + ": " + errno_text(), 500);
  }
  if (auto r = fsync_dir(dir_); !r) return fail(r.error());
  return final_;
}

// ---------- ArtifactStore ----------

ArtifactStore::ArtifactStore(std::string dir) : dir_(std::move(dir)) {
  std::error_code ec;
  fs::create_directories(dir_ + "/sha256", ec);
  fs::create_directories(dir_ + "/tmp", ec);
}

Result<void> ArtifactStore::validate_digest(const std::string& digest) {
  if (is_sha256_hex(digest)) return {};
  return fail("invalid digest '" + digest.substr(0, 80) + "': want 64 lowercase hex characters (sha256)", 400);
}

std::string ArtifactStore::path(const std::string& digest) const { return dir_ + "/sha256/" + digest; }

bool ArtifactStore::has(const std::string& digest) const {
  struct stat st;
  return is_sha256_hex(digest) && ::stat(path(digest).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

Result<ArtifactWriter> ArtifactStore::begin(const std::string& expected_digest) {
  if (auto r = validate_digest(expected_digest); !r) return fail(r.error());
  std::string tmp = dir_ + "/tmp/" + expected_digest.substr(0, 16) + ".XXXXXX";
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) return fail("artifacts: cannot create temp in " + dir_ + "/tmp: " + errno_text(), 500);
  ::fchmod(fd, 0644);
  return ArtifactWriter(expected_digest, tmp, path(expected_digest), dir_ + "/sha256", fd);
}

Result<std::string> ArtifactStore::put_file(const std::string& src_path, const std::string& expected_digest) {
  auto w = begin(expected_digest);
  if (!w) return fail(w.error());
  int fd = ::open(src_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail("artifacts: cannot open " + src_path + ": " + errno_text(), 500);
  std::vector<char> buf(1 << 16);
  Result<void> r;
  for (ssize_t n; r && (n = ::read(fd, buf.data(), buf.size())) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    r = n < 0 ? fail("artifacts: read " + src_path + ": " + errno_text(), 500)
              : w->write(std::string_view(buf.data(), static_cast<size_t>(n)));
  }
  ::close(fd);
  if (!r) return fail(r.error());
  return w->commit();
}

Result<void> ArtifactStore::remove(const std::string& digest) {
  if (auto r = validate_digest(digest); !r) return r;
  if (::unlink(path(digest).c_str()) != 0)
    return errno == ENOENT ? fail("artifact " + digest + " not found", 404)
                           : fail("artifacts: remove " + digest + ": " + errno_text(), 500);
  return fsync_dir(dir_ + "/sha256");
}

std::vector<std::string> ArtifactStore::list() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir_ + "/sha256", ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (is_sha256_hex(name)) out.push_back(std::move(name));
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace stele::artifact
