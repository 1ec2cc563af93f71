#include "logs/forward_relay.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <random>
#include <sstream>
#include <vector>

#include <utility>  // before Asio with g++ 12
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "logs/forward_codec.h"
#include "net/offload.h"

namespace stele::logs {

namespace asio = boost::asio;
using net::awaitable;
using Clock = std::chrono::steady_clock;

namespace {

// ---- the cursor file ----

// "id=<relay id> acked=<seq> inflight=<seq>\n". inflight > acked: the chunk
// ending at `inflight` may have been sent without its ack being recorded.
struct Cursor {
  std::string relay_id;
  uint64_t acked = 0;
  uint64_t inflight = 0;
  bool operator==(const Cursor&) const = default;
};

std::string format_cursor(const Cursor& c) {
  return "id=" + c.relay_id + " acked=" + std::to_string(c.acked) + " inflight=" + std::to_string(c.inflight) + "\n";
}

Result<uint64_t> parse_seq(const std::string& v, const char* key) {
  if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos || v.size() > 19)
    return fail(std::string(key) + "=" + v + " is not a sequence number");
  return std::stoull(v);
}

Result<Cursor> parse_cursor(const std::string& text) {
  Cursor c;
  bool has_acked = false;
  std::istringstream in(text);
  std::string field;
  while (in >> field) {
    auto eq = field.find('=');
    std::string key = field.substr(0, eq), value = eq == std::string::npos ? "" : field.substr(eq + 1);
    if (key == "id" && !value.empty()) {
      c.relay_id = value;
    } else if (key == "acked" || key == "inflight") {
      auto n = parse_seq(value, key.c_str());
      if (!n) return fail(n.error());
      (key == "acked" ? c.acked : c.inflight) = *n;
      has_acked |= key == "acked";
    } else {
      return fail("unexpected field '" + field.substr(0, 64) + "'");
    }
  }
  if (c.relay_id.empty() || !has_acked) return fail("expected \"id=<hex> acked=<seq> inflight=<seq>\"");
  return c;
}

// nullopt: there is no cursor file yet.
Result<std::optional<Cursor>> read_cursor(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<Cursor>{};
    return fail(std::string("cannot open it: ") + std::strerror(errno));
  }
  std::string text;
  char buf[512];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 && text.size() < 4096) text.append(buf, static_cast<size_t>(n));
  int err = n < 0 ? errno : 0;
  ::close(fd);
  if (err) return fail(std::string("cannot read it: ") + std::strerror(err));
  auto c = parse_cursor(text);
  if (!c) return fail(c.error());
  return std::optional<Cursor>(std::move(*c));
}

// tmp + fdatasync + rename: a crash leaves the old or the new cursor.
Result<void> write_cursor(const std::string& path, const Cursor& c) {
  std::string tmp = path + ".tmp", text = format_cursor(c);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fail("cannot write " + tmp + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  int err = done < text.size() ? errno : ::fdatasync(fd) != 0 ? errno : 0;
  ::close(fd);
  if (err) return fail("cannot write " + tmp + ": " + std::strerror(err));
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("cannot rename " + tmp + ": " + std::strerror(errno));
  return {};
}

std::string new_relay_id() {
  std::random_device rd;
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 16; ++i) s.push_back(hex[rd() % 16]);
  return s;
}

// ---- chunks ----

// One PackedForward request: consecutive records of one tag.
struct Chunk {
  std::string tag;
  uint64_t first_seq = 0, last_seq = 0;
  size_t records = 0;
  std::string id;       // deterministic: the same records give the same id after a restart
  std::string request;  // encoded, with "chunk": id
};

struct Batch {
  std::vector<Chunk> chunks;
  bool more = false;           // records are waiting beyond this batch: read again at once
  uint64_t seen_changes = 0;   // change_count() before the read: wait for it to move
};

std::string chunk_id(const std::string& relay_id, const std::string& tag, uint64_t first, uint64_t last) {
  std::string key = relay_id + "\n" + tag + "\n" + std::to_string(first) + "\n" + std::to_string(last);
  return sha512_hex(key).substr(0, 32);
}

std::string record_msgpack(const Json& record) {
  // Stored records are maps; anything else (never expected) is wrapped so the
  // request stays valid.
  std::vector<uint8_t> v = record.is_object() ? Json::to_msgpack(record) : Json::to_msgpack(Json{{"record", record}});
  return {v.begin(), v.end()};
}

void seal(Chunk& c, std::vector<OwnedLogEntry>& entries, const std::string& relay_id, bool compress) {
  std::vector<LogEntry> views;
  views.reserve(entries.size());
  for (const auto& e : entries) views.push_back(e.view());
  c.records = entries.size();
  c.id = chunk_id(relay_id, c.tag, c.first_seq, c.last_seq);
  c.request = encode_packed_forward(c.tag, views, c.id, compress);
  entries.clear();
}

// Cuts seq-ordered records into chunks: a new chunk at every tag change and
// before max_chunk_bytes would be passed.
std::vector<Chunk> make_chunks(const std::vector<LogResult>& rows, const std::string& relay_id,
                               const ForwardRelayOptions& o) {
  std::vector<Chunk> out;
  std::vector<OwnedLogEntry> entries;
  size_t bytes = 0;
  for (const LogResult& r : rows) {
    std::string rec = record_msgpack(r.record);
    if (!entries.empty() && (r.tag != out.back().tag || bytes + rec.size() > o.max_chunk_bytes)) {
      seal(out.back(), entries, relay_id, o.compress);
      bytes = 0;
    }
    if (entries.empty()) {
      Chunk& c = out.emplace_back();
      c.tag = r.tag;
      c.first_seq = r.seq;
    }
    out.back().last_seq = r.seq;
    bytes += rec.size() + 16;
    entries.push_back({r.tag, r.time_ns, std::move(rec)});
  }
  if (!entries.empty()) seal(out.back(), entries, relay_id, o.compress);
  return out;
}

// Blocking (worker thread): the next records after the cursor, as chunks.
Result<Batch> read_batch(const LogStore& store, const Cursor& cur, const ForwardRelayOptions& o) {
  Batch b;
  b.seen_changes = store.change_count();
  // Only records whose append has returned: an append in progress may already
  // show a later stream's records while an earlier one's are still being
  // written, and the cursor must never move past a record not yet seen.
  uint64_t upto = store.last_seq();
  bool resend = cur.inflight > cur.acked;  // after a restart: the same chunk again first
  if (resend) upto = std::min(upto, cur.inflight);
  LogQuery q;
  q.limit = std::max<size_t>(o.batch_records, 1);
  q.after = cur.acked;
  auto rows = store.query(q);
  if (!rows) return fail("reading the log store: " + rows.error().message);
  b.more = rows->size() == q.limit;
  while (!rows->empty() && rows->back().seq > upto) {
    rows->pop_back();
    b.more |= resend;
  }
  b.chunks = make_chunks(*rows, cur.relay_id, o);
  return b;
}

}  // namespace

struct ForwardRelay::Impl : std::enable_shared_from_this<ForwardRelay::Impl> {
  Impl(asio::io_context& io, LogStore& store, ForwardRelayOptions o)
      : io(io), store(store), opt(std::move(o)), client(io.get_executor(), opt.client), timer(io) {}

  asio::io_context& io;
  LogStore& store;
  ForwardRelayOptions opt;
  ForwardClient client;
  asio::steady_timer timer;      // backoff sleeps and change polls
  asio::thread_pool pool{1};     // store reads and cursor writes
  Cursor cursor;                 // in memory (io thread)
  Cursor on_disk;                // what the cursor file says
  bool started = false, stopped = false;
  Stats stats;
  Clock::time_point outage_start;
  uint64_t outage_attempts = 0;

  awaitable<void> run();
  awaitable<Result<Batch>> read();
  awaitable<bool> deliver(const Chunk& c);
  awaitable<Result<void>> attempt(const Chunk& c);
  awaitable<Result<void>> persist(const Cursor& c);
  awaitable<void> sleep(std::chrono::milliseconds d);
  awaitable<void> wait_for_change(uint64_t seen);
  void failed(const Error& e);
  void recovered();
};

awaitable<Result<Batch>> ForwardRelay::Impl::read() {
  const LogStore* st = &store;
  Cursor cur = cursor;
  ForwardRelayOptions o = opt;
  auto work = [st, cur, o]() -> Result<Batch> { return read_batch(*st, cur, o); };
  co_return co_await net::offload(pool, work);
}

awaitable<Result<void>> ForwardRelay::Impl::persist(const Cursor& c) {
  std::string path = opt.cursor_path;
  Cursor next = c;
  auto work = [path, next]() -> Result<void> { return write_cursor(path, next); };
  auto r = co_await net::offload(pool, work);
  if (r) on_disk = next;
  co_return r;
}

awaitable<void> ForwardRelay::Impl::sleep(std::chrono::milliseconds d) {
  timer.expires_after(d);
  boost::system::error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

// Caught up: wake once an append has stored records (or on stop()).
awaitable<void> ForwardRelay::Impl::wait_for_change(uint64_t seen) {
  while (!stopped && store.change_count() == seen) co_await sleep(opt.poll_interval);
}

// One warning per outage; the attempts themselves only at debug level.
void ForwardRelay::Impl::failed(const Error& e) {
  ++stats.failed_attempts;
  ++outage_attempts;
  if (stats.delivering) {
    stats.delivering = false;
    outage_start = Clock::now();
    spdlog::warn("forward-to: {}; retrying (backoff up to {} s), the records wait in the log store", e.message,
                 opt.retry_max.count() / 1000.0);
  } else {
    spdlog::debug("forward-to: attempt {} failed: {}", outage_attempts, e.message);
  }
}

void ForwardRelay::Impl::recovered() {
  if (stats.delivering) return;
  stats.delivering = true;
  double secs = std::chrono::duration<double>(Clock::now() - outage_start).count();
  spdlog::info("forward-to {}: delivering again after {} failed attempt(s) in {:.1f} s", opt.client.address,
               outage_attempts, secs);
  outage_attempts = 0;
}

// The cursor file names the chunk before it goes out (see the header), then
// the chunk waits for its ack.
awaitable<Result<void>> ForwardRelay::Impl::attempt(const Chunk& c) {
  Cursor intent = cursor;
  intent.inflight = c.last_seq;
  if (intent != on_disk) {
    auto w = co_await persist(intent);
    if (!w) co_return fail("cursor " + opt.cursor_path + ": " + w.error().message);
    if (stopped) co_return fail("stopped");
  }
  co_return co_await client.send(c.request, c.id);
}

// Sends until acked (true) or stopped (false).
awaitable<bool> ForwardRelay::Impl::deliver(const Chunk& c) {
  auto backoff = opt.retry_initial;
  while (!stopped) {
    auto r = co_await attempt(c);
    if (stopped) break;
    if (r) {
      recovered();
      cursor.acked = c.last_seq;
      cursor.inflight = 0;
      stats.acked_seq = c.last_seq;
      ++stats.chunks;
      stats.records += c.records;
      co_return true;
    }
    failed(r.error());
    co_await sleep(backoff);
    backoff = std::min(backoff * 2, opt.retry_max);
  }
  co_return false;
}

awaitable<void> ForwardRelay::Impl::run() {
  auto self = shared_from_this();
  auto read_backoff = opt.retry_initial;
  while (!stopped) {
    auto batch = co_await read();
    if (stopped) break;
    if (!batch) {
      failed(batch.error());
      co_await sleep(read_backoff);
      read_backoff = std::min(read_backoff * 2, opt.retry_max);
      continue;
    }
    read_backoff = opt.retry_initial;
    cursor.inflight = 0;  // the resend after a restart, if any, is in this batch
    for (const Chunk& c : batch->chunks)
      if (!co_await deliver(c)) co_return;
    if (batch->more) continue;
    // Caught up: record the acks (the next chunk's intent would carry them
    // otherwise), then wait for new records.
    if (cursor != on_disk) {
      if (auto w = co_await persist(cursor); !w) spdlog::warn("forward-to: cursor {}: {}", opt.cursor_path, w.error().message);
    }
    co_await wait_for_change(batch->seen_changes);
  }
}

ForwardRelay::ForwardRelay(asio::io_context& io, LogStore& store, ForwardRelayOptions options)
    : impl_(std::make_shared<Impl>(io, store, std::move(options))) {}

ForwardRelay::~ForwardRelay() {
  stop();
  impl_->pool.join();  // no store read may outlive the LogStore
  // Record the last acks if the loop had no chance to (best effort).
  Impl& i = *impl_;
  if (i.started && i.cursor.acked > i.on_disk.acked) {
    Cursor c = i.cursor;
    c.inflight = 0;
    if (auto w = write_cursor(i.opt.cursor_path, c); !w) spdlog::warn("forward-to: cursor {}: {}", i.opt.cursor_path, w.error().message);
  }
}

Result<void> ForwardRelay::start() {
  Impl& i = *impl_;
  if (i.started) return {};
  auto fail_cursor = [&](const Error& e) {
    return fail("--forward-to: cursor file " + i.opt.cursor_path + ": " + e.message +
                " (delete it to relay everything the log store holds again)");
  };
  auto c = read_cursor(i.opt.cursor_path);
  if (!c) return fail_cursor(c.error());
  if (*c) {
    i.cursor = **c;
  } else {
    i.cursor = Cursor{new_relay_id(), i.opt.start_after.value_or(0), 0};
    if (auto w = write_cursor(i.opt.cursor_path, i.cursor); !w) return fail_cursor(w.error());
  }
  i.on_disk = i.cursor;
  i.stats.acked_seq = i.cursor.acked;
  i.started = true;
  spdlog::info("forward-to {}: relaying the log store from sequence {}{} (cursor {})", i.opt.client.address,
               i.cursor.acked + 1, i.cursor.inflight > i.cursor.acked ? ", resending the chunk in flight" : "",
               i.opt.cursor_path);
  asio::co_spawn(i.io, i.run(), asio::detached);
  return {};
}

void ForwardRelay::stop() {
  Impl& i = *impl_;
  if (i.stopped) return;
  i.stopped = true;
  i.timer.cancel();
  i.client.close();
}

ForwardRelay::Stats ForwardRelay::stats() const { return impl_->stats; }

}  // namespace stele::logs
