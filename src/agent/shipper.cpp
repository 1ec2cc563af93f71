#include "agent/shipper.h"

#include <sys/stat.h>

#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "agent/executor_output.h"
#include "agent/executor_protocol.h"
#include "agent/task_runner.h"
#include "artifact/sha256.h"
#include "metrics/metric_record.h"
#include "common/clock.h"
#include "logs/forward_client.h"
#include "logs/forward_codec.h"
#include "logs/spool.h"
#include "net/offload.h"
#include "net/signal.h"

namespace stele::agent {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr int64_t kAckedQuietMs = 10'000;  // an acked task's spool without end marker counts as done after this
constexpr size_t kRoundBytes = 4u << 20;   // read per scan, across sources

// One source's next range, read on a worker. `batch` holds the bytes the
// entries view, so it is never moved (shared_ptr).
struct Work {
  std::string name;  // the task id (sandbox directory name)
  std::string dir;
  std::shared_ptr<logs::SpoolBatch> batch;
};

struct Scan {
  std::vector<Work> work;
  std::vector<std::string> finished;  // spools shipped and removed this round
  std::vector<std::string> errors;
};

int64_t mtime_ms(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return -1;
  return int64_t(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
}

// Runs on a worker: finds every source with something to do and reads its
// next range, persisting the in-flight mark before the range is sent.
Scan scan_sources(const std::string& executors_dir, const std::map<std::string, std::string>& extra, size_t batch_bytes,
                  int64_t now_ms) {
  Scan s;
  size_t budget = kRoundBytes;
  std::vector<std::pair<std::string, std::string>> sources;
  for (const auto& name : sandbox_names(executors_dir)) sources.emplace_back(name, executors_dir + "/" + name);
  sources.insert(sources.end(), extra.begin(), extra.end());  // tasks' records first
  for (const auto& [name, dir] : sources) {
    if (budget == 0) break;
    logs::SpoolReader reader(dir, TaskRecords::kPrefix);
    if (!reader.exists()) continue;
    auto cur = logs::load_spool_cursor(dir, TaskRecords::kPrefix);
    if (!cur) {
      s.errors.push_back(cur.error().message);
      continue;
    }
    auto read = reader.read(cur->acked, std::min(batch_bytes, budget), cur->inflight_end);
    if (!read) {
      s.errors.push_back(read.error().message);
      continue;
    }
    // Moved, not copied: the entries view the bytes' heap buffer, which moves along.
    auto b = std::make_shared<logs::SpoolBatch>(std::move(*read));
    if (b->entries.empty()) {
      logs::SpoolCursor next{b->end, std::nullopt};
      if (!(next.acked == cur->acked) || cur->inflight_end) {
        if (auto r = logs::save_spool_cursor(dir, TaskRecords::kPrefix, next); !r) s.errors.push_back(r.error().message);
        reader.release_before(next.acked);
      }
      bool quiet_acked = false;
      int64_t acked_at = mtime_ms(dir + "/" + sandbox_files::kAcked);
      if (acked_at >= 0 && now_ms - acked_at > kAckedQuietMs) {
        // No end marker (the executor was killed): done once nothing more is there.
        auto again = reader.read(next.acked, 1);
        quiet_acked = again && again->entries.empty() && again->end == next.acked;
      }
      if (reader.drained(next.acked) || quiet_acked) {
        reader.remove_all();
        s.finished.push_back(name);
      }
      continue;
    }
    logs::SpoolCursor inflight{cur->acked, b->end.offset};
    if (!cur->inflight_end)
      if (auto r = logs::save_spool_cursor(dir, TaskRecords::kPrefix, inflight); !r) {
        s.errors.push_back(r.error().message);
        continue;
      }
    budget -= std::min(budget, b->bytes.size());
    s.work.push_back(Work{name, dir, std::move(b)});
  }
  return s;
}

}  // namespace

struct Shipper::Impl : std::enable_shared_from_this<Impl> {
  asio::io_context& io;
  asio::thread_pool& workers;
  ShipperOptions opt;
  std::string address, shared_key;
  bool tls = false;
  std::unique_ptr<logs::ForwardClient> client;
  asio::steady_timer idle;
  bool running = false, stopped = false;
  bool failing = false;
  std::set<std::string> finished;
  Stats stats;
  struct Retry {
    std::chrono::steady_clock::time_point at{};
    std::chrono::milliseconds backoff{0};
  };
  std::map<std::string, Retry> own_retry;  // extra sources that failed

  Impl(asio::io_context& io, asio::thread_pool& w, ShipperOptions o)
      : io(io), workers(w), opt(std::move(o)), idle(io) {}

  void wake() { idle.cancel(); }

  net::awaitable<void> sleep(std::chrono::milliseconds d) {
    idle.expires_after(d);
    boost::system::error_code ec;
    co_await idle.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }

  std::string chunk_id(const Work& w, std::string_view tag) const {
    std::string key = fmt::format("{}\n{}\n{}\n{}\n{}\n{}", opt.node, w.name, w.batch->start.segment,
                                  w.batch->start.offset, w.batch->end.offset, tag);
    return artifact::sha256_hex(key).substr(0, 32);
  }

  // Sends one range: a request per tag, each acked. False on a failure.
  net::awaitable<bool> ship(const Work& w) {
    std::map<std::string_view, std::vector<logs::LogEntry>> by_tag;
    for (const auto& e : w.batch->entries) by_tag[e.tag].push_back(e);
    for (auto& [tag, entries] : by_tag) {
      std::string id = chunk_id(w, tag);
      // The agent's metric points are a signal of their own (design.md).
      std::optional<int64_t> signal;
      if (tag == metrics::kMetricTag) signal = 1;
      std::string req = logs::encode_packed_forward(tag, entries, id, false, signal);
      auto r = co_await client->send(req, id);
      if (!r) {
        ++stats.failures;
        if (!failing) spdlog::warn("shipping records of {}: {} (retrying until it works)", w.name, r.error().message);
        failing = true;
        co_return false;
      }
      ++stats.requests;
      stats.records += entries.size();
      stats.bytes += req.size();
    }
    if (failing) spdlog::info("shipping records to {} works again", address);
    failing = false;
    co_return true;
  }

  net::awaitable<void> run() {
    auto self = shared_from_this();
    auto backoff = 250ms;
    while (!stopped) {
      if (address.empty() || !client) {
        co_await sleep(opt.scan_interval);
        continue;
      }
      auto job = [dir = opt.executors_dir, extra = opt.extra_sources, bytes = opt.batch_bytes] {
        return scan_sources(dir, extra, bytes, wall_ms());
      };
      Scan scan = co_await net::offload(workers, std::move(job));
      if (stopped) break;
      for (const auto& e : scan.errors) spdlog::warn("shipper: {}", e);
      for (auto& n : scan.finished) {
        finished.insert(n);
        ++stats.sources_finished;
      }
      bool ok = true;
      for (const auto& w : scan.work) {
        // The agent's own spools (metrics) retry on their own clock: a server
        // that refuses them must not hold up the tasks' records.
        bool own = opt.extra_sources.count(w.name) > 0;
        auto now = std::chrono::steady_clock::now();
        if (own && now < own_retry[w.name].at) continue;
        if (!co_await ship(w)) {
          if (own) {
            auto& r = own_retry[w.name];
            r.backoff = std::min<std::chrono::milliseconds>(std::max(r.backoff * 2, 1000ms), 30s);
            r.at = now + r.backoff;
            continue;
          }
          ok = false;
          break;
        }
        if (own) own_retry.erase(w.name);
        auto done = [w] {
          logs::SpoolCursor c{w.batch->end, std::nullopt};
          auto r = logs::save_spool_cursor(w.dir, TaskRecords::kPrefix, c);
          logs::SpoolReader(w.dir, TaskRecords::kPrefix).release_before(c.acked);
          return r ? std::string() : r.error().message;
        };
        std::string err = co_await net::offload(workers, std::move(done));
        if (!err.empty()) spdlog::warn("shipper: {}", err);
        if (stopped) co_return;
      }
      if (!ok) {
        co_await sleep(backoff);
        backoff = std::min<std::chrono::milliseconds>(backoff * 2, 10s);
        continue;
      }
      backoff = 250ms;
      if (scan.work.empty()) co_await sleep(opt.scan_interval);
    }
  }
};

Shipper::Shipper(asio::io_context& io, asio::thread_pool& workers, ShipperOptions options)
    : impl_(std::make_shared<Impl>(io, workers, std::move(options))) {}

Shipper::~Shipper() { stop(); }

void Shipper::set_destination(const std::string& address, const std::string& shared_key, bool tls) {
  if (address == impl_->address && shared_key == impl_->shared_key && tls == impl_->tls) return;
  if (impl_->client) impl_->client->close();
  impl_->address = address;
  impl_->shared_key = shared_key;
  impl_->tls = tls;
  impl_->client.reset();
  if (!address.empty()) {
    logs::ForwardClientOptions fo;
    fo.address = address;
    fo.shared_key = shared_key;
    fo.tls = tls;
    fo.self_hostname = impl_->opt.node;
    impl_->client = std::make_unique<logs::ForwardClient>(impl_->io.get_executor(), fo);
    spdlog::info("shipping task output to {} (forward protocol{}{})", address, tls ? " over TLS" : "",
                 shared_key.empty() ? "" : ", shared key");
  }
  impl_->wake();
}

void Shipper::start() {
  if (impl_->running) return;
  impl_->running = true;
  asio::co_spawn(impl_->io, impl_->run(), asio::detached);
}

void Shipper::stop() {
  impl_->stopped = true;
  if (impl_->client) impl_->client->close();
  impl_->wake();
}

net::awaitable<bool> Shipper::drained(std::string task_id, std::chrono::milliseconds timeout) {
  auto impl = impl_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  // Shipped before (say, by this agent before a restart): the spool is gone.
  auto gone = [dir = impl->opt.executors_dir + "/" + task_id] {
    return !logs::SpoolReader(dir, TaskRecords::kPrefix).exists();
  };
  if (co_await net::offload(impl->workers, std::move(gone))) co_return true;
  while (!impl->stopped) {
    if (impl->finished.count(task_id)) co_return true;
    if (std::chrono::steady_clock::now() >= deadline) co_return false;
    impl->wake();
    co_await net::sleep_for(20ms);
  }
  co_return false;
}

bool Shipper::has_destination() const { return !impl_->address.empty(); }

Shipper::Stats Shipper::stats() const { return impl_->stats; }

}  // namespace stele::agent
