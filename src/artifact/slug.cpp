#include "artifact/slug.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "artifact/sha256.h"
#include "artifact/tar_reader.h"
#include "artifact/tar_writer.h"

namespace stele::artifact {
namespace fs = std::filesystem;

namespace {


constexpr size_t kChunk = 128 * 1024;  // fixed feed size keeps zstd output deterministic

std::string errno_text() { return std::strerror(errno); }

class ZstdFileSink : public TarSink {
 public:
  ~ZstdFileSink() {
    ZSTD_freeCCtx(cctx_);
    if (fd_ >= 0) ::close(fd_);
  }
  // Creates a unique temp file from a mkstemp template (rewritten in place).
  Result<void> open(std::string& tmpl) {
    fd_ = ::mkstemp(tmpl.data());
    if (fd_ < 0) return fail("slug: cannot create " + tmpl + ": " + errno_text());
    ::fchmod(fd_, 0644);
    ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, 3);
    ZSTD_CCtx_setParameter(cctx_, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setParameter(cctx_, ZSTD_c_nbWorkers, 0);
    return {};
  }
  Result<void> write(const char* p, size_t n) override {
    while (n > 0) {
      size_t take = std::min(n, kChunk - buf_.size());
      buf_.append(p, take), p += take, n -= take;
      if (buf_.size() == kChunk)
        if (auto r = compress(ZSTD_e_continue); !r) return r;
    }
    return {};
  }
  Result<void> finish() {
    if (auto r = compress(ZSTD_e_end); !r) return r;
    if (::fsync(fd_) != 0) return fail("slug: fsync: " + errno_text());
    return {};
  }
  std::string digest() { return hash_.final(); }
  uint64_t size() const { return size_; }

 private:
  Result<void> compress(ZSTD_EndDirective mode) {
    ZSTD_inBuffer in{buf_.data(), buf_.size(), 0};
    std::vector<char> out(ZSTD_CStreamOutSize());
    for (;;) {
      ZSTD_outBuffer o{out.data(), out.size(), 0};
      size_t left = ZSTD_compressStream2(cctx_, &o, &in, mode);
      if (ZSTD_isError(left)) return fail(std::string("slug: zstd: ") + ZSTD_getErrorName(left));
      if (auto r = emit(out.data(), o.pos); !r) return r;
      if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size) break;
    }
    buf_.clear();
    return {};
  }
  Result<void> emit(const char* p, size_t n) {
    hash_.update(p, n);
    size_ += n;
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return fail("slug: write: " + errno_text());
      p += w, n -= static_cast<size_t>(w);
    }
    return {};
  }
  int fd_ = -1;
  ZSTD_CCtx* cctx_ = ZSTD_createCCtx();
  std::string buf_;
  Sha256 hash_;
  uint64_t size_ = 0;
};

using Block = std::array<char, kTarBlock>;

class ZstdFileSource {
 public:
  ~ZstdFileSource() {
    ZSTD_freeDCtx(dctx_);
    if (fd_ >= 0) ::close(fd_);
  }
  Result<void> open(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return fail("slug: cannot open " + path + ": " + errno_text());
    return {};
  }
  // Exactly n bytes (dst may be null to skip); a short stream is an error.
  Result<void> read(char* dst, uint64_t n) {
    while (n > 0) {
      if (out_pos_ == out_len_)
        if (auto r = refill(); !r) return r;
      size_t take = static_cast<size_t>(std::min<uint64_t>(n, out_len_ - out_pos_));
      if (dst) std::memcpy(dst, out_.data() + out_pos_, take), dst += take;
      out_pos_ += take, n -= take;
    }
    return {};
  }

 private:
  Result<void> refill() {
    out_pos_ = out_len_ = 0;
    while (out_len_ == 0) {
      if (in_pos_ == in_len_) {
        ssize_t n = ::read(fd_, in_.data(), in_.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail("slug: read: " + errno_text());
        if (n == 0) return fail("slug: archive is truncated");
        in_len_ = static_cast<size_t>(n), in_pos_ = 0;
      }
      ZSTD_inBuffer in{in_.data(), in_len_, in_pos_};
      ZSTD_outBuffer out{out_.data(), out_.size(), 0};
      size_t rc = ZSTD_decompressStream(dctx_, &out, &in);
      if (ZSTD_isError(rc)) return fail(std::string("slug: zstd: ") + ZSTD_getErrorName(rc));
      in_pos_ = in.pos, out_len_ = out.pos;
    }
    return {};
  }
  int fd_ = -1;
  ZSTD_DCtx* dctx_ = ZSTD_createDCtx();
  std::vector<char> in_ = std::vector<char>(ZSTD_DStreamInSize());
  std::vector<char> out_ = std::vector<char>(ZSTD_DStreamOutSize());
  size_t in_len_ = 0, in_pos_ = 0, out_len_ = 0, out_pos_ = 0;
};

Result<std::string> read_meta(ZstdFileSource& src, uint64_t size) {
  if (size > kMaxTarMeta) return fail("slug: extended header too large");
  std::string data(size, '\0');
  if (auto r = src.read(data.data(), size); !r) return fail(r.error());
  if (auto r = src.read(nullptr, tar_padding(size)); !r) return fail(r.error());
  if (auto nul = data.find('\0'); nul != std::string::npos) data.resize(nul);  // GNU 'L' names
  return data;
}

// Next entry, with pax/GNU long-name headers folded in; false at the end.
Result<bool> next_entry(ZstdFileSource& src, TarEntry& e) {
  TarEntry over;
  for (;;) {
    Block b;
    if (auto r = src.read(b.data(), kTarBlock); !r) return fail(r.error());
    if (tar_end_block(b.data())) return false;
    auto header = decode_tar_header(b.data());
    if (!header) return fail("slug: " + header.error().message);
    e = std::move(*header);
    if (e.type != 'x' && e.type != 'g' && e.type != 'L' && e.type != 'K') break;
    auto meta = read_meta(src, e.size);
    if (!meta) return fail(meta.error());
    if (e.type == 'x') apply_pax(*meta, over);
    if (e.type == 'L') over.path = *meta;
    if (e.type == 'K') over.link = *meta;
  }
  if (!over.path.empty()) e.path = over.path;
  if (!over.link.empty()) e.link = over.link;
  if (over.size) e.size = over.size;
  return true;
}

// "a/./b/" → {"a","b"}; refuses absolute paths and "..".
Result<std::vector<std::string>> safe_parts(const std::string& p) {
  if (p.empty() || p[0] == '/') return fail("slug: refusing absolute or empty path '" + p + "'");
  std::vector<std::string> parts;
  for (size_t i = 0; i <= p.size();) {
    size_t j = std::min(p.find('/', i), p.size());
    std::string part = p.substr(i, j - i);
    if (part == "..") return fail("slug: refusing path with '..': '" + p + "'");
    if (!part.empty() && part != ".") parts.push_back(part);
    i = j + 1;
  }
  return parts;
}

// Creates missing parents; fails when one is a symlink or not a directory.
Result<fs::path> walk_parents(const fs::path& dest, const std::vector<std::string>& parts, const std::string& p) {
  fs::path cur = dest;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    cur /= parts[i];
    struct stat st;
    if (::lstat(cur.c_str(), &st) != 0) {
      if (errno != ENOENT || ::mkdir(cur.c_str(), 0755) != 0)
        return fail("slug: cannot create " + cur.string() + ": " + errno_text());
    } else if (S_ISLNK(st.st_mode)) {
      return fail("slug: refusing to write '" + p + "' through symlink " + cur.string());
    } else if (!S_ISDIR(st.st_mode)) {
      return fail("slug: '" + p + "' is under a non-directory");
    }
  }
  return cur / parts.back();
}

// Clears the way for the entry's final component.
Result<void> prepare_target(const fs::path& t, char type, const std::string& p) {
  struct stat st;
  if (::lstat(t.c_str(), &st) != 0) return {};
  if (S_ISLNK(st.st_mode) && type != '2') return fail("slug: refusing to write '" + p + "' through a symlink");
  if (S_ISDIR(st.st_mode)) return type == '5' ? Result<void>{} : fail("slug: '" + p + "' replaces a directory");
  if (::unlink(t.c_str()) != 0) return fail("slug: cannot replace " + t.string() + ": " + errno_text());
  return {};
}

Result<void> write_file(ZstdFileSource& src, const fs::path& t, const TarEntry& e) {
  int fd = ::open(t.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return fail("slug: cannot create " + t.string() + ": " + errno_text());
  std::vector<char> buf(kChunk);
  Result<void> r;
  for (uint64_t left = e.size; r && left > 0;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
    r = src.read(buf.data(), n);
    if (r && ::write(fd, buf.data(), n) != static_cast<ssize_t>(n)) r = fail("slug: write " + t.string() + ": " + errno_text());
    left -= n;
  }
  if (r && ::fchmod(fd, e.mode & 0777) != 0) r = fail("slug: chmod " + t.string() + ": " + errno_text());
  ::close(fd);
  return r ? src.read(nullptr, tar_padding(e.size)) : r;
}

using DirModes = std::vector<std::pair<fs::path, unsigned>>;

Result<void> extract(ZstdFileSource& src, const fs::path& dest, const TarEntry& e, DirModes& dirs) {
  auto parts = safe_parts(e.path);
  if (!parts) return fail(parts.error());
  if (parts->empty()) return e.type == '5' ? Result<void>{} : fail("slug: entry with an empty path");
  if (e.type != '0' && e.type != '\0' && e.type != '5' && e.type != '2')
    return fail(std::string("slug: refusing entry '") + e.path + "' of tar type '" + e.type + "'");
  auto t = walk_parents(dest, *parts, e.path);
  if (!t) return fail(t.error());
  if (auto r = prepare_target(*t, e.type, e.path); !r) return r;
  if (e.type == '5') {
    if (::mkdir(t->c_str(), 0700) != 0 && errno != EEXIST) return fail("slug: mkdir " + t->string() + ": " + errno_text());
    dirs.emplace_back(*t, e.mode & 0777);
    return src.read(nullptr, e.size + tar_padding(e.size));
  }
  if (e.type == '2') {
    if (::symlink(e.link.c_str(), t->c_str()) != 0) return fail("slug: symlink " + t->string() + ": " + errno_text());
    return src.read(nullptr, e.size + tar_padding(e.size));
  }
  return write_file(src, *t, e);
}

}  // namespace

Result<Slug> make_slug(const std::string& tree_dir, const std::string& out_dir) {
  std::vector<TreeEntry> entries;
  if (auto r = collect_tree(tree_dir, "slug", entries); !r) return fail(r.error());
  std::sort(entries.begin(), entries.end(), [](const TreeEntry& a, const TreeEntry& b) { return a.rel < b.rel; });
  std::string tmp = out_dir + "/.slug-XXXXXX";
  ZstdFileSink sink;
  auto r = sink.open(tmp);
  if (!r) return fail(r.error());
  TarWriter tar(sink, "slug");
  for (size_t i = 0; r && i < entries.size(); ++i) r = tar.add(entries[i], tree_dir);
  if (r) r = tar.finish();
  if (r) r = sink.finish();
  if (!r) return ::unlink(tmp.c_str()), fail(r.error());
  Slug s;
  s.digest = sink.digest();
  s.path = out_dir + "/" + s.digest + ".tar.zst";
  s.size = sink.size();
  if (::rename(tmp.c_str(), s.path.c_str()) != 0)
    return ::unlink(tmp.c_str()), fail("slug: cannot rename to " + s.path + ": " + errno_text());
  return s;
}

Result<void> unpack_slug(const std::string& slug_path, const std::string& dest_dir) {
  std::error_code ec;
  fs::create_directories(dest_dir, ec);
  if (ec) return fail("slug: cannot create " + dest_dir + ": " + ec.message());
  ZstdFileSource src;
  if (auto r = src.open(slug_path); !r) return r;
  DirModes dirs;
  for (TarEntry e;;) {
    auto more = next_entry(src, e);
    if (!more) return fail(more.error());
    if (!*more) break;
    if (auto r = extract(src, dest_dir, e, dirs); !r) return r;
  }
  // Directory modes last, deepest first, so read-only dirs don't block their children.
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it)
    if (::chmod(it->first.c_str(), it->second) != 0) return fail("slug: chmod " + it->first.string() + ": " + errno_text());
  return {};
}

}  // namespace stele::artifact
