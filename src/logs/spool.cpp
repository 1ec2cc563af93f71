#include "logs/spool.h"

#include "logs/msgpack.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace stele::logs {

namespace {

constexpr size_t kFrameHeader = 8;
constexpr uint32_t kMaxFrame = 64u << 20;

void put_u16(std::string& s, uint16_t v) {
  char b[2] = {char(v & 0xff), char(v >> 8)};
  s.append(b, 2);
}
void put_u32(std::string& s, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = char((v >> (8 * i)) & 0xff);
  s.append(b, 4);
}
void put_u64(std::string& s, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = char((v >> (8 * i)) & 0xff);
  s.append(b, 8);
}
uint64_t get_le(const char* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | uint8_t(p[i]);
  return v;
}

bool write_all_fd(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(size_t(n));
  }
  return true;
}

bool file_exists(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

// Segment numbers present in dir for prefix, ascending.
std::vector<uint32_t> segments_of(const std::string& dir, const std::string& prefix) {
  std::vector<uint32_t> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  std::string want = prefix + ".";
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n.size() != want.size() + 8 || n.substr(0, want.size()) != want) continue;
    uint32_t v = 0;
    bool ok = true;
    for (char c : n.substr(want.size())) {
      if (c < '0' || c > '9') ok = false;
      v = v * 10 + uint32_t(c - '0');
    }
    if (ok) out.push_back(v);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

std::string seg_name(const std::string& dir, const std::string& prefix, uint32_t n) {
  return fmt::format("{}/{}.{:08}", dir, prefix, n);
}

}  // namespace

// ---- writer

SpoolWriter::SpoolWriter(std::string dir, std::string prefix, SpoolWriterOptions options)
    : dir_(std::move(dir)), prefix_(std::move(prefix)), opt_(options) {
  auto segs = segments_of(dir_, prefix_);
  seg_ = segs.empty() ? 0 : segs.back();  // the next segment is seg_ + 1: never append after a torn tail
  ::unlink((dir_ + "/" + prefix_ + ".end").c_str());
}

SpoolWriter::~SpoolWriter() {
  flush();
  if (fd_ >= 0) ::close(fd_);
}

void SpoolWriter::append(std::string_view tag, int64_t time_ns, std::string_view record) {
  if (drop_tag_.empty()) drop_tag_ = std::string(tag);
  size_t payload = 2 + tag.size() + 8 + record.size();
  if (payload > kMaxFrame) {
    ++dropped_;
    ++dropped_total_;
    return;
  }
  std::string& b = buf_;
  size_t at = b.size();
  put_u32(b, uint32_t(payload));
  put_u32(b, 0);  // crc, filled below
  put_u16(b, uint16_t(std::min<size_t>(tag.size(), 0xffff)));
  b.append(tag.substr(0, 0xffff));
  put_u64(b, uint64_t(time_ns));
  b.append(record);
  uint32_t crc = uint32_t(::crc32(0, reinterpret_cast<const Bytef*>(b.data() + at + kFrameHeader), uInt(payload)));
  for (int i = 0; i < 4; ++i) b[at + 4 + i] = char((crc >> (8 * i)) & 0xff);
  ++buf_records_;
}

uint64_t SpoolWriter::bytes_present() const {
  uint64_t total = 0;
  for (uint32_t n : segments_of(dir_, prefix_)) {
    struct stat st;
    if (::stat(seg_name(dir_, prefix_, n).c_str(), &st) == 0) total += uint64_t(st.st_size);
  }
  return total;
}

bool SpoolWriter::open_segment() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  // Room? Counted only when a segment is opened (a directory scan), so the
  // spool may pass max_bytes by one segment.
  if (bytes_present() + opt_.segment_bytes > opt_.max_bytes + opt_.segment_bytes) return false;
  std::string path = seg_name(dir_, prefix_, seg_ + 1);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW, opt_.file_mode);
  if (fd < 0) {
    last_error_ = fmt::format("spool {}: {}", path, std::strerror(errno));
    return false;
  }
  fd_ = fd;
  ++seg_;
  seg_size_ = 0;
  return true;
}

void SpoolWriter::flush() {
  if (buf_.empty()) return;
  if (fd_ < 0 || seg_size_ >= opt_.segment_bytes) {
    if (!open_segment()) {
      dropped_ += buf_records_;
      dropped_total_ += buf_records_;
      buf_.clear();
      buf_records_ = 0;
      return;
    }
    if (dropped_ > 0) {  // there is room again: say what was lost, first
      std::string rec;
      std::string msg = fmt::format("stele: {} records dropped: the spool in {} was full ({} bytes)", dropped_,
                                    dir_, opt_.max_bytes);
      msgpack::Writer w(rec);
      w.map(1);
      w.str("log");
      w.str(msg);
      std::string saved = std::move(buf_);
      size_t saved_n = buf_records_;
      buf_.clear();
      buf_records_ = 0;
      append(drop_tag_, 0, rec);  // time 0: the receiver stamps it
      buf_ += saved;
      buf_records_ += saved_n;
      dropped_ = 0;
    }
  }
  if (!write_all_fd(fd_, buf_)) {
    last_error_ = fmt::format("spool {}: {}", seg_name(dir_, prefix_, seg_), std::strerror(errno));
    dropped_ += buf_records_;
    dropped_total_ += buf_records_;
    ::close(fd_);
    fd_ = -1;  // a short write leaves a torn frame: continue in a new segment
  } else {
    seg_size_ += buf_.size();
  }
  buf_.clear();
  buf_records_ = 0;
}

void SpoolWriter::finish() {
  flush();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  std::string end = dir_ + "/" + prefix_ + ".end";
  int fd = ::open(end.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, opt_.file_mode);
  if (fd >= 0) ::close(fd);
}

// ---- cursor

namespace {
std::string cursor_path(const std::string& dir, const std::string& prefix, std::string_view destination) {
  std::string p = dir + "/" + prefix + ".cursor";
  if (!destination.empty()) p.append(".").append(destination);
  return p;
}
}  // namespace

bool spool_cursor_exists(const std::string& dir, const std::string& prefix, std::string_view destination) {
  return file_exists(cursor_path(dir, prefix, destination));
}

Result<SpoolCursor> load_spool_cursor(const std::string& dir, const std::string& prefix, std::string_view destination) {
  std::string path = cursor_path(dir, prefix, destination);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return SpoolCursor{};
    return fail(fmt::format("spool cursor {}: {}", path, std::strerror(errno)), 500);
  }
  char buf[128];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n < 0) return fail(fmt::format("spool cursor {}: {}", path, std::strerror(errno)), 500);
  buf[n] = 0;
  unsigned long long seg = 0, off = 0, end = 0;
  int got = std::sscanf(buf, "%llu %llu %llu", &seg, &off, &end);
  if (got < 2 || seg == 0) return fail(fmt::format("spool cursor {}: unreadable '{}'", path, buf), 500);
  SpoolCursor c;
  c.acked = {uint32_t(seg), off};
  if (got == 3 && end > off) c.inflight_end = end;
  return c;
}

Result<void> save_spool_cursor(const std::string& dir, const std::string& prefix, const SpoolCursor& c,
                               std::string_view destination) {
  std::string path = cursor_path(dir, prefix, destination), tmp = path + ".tmp";
  std::string text = c.inflight_end ? fmt::format("{} {} {}\n", c.acked.segment, c.acked.offset, *c.inflight_end)
                                    : fmt::format("{} {}\n", c.acked.segment, c.acked.offset);
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return fail(fmt::format("spool cursor {}: {}", tmp, std::strerror(errno)), 500);
  bool ok = write_all_fd(fd, text);
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0)
    return fail(fmt::format("spool cursor {}: {}", path, std::strerror(errno)), 500);
  return {};
}

// ---- reader

SpoolReader::SpoolReader(std::string dir, std::string prefix) : dir_(std::move(dir)), prefix_(std::move(prefix)) {}

std::string SpoolReader::segment_path(uint32_t n) const { return seg_name(dir_, prefix_, n); }

bool SpoolReader::exists() const {
  return !segments_of(dir_, prefix_).empty() || file_exists(dir_ + "/" + prefix_ + ".end");
}

Result<SpoolBatch> SpoolReader::read(SpoolPos from, size_t max_bytes, std::optional<uint64_t> exact_end) const {
  SpoolBatch b;
  b.start = b.end = from;
  // A later segment existing means this one is complete -- checked BEFORE
  // reading, so everything the writer put in it is seen by the read below.
  auto segs = segments_of(dir_, prefix_);
  std::optional<uint32_t> next;
  for (uint32_t s : segs)
    if (s > from.segment) {
      next = s;
      break;
    }
  bool complete = next.has_value() || file_exists(dir_ + "/" + prefix_ + ".end");
  std::string path = segment_path(from.segment);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno != ENOENT) return fail(fmt::format("spool {}: {}", path, std::strerror(errno)), 500);
    if (next) b.end = {*next, 0};  // gone (or never written): move on
    return b;
  }
  struct stat st;
  ::fstat(fd, &st);
  if (!S_ISREG(st.st_mode) || st.st_uid != ::geteuid()) {  // planted by the task (its sandbox is writable)
    ::close(fd);
    return fail(fmt::format("spool {}: not a regular file of uid {}; ignored", path, ::geteuid()), 500);
  }
  uint64_t size = uint64_t(st.st_size);
  uint64_t want_end = exact_end ? std::min<uint64_t>(*exact_end, size) : size;
  // Where a reader goes once this segment is done.
  SpoolPos after = next ? SpoolPos{*next, 0} : SpoolPos{from.segment, size};
  if (from.offset >= want_end) {
    ::close(fd);
    if (complete && !exact_end) b.end = after;
    return b;
  }
  size_t len = size_t(std::min<uint64_t>(want_end - from.offset, exact_end ? want_end - from.offset
                                                                             : uint64_t(max_bytes) + kMaxFrame));
  b.bytes.resize(len);
  size_t got = 0;
  while (got < len) {
    ssize_t n = ::pread(fd, b.bytes.data() + got, len - got, off_t(from.offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += size_t(n);
  }
  ::close(fd);
  b.bytes.resize(got);
  size_t pos = 0;
  while (pos + kFrameHeader <= b.bytes.size()) {
    if (!exact_end && pos >= max_bytes && !b.entries.empty()) break;
    const char* p = b.bytes.data() + pos;
    uint32_t plen = uint32_t(get_le(p, 4)), crc = uint32_t(get_le(p + 4, 4));
    if (plen < 10 || plen > kMaxFrame) {
      pos = b.bytes.size() + 1;  // corrupt
      break;
    }
    if (pos + kFrameHeader + plen > b.bytes.size()) break;  // not all here (yet)
    const char* pl = p + kFrameHeader;
    if (uint32_t(::crc32(0, reinterpret_cast<const Bytef*>(pl), uInt(plen))) != crc) {
      pos = b.bytes.size() + 1;
      break;
    }
    uint16_t tlen = uint16_t(get_le(pl, 2));
    if (size_t(2) + tlen + 8 > plen) {
      pos = b.bytes.size() + 1;
      break;
    }
    LogEntry e;
    e.tag = std::string_view(pl + 2, tlen);
    e.time_ns = int64_t(get_le(pl + 2 + tlen, 8));
    e.record = std::string_view(pl + 2 + tlen + 8, plen - 2 - tlen - 8);
    b.entries.push_back(e);
    pos += kFrameHeader + plen;
  }
  if (pos > b.bytes.size()) {  // a corrupt frame: only a complete segment is judged
    size_t good = 0;
    for (const auto& e : b.entries) good = size_t(e.record.data() + e.record.size() - b.bytes.data());
    if (complete || exact_end) {
      b.skipped_bytes = size - from.offset - good;
      spdlog::warn("spool {}: {} bytes at offset {} are not a whole frame; skipped", path, b.skipped_bytes,
                   from.offset + good);
      b.end = after;
      if (exact_end) b.end = {from.segment, *exact_end};
    } else {
      b.end = {from.segment, from.offset + good};
    }
    return b;
  }
  b.end = {from.segment, from.offset + pos};
  if (exact_end) {
    b.end = {from.segment, *exact_end};
  } else if (complete && b.end.offset >= size && b.entries.empty()) {
    b.end = after;
  } else if (complete && b.entries.empty() && pos < b.bytes.size()) {
    // a torn frame at the end of a complete segment (writer killed mid-write)
    b.skipped_bytes = size - b.end.offset;
    spdlog::warn("spool {}: torn frame of {} bytes at offset {}; skipped", path, b.skipped_bytes, b.end.offset);
    b.end = after;
  }
  return b;
}

bool SpoolReader::drained(SpoolPos pos) const {
  if (!file_exists(dir_ + "/" + prefix_ + ".end")) return false;
  auto segs = segments_of(dir_, prefix_);
  if (segs.empty()) return true;
  if (pos.segment > segs.back()) return true;
  if (pos.segment < segs.back()) return false;
  struct stat st;
  if (::stat(segment_path(pos.segment).c_str(), &st) != 0) return true;
  return pos.offset >= uint64_t(st.st_size);
}

void SpoolReader::release_before(SpoolPos pos) const {
  for (uint32_t s : segments_of(dir_, prefix_))
    if (s < pos.segment) ::unlink(segment_path(s).c_str());
}

void SpoolReader::remove_all() const {
  for (uint32_t s : segments_of(dir_, prefix_)) ::unlink(segment_path(s).c_str());
  ::unlink((dir_ + "/" + prefix_ + ".end").c_str());
  if (DIR* d = ::opendir(dir_.c_str())) {
    std::string want = prefix_ + ".cursor";
    std::vector<std::string> cursors;
    while (dirent* e = ::readdir(d)) {
      std::string_view n = e->d_name;
      if (n.substr(0, want.size()) == want && (n.size() == want.size() || n[want.size()] == '.')) cursors.emplace_back(n);
    }
    ::closedir(d);
    for (const auto& n : cursors) ::unlink((dir_ + "/" + n).c_str());
  }
}

}  // namespace stele::logs
