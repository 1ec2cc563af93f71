// Proxy: listeners, the deadline sweeper, the upstream pool and table swaps
// (proxy.h). The per-connection work is in session.cpp.
#include "router/proxy.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <unordered_set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "net/http_server.h"
#include "net/offload.h"
#include "router/proxy_impl.h"

namespace stele::router {

using asio::use_awaitable;

// ---- ByteBuffer -------------------------------------------------------------

ByteBuffer::ByteBuffer(size_t initial) : buf_(new char[initial]), cap_(initial) {}

void ByteBuffer::consume(size_t n) {
  begin_ += n;
  if (begin_ == end_) begin_ = end_ = 0;
}

asio::mutable_buffer ByteBuffer::prepare(size_t max_total) {
  if (end_ == cap_ && begin_ > 0) {
    std::memmove(buf_.get(), buf_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == cap_ && cap_ < max_total) {
    size_t cap = std::min(cap_ * 2, max_total);
    std::unique_ptr<char[]> bigger(new char[cap]);
    std::memcpy(bigger.get(), buf_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
    buf_ = std::move(bigger);
    cap_ = cap;
  }
  size_t room = std::min(cap_, std::max(max_total, size())) - end_;
  return asio::buffer(buf_.get() + end_, room);
}

// ---- Deadline, UpstreamConn -------------------------------------------------

Deadline::Deadline(Proxy::Impl& proxy, tcp::socket& sock) : proxy_(proxy), sock_(sock) { proxy_.link(*this); }
Deadline::~Deadline() { proxy_.unlink(*this); }

UpstreamConn::UpstreamConn(Proxy::Impl& proxy, std::string_view a)
    : sock(proxy.io), buf(8192), addr(a), deadline(proxy, sock) {}

// ---- Impl -------------------------------------------------------------------

Proxy::Impl::Impl(asio::io_context& io_, ProxyOptions o)
    : io(io_), opts(std::move(o)), table(std::make_shared<RouteTable>()), sweep_timer(io_), cert_timer(io_) {}

void Proxy::Impl::link(Deadline& d) {
  d.next_ = deadlines;
  if (deadlines) deadlines->prev_ = &d;
  deadlines = &d;
}

void Proxy::Impl::unlink(Deadline& d) {
  if (d.prev_) d.prev_->next_ = d.next_;
  else deadlines = d.next_;
  if (d.next_) d.next_->prev_ = d.prev_;
}

void Proxy::Impl::sweep(SteadyClock::time_point now) {
  for (Deadline* d = deadlines; d; d = d->next_) {
    if (d->at > now) continue;
    d->fired = true;
    d->at = SteadyClock::time_point::max();
    boost::system::error_code ignored;
    d->sock_.close(ignored);
  }
}

awaitable<void> Proxy::Impl::sweep_loop() {
  auto self = shared_from_this();  // the loop keeps the Impl until stop()
  while (!stopped) {
    boost::system::error_code ec;
    sweep_timer.expires_after(opts.sweep_interval);
    co_await sweep_timer.async_wait(asio::redirect_error(use_awaitable, ec));
    if (stopped) break;
    SteadyClock::time_point now = SteadyClock::now();
    sweep(now);
    if (pending_version && now >= drain_deadline) acknowledge_pending();
  }
}

// Reading certificate files is blocking work: it runs on the worker pool,
// one pass at a time, and a pass still running skips the tick.
awaitable<void> Proxy::Impl::cert_loop() {
  auto self = shared_from_this();
  while (!stopped) {
    boost::system::error_code ec;
    cert_timer.expires_after(opts.cert_check_interval);
    co_await cert_timer.async_wait(asio::redirect_error(use_awaitable, ec));
    if (stopped) break;
    if (certs_reloading->exchange(true)) continue;
    asio::post(net::worker_pool(), [certs = certs, busy = certs_reloading] {
      certs->reload();
      busy->store(false);
    });
  }
}

uint16_t Proxy::Impl::https_port() const {
  if (opts.https_port) return opts.https_port;
  return tls_port ? tls_port : 443;
}

awaitable<void> Proxy::Impl::accept_loop(tcp::acceptor& acceptor, bool tls) {
  auto self = shared_from_this();
  for (;;) {
    boost::system::error_code ec;
    tcp::socket sock = co_await acceptor.async_accept(asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (stopped || ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      spdlog::warn("router: accept failed: {}", ec.message());
      continue;
    }
    ++stats.connections;
    if (tls) asio::co_spawn(io, serve_tls_client(self, std::move(sock)), asio::detached);
    else asio::co_spawn(io, serve_client(self, std::move(sock)), asio::detached);
  }
}

namespace {
// A pooled connection is reusable only while the upstream has neither
// closed it nor sent anything unasked.
bool idle_and_open(tcp::socket& s) {
  if (!s.is_open()) return false;
  char c;
  ssize_t n = ::recv(s.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}
}  // namespace

std::unique_ptr<UpstreamConn> Proxy::Impl::take_pooled(std::string_view addr) {
  auto it = pool.find(addr);
  if (it == pool.end()) return nullptr;
  auto& idle = it->second;
  while (!idle.empty()) {
    std::unique_ptr<UpstreamConn> c = std::move(idle.back());
    idle.pop_back();
    if (idle_and_open(c->sock)) {
      c->deadline.clear();
      return c;
    }
  }
  return nullptr;
}

void Proxy::Impl::release(std::unique_ptr<UpstreamConn> c) {
  if (stopped || !c->sock.is_open()) return;
  auto it = pool.find(c->addr);
  if (it == pool.end()) it = pool.emplace(c->addr, std::vector<std::unique_ptr<UpstreamConn>>{}).first;
  auto& idle = it->second;
  // Drop connections the sweeper closed while they idled.
  std::erase_if(idle, [](const auto& p) { return !p->sock.is_open(); });
  if (idle.size() >= opts.max_idle_per_upstream) return;
  c->deadline.expires_after(opts.pool_idle_timeout);
  idle.push_back(std::move(c));
}

StringMap<UpstreamLoad>::value_type& Proxy::Impl::load_entry(std::string_view addr, std::string_view task) {
  auto it = load.find(addr);
  if (it == load.end()) it = load.emplace(std::string(addr), UpstreamLoad{0, std::string(task)}).first;
  return *it;
}

void Proxy::Impl::apply_table(std::shared_ptr<const RouteTable> t) {
  std::unordered_set<std::string_view> live;
  for (const auto& [id, list] : t->apps())
    for (const Instance& in : list)
      if (in.healthy)
        for (const std::string& a : in.addrs) live.insert(a);
  // Instances gone from the table, or in it but not healthy (draining, being
  // stopped), get no new requests: close their idle connections now rather
  // than at the pool timeout.
  std::erase_if(pool, [&](const auto& kv) { return !live.count(kv.first); });
  std::erase_if(load, [&](const auto& kv) { return kv.second.in_flight == 0 && !live.count(kv.first); });
  table = std::move(t);
  // What is left of `load` out of the pool has requests in flight: the new
  // version is acknowledged once they end, so the server stops those
  // instances only after their last answer.
  draining.clear();
  for (const auto& [addr, l] : load)
    if (!live.count(addr)) draining.push_back(addr);
  if (!pending_version) drain_deadline = SteadyClock::now() + opts.drain_ack_timeout;
  pending_version = table->version();
  if (draining.empty()) acknowledge_pending();
}

void Proxy::Impl::request_ended(std::string_view addr) {
  if (!pending_version) return;
  std::erase(draining, addr);
  if (draining.empty()) acknowledge_pending();
}

void Proxy::Impl::acknowledge_pending() {
  if (!pending_version) return;
  draining.clear();  // entries at zero go at the next table
  applied_version.store(pending_version, std::memory_order_release);
  pending_version = 0;
}

void Proxy::Impl::stop() {
  if (stopped) return;
  stopped = true;
  boost::system::error_code ignored;
  for (auto& a : acceptors) a->close(ignored);
  sweep_timer.cancel();
  cert_timer.cancel();
  pool.clear();
  // Every connection still open ends now.
  for (Deadline* d = deadlines; d; d = d->next_) d->sock_.close(ignored);
}

// ---- Proxy ------------------------------------------------------------------

Proxy::Proxy(asio::io_context& io, ProxyOptions opts) : impl_(std::make_shared<Impl>(io, std::move(opts))) {
  asio::co_spawn(io, impl_->sweep_loop(), asio::detached);
}

Proxy::~Proxy() { stop(); }

Result<std::string> Proxy::listen(const std::string& host_port) { return bind_and_accept(host_port, false); }

Result<std::string> Proxy::listen_tls(const std::string& host_port, std::shared_ptr<CertificateStore> certs) {
  if (impl_->certs && impl_->certs != certs) return fail("router: a proxy has one certificate store for its TLS listeners");
  bool first = !impl_->certs;
  impl_->certs = std::move(certs);
  auto bound = bind_and_accept(host_port, true);
  if (!bound) return bound;
  if (!impl_->tls_port) impl_->tls_port = static_cast<uint16_t>(std::stoi(bound->substr(bound->rfind(':') + 1)));
  if (first) asio::co_spawn(impl_->io, impl_->cert_loop(), asio::detached);
  return bound;
}

Result<std::string> Proxy::bind_and_accept(const std::string& host_port, bool tls) {
  auto hp = net::split_host_port(host_port);
  if (!hp) return fail(hp.error());
  boost::system::error_code ec;
  auto address = asio::ip::make_address(hp->first, ec);
  if (ec) return fail("router: bad listen address '" + host_port + "': " + ec.message());
  auto acceptor = std::make_unique<tcp::acceptor>(impl_->io);
  tcp::endpoint ep(address, hp->second);
  acceptor->open(ep.protocol(), ec);
  if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor->bind(ep, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail("router: cannot listen on " + host_port + ": " + ec.message());
  auto local = acceptor->local_endpoint();
  std::string bound = (local.address().is_v6() ? "[" + local.address().to_string() + "]" : local.address().to_string()) +
                      ":" + std::to_string(local.port());
  tcp::acceptor& ref = *acceptor;
  impl_->acceptors.push_back(std::move(acceptor));
  asio::co_spawn(impl_->io, impl_->accept_loop(ref, tls), asio::detached);
  return bound;
}

void Proxy::stop() {
  if (impl_->io.get_executor().running_in_this_thread()) {
    impl_->stop();
  } else {
    asio::post(impl_->io, [impl = impl_] { impl->stop(); });
  }
}

void Proxy::set_table(RouteTable table) {
  std::shared_ptr<const RouteTable> t = std::make_shared<RouteTable>(std::move(table));
  if (impl_->io.get_executor().running_in_this_thread()) {
    impl_->apply_table(std::move(t));
  } else {
    asio::post(impl_->io, [impl = impl_, t = std::move(t)]() mutable { impl->apply_table(std::move(t)); });
  }
}

uint64_t Proxy::applied_version() const { return impl_->applied_version.load(std::memory_order_acquire); }

void Proxy::set_access_log(AccessLogFn fn) { impl_->access_log = std::move(fn); }

size_t Proxy::in_flight(std::string_view addr) const {
  auto it = impl_->load.find(addr);
  return it == impl_->load.end() ? 0 : it->second.in_flight;
}

size_t Proxy::in_flight_for_task(std::string_view task) const {
  size_t n = 0;
  for (const auto& [addr, l] : impl_->load)
    if (l.task == task) n += l.in_flight;
  return n;
}

ProxyStats Proxy::stats() const { return impl_->stats; }

}  // namespace stele::router
