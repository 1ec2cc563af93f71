#include "logs/log_store.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>

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

LogStore::~LogStore() = default;

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

Result<AppendResult> LogStore::append(std::span<const LogEntry> entries, std::string_view chunk_id) {
  if (chunk_id.size() > 1024) return fail("logs: chunk id longer than 1024 bytes", 400);
  std::lock_guard w(write_mu_);
  // Group by stream, keeping each stream's records in arrival order.
  std::vector<std::pair<std::string, std::vector<uint32_t>>> groups;
  std::string_view last_tag;
  size_t last_group = 0;
  for (uint32_t i = 0; i < entries.size(); ++i) {
    if (groups.empty() || entries[i].tag != last_tag) {
      std::string key = stream_key_for_tag(entries[i].tag);
      auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == key; });
      if (it == groups.end()) it = groups.insert(groups.end(), {std::move(key), {}});
      last_group = static_cast<size_t>(it - groups.begin());
      last_tag = entries[i].tag;
    }
    groups[last_group].second.push_back(i);
  }
  AppendResult res;
  std::string records;
  for (const auto& [key, idx] : groups) {
    auto s = stream_for(key);
    if (!s) return fail(s.error());
    if (!chunk_id.empty() && (*s)->seen_chunk(std::string(chunk_id))) {
      res.duplicates += idx.size();
      continue;
    }
    records.clear();
    BlockHeader h{next_seq_, 0, INT64_MAX, INT64_MIN, 0, static_cast<uint32_t>(idx.size())};
    for (uint32_t i : idx) {
      append_record(records, next_seq_++, entries[i]);
      h.min_time_ns = std::min(h.min_time_ns, entries[i].time_ns);
      h.max_time_ns = std::max(h.max_time_ns, entries[i].time_ns);
    }
    h.last_seq = next_seq_ - 1;
    if (auto r = (*s)->append(records, h, chunk_id, now_ms()); !r) return fail(r.error());
    if (res.stored == 0) res.first_seq = h.first_seq;
    res.last_seq = h.last_seq;
    res.stored += idx.size();
  }
  if (res.stored > 0) {
    visible_seq_.store(res.last_seq);
    std::lock_guard lock(change_mu_);
    changes_.fetch_add(1);
    change_cv_.notify_all();
  }
  return res;
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
