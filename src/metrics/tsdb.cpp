#include "metrics/tsdb.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "metrics/series_index.h"

namespace fs = std::filesystem;

namespace stele::metrics {
namespace {

// A point waiting to be applied; also its WAL encoding (raw, native-endian).
struct Pending {
  uint32_t id;
  uint32_t now;  // arrival, epoch seconds
  int64_t t;
  double v;
};
static_assert(sizeof(Pending) == 24);

enum FrameType : uint8_t { kFramePoints = 1, kFrameSeries = 2 };
constexpr uint32_t kFrameMagic = 0x53545344;  // "STSD"

// Frame: magic u32, type u8, pad[3], payload length u32, crc32 u32 (of type +
// payload), payload.
struct FrameHeader {
  uint32_t magic;
  uint8_t type;
  uint8_t pad[3];
  uint32_t length;
  uint32_t crc;
};
static_assert(sizeof(FrameHeader) == 16);

uint32_t frame_crc(uint8_t type, const char* payload, size_t n) {
  uLong c = crc32(0L, &type, 1);
  return static_cast<uint32_t>(crc32_z(c, reinterpret_cast<const Bytef*>(payload), n));
}

int64_t floor_mod(int64_t a, int64_t b) {
  int64_t m = a % b;
  return m < 0 ? m + b : m;
}

std::string errno_text(const std::string& what, const fs::path& p) {
  return what + " " + p.string() + ": " + std::strerror(errno);
}

// A series' archives as laid out in data.bin: per archive a uint32
// timestamp array then a float64 value array, each 8-byte aligned.
// An archive is `points` slots of 12 bytes, whisper's point layout: the
// slot's timestamp (uint32, 0 = empty) then its value (double, unaligned),
// so writing a point dirties one page, not one of timestamps and one of
// values. (Format 2; format 1 kept the two in separate arrays.)
constexpr uint64_t kSlotBytes = 12;
constexpr const char* kFormatLine = "stele-metrics-store 2\n";

inline uint32_t slot_time(const char* ar, size_t i) {
  uint32_t t;
  std::memcpy(&t, ar + i * kSlotBytes, 4);
  return t;
}
inline double slot_value(const char* ar, size_t i) {
  double v;
  std::memcpy(&v, ar + i * kSlotBytes + 4, 8);
  return v;
}
inline void set_slot(char* ar, size_t i, uint32_t t, double v) {
  std::memcpy(ar + i * kSlotBytes, &t, 4);
  std::memcpy(ar + i * kSlotBytes + 4, &v, 8);
}

struct Layout {
  std::vector<Archive> archives;
  Aggregation agg = Aggregation::average;
  double xff = 0.5;
  std::vector<uint64_t> off;  // of each archive, from the series' offset
  uint64_t bytes = 0;
  std::string key;  // "retentions agg xff"

  static Layout make(std::vector<Archive> archives, Aggregation agg, double xff) {
    Layout l;
    l.archives = std::move(archives);
    l.agg = agg;
    l.xff = xff;
    uint64_t off = 0;
    for (const Archive& a : l.archives) {
      l.off.push_back(off);
      off += uint64_t(a.points) * kSlotBytes;
    }
    l.bytes = (off + 7) / 8 * 8;
    l.key = fmt::format("{} {} {}", format_retentions(l.archives), aggregation_name(agg), xff);
    return l;
  }
};

struct SeriesInfo {
  std::string name;
  uint64_t offset = 0;
  uint32_t layout = 0;
};

struct TreeNode {
  std::map<std::string, std::unique_ptr<TreeNode>, std::less<>> kids;
  int64_t series = -1;
};

}  // namespace

struct Tsdb::Impl {
  TsdbOptions& o;
  fs::path dir, wal_dir;
  mutable std::mutex mu;
  std::condition_variable cv;        // committer wake-up
  std::condition_variable durable_cv;

  std::vector<Layout> layouts;
  std::unordered_map<std::string, uint32_t> layout_by_key;
  std::vector<SeriesInfo> series;
  SeriesIndex by_name;
  TreeNode root;
  size_t indexed = 0;  // series already in series.idx
  uint64_t next_offset = 0;

  int data_fd = -1;
  char* data = nullptr;
  uint64_t data_size = 0;

  int wal_fd = -1;
  uint64_t wal_segment = 0;
  uint64_t wal_size = 0;   // of all live segments
  std::string wal_buf;     // frames not yet written
  std::string wal_spare;   // the buffer commit() wrote last, empty: swapped in so capacity is reused
  uint64_t appended_seq = 0, durable_seq = 0;
  uint64_t buffered_points = 0;
  std::vector<Pending> pending;
  size_t pending_head = 0;  // pending[0, head) are applied

  std::thread committer;
  bool running = false, sync_requested = false, checkpoint_requested = false;
  std::string wal_error;  // sticky: the WAL could not be written
  std::string checkpoint_error;  // the last checkpoint's, "" when it worked
  std::chrono::steady_clock::time_point last_apply, last_checkpoint;

  std::atomic<uint64_t> points_received{0}, points_durable{0}, points_applied{0}, dropped_old{0},
      bad_time{0}, refused{0}, checkpoints{0}, commits{0};

  explicit Impl(TsdbOptions& opts) : o(opts) {}

  // ---- layouts and series -------------------------------------------------

  uint32_t layout_for(std::vector<Archive> archives, Aggregation agg, double xff) {
    Layout l = Layout::make(std::move(archives), agg, xff);
    auto it = layout_by_key.find(l.key);
    if (it != layout_by_key.end()) return it->second;
    uint32_t idx = static_cast<uint32_t>(layouts.size());
    layout_by_key.emplace(l.key, idx);
    layouts.push_back(std::move(l));
    return idx;
  }

  uint64_t largest_schema_bytes() {
    uint64_t m = Layout::make(o.schemas.fallback().archives, Aggregation::average, 0).bytes;
    for (const auto& s : o.schemas.entries()) m = std::max(m, Layout::make(s.archives, s.agg, 0).bytes);
    for (const auto& l : layouts) m = std::max(m, l.bytes);
    return m;
  }

  void tree_insert(const std::string& name, uint32_t id) {
    TreeNode* n = &root;
    size_t i = 0;
    while (true) {
      size_t dot = name.find('.', i);
      std::string_view part = std::string_view(name).substr(i, dot == std::string::npos ? std::string::npos : dot - i);
      auto it = n->kids.find(part);
      if (it == n->kids.end()) it = n->kids.emplace(std::string(part), std::make_unique<TreeNode>()).first;
      n = it->second.get();
      if (dot == std::string::npos) break;
      i = dot + 1;
    }
    n->series = id;
  }

  void add_series(uint32_t id, std::string name, uint64_t offset, uint32_t layout) {
    if (series.size() <= id) series.resize(id + 1);
    series[id] = SeriesInfo{name, offset, layout};
    if (!by_name.find(name)) by_name.insert(name, id);
    tree_insert(name, id);
    next_offset = std::max(next_offset, offset + layouts[layout].bytes);
  }

  // The series definition as a WAL payload / index line (same text).
  std::string series_line(uint32_t id) const {
    const SeriesInfo& s = series[id];
    const Layout& l = layouts[s.layout];
    return fmt::format("{}\t{}\t{}\t{}\t{}\t{}\n", id, s.offset, format_retentions(l.archives),
                       aggregation_name(l.agg), l.xff, s.name);
  }

  Result<uint32_t> parse_series_line(std::string_view line) {
    std::vector<std::string_view> f;
    size_t i = 0;
    for (int k = 0; k < 5; ++k) {
      size_t tab = line.find('\t', i);
      if (tab == std::string_view::npos) return fail("expected 6 tab-separated fields");
      f.push_back(line.substr(i, tab - i));
      i = tab + 1;
    }
    std::string name(line.substr(i));
    if (!name.empty() && name.back() == '\n') name.pop_back();
    uint64_t id = 0, offset = 0;
    try {
      id = std::stoull(std::string(f[0]));
      offset = std::stoull(std::string(f[1]));
    } catch (...) {
      return fail("bad id or offset");
    }
    auto arch = parse_retentions(f[2]);
    if (!arch) return fail(arch.error());
    auto agg = parse_aggregation(f[3]);
    if (!agg) return fail(agg.error());
    double xff = std::strtod(std::string(f[4]).c_str(), nullptr);
    if (name.empty() || id > 0xffffffffu) return fail("bad name or id");
    uint32_t lay = layout_for(std::move(*arch), *agg, xff);
    if (id < series.size() && !series[id].name.empty()) return static_cast<uint32_t>(id);  // known
    add_series(static_cast<uint32_t>(id), std::move(name), offset, lay);
    return static_cast<uint32_t>(id);
  }

  // ---- files ----------------------------------------------------------------

  Result<void> load_index() {
    fs::path p = dir / "series.idx";
    int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return fail(errno_text("open", p));
    std::string text;
    char buf[1 << 16];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) text.append(buf, size_t(n));
    size_t good = 0, line_no = 0;
    while (good < text.size()) {
      size_t nl = text.find('\n', good);
      if (nl == std::string::npos) break;  // torn last line: the WAL still has it
      ++line_no;
      auto r = parse_series_line(std::string_view(text).substr(good, nl + 1 - good));
      if (!r) {
        ::close(fd);
        return fail(fmt::format("{} line {}: {}", p.string(), line_no, r.error().message));
      }
      good = nl + 1;
    }
    if (good < text.size()) {
      spdlog::warn("metrics: {}: cutting a torn last line ({} bytes)", p.string(), text.size() - good);
      if (::ftruncate(fd, off_t(good)) != 0) spdlog::warn("metrics: truncate {}: {}", p.string(), std::strerror(errno));
    }
    ::close(fd);
    indexed = series.size();
    return {};
  }

  // <dir>/format names the archive layout; a store without it that already
  // has data was written in format 1 and is refused rather than misread.
  Result<void> check_format() {
    fs::path f = dir / "format";
    std::error_code ec;
    if (fs::exists(f, ec)) {
      std::ifstream in(f);
      std::string line;
      std::getline(in, line);
      if (line + "\n" != kFormatLine)
        return fail(f.string() + " says '" + line + "', this Stele reads '" +
                    std::string(kFormatLine, std::strlen(kFormatLine) - 1) + "'");
      return {};
    }
    if (fs::exists(dir / "data.bin", ec) && fs::file_size(dir / "data.bin", ec) > 0)
      return fail(dir.string() + " was written by an older Stele (archive format 1, no 'format' file); "
                  "move it aside to start a new metrics store");
    std::ofstream out(f);
    out << kFormatLine;
    if (!out.flush()) return fail(errno_text("write", f));
    return {};
  }

  Result<void> map_data() {
    if (auto r = check_format(); !r) return r;
    fs::path p = dir / "data.bin";
    data_fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (data_fd < 0) return fail(errno_text("open", p));
    struct stat st {};
    fstat(data_fd, &st);
    size_t live = 0;
    for (const auto& s : series) live += s.name.empty() ? 0 : 1;
    uint64_t room = o.max_series > live ? o.max_series - live : 0;
    uint64_t want = std::max<uint64_t>(next_offset + room * largest_schema_bytes(), 4096);
    want = (want + 4095) / 4096 * 4096;
    data_size = std::max<uint64_t>(want, uint64_t(st.st_size));
    if (uint64_t(st.st_size) < data_size && ::ftruncate(data_fd, off_t(data_size)) != 0)
      return fail(errno_text("size", p));
    void* m = ::mmap(nullptr, data_size, PROT_READ | PROT_WRITE, MAP_SHARED, data_fd, 0);
    if (m == MAP_FAILED) return fail(errno_text("map", p));
    data = static_cast<char*>(m);
    // Each point touches one slot of one archive: without this the kernel's
    // fault readahead reads (zero-fills) ~32 pages around every touched one --
    // 70% of the ingest core in a 100k-series profile -- and ext4 then
    // allocates the whole neighbourhood, so a sparse archive costs its full
    // size on disk.
    if (::madvise(m, data_size, MADV_RANDOM) != 0)
      spdlog::warn("metrics: madvise {}: {}", p.string(), std::strerror(errno));
    return {};
  }

  fs::path segment_path(uint64_t n) const { return wal_dir / fmt::format("{:016x}.wal", n); }

  std::vector<uint64_t> segments() const {
    std::vector<uint64_t> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(wal_dir, ec)) {
      std::string n = e.path().filename().string();
      if (n.size() == 20 && n.ends_with(".wal")) out.push_back(std::stoull(n.substr(0, 16), nullptr, 16));
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  // Replays one segment into the index and pending; cuts a torn tail.
  Result<void> replay(uint64_t seg) {
    fs::path p = segment_path(seg);
    int fd = ::open(p.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return fail(errno_text("open", p));
    std::string text;
    char buf[1 << 16];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) text.append(buf, size_t(n));
    size_t pos = 0;
    while (pos + sizeof(FrameHeader) <= text.size()) {
      FrameHeader h;
      std::memcpy(&h, text.data() + pos, sizeof h);
      if (h.magic != kFrameMagic || pos + sizeof h + h.length > text.size()) break;
      const char* payload = text.data() + pos + sizeof h;
      if (frame_crc(h.type, payload, h.length) != h.crc) break;
      if (h.type == kFramePoints && h.length % sizeof(Pending) == 0) {
        size_t k = h.length / sizeof(Pending);
        size_t at = pending.size();
        pending.resize(at + k);
        std::memcpy(pending.data() + at, payload, h.length);
      } else if (h.type == kFrameSeries) {
        if (auto r = parse_series_line(std::string_view(payload, h.length)); !r)
          spdlog::warn("metrics: {}: bad series record skipped: {}", p.string(), r.error().message);
      }
      pos += sizeof h + h.length;
    }
    if (pos < text.size()) {
      spdlog::warn("metrics: {}: cutting a torn tail of {} bytes", p.string(), text.size() - pos);
      if (::ftruncate(fd, off_t(pos)) != 0) spdlog::warn("metrics: truncate {}: {}", p.string(), std::strerror(errno));
    }
    ::close(fd);
    wal_size += pos;
    return {};
  }

  Result<void> open_segment(uint64_t n) {
    wal_segment = n;
    fs::path p = segment_path(n);
    wal_fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (wal_fd < 0) return fail(errno_text("open", p));
    int dfd = ::open(wal_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
    return {};
  }

  void frame(FrameType type, const char* payload, size_t n) {
    FrameHeader h{kFrameMagic, type, {0, 0, 0}, static_cast<uint32_t>(n), frame_crc(type, payload, n)};
    wal_buf.append(reinterpret_cast<const char*>(&h), sizeof h);
    wal_buf.append(payload, n);
  }

  // Writes and fdatasyncs the WAL buffer. Called with `lk` held; releases it
  // around the I/O.
  void commit(std::unique_lock<std::mutex>& lk) {
    if (wal_buf.empty()) return;
    std::string buf = std::move(wal_buf);
    wal_buf = std::move(wal_spare);
    wal_buf.clear();
    uint64_t seq = appended_seq, pts = buffered_points;
    buffered_points = 0;
    int fd = wal_fd;
    lk.unlock();
    std::string err;
    size_t off = 0;
    while (off < buf.size()) {
      ssize_t w = ::write(fd, buf.data() + off, buf.size() - off);
      if (w < 0) {
        if (errno == EINTR) continue;
        err = std::string("write WAL: ") + std::strerror(errno);
        break;
      }
      off += size_t(w);
    }
    if (err.empty() && ::fdatasync(fd) != 0) err = std::string("fdatasync WAL: ") + std::strerror(errno);
    lk.lock();
    if (!err.empty()) {
      if (wal_error.empty()) spdlog::error("metrics: {} (points are no longer durable)", err);
      wal_error = err;
    }
    wal_size += buf.size();
    buf.clear();
    wal_spare = std::move(buf);
    durable_seq = std::max(durable_seq, seq);
    points_durable += pts;
    ++commits;
    durable_cv.notify_all();
  }

  // ---- archives ---------------------------------------------------------------

  char* archive_of(const SeriesInfo& s, const Layout& l, size_t a) { return data + s.offset + l.off[a]; }

  // whisper's update_many for one point.
  void apply_one(const Pending& p) {
    if (p.id >= series.size() || series[p.id].name.empty()) return;  // a torn WAL lost its definition
    const SeriesInfo& s = series[p.id];
    const Layout& l = layouts[s.layout];
    int64_t age = int64_t(p.now) - p.t;
    size_t a = 0;
    while (a < l.archives.size() && l.archives[a].retention_s() < age) ++a;
    if (a == l.archives.size()) {
      ++dropped_old;
      return;
    }
    const Archive& ar = l.archives[a];
    int64_t at = p.t - floor_mod(p.t, ar.step_s);
    size_t slot = size_t(floor_mod(at / ar.step_s, ar.points));
    set_slot(archive_of(s, l, a), slot, uint32_t(at), p.v);
    thread_local std::vector<std::optional<double>> buf;
    for (size_t lo = a + 1; lo < l.archives.size(); ++lo) {
      const Archive& hi = l.archives[lo - 1];
      const Archive& low = l.archives[lo];
      int64_t start = at - floor_mod(at, low.step_s);
      size_t n = size_t(low.step_s / hi.step_s);
      buf.assign(n, std::nullopt);
      const char* har = archive_of(s, l, lo - 1);
      for (size_t k = 0; k < n; ++k) {
        int64_t t = start + int64_t(k) * hi.step_s;
        size_t sl = size_t(floor_mod(t / hi.step_s, hi.points));
        if (slot_time(har, sl) == uint32_t(t)) buf[k] = slot_value(har, sl);
      }
      auto v = aggregate(l.agg, buf, l.xff);
      if (!v) break;
      size_t lslot = size_t(floor_mod(start / low.step_s, low.points));
      set_slot(archive_of(s, l, lo), lslot, uint32_t(start), *v);
      at = start;
    }
  }

  // Applies pending points (all, or up to `limit`), in arrival order.
  bool has_pending() const { return pending_head < pending.size(); }
  void apply(size_t limit = SIZE_MAX) {
    size_t n = std::min(limit, pending.size() - pending_head);
    for (size_t i = 0; i < n; ++i) apply_one(pending[pending_head + i]);
    points_applied += n;
    pending_head += n;
    if (pending_head == pending.size()) {
      pending.clear();
      pending_head = 0;
    }
    last_apply = std::chrono::steady_clock::now();
  }

  Series read(uint32_t id, const FetchPlan& plan) {
    const SeriesInfo& s = series[id];
    const Layout& l = layouts[s.layout];
    const Archive& ar = l.archives[plan.archive];
    Series out;
    out.name = s.name;
    out.start = plan.window.from;
    out.step = plan.window.step;
    out.end = plan.window.until;
    out.x_files_factor = l.xff;
    out.tags.emplace("name", s.name);
    size_t n = size_t(plan.window.points());
    out.values.assign(n, std::nan(""));
    const char* arc = archive_of(s, l, plan.archive);
    for (size_t i = 0; i < n; ++i) {
      int64_t t = plan.window.from + int64_t(i) * ar.step_s;
      size_t sl = size_t(floor_mod(t / ar.step_s, ar.points));
      if (slot_time(arc, sl) == uint32_t(t)) out.values[i] = slot_value(arc, sl);
    }
    return out;
  }

  std::optional<Series> read_range(uint32_t id, int64_t from, int64_t until, int64_t now) {
    const Layout& l = layouts[series[id].layout];
    auto plan = plan_fetch(l.archives, now, from, until);
    if (!plan || !*plan) return std::nullopt;
    return read(id, **plan);
  }

  // ---- checkpoint -------------------------------------------------------------

  Result<void> checkpoint_locked(std::unique_lock<std::mutex>& lk) {
    commit(lk);
    apply();
    // Everything in the current and older segments is applied: rotate.
    std::vector<uint64_t> old = segments();
    if (wal_fd >= 0) ::close(wal_fd);
    wal_fd = -1;
    uint64_t next = (old.empty() ? wal_segment : old.back()) + 1;
    if (auto r = open_segment(next); !r) return r;
    size_t new_from = indexed, new_to = series.size();
    std::string idx;
    for (size_t i = new_from; i < new_to; ++i)
      if (!series[i].name.empty()) idx += series_line(uint32_t(i));
    uint64_t before = wal_size;
    lk.unlock();
    // Archives first, then the index: both must be on disk before the WAL
    // that could rebuild them goes.
    std::string err;
    if (data && ::msync(data, data_size, MS_SYNC) != 0) err = std::string("msync data.bin: ") + std::strerror(errno);
    if (err.empty() && !idx.empty()) {
      fs::path p = dir / "series.idx";
      int fd = ::open(p.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
      if (fd < 0 || ::write(fd, idx.data(), idx.size()) != ssize_t(idx.size()) || ::fsync(fd) != 0)
        err = errno_text("append", p);
      if (fd >= 0) ::close(fd);
    }
    if (err.empty())
      for (uint64_t seg : old) std::filesystem::remove(segment_path(seg));
    lk.lock();
    if (!err.empty()) return fail(err);
    indexed = std::max(indexed, new_to);
    wal_size = wal_size > before ? wal_size - before : 0;
    last_checkpoint = std::chrono::steady_clock::now();
    ++checkpoints;
    return {};
  }

  void run() {
    std::unique_lock<std::mutex> lk(mu);
    while (running) {
      cv.wait_for(lk, o.commit_interval, [&] { return !running || sync_requested || checkpoint_requested; });
      sync_requested = false;
      commit(lk);
      auto now = std::chrono::steady_clock::now();
      if (has_pending() && now - last_apply >= o.apply_interval) {
        // In slices, so appends and reads are not held up for long.
        while (has_pending() && running) {
          apply(65536);
          if (!has_pending()) break;
          lk.unlock();
          lk.lock();
        }
      }
      if (checkpoint_requested || wal_size >= o.checkpoint_wal_bytes ||
          now - last_checkpoint >= o.checkpoint_interval) {
        checkpoint_requested = false;
        if (auto r = checkpoint_locked(lk); !r) {
          checkpoint_error = r.error().message;
          spdlog::error("metrics: checkpoint: {}", checkpoint_error);
        } else {
          checkpoint_error.clear();
        }
        durable_cv.notify_all();
      }
    }
  }
};

Tsdb::Tsdb(TsdbOptions options) : options_(std::move(options)), impl_(std::make_unique<Impl>(options_)) {}

Tsdb::~Tsdb() { close(); }

Result<void> Tsdb::open() {
  Impl& m = *impl_;
  m.dir = options_.dir;
  m.wal_dir = m.dir / "wal";
  std::error_code ec;
  fs::create_directories(m.wal_dir, ec);
  if (ec) return fail("metrics store " + m.wal_dir.string() + ": " + ec.message());
  std::unique_lock<std::mutex> lk(m.mu);
  if (auto r = m.load_index(); !r) return r;
  std::vector<uint64_t> segs = m.segments();
  // Series defined only in the WAL must be known before data.bin is sized.
  for (uint64_t s : segs)
    if (auto r = m.replay(s); !r) return r;
  if (auto r = m.map_data(); !r) return r;
  m.wal_segment = segs.empty() ? 0 : segs.back();
  size_t replayed = m.pending.size();
  if (auto r = m.checkpoint_locked(lk); !r) return r;
  if (replayed)
    spdlog::info("metrics: replayed {} points from the write-ahead log ({} series)", replayed, m.by_name.size());
  m.running = true;
  m.last_apply = m.last_checkpoint = std::chrono::steady_clock::now();
  m.committer = std::thread([&m] { m.run(); });
  return {};
}

void Tsdb::close() {
  Impl& m = *impl_;
  {
    std::unique_lock<std::mutex> lk(m.mu);
    if (!m.running) {
      if (m.data) {
        ::munmap(m.data, m.data_size);
        m.data = nullptr;
      }
      return;
    }
    m.running = false;
    m.cv.notify_all();
  }
  if (m.committer.joinable()) m.committer.join();
  std::unique_lock<std::mutex> lk(m.mu);
  if (auto r = m.checkpoint_locked(lk); !r) spdlog::error("metrics: final checkpoint: {}", r.error().message);
  if (m.wal_fd >= 0) ::close(m.wal_fd);
  m.wal_fd = -1;
  if (m.data) ::munmap(m.data, m.data_size);
  m.data = nullptr;
  if (m.data_fd >= 0) ::close(m.data_fd);
  m.data_fd = -1;
}

Tsdb::AppendResult Tsdb::append(std::span<const Point> points, int64_t now) {
  Impl& m = *impl_;
  AppendResult out;
  std::lock_guard<std::mutex> lk(m.mu);
  size_t first = m.pending.size();
  uint32_t now32 = uint32_t(std::clamp<int64_t>(now, 0, 0xffffffffll));
  // The batch's names looked up together (series_index.h: their cache misses overlap).
  thread_local std::vector<uint32_t> ids;
  ids.resize(points.size());
  m.by_name.find_batch(points.size(), [&](size_t i) { return points[i].name; }, ids.data());
  for (size_t k = 0; k < points.size(); ++k) {
    const Point& p = points[k];
    if (p.time_s <= 0 || p.time_s > 0xffffffffll) {
      ++out.refused;
      ++m.bad_time;
      if (out.error.empty())
        out.error = fmt::format("timestamp {} of '{}' is outside 1970..2106 (whisper's 32-bit range)", p.time_s, p.name);
      continue;
    }
    uint32_t id = ids[k];
    if (id == SeriesIndex::kNone) {
      // New -- unless an earlier point of this batch created it.
      if (auto created = m.by_name.find(p.name)) id = *created;
    }
    if (id == SeriesIndex::kNone) {
      if (m.by_name.size() >= options_.max_series) {
        ++out.refused;
        ++m.refused;
        if (out.error.empty())
          out.error = fmt::format("series limit {} reached: new series '{}' refused (raise --metrics-max-series)",
                                  options_.max_series, p.name);
        continue;
      }
      const StorageSchema& sc = options_.schemas.match(p.name);
      uint32_t lay = m.layout_for(sc.archives, sc.agg, sc.x_files_factor);
      if (m.next_offset + m.layouts[lay].bytes > m.data_size) {
        ++out.refused;
        ++m.refused;
        if (out.error.empty()) out.error = fmt::format("metrics store full: new series '{}' refused", p.name);
        continue;
      }
      id = static_cast<uint32_t>(m.series.size());
      m.add_series(id, std::string(p.name), m.next_offset, lay);
      // The definition precedes the points that use it in the WAL.
      if (m.pending.size() > first) {
        m.frame(kFramePoints, reinterpret_cast<const char*>(m.pending.data() + first),
                (m.pending.size() - first) * sizeof(Pending));
        first = m.pending.size();
      }
      std::string line = m.series_line(id);
      m.frame(kFrameSeries, line.data(), line.size());
    }
    m.pending.push_back(Pending{id, now32, p.time_s, p.value});
    ++out.accepted;
  }
  if (m.pending.size() > first)
    m.frame(kFramePoints, reinterpret_cast<const char*>(m.pending.data() + first),
            (m.pending.size() - first) * sizeof(Pending));
  m.buffered_points += out.accepted;
  m.points_received += out.accepted;
  out.seq = ++m.appended_seq;
  if (m.wal_buf.size() >= (8u << 20)) {
    m.sync_requested = true;
    m.cv.notify_one();
  }
  return out;
}

Result<void> Tsdb::sync(uint64_t seq) {
  Impl& m = *impl_;
  std::unique_lock<std::mutex> lk(m.mu);
  if (seq == 0) seq = m.appended_seq;
  if (!m.running) {
    m.commit(lk);
  } else {
    m.sync_requested = true;
    m.cv.notify_one();
    m.durable_cv.wait(lk, [&] { return m.durable_seq >= seq || !m.running; });
  }
  if (!m.wal_error.empty()) return fail("metrics write-ahead log: " + m.wal_error);
  return {};
}

namespace {
template <class Fn>
void walk(const TreeNode& n, const GlobPattern& g, size_t level, std::string& path, Fn& fn) {
  auto visit = [&](const std::string& name, const TreeNode& child) {
    size_t len = path.size();
    if (level > 0) path.push_back('.');
    path += name;
    if (level + 1 == g.nodes()) fn(path, child);
    else walk(child, g, level + 1, path, fn);
    path.resize(len);
  };
  const auto& lits = g.node_literals(level);
  if (!lits.empty()) {
    for (const auto& lit : lits) {
      auto it = n.kids.find(lit);
      if (it != n.kids.end()) visit(it->first, *it->second);
    }
    return;
  }
  for (const auto& [name, child] : n.kids)
    if (g.node_matches(level, name)) visit(name, *child);
}
}  // namespace

std::vector<FindNode> Tsdb::find(const GlobPattern& pattern) const {
  Impl& m = *impl_;
  std::vector<FindNode> out;
  if (pattern.nodes() == 0) return out;
  std::lock_guard<std::mutex> lk(m.mu);
  std::string path;
  auto fn = [&](const std::string& p, const TreeNode& n) {
    if (!n.kids.empty()) out.push_back(FindNode{p, false});
    if (n.series >= 0) out.push_back(FindNode{p, true});
  };
  walk(m.root, pattern, 0, path, fn);
  std::stable_sort(out.begin(), out.end(), [](const FindNode& a, const FindNode& b) { return a.path < b.path; });
  return out;
}

std::vector<std::string> Tsdb::leaves(const GlobPattern& pattern, size_t limit) const {
  Impl& m = *impl_;
  std::vector<std::string> out;
  if (pattern.nodes() == 0) return out;
  std::lock_guard<std::mutex> lk(m.mu);
  std::string path;
  auto fn = [&](const std::string& p, const TreeNode& n) {
    if (n.series >= 0 && out.size() < limit) out.push_back(p);
  };
  walk(m.root, pattern, 0, path, fn);
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::vector<Series>> Tsdb::fetch(const GlobPattern& pattern, int64_t from, int64_t until, int64_t now) {
  Impl& m = *impl_;
  if (from > until) return fail(fmt::format("invalid time range: from {} is after until {}", from, until), 400);
  std::vector<Series> out;
  if (pattern.nodes() == 0) return out;
  std::lock_guard<std::mutex> lk(m.mu);
  if (m.has_pending()) m.apply();
  std::vector<std::pair<std::string, uint32_t>> ids;
  std::string path;
  auto fn = [&](const std::string& p, const TreeNode& n) {
    if (n.series >= 0) ids.emplace_back(p, uint32_t(n.series));
  };
  walk(m.root, pattern, 0, path, fn);
  std::sort(ids.begin(), ids.end());
  out.reserve(ids.size());
  for (const auto& [name, id] : ids) {
    auto s = m.read_range(id, from, until, now);
    if (!s) continue;
    s->path_expression = pattern.text();
    out.push_back(std::move(*s));
  }
  return out;
}

std::optional<Series> Tsdb::fetch_one(std::string_view name, int64_t from, int64_t until, int64_t now) {
  Impl& m = *impl_;
  if (from > until) return std::nullopt;
  std::lock_guard<std::mutex> lk(m.mu);
  auto id = m.by_name.find(name);
  if (!id) return std::nullopt;
  if (m.has_pending()) m.apply();
  auto s = m.read_range(*id, from, until, now);
  if (s) s->path_expression = std::string(name);
  return s;
}

Result<void> Tsdb::checkpoint() {
  Impl& m = *impl_;
  std::unique_lock<std::mutex> lk(m.mu);
  if (!m.running) return m.checkpoint_locked(lk);
  // Only the committer writes the WAL while it runs.
  uint64_t done = m.checkpoints + 1;
  m.checkpoint_error.clear();
  m.checkpoint_requested = true;
  m.cv.notify_one();
  m.durable_cv.wait(lk, [&] { return m.checkpoints >= done || !m.running || !m.checkpoint_error.empty(); });
  if (!m.checkpoint_error.empty()) return fail(m.checkpoint_error);
  return {};
}

TsdbStats Tsdb::stats() const {
  Impl& m = *impl_;
  TsdbStats s;
  {
    std::lock_guard<std::mutex> lk(m.mu);
    s.series = m.by_name.size();
    s.wal_bytes = m.wal_size + m.wal_buf.size();
    s.data_bytes_bound = m.data_size;
    if (m.data_fd >= 0) {
      struct stat st {};
      if (fstat(m.data_fd, &st) == 0) s.data_bytes_allocated = uint64_t(st.st_blocks) * 512;
    }
  }
  s.points_received = m.points_received;
  s.points_durable = m.points_durable;
  s.points_applied = m.points_applied;
  s.points_dropped_old = m.dropped_old;
  s.points_bad_time = m.bad_time;
  s.series_refused = m.refused;
  s.checkpoints = m.checkpoints;
  s.commits = m.commits;
  return s;
}

}  // namespace stele::metrics
