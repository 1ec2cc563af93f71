#include "metrics/graphite_server.h"

#include <utility>  // before Asio with g++ 12
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "net/http.h"         // awaitable
#include "net/http_server.h"  // split_host_port

namespace stele::metrics {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using net::awaitable;

namespace {
int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}
int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Points of one read, their names copied (the parser's views die with it).
struct Batch {
  std::string names;
  struct Item {
    uint32_t off, len;
    double value;
    int64_t time;
  };
  std::vector<Item> items;
  std::vector<Point> points;

  void add(const Point& p) {
    items.push_back(Item{uint32_t(names.size()), uint32_t(p.name.size()), p.value, p.time_s});
    names.append(p.name);
  }
  std::span<const Point> view() {
    points.clear();
    points.reserve(items.size());
    for (const Item& i : items) points.push_back(Point{std::string_view(names).substr(i.off, i.len), i.value, i.time});
    return points;
  }
  void clear() {
    names.clear();
    items.clear();
  }
};
}  // namespace

struct GraphiteServer::Impl : std::enable_shared_from_this<GraphiteServer::Impl> {
  MetricsIngest& ingest;
  std::string listen;
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  udp::socket udp_sock{io};
  std::thread thread;
  std::string bound;
  mutable std::mutex mu;  // stats
  LineCounters closed;    // of finished connections and datagrams
  uint64_t connections = 0, datagrams = 0;
  std::vector<const LineParser*> open;  // live connections' parsers
  RateLimitedLog bad_log;               // io thread only

  Impl(MetricsIngest& i, std::string l) : ingest(i), listen(std::move(l)) {}

  void report_bad(const BadLine& b, const std::string& peer) {
    auto d = bad_log.admit(now_ms());
    if (!d.emit) return;
    spdlog::warn("graphite: bad line from {} dropped: {}{}", peer, b.message(),
                 d.suppressed ? " (" + std::to_string(d.suppressed) + " more bad lines suppressed)" : "");
  }

  static void add(LineCounters& to, const LineCounters& from) {
    to.lines += from.lines;
    to.points += from.points;
    for (size_t i = 0; i < kLineStatusCount; ++i) to.by_status[i] += from.by_status[i];
  }

  awaitable<void> serve(tcp::socket sock) {
    auto self = shared_from_this();
    boost::system::error_code ec;
    std::string peer = "tcp " + sock.remote_endpoint(ec).address().to_string() + ":" +
                       std::to_string(sock.remote_endpoint(ec).port());
    LineParser parser;
    {
      std::lock_guard<std::mutex> lk(mu);
      ++connections;
      open.push_back(&parser);
    }
    std::vector<char> buf(256 << 10);
    Batch batch;
    auto on_point = [&batch](const Point& p) { batch.add(p); };
    auto on_bad = [&](const BadLine& b) { report_bad(b, peer); };
    while (true) {
      size_t n = co_await sock.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
      int64_t now = now_s();
      if (ec) {
        std::lock_guard<std::mutex> lk(mu);  // the counters are read under mu
        parser.finish(now, on_point, on_bad);
      } else {
        std::lock_guard<std::mutex> lk(mu);
        parser.feed(std::string_view(buf.data(), n), now, on_point, on_bad);
      }
      if (!batch.items.empty()) {
        ingest.append(batch.view(), now, peer, true);
        batch.clear();
      }
      if (ec) break;
    }
    std::lock_guard<std::mutex> lk(mu);
    add(closed, parser.counters());
    std::erase(open, &parser);
  }

  awaitable<void> accept_loop() {
    auto self = shared_from_this();
    while (acceptor.is_open()) {
      boost::system::error_code ec;
      tcp::socket s = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (!acceptor.is_open()) break;
        continue;
      }
      asio::co_spawn(io, serve(std::move(s)), asio::detached);
    }
  }

  awaitable<void> udp_loop() {
    auto self = shared_from_this();
    std::vector<char> buf(65536);
    LineParser parser;
    Batch batch;
    udp::endpoint from;
    while (udp_sock.is_open()) {
      boost::system::error_code ec;
      size_t n = co_await udp_sock.async_receive_from(asio::buffer(buf), from,
                                                      asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (!udp_sock.is_open()) break;
        continue;
      }
      std::string peer = "udp " + from.address().to_string() + ":" + std::to_string(from.port());
      int64_t now = now_s();
      LineCounters before = parser.counters();
      parser.feed_datagram(std::string_view(buf.data(), n), now, [&batch](const Point& p) { batch.add(p); },
                           [&](const BadLine& b) { report_bad(b, peer); });
      if (!batch.items.empty()) {
        ingest.append(batch.view(), now, peer, true);
        batch.clear();
      }
      std::lock_guard<std::mutex> lk(mu);
      ++datagrams;
      LineCounters delta = parser.counters();
      delta.lines -= before.lines;
      delta.points -= before.points;
      for (size_t i = 0; i < kLineStatusCount; ++i) delta.by_status[i] -= before.by_status[i];
      add(closed, delta);
    }
  }

  Result<std::string> bind() {
    auto hp = net::split_host_port(listen);
    if (!hp) return fail("--graphite-listen: " + hp.error().message);
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(hp->first == "localhost" ? "127.0.0.1" : hp->first, ec);
    if (ec) return fail("--graphite-listen " + listen + ": not an IP address");
    tcp::endpoint ep(addr, hp->second);
    acceptor.open(ep.protocol(), ec);
    if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail("--graphite-listen " + listen + ": " + ec.message());
    auto local = acceptor.local_endpoint();
    udp_sock.open(local.protocol() == tcp::v4() ? udp::v4() : udp::v6(), ec);
    if (!ec) udp_sock.bind(udp::endpoint(local.address(), local.port()), ec);
    if (ec) return fail("--graphite-listen " + listen + " (udp): " + ec.message());
    asio::socket_base::receive_buffer_size rcv(4 << 20);
    udp_sock.set_option(rcv, ec);
    std::string host = local.address().to_string();
    if (local.address().is_v6()) host = "[" + host + "]";
    return host + ":" + std::to_string(local.port());
  }
};

GraphiteServer::GraphiteServer(MetricsIngest& ingest, std::string listen)
    : impl_(std::make_shared<Impl>(ingest, std::move(listen))) {}

GraphiteServer::~GraphiteServer() { stop(); }

Result<std::string> GraphiteServer::start() {
  auto b = impl_->bind();
  if (!b) return b;
  impl_->bound = *b;
  asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
  asio::co_spawn(impl_->io, impl_->udp_loop(), asio::detached);
  impl_->thread = std::thread([impl = impl_] { impl->io.run(); });
  return *b;
}

void GraphiteServer::stop() {
  if (!impl_->thread.joinable()) return;
  asio::post(impl_->io, [impl = impl_] {
    boost::system::error_code ec;
    impl->acceptor.close(ec);
    impl->udp_sock.close(ec);
    impl->io.stop();
  });
  impl_->thread.join();
}

GraphiteServerStats GraphiteServer::stats() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  GraphiteServerStats s;
  s.connections = impl_->connections;
  s.datagrams = impl_->datagrams;
  s.lines = impl_->closed;
  for (const LineParser* p : impl_->open) Impl::add(s.lines, p->counters());
  return s;
}

}  // namespace stele::metrics
