#include "logs/log_store.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <condition_variable>
#include <filesystem>
#include <thread>
#include <unordered_set>

#include "common/log.h"
#include "common/names.h"

namespace stele::logs {
namespace fs = std::filesystem;

// ---------- retention ----------

namespace {

Result<uint64_t> parse_count(std::string_view digits, std::string_view part) {
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (digits.empty() || ec != std::errc() || p != digits.data() + digits.size())
    return fail("--log-retention: \"" + std::string(part) + "\" is not <number><unit>", 400);
  return n;
}

// One comma-separated part: an age or a size. Sets exactly one field of `out`.
Result<void> parse_retention_part(std::string_view part, RetentionPolicy& out, bool& age_set, bool& size_set) {
  static const std::pair<std::string_view, int64_t> ages[] = {
      {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}, {"w", 604'800'000}};
  static const std::pair<std::string_view, uint64_t> sizes[] = {
      {"B", 1},          {"KB", 1000},       {"MB", 1000'000},    {"GB", 1000'000'000}, {"TB", 1000'000'000'000},
      {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30}, {"TiB", 1ull << 40}};
  size_t i = 0;
  while (i < part.size() && part[i] >= '0' && part[i] <= '9') ++i;
  std::string_view unit = part.substr(i);
  auto n = parse_count(part.substr(0, i), part);
  if (!n) return fail(n.error());
  std::string dup = "--log-retention: more than one ";
  for (auto [u, mul] : ages) {
    if (unit != u) continue;
    if (age_set) return fail(dup + "age in \"" + std::string(part) + "\"", 400);
    if (*n > uint64_t(INT64_MAX / mul)) return fail("--log-retention: age " + std::string(part) + " is too large", 400);
    age_set = true, out.max_age_ms = static_cast<int64_t>(*n) * mul;
    return {};
  }
  for (auto [u, mul] : sizes) {
    if (unit != u) continue;
    if (size_set) return fail(dup + "size in \"" + std::string(part) + "\"", 400);
    if (*n > UINT64_MAX / mul) return fail("--log-retention: size " + std::string(part) + " is too large", 400);
    size_set = true, out.max_bytes = *n * mul;
    return {};
  }
  return fail("--log-retention: unknown unit in \"" + std::string(part) +
                  "\" (ages: s m h d w; sizes: B KB MB GB TB KiB MiB GiB TiB), e.g. 7d,10GB",
              400);
}

}  // namespace

Result<RetentionPolicy> parse_retention(std::string_view text) {
  RetentionPolicy out;
  bool age_set = false, size_set = false;
  if (text.empty()) return fail("--log-retention: empty; expected e.g. 7d,10GB", 400);
  while (true) {
    size_t comma = text.find(',');
    std::string_view part = text.substr(0, comma);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    if (part.empty()) return fail("--log-retention: empty part; expected e.g. 7d,10GB", 400);
    if (auto r = parse_retention_part(part, out, age_set, size_set); !r) return fail(r.error());
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

// ---------- store ----------

std::string LogStore::stream_key_for_tag(std::string_view tag) {
  if (tag.starts_with("stele.")) {
    std::string_view rest = tag.substr(6);
    size_t dot = rest.find('.');
    if (dot != std::string_view::npos && dot > 0) return "app." + metric_node(rest.substr(0, dot));
  }
  std::string key = "tag.";
  for (char c : tag.substr(0, 200)) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
    key.push_back(ok ? c : '_');
  }
  return key;
}

LogStore::LogStore(std::string dir, LogStoreOptions options) : dir_(std::move(dir)), opt_(options) {
  if (!opt_.clock) own_clock_ = std::make_unique<SystemClock>();
  clock_ = opt_.clock ? opt_.clock : own_clock_.get();
  opt_.block_bytes = std::max<size_t>(opt_.block_bytes, 1);
  // Keep enough segments under the size limit for retention to have something to delete.
  if (opt_.retention.max_bytes > 0)
    opt_.segment_bytes = std::min<uint64_t>(opt_.segment_bytes, std::max<uint64_t>(opt_.retention.max_bytes / 8, 1));
}

Result<void> LogStore::open() {
  std::lock_guard w(write_mu_);
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return fail("logs: cannot create " + dir_ + ": " + ec.message(), 500);
  StreamLimits lim{opt_.block_bytes, opt_.segment_bytes, opt_.segment_age_ms, opt_.dedup_window, opt_.wal_rewrite_bytes, opt_.zstd_level};
  uint64_t last = 0;
  std::unique_lock lock(streams_mu_);
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    std::string name = e.path().filename().string();
    if (!e.is_directory() || !(name.starts_with("app.") || name.starts_with("tag."))) continue;
    auto s = std::make_unique<StreamFiles>(name, e.path().string(), lim);
    if (auto r = s->open(false); !r) return r;
    last = std::max(last, s->last_seq());
    streams_.emplace(name, std::move(s));
  }
  if (ec) return fail("logs: cannot list " + dir_ + ": " + ec.message(), 500);
  next_seq_ = last + 1;
  visible_seq_ = last;
  return {};
}

Result<StreamFiles*> LogStore::stream_for(const std::string& key) {
  {
    std::shared_lock lock(streams_mu_);
    if (auto it = streams_.find(key); it != streams_.end()) return it->second.get();
  }
  StreamLimits lim{opt_.block_bytes, opt_.segment_bytes, opt_.segment_age_ms, opt_.dedup_window, opt_.wal_rewrite_bytes, opt_.zstd_level};
  auto s = std::make_unique<StreamFiles>(key, dir_ + "/" + key, lim);
  if (auto r = s->open(true); !r) return fail(r.error());
  std::unique_lock lock(streams_mu_);
  return streams_.emplace(key, std::move(s)).first->second.get();
}

// One stream's share of a batch: its kRecords frames, written with one
// fdatasync, and what each frame commits once that sync succeeded.
struct LogStore::Staged {
  struct Part {
    size_t req;                      // index of the request in the batch
    size_t records_at, records_len;  // the frame's records, in `frames`
    BlockHeader h;
    std::string_view chunk;
  };
  StreamFiles* s = nullptr;
  std::string frames;
  std::vector<Part> parts;
  std::unordered_set<std::string_view> chunks;  // staged in this batch (dedup between its requests)
};

namespace {

// A request's records for one stream are split into frames of at most this
// much, well under kMaxFrameBody (records carry 16+ bytes more than received).
constexpr size_t kMaxFrameRecords = kMaxFrameBody / 4;

}  // namespace

void LogStore::stage_group(size_t req, const AppendRequest& r, StreamFiles* s, std::span<const uint32_t> idx,
                           std::vector<Staged>& staged, AppendResult& res) {
  size_t n = idx.empty() ? r.entries.size() : idx.size();
  auto found = std::find_if(staged.begin(), staged.end(), [s](const Staged& x) { return x.s == s; });
  Staged& st = found != staged.end() ? *found : staged.emplace_back();
  st.s = s;
  if (!r.chunk_id.empty() && (s->seen_chunk(r.chunk_id) || st.chunks.count(r.chunk_id))) {
    res.duplicates += n;
    return;
  }
  if (!r.chunk_id.empty()) st.chunks.insert(r.chunk_id);
  size_t bytes = 0;  // reserve what this group adds: no regrowth copies
  for (size_t k = 0; k < n; ++k) {
    const LogEntry& e = r.entries[idx.empty() ? k : idx[k]];
    bytes += 16 + 10 + e.tag.size() + e.record.size();  // seq, time, 2 varints, tag, record
  }
  size_t need = st.frames.size() + bytes + (bytes / kMaxFrameRecords + 1) * (kFrameHeaderBytes + 2 + r.chunk_id.size());
  if (need > st.frames.capacity()) st.frames.reserve(std::max(need, 2 * st.frames.capacity()));
  uint64_t seq = next_seq_.load();
  size_t frame = 0, at = 0;
  BlockHeader h;
  auto close_frame = [&] {
    h.last_seq = seq - 1;
    st.parts.push_back({req, at, st.frames.size() - at, h, r.chunk_id});
    end_frame(st.frames, frame, FrameType::kRecords);
  };
  for (size_t k = 0; k < n; ++k) {
    const LogEntry& e = r.entries[idx.empty() ? k : idx[k]];
    if (k == 0 || st.frames.size() - at >= kMaxFrameRecords) {
      if (k > 0) close_frame();
      frame = begin_frame(st.frames);
      begin_records_body(st.frames, r.chunk_id);
      at = st.frames.size();
      h = BlockHeader{seq, 0, INT64_MAX, INT64_MIN, 0, 0};
    }
    append_record(st.frames, seq++, e);
    h.min_time_ns = std::min(h.min_time_ns, e.time_ns);
    h.max_time_ns = std::max(h.max_time_ns, e.time_ns);
    h.count++;
  }
  if (n > 0) close_frame();
  next_seq_.store(seq);
}

// Encodes one request into the batch's per-stream frames, keeping each
// stream's records in arrival order.
Result<void> LogStore::stage(size_t req, const AppendRequest& r, std::vector<Staged>& staged, AppendResult& res) {
  if (r.chunk_id.size() > kMaxChunkIdBytes)
    return fail("logs: chunk id longer than " + std::to_string(kMaxChunkIdBytes) + " bytes", 400);
  if (r.entries.empty()) return {};
  std::string_view tag = r.entries.front().tag;
  bool one_tag = std::all_of(r.entries.begin(), r.entries.end(), [&](const LogEntry& e) { return e.tag == tag; });
  if (one_tag) {  // the usual request: one tag, one stream, no index
    auto s = stream_for(stream_key_for_tag(tag));
    if (!s) return fail(s.error());
    stage_group(req, r, *s, {}, staged, res);
    return {};
  }
  std::vector<std::pair<std::string, std::vector<uint32_t>>> groups;
  std::string_view last_tag;
  size_t last_group = 0;
  for (uint32_t i = 0; i < r.entries.size(); ++i) {
    if (groups.empty() || r.entries[i].tag != last_tag) {
      std::string key = stream_key_for_tag(r.entries[i].tag);
      auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == key; });
      if (it == groups.end()) it = groups.insert(groups.end(), {std::move(key), {}});
      last_group = static_cast<size_t>(it - groups.begin());
      last_tag = r.entries[i].tag;
    }
    groups[last_group].second.push_back(i);
  }
  for (const auto& [key, idx] : groups) {
    auto s = stream_for(key);
    if (!s) return fail(s.error());
    stage_group(req, r, *s, idx, staged, res);
  }
  return {};
}

// Runs the wal fdatasyncs of a batch on its own thread, so the writer can
// compress earlier tails into blocks while the disk works (one core then
// does both: the sync mostly waits).
class LogStore::Syncer {
 public:
  Syncer() : thread_([this] { run(); }) {}
  ~Syncer() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void start(std::vector<StreamFiles*> streams) {
    std::lock_guard lock(mu_);
    job_ = std::move(streams);
    results_.clear();
    pending_ = true;
    cv_.notify_all();
  }
  // One result per stream given to start(), in order.
  std::vector<Result<void>> wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return !pending_; });
    return std::move(results_);
  }

 private:
  void run() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stop_ || pending_; });
      if (!pending_) return;
      std::vector<StreamFiles*> job = job_;
      lock.unlock();
      std::vector<Result<void>> out;
      for (StreamFiles* s : job) out.push_back(s->sync_wal());
      lock.lock();
      results_ = std::move(out);
      pending_ = false;
      cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<StreamFiles*> job_;         // GUARDED_BY(mu_)
  std::vector<Result<void>> results_;     // GUARDED_BY(mu_)
  bool pending_ = false, stop_ = false;   // GUARDED_BY(mu_)
  std::thread thread_;
};

// Writes every staged stream's frames, then fdatasyncs each of them once.
// Owed block cuts run meanwhile (the sync on the syncer thread). Returns, per
// staged stream, whether its records are durable.
LogStore::~LogStore() = default;  // after Syncer is complete

std::vector<Result<void>> LogStore::write_and_sync(std::vector<Staged>& staged) {
  std::vector<Result<void>> out(staged.size());
  std::vector<StreamFiles*> to_sync;
  std::vector<size_t> at;
  for (size_t i = 0; i < staged.size(); ++i) {
    if (staged[i].parts.empty()) continue;
    out[i] = staged[i].s->write_wal(staged[i].frames);
    if (out[i]) to_sync.push_back(staged[i].s), at.push_back(i);
  }
  n_wal_syncs_.fetch_add(to_sync.size(), std::memory_order_relaxed);
  if (opt_.before_wal_sync_for_test && !to_sync.empty()) opt_.before_wal_sync_for_test();
  bool cut = std::any_of(owed_.begin(), owed_.end(), [](StreamFiles* s) { return s->wants_cut(); });
  if (cut && !to_sync.empty()) {
    if (!syncer_) syncer_ = std::make_unique<Syncer>();
    syncer_->start(to_sync);
    int64_t now = now_ms();
    for (StreamFiles* s : owed_) s->cut_blocks(now);
    auto synced = syncer_->wait();
    for (size_t k = 0; k < at.size(); ++k) out[at[k]] = std::move(synced[k]);
  } else {
    for (size_t k = 0; k < at.size(); ++k) out[at[k]] = to_sync[k]->sync_wal();
  }
  return out;
}

std::vector<Result<AppendResult>> LogStore::append_batch(std::span<const AppendRequest> requests) {
  std::lock_guard w(write_mu_);
  for (StreamFiles* s : owed_) {  // rare (every wal_rewrite_bytes): before this batch's frames land in the wal
    if (!s->wants_wal_rewrite()) continue;
    s->cut_blocks(now_ms());  // so the new wal carries only a short tail
    s->rewrite_wal_if_big();
  }
  std::vector<AppendResult> res(requests.size());
  std::vector<std::optional<Error>> err(requests.size());
  std::vector<Staged> staged;
  for (size_t i = 0; i < requests.size(); ++i)
    if (auto r = stage(i, requests[i], staged, res[i]); !r) err[i] = r.error();
  auto durable = write_and_sync(staged);
  std::erase_if(owed_, [](StreamFiles* s) { return !s->wants_cut() && !s->wants_wal_rewrite(); });
  uint64_t visible = 0, stored = 0;
  for (size_t i = 0; i < staged.size(); ++i) {
    Staged& st = staged[i];
    if (!durable[i]) {
      for (const auto& p : st.parts)
        if (!err[p.req]) err[p.req] = durable[i].error();
      continue;
    }
    for (const auto& p : st.parts) {
      st.s->commit(std::string_view(st.frames).substr(p.records_at, p.records_len), p.h, p.chunk);
      AppendResult& a = res[p.req];
      if (a.stored == 0 || p.h.first_seq < a.first_seq) a.first_seq = p.h.first_seq;
      a.last_seq = std::max(a.last_seq, p.h.last_seq);
      a.stored += p.h.count;
      visible = std::max(visible, p.h.last_seq);
      stored += p.h.count;
    }
    if ((st.s->wants_cut() || st.s->wants_wal_rewrite()) && std::find(owed_.begin(), owed_.end(), st.s) == owed_.end())
      owed_.push_back(st.s);
  }
  n_appends_.fetch_add(requests.size(), std::memory_order_relaxed);
  n_batches_.fetch_add(1, std::memory_order_relaxed);
  n_records_.fetch_add(stored, std::memory_order_relaxed);
  if (stored > 0) {
    visible_seq_.store(std::max(visible_seq_.load(), visible));
    std::lock_guard lock(change_mu_);
    changes_.fetch_add(1);
    change_cv_.notify_all();
  }
  std::vector<Result<AppendResult>> out;
  out.reserve(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    if (err[i]) out.emplace_back(fail(std::move(*err[i])));
    else out.emplace_back(res[i]);
  }
  return out;
}

Result<AppendResult> LogStore::append(std::span<const LogEntry> entries, std::string_view chunk_id) {
  AppendRequest r{entries, chunk_id};
  auto out = append_batch(std::span<const AppendRequest>(&r, 1));
  compact();
  return std::move(out.front());
}

bool LogStore::compaction_owed() const {
  std::lock_guard w(write_mu_);
  return !owed_.empty();
}

void LogStore::compact() {
  std::lock_guard w(write_mu_);
  int64_t now = now_ms();
  for (StreamFiles* s : owed_) {
    s->cut_blocks(now);
    s->rewrite_wal_if_big();
  }
  owed_.clear();
}

LogStoreStats LogStore::stats() const {
  return {n_appends_.load(), n_batches_.load(), n_wal_syncs_.load(), n_records_.load()};
}

Result<void> LogStore::flush() {
  std::lock_guard w(write_mu_);
  std::shared_lock lock(streams_mu_);
  for (auto& [key, s] : streams_)
    if (auto r = s->flush(now_ms()); !r) return r;
  return {};
}

Result<void> LogStore::enforce_retention() {
  std::lock_guard w(write_mu_);
  std::shared_lock lock(streams_mu_);
  int64_t now = now_ms();
  struct Victim {
    StreamFiles* s;
    StreamFiles::Deletable d;
  };
  std::vector<Victim> all;
  uint64_t total = 0;
  for (auto& [key, s] : streams_) {
    if (auto r = s->roll_if_old(now); !r) return r;
    total += s->disk_bytes();
    for (auto& d : s->deletable()) all.push_back({s.get(), std::move(d)});
  }
  std::sort(all.begin(), all.end(), [](const Victim& a, const Victim& b) { return a.d.last_write_ms < b.d.last_write_ms; });
  const RetentionPolicy& rp = opt_.retention;
  for (const auto& v : all) {
    bool too_old = rp.max_age_ms > 0 && v.d.last_write_ms < now - rp.max_age_ms;
    bool too_big = rp.max_bytes > 0 && total > rp.max_bytes;
    if (!too_old && !too_big) break;  // sorted oldest first: the rest are younger
    if (auto r = v.s->delete_segment(v.d.path); !r) return r;
    total -= v.d.bytes;
    spdlog::info("logs: retention deleted {} ({} bytes)", v.d.path, v.d.bytes);
  }
  return {};
}

uint64_t LogStore::change_count() const { return changes_.load(); }

uint64_t LogStore::wait_for_change(uint64_t seen, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(change_mu_);
  change_cv_.wait_for(lock, timeout, [&] { return changes_.load() != seen; });
  return changes_.load();
}

uint64_t LogStore::last_seq() const { return visible_seq_.load(); }

uint64_t LogStore::disk_bytes() const {
  std::lock_guard w(write_mu_);
  std::shared_lock lock(streams_mu_);
  uint64_t n = 0;
  for (const auto& [key, s] : streams_) n += s->disk_bytes();
  return n;
}

std::vector<std::string> LogStore::segment_files_for_test(const std::string& stream_key) const {
  std::shared_lock lock(streams_mu_);
  auto it = streams_.find(stream_key);
  return it == streams_.end() ? std::vector<std::string>{} : it->second->segment_paths();
}

std::vector<StreamFiles*> LogStore::streams_for(const LogQuery& q) const {
  std::optional<std::string> want;
  if (!q.tag.empty()) want = stream_key_for_tag(q.tag);
  if (!q.app.empty()) {
    std::string key = "app." + app_name(q.app);
    if (want && *want != key) return {};
    want = key;
  }
  std::shared_lock lock(streams_mu_);
  std::vector<StreamFiles*> out;
  if (want) {
    if (auto it = streams_.find(*want); it != streams_.end()) out.push_back(it->second.get());
  } else {
    for (const auto& [key, s] : streams_) out.push_back(s.get());
  }
  return out;
}

}  // namespace stele::logs
