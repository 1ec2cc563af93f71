#include "logs/segment_stream.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <filesystem>

#include "common/log.h"

namespace stele::logs {
namespace fs = std::filesystem;
namespace {

std::string errno_text() { return std::strerror(errno); }

Result<int> open_append(const std::string& path, bool create) {
  int flags = O_WRONLY | O_APPEND | O_CLOEXEC | (create ? O_CREAT : 0);
  int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) return fail("logs: open " + path + ": " + errno_text(), 500);
  return fd;
}

Result<void> truncate_to(const std::string& path, uint64_t size) {
  if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0)
    return fail("logs: truncate " + path + ": " + errno_text(), 500);
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return fail("logs: open " + path + ": " + errno_text(), 500);
  auto r = sync_data(fd, path);
  ::close(fd);
  return r;
}

bool pread_all(int fd, char* buf, size_t n, uint64_t off) {
  while (n > 0) {
    ssize_t r = ::pread(fd, buf, n, static_cast<off_t>(off));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    buf += r, n -= static_cast<size_t>(r), off += static_cast<uint64_t>(r);
  }
  return true;
}

// Reads the block index of a segment. With `verify` every frame's checksum
// is checked (the newest segment, which may hold a torn tail); older segments
// were fdatasync'ed before they were closed, so their headers suffice.
// Returns the offset of the first byte that is not a valid block.
uint64_t scan_segment(int fd, uint64_t file_size, bool verify, SegmentInfo& seg) {
  uint64_t off = 0;
  std::string buf;
  while (file_size - off >= kFrameHeaderBytes + kBlockHeaderBytes) {
    char head[kFrameHeaderBytes + kBlockHeaderBytes];
    if (!pread_all(fd, head, sizeof head, off)) break;
    uint32_t len;
    std::memcpy(&len, head, 4);
    if (len > kMaxFrameBody || len < kBlockHeaderBytes || head[8] != char(FrameType::kBlock)) break;
    uint64_t size = kFrameHeaderBytes + uint64_t(len);
    if (file_size - off < size) break;
    if (verify) {
      buf.resize(size);
      if (!pread_all(fd, buf.data(), size, off) || !parse_frame(buf)) break;
    }
    auto h = decode_block_header(std::string_view(head + kFrameHeaderBytes, kBlockHeaderBytes));
    if (!h || h->first_seq > h->last_seq) break;
    seg.blocks.push_back(BlockRef{off, static_cast<uint32_t>(size), *h});
    off += size;
  }
  return off;
}

uint64_t file_size_of(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

}  // namespace

StreamFiles::StreamFiles(std::string key, std::string dir, StreamLimits limits)
    : key_(std::move(key)), dir_(std::move(dir)), wal_path_(dir_ + "/wal"), lim_(limits) {}

StreamFiles::~StreamFiles() {
  if (wal_fd_ >= 0) ::close(wal_fd_);
  if (seg_fd_ >= 0) ::close(seg_fd_);
}

Result<void> StreamFiles::open(bool create) {
  if (create) {
    if (::mkdir(dir_.c_str(), 0755) != 0 && errno != EEXIST)
      return fail("logs: mkdir " + dir_ + ": " + errno_text(), 500);
    if (auto r = sync_dir(fs::path(dir_).parent_path().string()); !r) return r;
  }
  ::unlink((dir_ + "/wal.new").c_str());  // an interrupted rewrite; the old wal is intact
  if (auto r = recover_segments(); !r) return r;
  if (auto r = recover_wal(); !r) return r;
  auto fd = open_append(wal_path_, true);
  if (!fd) return fail(fd.error());
  wal_fd_ = *fd;
  return create ? sync_dir(dir_) : Result<void>{};
}

Result<void> StreamFiles::recover_segments() {
  std::vector<std::pair<uint64_t, std::string>> files;
  for (const auto& e : fs::directory_iterator(dir_)) {
    auto name = e.path().filename().string();
    if (name.size() == 24 && name.ends_with(".seg")) files.emplace_back(std::stoull(name.substr(0, 20)), e.path().string());
  }
  std::sort(files.begin(), files.end());
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string& path = files[i].second;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail("logs: open " + path + ": " + errno_text(), 500);
    auto seg = std::make_shared<SegmentInfo>();
    seg->path = path;
    uint64_t size = file_size_of(path);
    uint64_t good = scan_segment(fd, size, i + 1 == files.size(), *seg);
    ::close(fd);
    if (good < size) {
      spdlog::warn("logs: {}: torn tail at byte {} of {}, truncated", path, good, size);
      if (auto r = truncate_to(path, good); !r) return r;
    }
    seg->bytes = good;
    if (seg->blocks.empty()) {  // created just before a crash: nothing acked lives only here
      ::unlink(path.c_str());
      continue;
    }
    last_seq_ = std::max(last_seq_, seg->blocks.back().h.last_seq);
    segments_.push_back(std::move(seg));
  }
  if (!segments_.empty()) {
    auto fd = open_append(segments_.back()->path, false);
    if (!fd) return fail(fd.error());
    seg_fd_ = *fd;
  }
  return {};
}

Result<void> StreamFiles::recover_wal() {
  if (::access(wal_path_.c_str(), F_OK) != 0) return {};
  auto data = read_file(wal_path_);
  if (!data) return fail(data.error());
  std::string_view rest = *data;
  uint64_t seg_last = last_seq_;
  while (auto f = parse_frame(rest)) {
    if (f->type == FrameType::kChunks) {
      auto ids = parse_chunks_body(f->body);
      if (!ids) break;
      for (const auto& id : *ids) remember_chunk(id);
    } else if (f->type == FrameType::kRecords) {
      auto rb = parse_records_body(f->body);
      if (!rb) break;
      if (!rb->chunk_id.empty()) remember_chunk(rb->chunk_id);
      size_t pos = 0;
      StoredRecord r;
      while (pos < rb->records.size()) {
        size_t start = pos;
        if (!decode_record(rb->records, pos, r)) break;
        if (r.seq <= seg_last) continue;  // already in a block
        if (pending_h_.count == 0) pending_h_ = BlockHeader{r.seq, r.seq, r.time_ns, r.time_ns, 0, 0};
        pending_h_.last_seq = r.seq;
        pending_h_.min_time_ns = std::min(pending_h_.min_time_ns, r.time_ns);
        pending_h_.max_time_ns = std::max(pending_h_.max_time_ns, r.time_ns);
        pending_h_.count++;
        pending_.append(rb->records.substr(start, pos - start));
        last_seq_ = std::max(last_seq_, r.seq);
      }
    } else {
      break;
    }
    rest.remove_prefix(f->size);
  }
  wal_bytes_ = data->size() - rest.size();
  if (!rest.empty()) {
    spdlog::warn("logs: {}: torn tail at byte {} of {}, truncated", wal_path_, wal_bytes_, data->size());
    return truncate_to(wal_path_, wal_bytes_);
  }
  return {};
}

void StreamFiles::remember_chunk(std::string_view id) {
  auto [it, added] = chunk_set_.emplace(id);
  if (!added) return;
  chunks_.emplace_back(id);
  while (chunks_.size() > lim_.dedup_window) {
    chunk_set_.erase(chunks_.front());
    chunks_.pop_front();
  }
}

Result<void> StreamFiles::write_wal(std::string_view frames) {
  if (auto r = write_all(wal_fd_, frames, wal_path_); !r) {
    // Cut the partial frames so later appends don't land behind garbage.
    if (::ftruncate(wal_fd_, static_cast<off_t>(wal_bytes_)) != 0) std::abort();
    return r;
  }
  wal_bytes_ += frames.size();
  return {};
}

Result<void> StreamFiles::sync_wal() const { return sync_data(wal_fd_, wal_path_); }

void StreamFiles::commit(std::string_view records, const BlockHeader& h, std::string_view chunk_id) {
  if (!chunk_id.empty()) remember_chunk(chunk_id);
  {
    std::lock_guard lock(mu_);
    if (pending_h_.count == 0) pending_h_ = BlockHeader{h.first_seq, h.last_seq, h.min_time_ns, h.max_time_ns, 0, 0};
    pending_h_.last_seq = h.last_seq;
    pending_h_.min_time_ns = std::min(pending_h_.min_time_ns, h.min_time_ns);
    pending_h_.max_time_ns = std::max(pending_h_.max_time_ns, h.max_time_ns);
    pending_h_.count += h.count;
    pending_.append(records);
  }
  last_seq_ = h.last_seq;
}

void StreamFiles::cut_blocks(int64_t now_ms) {
  if (!wants_cut()) return;
  if (auto r = cut_block(now_ms); !r) spdlog::error("{}", r.error().message);
}

void StreamFiles::rewrite_wal_if_big() {
  if (!wants_wal_rewrite()) return;
  if (auto r = rewrite_wal(); !r) spdlog::error("{}", r.error().message);
}

Result<void> StreamFiles::flush(int64_t now_ms) {
  if (pending_h_.count > 0) {
    if (auto r = cut_block(now_ms); !r) return r;
  }
  return wal_bytes_ > 0 ? rewrite_wal() : Result<void>{};
}

Result<void> StreamFiles::ensure_segment(int64_t now_ms, uint64_t first_seq) {
  if (seg_fd_ >= 0) {
    const SegmentInfo& a = *segments_.back();
    bool full = a.bytes >= lim_.segment_bytes;
    bool old = !a.blocks.empty() && now_ms - a.first_write_ms() >= lim_.segment_age_ms;
    if (!full && !old) return {};
    if (auto r = close_active(); !r) return r;
  }
  char name[32];
  std::snprintf(name, sizeof name, "/%020" PRIu64 ".seg", first_seq);
  auto seg = std::make_shared<SegmentInfo>();
  seg->path = dir_ + name;
  int fd = ::open(seg->path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return fail("logs: create " + seg->path + ": " + errno_text(), 500);
  if (auto r = sync_dir(dir_); !r) return ::close(fd), r;
  seg_fd_ = fd;
  std::lock_guard lock(mu_);
  segments_.push_back(std::move(seg));
  return {};
}

Result<void> StreamFiles::close_active() {
  if (seg_fd_ < 0) return {};
  if (seg_dirty_) {
    if (auto r = sync_data(seg_fd_, segments_.back()->path); !r) return r;
    seg_dirty_ = false;
  }
  ::close(seg_fd_);
  seg_fd_ = -1;
  return {};
}

// Compresses the pending tail into blocks of about block_bytes each (a group
// commit may have added many times that since the last cut), so the sparse
// index stays as fine as block_bytes says.
Result<void> StreamFiles::cut_block(int64_t now_ms) {
  if (auto r = ensure_segment(now_ms, pending_h_.first_seq); !r) return r;
  SegmentInfo& seg = *segments_.back();
  std::string frames;
  std::vector<BlockRef> refs;
  std::string_view all = pending_;
  size_t pos = 0;
  while (pos < all.size()) {
    size_t start = pos;
    StoredRecord r;
    BlockHeader h{0, 0, INT64_MAX, INT64_MIN, now_ms, 0};
    while (pos < all.size() && pos - start < lim_.block_bytes) {
      if (!decode_record(all, pos, r)) std::abort();  // our own encoding: a broken invariant
      if (h.count++ == 0) h.first_seq = r.seq;
      h.last_seq = r.seq;
      h.min_time_ns = std::min(h.min_time_ns, r.time_ns);
      h.max_time_ns = std::max(h.max_time_ns, r.time_ns);
    }
    size_t at = frames.size();
    append_frame(frames, FrameType::kBlock, encode_block(h, all.substr(start, pos - start), lim_.zstd_level));
    refs.push_back(BlockRef{seg.bytes + at, static_cast<uint32_t>(frames.size() - at), h});
  }
  if (auto r = write_all(seg_fd_, frames, seg.path); !r) {
    if (::ftruncate(seg_fd_, static_cast<off_t>(seg.bytes)) != 0) std::abort();
    return r;
  }
  seg_dirty_ = true;
  std::lock_guard lock(mu_);
  seg.blocks.insert(seg.blocks.end(), refs.begin(), refs.end());
  seg.bytes += frames.size();
  pending_.clear();
  pending_h_ = BlockHeader{};
  return {};
}

Result<void> StreamFiles::rewrite_wal() {
  if (seg_dirty_) {  // the new wal stops covering these blocks
    if (auto r = sync_data(seg_fd_, segments_.back()->path); !r) return r;
    seg_dirty_ = false;
  }
  std::string content;
  append_frame(content, FrameType::kChunks, chunks_body({chunks_.begin(), chunks_.end()}));
  if (!pending_.empty()) append_frame(content, FrameType::kRecords, records_body({}, pending_));
  std::string tmp = dir_ + "/wal.new";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return fail("logs: create " + tmp + ": " + errno_text(), 500);
  auto ok = write_all(fd, content, tmp);
  if (ok) ok = sync_data(fd, tmp);
  if (ok && ::rename(tmp.c_str(), wal_path_.c_str()) != 0) ok = fail("logs: rename " + tmp + ": " + errno_text(), 500);
  if (!ok) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return ok;
  }
  ::close(wal_fd_);
  wal_fd_ = fd;
  wal_bytes_ = content.size();
  return sync_dir(dir_);
}

Result<void> StreamFiles::roll_if_old(int64_t now_ms) {
  if (seg_fd_ < 0) return {};
  const SegmentInfo& a = *segments_.back();
  if (a.blocks.empty() || now_ms - a.first_write_ms() < lim_.segment_age_ms) return {};
  return close_active();
}

std::vector<StreamFiles::Deletable> StreamFiles::deletable() const {
  std::vector<Deletable> out;
  size_t n = segments_.size() - (seg_fd_ >= 0 ? 1 : 0);
  for (size_t i = 0; i < n; ++i)
    out.push_back({segments_[i]->path, segments_[i]->bytes, segments_[i]->last_write_ms()});
  return out;
}

Result<void> StreamFiles::delete_segment(const std::string& path) {
  {
    std::lock_guard lock(mu_);
    std::erase_if(segments_, [&](const auto& s) { return s->path == path; });
  }
  // Readers holding the file open keep reading it; new readers no longer see it.
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return fail("logs: unlink " + path + ": " + errno_text(), 500);
  return {};
}

uint64_t StreamFiles::disk_bytes() const {
  uint64_t n = wal_bytes_;
  for (const auto& s : segments_) n += s->bytes;
  return n;
}

StreamSnapshot StreamFiles::snapshot(bool (*keep)(const BlockHeader&, const void*), const void* arg) const {
  StreamSnapshot snap;
  std::lock_guard lock(mu_);
  for (const auto& seg : segments_)
    for (const auto& b : seg->blocks)
      if (keep(b.h, arg)) snap.blocks.push_back({seg->path, b});
  if (pending_h_.count > 0 && keep(pending_h_, arg)) {
    snap.pending = pending_;
    snap.pending_h = pending_h_;
  }
  return snap;
}

std::vector<std::string> StreamFiles::segment_paths() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& s : segments_) out.push_back(s->path);
  return out;
}

}  // namespace stele::logs
