#include "router/service.h"

#include <boost/asio/post.hpp>
#include <chrono>
#include <spdlog/spdlog.h>

#include "common/names.h"
#include "logs/msgpack.h"
#include "net/offload.h"

namespace stele::router {

namespace asio = boost::asio;

AccessLogSpec access_log_spec() {
  AccessLogSpec s;
  s.format = AccessLogSpec::Format::kLtsv;
  s.status = "status";
  s.latency = "reqtime";
  s.latency_unit = AccessLogSpec::LatencyUnit::kSeconds;
  return s;
}


RouterService::RouterService(RouterServiceOptions options, logs::LogStore* logs)
    : options_(std::move(options)), logs_(logs) {}

RouterService::~RouterService() { stop(); }

Result<std::string> RouterService::start() {
  proxy_ = std::make_unique<Proxy>(io_, options_.proxy);
  auto bound = proxy_->listen(options_.listen);
  if (!bound) return fail("--router-listen " + options_.listen + ": " + bound.error().message);
  bound_ = *bound;
  if (auto r = start_tls(); !r) return fail(r.error());
  if (logs_ || options_.access_sink) proxy_->set_access_log([this](const AccessRecord& r) { on_access(r); });
  running_ = true;
  arm_flush();
  thread_ = std::thread([this] { io_.run(); });
  return bound_;
}

Result<void> RouterService::start_tls() {
  if (options_.tls_listen == "off") return {};
  if (options_.certs_dir.empty()) return fail("--router-tls-listen needs a certificate directory (--router-certs)");
  auto certs = std::make_shared<CertificateStore>(options_.certs_dir);
  certs->reload();
  auto bound = proxy_->listen_tls(options_.tls_listen, certs);
  if (!bound) return fail("--router-tls-listen " + options_.tls_listen + ": " + bound.error().message);
  tls_bound_ = *bound;
  auto names = certs->names();
  spdlog::info("router: TLS on {} with {} certificate(s) from {}{}", tls_bound_, names.size(), options_.certs_dir,
               names.empty() ? " (none yet: every handshake fails until some are added)" : "");
  return {};
}

void RouterService::stop() {
  if (!running_) return;
  running_ = false;
  asio::post(io_, [this] {
    proxy_->stop();
    flush_timer_.cancel();
  });
  // Connections still open end with the io_context.
  asio::post(io_, [this] { io_.stop(); });
  if (thread_.joinable()) thread_.join();
  proxy_.reset();
  // A store pass still running on the worker pool uses logs_: let it end.
  for (int i = 0; i < 500 && storing_->load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::vector<logs::OwnedLogEntry> rest;
  {
    std::lock_guard<std::mutex> lk(mu_);
    rest.swap(batch_);
  }
  if (!rest.empty()) {
    std::vector<logs::LogEntry> views;
    for (const auto& e : rest) views.push_back(e.view());
    if (auto r = store(views); !r) spdlog::warn("router: access records lost at shutdown: {}", r.error().message);
  }
}

Result<void> RouterService::update(const Json& table) {
  auto t = RouteTable::from_json(table);
  if (!t) return fail(t.error());
  proxy_->set_table(std::move(*t));
  return {};
}

Result<void> RouterService::store(const std::vector<logs::LogEntry>& views) {
  if (logs_) {
    auto r = logs_->append(views);
    if (!r) return fail(r.error());
    return {};
  }
  if (options_.access_sink) return options_.access_sink(views);
  return {};
}

uint64_t RouterService::applied_version() const { return proxy_ ? proxy_->applied_version() : 0; }

void RouterService::on_access(const AccessRecord& r) {
  if (r.app.empty()) return;  // no route: nobody's request
  logs::OwnedLogEntry e;
  e.tag = log_tag(r.app, "access");
  e.time_ns = r.time_ms * 1'000'000;
  logs::msgpack::Writer w(e.record);
  w.map(5);
  w.str("app");
  w.str(r.app);
  w.str("task");
  w.str(r.task);
  w.str("node");
  w.str(options_.node);
  w.str("stream");
  w.str("access");
  w.str("log");
  w.str(format_ltsv(r));
  std::lock_guard<std::mutex> lk(mu_);
  batch_.push_back(std::move(e));
}

void RouterService::arm_flush() {
  flush_timer_.expires_after(std::chrono::milliseconds(200));
  flush_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || !running_) return;
    flush();
    arm_flush();
  });
}

// One store pass at a time on the worker pool; records arriving meanwhile
// wait for the next tick.
void RouterService::flush() {
  if (storing_->exchange(true)) return;
  auto batch = std::make_shared<std::vector<logs::OwnedLogEntry>>();
  {
    std::lock_guard<std::mutex> lk(mu_);
    batch->swap(batch_);
  }
  if (batch->empty()) {
    storing_->store(false);
    return;
  }
  asio::post(net::worker_pool(), [this, batch, storing = storing_] {
    std::vector<logs::LogEntry> views;
    views.reserve(batch->size());
    for (const auto& e : *batch) views.push_back(e.view());
    static std::atomic<int64_t> last_warn_ms{0};
    if (auto r = store(views); !r) {
      int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now().time_since_epoch()).count();
      if (now - last_warn_ms.exchange(now) > 60'000)
        spdlog::warn("router: {} access records dropped: {}", batch->size(), r.error().message);
    }
    storing->store(false);
  });
}

}  // namespace stele::router
