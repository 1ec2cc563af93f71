#include "logs/log_query.h"
#include "logs/msgpack.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <tuple>

#include "logs/log_store.h"

namespace stele::logs {
namespace {

uint64_t be(std::string_view d, size_t pos, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(d[pos + i]);
  return v;
}

// One msgpack header at `pos`: how many bytes of payload follow it and how
// many nested values (array items, map keys+values) it opens.
struct Head {
  size_t header = 1;
  uint64_t payload = 0;
  uint64_t children = 0;
  bool str = false;
};

std::optional<Head> head(std::string_view d, size_t pos) {
  if (pos >= d.size()) return std::nullopt;
  auto b = static_cast<uint8_t>(d[pos]);
  auto sized = [&](size_t n, uint64_t extra = 0) -> std::optional<Head> {
    if (d.size() - pos < 1 + n) return std::nullopt;
    return Head{1 + n, be(d, pos + 1, n) + extra, 0, false};
  };
  if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) return Head{};
  if (b >= 0x80 && b <= 0x8f) return Head{1, 0, 2u * (b & 0x0f), false};
  if (b >= 0x90 && b <= 0x9f) return Head{1, 0, uint64_t(b & 0x0f), false};
  if (b >= 0xa0 && b <= 0xbf) return Head{1, uint64_t(b & 0x1f), 0, true};
  switch (b) {
    case 0xc4: return sized(1);
    case 0xc5: return sized(2);
    case 0xc6: return sized(4);
    case 0xc7: return sized(1, 1);  // ext: + type byte
    case 0xc8: return sized(2, 1);
    case 0xc9: return sized(4, 1);
    case 0xca: return Head{1, 4, 0, false};
    case 0xcb: return Head{1, 8, 0, false};
    case 0xcc: case 0xd0: return Head{1, 1, 0, false};
    case 0xcd: case 0xd1: return Head{1, 2, 0, false};
    case 0xce: case 0xd2: return Head{1, 4, 0, false};
    case 0xcf: case 0xd3: return Head{1, 8, 0, false};
    case 0xd4: return Head{1, 2, 0, false};
    case 0xd5: return Head{1, 3, 0, false};
    case 0xd6: return Head{1, 5, 0, false};
    case 0xd7: return Head{1, 9, 0, false};
    case 0xd8: return Head{1, 17, 0, false};
    case 0xd9: { auto h = sized(1); if (h) h->str = true; return h; }
    case 0xda: { auto h = sized(2); if (h) h->str = true; return h; }
    case 0xdb: { auto h = sized(4); if (h) h->str = true; return h; }
    case 0xdc: { auto h = sized(2); if (h) h->children = h->payload, h->payload = 0; return h; }
    case 0xdd: { auto h = sized(4); if (h) h->children = h->payload, h->payload = 0; return h; }
    case 0xde: { auto h = sized(2); if (h) h->children = 2 * h->payload, h->payload = 0; return h; }
    case 0xdf: { auto h = sized(4); if (h) h->children = 2 * h->payload, h->payload = 0; return h; }
    default: return std::nullopt;  // 0xc1 is never used
  }
}

// Skips one complete value (iteratively: no recursion on hostile nesting).
bool skip(std::string_view d, size_t& pos) {
  uint64_t pending = 1;
  while (pending > 0) {
    auto h = head(d, pos);
    if (!h || d.size() - pos - h->header < h->payload) return false;
    if (h->children > d.size()) return false;  // each child takes at least one byte
    pos += h->header + h->payload;
    pending += h->children - 1;
  }
  return true;
}

}  // namespace

std::optional<std::string_view> msgpack_string_field(std::string_view d, std::string_view key) {
  auto m = head(d, 0);
  if (!m || m->str || m->payload != 0 || m->children % 2 != 0) return std::nullopt;
  auto b = static_cast<uint8_t>(d[0]);
  if (!((b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf)) return std::nullopt;
  size_t pos = m->header;
  for (uint64_t i = 0; i < m->children / 2; ++i) {
    auto k = head(d, pos);
    if (!k) return std::nullopt;
    bool hit = false;
    if (k->str && d.size() - pos - k->header >= k->payload)
      hit = d.substr(pos + k->header, k->payload) == key;
    if (!skip(d, pos)) return std::nullopt;
    if (hit) {
      auto v = head(d, pos);
      if (!v || !v->str || d.size() - pos - v->header < v->payload) return std::nullopt;
      return d.substr(pos + v->header, v->payload);
    }
    if (!skip(d, pos)) return std::nullopt;
  }
  return std::nullopt;
}

Json record_to_json(std::string_view msgpack) {
  auto j = msgpack_to_json(msgpack);  // EventTime -> ISO-8601, invalid UTF-8 replaced
  if (!j) return Json{{"_undecodable", msgpack.size()}};
  return std::move(*j);
}

Result<RecordFilter> RecordFilter::compile(const LogQuery& q) {
  RecordFilter f;
  if (!q.task.empty()) f.task_ = q.task;
  if (!q.stream.empty()) f.stream_ = q.stream;
  if (!q.grep.empty()) f.grep_ = q.grep;
  if (!q.regex.empty()) {
    try {
      f.regex_.emplace(q.regex, std::regex::ECMAScript | std::regex::optimize);
    } catch (const std::regex_error& e) {
      return fail("regex: invalid pattern \"" + q.regex + "\": " + e.what(), 400);
    }
  }
  return f;
}

bool RecordFilter::matches(std::string_view record) const {
  if (task_ && msgpack_string_field(record, "task") != std::string_view(*task_)) return false;
  if (stream_ && msgpack_string_field(record, "stream") != std::string_view(*stream_)) return false;
  return text_matches(record);
}

bool RecordFilter::text_matches(std::string_view record) const {
  if (!grep_ && !regex_) return true;
  std::string dumped;
  std::string_view text;
  if (auto log = msgpack_string_field(record, "log")) {
    text = *log;
  } else {
    dumped = record_to_json(record).dump(-1, ' ', false, Json::error_handler_t::replace);
    text = dumped;
  }
  if (grep_ && text.find(*grep_) == std::string_view::npos) return false;
  if (regex_ && !std::regex_search(text.begin(), text.end(), *regex_)) return false;
  return true;
}

}  // namespace stele::logs

// ---------- LogStore::query ----------

namespace stele::logs {
namespace {

enum class Order { kSeq, kOldest, kNewest };

struct Hit {
  uint64_t seq;
  int64_t time_ns;
  const std::string* stream_key;
  std::string tag, record;
};

// True when a should come before b in the wanted result set (the "best").
bool better(Order o, const Hit& a, const Hit& b) {
  switch (o) {
    case Order::kSeq: return a.seq < b.seq;
    case Order::kOldest: return std::tie(a.time_ns, a.seq) < std::tie(b.time_ns, b.seq);
    case Order::kNewest: return std::tie(a.time_ns, a.seq) > std::tie(b.time_ns, b.seq);
  }
  return false;
}

// Could any record of a block with header h beat `worst`?
bool can_beat(Order o, const BlockHeader& h, const Hit& worst) {
  switch (o) {
    case Order::kSeq: return h.first_seq < worst.seq;
    case Order::kOldest: return h.min_time_ns <= worst.time_ns;
    case Order::kNewest: return h.max_time_ns >= worst.time_ns;
  }
  return true;
}

struct Candidate {
  const std::string* stream_key;
  const StreamSnapshot::Block* block;  // nullptr: the snapshot's pending tail
  const StreamSnapshot* snap;
  const BlockHeader* h;
};

// Keeps the `limit` best hits in a heap whose top is the worst kept one.
class TopHits {
 public:
  TopHits(Order o, size_t limit) : o_(o), limit_(limit) {}
  bool full() const { return hits_.size() >= limit_; }
  const Hit& worst() const { return hits_.front(); }
  bool wants(uint64_t seq, int64_t t) const {
    if (!full()) return true;
    Hit probe{seq, t, nullptr, {}, {}};
    return better(o_, probe, worst());
  }
  void add(Hit h) {
    auto cmp = [this](const Hit& a, const Hit& b) { return better(o_, a, b); };
    hits_.push_back(std::move(h));
    std::push_heap(hits_.begin(), hits_.end(), cmp);
    if (hits_.size() > limit_) {
      std::pop_heap(hits_.begin(), hits_.end(), cmp);
      hits_.pop_back();
    }
  }
  std::vector<Hit> take() {
    std::vector<Hit> out = std::move(hits_);
    std::sort(out.begin(), out.end(), [](const Hit& a, const Hit& b) {
      return std::tie(a.time_ns, a.seq) < std::tie(b.time_ns, b.seq);
    });
    return out;
  }
  Order order() const { return o_; }

 private:
  Order o_;
  size_t limit_;
  std::vector<Hit> hits_;
};

struct Bounds {
  const LogQuery* q;
  bool time_ok(int64_t t) const { return (!q->since_ns || t >= *q->since_ns) && (!q->until_ns || t < *q->until_ns); }
};

bool keep_block(const BlockHeader& h, const void* arg) {
  const LogQuery& q = *static_cast<const LogQuery*>(arg);
  if (q.since_ns && h.max_time_ns < *q.since_ns) return false;
  if (q.until_ns && h.min_time_ns >= *q.until_ns) return false;
  if (q.after && h.last_seq <= *q.after) return false;
  return true;
}

// Opens each segment once per query; a segment deleted by retention since the
// snapshot is skipped (its records have expired).
class SegmentReader {
 public:
  ~SegmentReader() {
    for (auto& [p, fd] : fds_)
      if (fd >= 0) ::close(fd);
  }
  Result<std::optional<std::string>> read_block(const StreamSnapshot::Block& b) {
    auto [it, added] = fds_.try_emplace(b.path, -1);
    if (added) it->second = ::open(b.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (it->second < 0) return std::optional<std::string>{};
    std::string frame(b.ref.size, '\0');
    ssize_t n = ::pread(it->second, frame.data(), frame.size(), static_cast<off_t>(b.ref.offset));
    auto f = n == ssize_t(frame.size()) ? parse_frame(frame) : std::nullopt;
    if (!f) return fail("logs: " + b.path + ": corrupt block at byte " + std::to_string(b.ref.offset), 500);
    auto recs = decode_block_records(f->body);
    if (!recs) return fail("logs: " + b.path + ": " + recs.error().message, 500);
    return std::optional<std::string>(std::move(*recs));
  }

 private:
  std::map<std::string, int> fds_;
};

}  // namespace

Result<std::vector<LogResult>> LogStore::query(const LogQuery& q) const {
  auto filter = RecordFilter::compile(q);
  if (!filter) return fail(filter.error());
  if (q.limit == 0) return std::vector<LogResult>{};
  Order order = q.after ? Order::kSeq : q.since_ns ? Order::kOldest : Order::kNewest;

  std::vector<StreamFiles*> streams = streams_for(q);
  std::vector<StreamSnapshot> snaps;
  snaps.reserve(streams.size());
  std::vector<Candidate> cands;
  for (StreamFiles* s : streams) snaps.push_back(s->snapshot(&keep_block, &q));
  for (size_t i = 0; i < snaps.size(); ++i) {
    for (const auto& b : snaps[i].blocks) cands.push_back({&streams[i]->key(), &b, &snaps[i], &b.ref.h});
    if (snaps[i].pending_h.count > 0) cands.push_back({&streams[i]->key(), nullptr, &snaps[i], &snaps[i].pending_h});
  }
  // Visit the most promising blocks first so the rest can be skipped.
  std::sort(cands.begin(), cands.end(), [&](const Candidate& a, const Candidate& b) {
    switch (order) {
      case Order::kSeq: return a.h->first_seq < b.h->first_seq;
      case Order::kOldest: return a.h->min_time_ns < b.h->min_time_ns;
      case Order::kNewest: return a.h->max_time_ns > b.h->max_time_ns;
    }
    return false;
  });

  TopHits top(order, q.limit);
  Bounds bounds{&q};
  SegmentReader reader;
  for (const Candidate& c : cands) {
    if (top.full() && !can_beat(order, *c.h, top.worst())) continue;
    std::optional<std::string> data;
    if (c.block) {
      auto r = reader.read_block(*c.block);
      if (!r) return fail(r.error());
      if (!*r) continue;
      data = std::move(**r);
    }
    std::string_view recs = c.block ? std::string_view(*data) : std::string_view(c.snap->pending);
    bool ok = for_each_record(recs, [&](const StoredRecord& r) {
      if (!bounds.time_ok(r.time_ns) || (q.after && r.seq <= *q.after)) return;
      if (!q.tag.empty() && r.tag != q.tag) return;
      if (!top.wants(r.seq, r.time_ns) || !filter->matches(r.record)) return;
      top.add(Hit{r.seq, r.time_ns, c.stream_key, std::string(r.tag), std::string(r.record)});
    });
    if (!ok) return fail("logs: stream " + *c.stream_key + ": malformed records in a block", 500);
  }

  std::vector<Hit> hits = top.take();
  if (order == Order::kSeq)
    std::sort(hits.begin(), hits.end(), [](const Hit& a, const Hit& b) { return a.seq < b.seq; });
  std::vector<LogResult> out;
  out.reserve(hits.size());
  for (auto& h : hits) out.push_back({*h.stream_key, h.seq, std::move(h.tag), h.time_ns, record_to_json(h.record)});
  return out;
}

}  // namespace stele::logs
