#include "logs/shipper.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <openssl/sha.h>
#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "logs/forward_client.h"
#include "logs/forward_codec.h"
#include "logs/spool.h"
#include "net/offload.h"
#include "net/signal.h"

namespace stele::logs {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string destination_key(const std::string& address) {
  std::string k;
  for (char c : address) k.push_back(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ? c : '_');
  return k;
}

namespace {

constexpr int64_t kAckedQuietMs = 10'000;  // an acked task's spool without end marker counts as done after this
constexpr size_t kRoundBytes = 4u << 20;   // read per scan, across sources

struct Source {
  std::string name, dir;
  bool task = false;  // finishable
};

// One source's next range for one destination, read on a worker. `batch`
// holds the bytes the entries view, so it is never moved (shared_ptr).
struct Work {
  std::string name;  // the task id (sandbox directory name) or the extra source's name
  std::string dir;
  std::shared_ptr<SpoolBatch> batch;
};

struct Scan {
  std::vector<Work> work;
  std::vector<std::string> done;      // task sources this destination shipped entirely
  std::vector<std::string> finished;  // task sources every destination shipped: removed this round
  std::vector<std::string> errors;
};

int64_t mtime_ms(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return -1;
  return int64_t(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
}

std::vector<Source> list_sources(const ShipperOptions& o) {
  std::vector<Source> out;
  if (!o.tasks_dir.empty()) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(o.tasks_dir, ec))
      if (e.is_directory(ec) && !e.is_symlink(ec))
        out.push_back({e.path().filename().string(), e.path().string(), true});
  }
  for (const auto& [name, dir] : o.extra_sources) out.push_back({name, dir, false});  // tasks' records first
  return out;
}

// A destination's cursor; without one, where an earlier version's single
// cursor stood (an upgraded agent resumes instead of resending).
Result<SpoolCursor> cursor_of(const std::string& dir, const std::string& prefix, const std::string& key) {
  if (!spool_cursor_exists(dir, prefix, key) && spool_cursor_exists(dir, prefix)) return load_spool_cursor(dir, prefix);
  return load_spool_cursor(dir, prefix, key);
}

// Everything this destination could read is read: the writer finished, or
// the task was acked over kAckedQuietMs ago (its executor was killed before
// writing the end marker) and nothing more is there.
bool source_done(const SpoolReader& reader, const std::string& dir, const ShipperOptions& o, SpoolPos pos,
                 int64_t now_ms) {
  if (reader.drained(pos)) return true;
  int64_t acked_at = mtime_ms(dir + "/" + o.acked_marker);
  if (acked_at < 0 || now_ms - acked_at <= kAckedQuietMs) return false;
  auto again = reader.read(pos, 1);
  return again && again->entries.empty() && again->end == pos;
}

// The lowest position every destination acked (segments before it may go).
SpoolPos min_acked(const std::string& dir, const std::string& prefix, const std::vector<std::string>& keys) {
  std::optional<SpoolPos> low;
  for (const auto& k : keys) {
    auto c = cursor_of(dir, prefix, k);
    SpoolPos p = c ? c->acked : SpoolPos{};
    if (!low || p.segment < low->segment || (p.segment == low->segment && p.offset < low->offset)) low = p;
  }
  return low.value_or(SpoolPos{});
}

// Runs on a worker (under the shipper's file mutex): finds every source with
// something for destination `key` and reads its next range, persisting the
// in-flight mark before the range is sent.
Scan scan_sources(const ShipperOptions& o, const std::string& key, const std::vector<std::string>& keys,
                  int64_t now_ms) {
  Scan s;
  size_t budget = kRoundBytes;
  for (const auto& src : list_sources(o)) {
    if (budget == 0) break;
    SpoolReader reader(src.dir, o.prefix);
    if (!reader.exists()) continue;
    auto cur = cursor_of(src.dir, o.prefix, key);
    if (!cur) {
      s.errors.push_back(cur.error().message);
      continue;
    }
    auto read = reader.read(cur->acked, std::min(o.batch_bytes, budget), cur->inflight_end);
    if (!read) {
      s.errors.push_back(read.error().message);
      continue;
    }
    // Moved, not copied: the entries view the bytes' heap buffer, which moves along.
    auto b = std::make_shared<SpoolBatch>(std::move(*read));
    if (b->entries.empty()) {
      SpoolCursor next{b->end, std::nullopt};
      if (!(next.acked == cur->acked) || cur->inflight_end || !spool_cursor_exists(src.dir, o.prefix, key)) {
        if (auto r = save_spool_cursor(src.dir, o.prefix, next, key); !r) s.errors.push_back(r.error().message);
        reader.release_before(min_acked(src.dir, o.prefix, keys));
      }
      if (!src.task || !source_done(reader, src.dir, o, next.acked, now_ms)) continue;
      s.done.push_back(src.name);
      bool all = true;
      for (const auto& k : keys) {
        if (k == key) continue;
        auto c = cursor_of(src.dir, o.prefix, k);
        all = all && c && !c->inflight_end && source_done(reader, src.dir, o, c->acked, now_ms);
      }
      if (all) {
        reader.remove_all();
        s.finished.push_back(src.name);
      }
      continue;
    }
    SpoolCursor inflight{cur->acked, b->end.offset};
    if (!cur->inflight_end)
      if (auto r = save_spool_cursor(src.dir, o.prefix, inflight, key); !r) {
        s.errors.push_back(r.error().message);
        continue;
      }
    budget -= std::min(budget, b->bytes.size());
    s.work.push_back(Work{src.name, src.dir, std::move(b)});
  }
  return s;
}

struct Retry {
  std::chrono::steady_clock::time_point at{};
  std::chrono::milliseconds backoff{0};
};

}  // namespace

// One destination: its own connection, loop, backoff and progress.
struct Dest {
  ShipDestination to;
  std::string key;
  std::unique_ptr<ForwardClient> client;
  asio::steady_timer idle;
  bool stopped = false, failing = false;
  std::optional<std::chrono::steady_clock::time_point> unlisted_since;
  std::set<std::string> done;  // task sources it shipped entirely
  std::map<std::string, Retry> own_retry;  // extra sources that failed
  Shipper::DestinationStats stats;
  Dest(asio::io_context& io, ShipDestination d) : to(std::move(d)), key(destination_key(to.address)), idle(io) {}
};

struct Shipper::Impl : std::enable_shared_from_this<Impl> {
  asio::io_context& io;
  asio::thread_pool& workers;
  ShipperOptions opt;
  std::vector<std::shared_ptr<Dest>> dests;  // [0] = primary
  std::shared_ptr<std::mutex> files = std::make_shared<std::mutex>();
  bool running = false, stopped = false;
  std::set<std::string> finished;
  Stats stats;

  Impl(asio::io_context& io, asio::thread_pool& w, ShipperOptions o) : io(io), workers(w), opt(std::move(o)) {}

  std::vector<std::string> keys() const {
    std::vector<std::string> k;
    for (const auto& d : dests) k.push_back(d->key);
    return k;
  }

  net::awaitable<void> sleep(Dest& d, std::chrono::milliseconds t) {
    d.idle.expires_after(t);
    boost::system::error_code ec;
    co_await d.idle.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }

  std::string chunk_id(const Work& w, std::string_view tag) const {
    std::string key = fmt::format("{}\n{}\n{}\n{}\n{}\n{}", opt.node, w.name, w.batch->start.segment,
                                  w.batch->start.offset, w.batch->end.offset, tag);
    // The first 16 bytes of sha256, as hex (ids stay what earlier versions
    // sent, so a range in flight across an upgrade is stored once).
    unsigned char md[SHA256_DIGEST_LENGTH];
    ::SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), md);
    std::string hex;
    for (int i = 0; i < 16; ++i) fmt::format_to(std::back_inserter(hex), "{:02x}", md[i]);
    return hex;
  }

  // Sends one range to one destination: a request per tag, each acked.
  net::awaitable<bool> ship(Dest& d, const Work& w) {
    std::map<std::string_view, std::vector<LogEntry>> by_tag;
    for (const auto& e : w.batch->entries) by_tag[e.tag].push_back(e);
    for (auto& [tag, entries] : by_tag) {
      std::string id = chunk_id(w, tag);
      std::optional<int64_t> signal;
      if (!opt.signal_tag.empty() && tag == opt.signal_tag) signal = 1;  // metric points: a signal of their own
      std::string req = encode_packed_forward(tag, entries, id, false, signal, opt.replicated);
      auto r = co_await d.client->send(req, id);
      if (d.stopped) co_return false;
      if (!r) {
        ++stats.failures;
        ++d.stats.failures;
        if (!d.failing)
          spdlog::warn("shipping {} of {} to {}: {} (retrying until it works)", opt.what, w.name, d.to.address,
                       r.error().message);
        d.failing = d.stats.failing = true;
        co_return false;
      }
      ++stats.requests;
      stats.records += entries.size();
      stats.bytes += req.size();
      d.stats.records += entries.size();
    }
    if (d.failing) spdlog::info("shipping {} to {} works again", opt.what, d.to.address);
    d.failing = d.stats.failing = false;
    co_return true;
  }

  net::awaitable<void> run(std::shared_ptr<Dest> dp) {
    auto self = shared_from_this();
    Dest& d = *dp;
    auto backoff = 250ms;
    while (!stopped && !d.stopped) {
      auto job = [o = opt, key = d.key, all = keys(), files = files] {
        std::lock_guard lock(*files);
        return scan_sources(o, key, all, SystemClock().now_ms());
      };
      Scan scan = co_await net::offload(workers, std::move(job));
      if (stopped || d.stopped) break;
      for (const auto& e : scan.errors) spdlog::warn("shipper: {}", e);
      for (auto& n : scan.done) d.done.insert(n);
      for (auto& n : scan.finished) {
        finished.insert(n);
        ++stats.sources_finished;
      }
      bool ok = true, sent = false;
      for (const auto& w : scan.work) {
        // The owner's own spools (metrics) retry on their own clock: a
        // receiver that refuses them must not hold up the tasks' records.
        bool own = opt.extra_sources.count(w.name) > 0;
        auto now = std::chrono::steady_clock::now();
        if (own && now < d.own_retry[w.name].at) continue;
        if (!co_await ship(d, w)) {
          if (d.stopped) co_return;
          if (own) {
            auto& r = d.own_retry[w.name];
            r.backoff = std::min<std::chrono::milliseconds>(std::max(r.backoff * 2, 1000ms), 30s);
            r.at = now + r.backoff;
            continue;
          }
          ok = false;
          break;
        }
        sent = true;
        if (own) d.own_retry.erase(w.name);
        auto acked = [w, prefix = opt.prefix, key = d.key, all = keys(), files = files] {
          std::lock_guard lock(*files);
          SpoolCursor c{w.batch->end, std::nullopt};
          auto r = save_spool_cursor(w.dir, prefix, c, key);
          SpoolReader(w.dir, prefix).release_before(min_acked(w.dir, prefix, all));
          return r ? std::string() : r.error().message;
        };
        std::string err = co_await net::offload(workers, std::move(acked));
        if (!err.empty()) spdlog::warn("shipper: {}", err);
        if (stopped || d.stopped) co_return;
      }
      if (!ok) {
        co_await sleep(d, backoff);
        backoff = std::min<std::chrono::milliseconds>(backoff * 2, 10s);
        continue;
      }
      backoff = 250ms;
      // Nothing sent (nothing to read, or only sources waiting for their
      // retry time): wait, rather than read the same ranges again at once.
      if (!sent) co_await sleep(d, opt.scan_interval);
    }
  }

  void launch(const std::shared_ptr<Dest>& d) { asio::co_spawn(io, run(d), asio::detached); }
  void set_list(std::vector<ShipDestination> list, std::chrono::milliseconds linger);
};

Shipper::Shipper(asio::io_context& io, asio::thread_pool& workers, ShipperOptions options)
    : impl_(std::make_shared<Impl>(io, workers, std::move(options))) {}

Shipper::~Shipper() { stop(); }

void Shipper::set_destinations(std::vector<ShipDestination> list) { impl_->set_list(std::move(list), impl_->opt.linger); }

void Shipper::set_destination(const std::string& address, const std::string& shared_key, bool tls) {
  std::vector<ShipDestination> one;
  if (!address.empty()) one.push_back({address, shared_key, tls});
  impl_->set_list(std::move(one), std::chrono::milliseconds(0));
}

void Shipper::Impl::set_list(std::vector<ShipDestination> list, std::chrono::milliseconds linger) {
  Impl& i = *this;
  auto now = std::chrono::steady_clock::now();
  std::vector<std::shared_ptr<Dest>> next;
  for (auto& to : list) {
    if (to.address.empty()) continue;
    bool dup = false;
    for (const auto& n : next) dup = dup || n->to.address == to.address;
    if (dup) continue;
    auto same = std::find_if(i.dests.begin(), i.dests.end(), [&](const auto& d) { return d->to == to; });
    if (same != i.dests.end()) {
      (*same)->unlisted_since.reset();
      next.push_back(*same);
      continue;
    }
    auto d = std::make_shared<Dest>(i.io, to);
    d->stats.address = to.address;
    ForwardClientOptions fo;
    fo.address = to.address;
    fo.shared_key = to.shared_key;
    fo.tls = to.tls;
    fo.self_hostname = i.opt.node;
    d->client = std::make_unique<ForwardClient>(i.io.get_executor(), fo);
    spdlog::info("shipping {} to {} (forward protocol{}{})", i.opt.what, to.address, to.tls ? " over TLS" : "",
                 to.shared_key.empty() ? "" : ", shared key");
    next.push_back(std::move(d));
  }
  for (const auto& d : i.dests) {  // unlisted: kept for `linger`
    if (std::find(next.begin(), next.end(), d) != next.end()) continue;
    if (!d->unlisted_since) d->unlisted_since = now;
    bool dup = false;
    for (const auto& n : next) dup = dup || n->to.address == d->to.address;
    if (!dup && now - *d->unlisted_since < linger) next.push_back(d);
  }
  for (const auto& d : i.dests)
    if (std::find(next.begin(), next.end(), d) == next.end()) {
      spdlog::info("no longer shipping {} to {}", i.opt.what, d->to.address);
      d->stopped = true;
      d->client->close();
      d->idle.cancel();
    }
  std::vector<std::shared_ptr<Dest>> fresh;
  for (const auto& d : next)
    if (std::find(i.dests.begin(), i.dests.end(), d) == i.dests.end()) fresh.push_back(d);
  i.dests = std::move(next);
  if (i.running && !i.stopped)
    for (const auto& d : fresh) i.launch(d);
}

void Shipper::start() {
  if (impl_->running) return;
  impl_->running = true;
  for (const auto& d : impl_->dests) impl_->launch(d);
}

void Shipper::stop() {
  impl_->stopped = true;
  for (const auto& d : impl_->dests) {
    d->stopped = true;
    d->client->close();
    d->idle.cancel();
  }
}

net::awaitable<bool> Shipper::drained(std::string task_id, std::chrono::milliseconds timeout) {
  auto impl = impl_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  // Shipped before (say, by this agent before a restart): the spool is gone.
  auto gone = [dir = impl->opt.tasks_dir + "/" + task_id, prefix = impl->opt.prefix] {
    return !SpoolReader(dir, prefix).exists();
  };
  if (co_await net::offload(impl->workers, std::move(gone))) co_return true;
  while (!impl->stopped) {
    if (impl->finished.count(task_id)) co_return true;
    if (!impl->dests.empty() && impl->dests.front()->done.count(task_id)) co_return true;
    if (std::chrono::steady_clock::now() >= deadline) co_return false;
    if (!impl->dests.empty()) impl->dests.front()->idle.cancel();  // the primary: scan now
    co_await net::sleep_for(20ms);
  }
  co_return false;
}

bool Shipper::has_destination() const { return !impl_->dests.empty(); }

Shipper::Stats Shipper::stats() const { return impl_->stats; }

std::vector<Shipper::DestinationStats> Shipper::destinations() const {
  std::vector<DestinationStats> out;
  for (const auto& d : impl_->dests) out.push_back(d->stats);
  return out;
}

}  // namespace stele::logs
