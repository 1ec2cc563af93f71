#include "logs/forward_server.h"

#include <utility>  // before Asio with g++ 12

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <random>
#include <set>
#include <spdlog/spdlog.h>

#include "net/http_server.h"  // split_host_port
#include "net/offload.h"

namespace stele::logs {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using net::awaitable;
using Clock = std::chrono::steady_clock;

namespace {

std::string random_nonce() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 32; ++i) s.push_back(hex[rng() % 16]);
  return s;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string endpoint_text(const tcp::endpoint& ep) {
  auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

}  // namespace

// One connection: its socket, an idle/write deadline watched by a timer.
struct Connection {
  explicit Connection(tcp::socket s) : sock(std::move(s)), timer(sock.get_executor()) {}
  tcp::socket sock;
  asio::steady_timer timer;
  Clock::time_point deadline = Clock::time_point::max();
  std::string peer;
  void close() {
    boost::system::error_code ec;
    sock.shutdown(tcp::socket::shutdown_both, ec);
    sock.close(ec);
    timer.cancel();
  }
};

struct ForwardServer::Impl : std::enable_shared_from_this<ForwardServer::Impl> {
  Impl(asio::io_context& io, LogStore& store, ForwardServerOptions o)
      : io(io), store(store), opt(std::move(o)), acceptor(io), udp_sock(io) {}

  asio::io_context& io;
  LogStore& store;
  ForwardServerOptions opt;
  tcp::acceptor acceptor;
  udp::socket udp_sock;
  asio::thread_pool writer{1};  // the store's single writer: appends serialised here
  std::string bound;
  bool stopped = false;
  std::set<std::shared_ptr<Connection>> conns;  // io thread only
  Stats stats;

  Result<std::string> bind();
  awaitable<void> accept_loop();
  awaitable<void> heartbeat_loop();
  awaitable<void> watchdog(std::shared_ptr<Connection> c);
  awaitable<void> session(std::shared_ptr<Connection> c);
  awaitable<bool> serve(Connection& c, ForwardDecoder& dec, const std::string& nonce, bool& authed);
  awaitable<bool> handle(Connection& c, const ForwardMessage& m, const std::string& nonce, bool& authed);
  awaitable<bool> handle_events(Connection& c, const ForwardMessage& m);
  awaitable<bool> send(Connection& c, std::string bytes);
  awaitable<Result<AppendResult>> append(const ForwardMessage& m);
  bool refuse(Connection& c, const std::string& why);
};

Result<std::string> ForwardServer::Impl::bind() {
  auto hp = net::split_host_port(opt.listen);
  if (!hp) return fail(hp.error().message);
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(hp->first, ec);
  if (ec) return fail("'" + hp->first + "' is not an IP address");
  // An ephemeral TCP port may be taken on UDP: then try another one.
  for (int attempt = 0; attempt < 8; ++attempt) {
    tcp::endpoint ep(addr, hp->second);
    acceptor = tcp::acceptor(io);
    acceptor.open(ep.protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail("cannot listen on " + opt.listen + " (tcp): " + ec.message());
    uint16_t port = acceptor.local_endpoint().port();
    udp_sock = udp::socket(io);
    udp_sock.open(addr.is_v6() ? udp::v6() : udp::v4(), ec);
    if (!ec) udp_sock.bind(udp::endpoint(addr, port), ec);
    if (!ec) return endpoint_text(acceptor.local_endpoint());
    acceptor.close();
    if (hp->second != 0) return fail("cannot listen on " + opt.listen + " (udp heartbeat): " + ec.message());
  }
  return fail("cannot listen on " + opt.listen + ": no port free on both tcp and udp");
}

awaitable<void> ForwardServer::Impl::accept_loop() {
  auto self = shared_from_this();
  while (!stopped) {
    boost::system::error_code ec;
    tcp::socket sock = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (stopped) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      spdlog::warn("forward: accept on {}: {}", bound, ec.message());
      continue;
    }
    auto c = std::make_shared<Connection>(std::move(sock));
    boost::system::error_code pec;
    auto ep = c->sock.remote_endpoint(pec);
    c->peer = pec ? std::string("?") : endpoint_text(ep);
    c->sock.set_option(tcp::no_delay(true), pec);
    conns.insert(c);
    ++stats.connections;
    asio::co_spawn(io, watchdog(c), asio::detached);
    asio::co_spawn(io, session(c), asio::detached);
  }
}

// Fluentd's in_forward answers each heartbeat datagram with "\0".
awaitable<void> ForwardServer::Impl::heartbeat_loop() {
  auto self = shared_from_this();
  char buf[256];
  static const char kAnswer[1] = {0};
  while (!stopped) {
    udp::endpoint from;
    boost::system::error_code ec;
    co_await udp_sock.async_receive_from(asio::buffer(buf), from, asio::redirect_error(asio::use_awaitable, ec));
    if (stopped || ec == asio::error::operation_aborted) co_return;
    if (ec) continue;  // e.g. ICMP unreachable from an earlier answer
    co_await udp_sock.async_send_to(asio::buffer(kAnswer), from, asio::redirect_error(asio::use_awaitable, ec));
  }
}

// Closes the connection once its deadline passes (reads idle, writes stuck).
awaitable<void> ForwardServer::Impl::watchdog(std::shared_ptr<Connection> c) {
  while (c->sock.is_open()) {
    c->timer.expires_at(c->deadline);
    boost::system::error_code ec;
    co_await c->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (!c->sock.is_open()) co_return;
    if (Clock::now() >= c->deadline) {
      spdlog::info("forward: {}: closing idle connection", c->peer);
      c->close();
      co_return;
    }
  }
}

bool ForwardServer::Impl::refuse(Connection& c, const std::string& why) {
  spdlog::warn("forward: {}: closing connection: {}", c.peer, why);
  ++stats.closed_on_error;
  return false;
}

awaitable<bool> ForwardServer::Impl::send(Connection& c, std::string bytes) {
  c.deadline = Clock::now() + opt.write_timeout;
  c.timer.cancel();
  boost::system::error_code ec;
  co_await asio::async_write(c.sock, asio::buffer(bytes), asio::redirect_error(asio::use_awaitable, ec));
  co_return !ec;
}

awaitable<void> ForwardServer::Impl::session(std::shared_ptr<Connection> c) {
  auto self = shared_from_this();
  ForwardLimits limits;
  limits.max_request_bytes = opt.max_request_bytes;
  ForwardDecoder dec(limits);
  bool authed = opt.shared_key.empty();
  std::string nonce;
  bool ok = true;
  if (!authed) {
    nonce = random_nonce();
    std::string helo = encode_helo(nonce, "", true);
    ok = co_await send(*c, std::move(helo));
  }
  if (ok) co_await serve(*c, dec, nonce, authed);
  c->close();
  conns.erase(c);
}

// Reads and handles requests until the peer closes or a request is refused.
awaitable<bool> ForwardServer::Impl::serve(Connection& c, ForwardDecoder& dec, const std::string& nonce,
                                           bool& authed) {
  for (;;) {
    for (;;) {
      auto m = dec.next();
      if (!m) co_return refuse(c, m.error().message);
      if (!*m) break;
      bool keep = co_await handle(c, **m, nonce, authed);
      if (!keep || stopped) co_return false;
    }
    auto space = dec.prepare(64 << 10);
    c.deadline = Clock::now() + opt.idle_timeout;
    c.timer.cancel();
    boost::system::error_code ec;
    size_t n = co_await c.sock.async_read_some(asio::buffer(space.data(), space.size()),
                                               asio::redirect_error(asio::use_awaitable, ec));
    dec.commit(n);
    if (ec) {
      if (dec.buffered() > 0 && ec == asio::error::eof) {
        // A partial request at EOF: decode what is complete, report the rest.
        auto m = dec.next();
        while (m && *m) {
          bool keep = co_await handle(c, **m, nonce, authed);
          if (!keep) co_return false;
          m = dec.next();
        }
        if (!m) co_return refuse(c, m.error().message);
        if (dec.buffered() > 0)
          co_return refuse(c, "connection closed inside a request (" + std::to_string(dec.buffered()) + " bytes)");
      }
      co_return true;
    }
  }
}

awaitable<bool> ForwardServer::Impl::handle(Connection& c, const ForwardMessage& m, const std::string& nonce,
                                            bool& authed) {
  ++stats.requests;
  if (m.kind == ForwardKind::kPing) {
    if (opt.shared_key.empty()) co_return refuse(c, "PING without a handshake (no shared key configured)");
    if (authed) co_return refuse(c, "second PING after authentication");
    auto v = verify_ping(m.ping, nonce, opt.shared_key);
    std::string pong = encode_pong(bool(v), v ? "" : v.error().message, opt.self_hostname, m.ping, nonce,
                                   opt.shared_key);
    bool sent = co_await send(c, std::move(pong));
    if (!v) co_return refuse(c, "handshake refused (" + v.error().message + ") from host '" +
                                    std::string(m.ping.hostname) + "'");
    authed = true;
    co_return sent;
  }
  if (m.kind != ForwardKind::kEvents) co_return refuse(c, "unexpected handshake or ack message from a client");
  if (!authed) co_return refuse(c, "events before the shared-key handshake (PING expected)");
  co_return co_await handle_events(c, m);
}

awaitable<Result<AppendResult>> ForwardServer::Impl::append(const ForwardMessage& m) {
  // Entries view the decoder's buffer, untouched while this connection waits.
  const std::vector<LogEntry>* entries = &m.entries;
  std::vector<LogEntry> timed;
  bool untimed = false;
  for (const auto& e : m.entries) untimed |= e.time_ns == 0;
  if (untimed) {
    timed = m.entries;
    int64_t now = now_ns();
    for (auto& e : timed)
      if (e.time_ns == 0) e.time_ns = now;
    entries = &timed;
  }
  std::string_view chunk = m.options.chunk.value_or(std::string_view{});
  LogStore* st = &store;
  auto work = [st, entries, chunk]() -> Result<AppendResult> {
    return st->append(std::span<const LogEntry>(*entries), chunk);
  };
  co_return co_await net::offload(writer, work);
}

awaitable<bool> ForwardServer::Impl::handle_events(Connection& c, const ForwardMessage& m) {
  if (m.options.fluent_signal.value_or(0) != 0) {
    if (!opt.signal_sink)
      co_return refuse(c, "fluent_signal " + std::to_string(*m.options.fluent_signal) +
                              " request refused: no sink for that signal on this server");
    if (auto r = opt.signal_sink(m); !r)
      co_return refuse(c, "fluent_signal " + std::to_string(*m.options.fluent_signal) + " request refused: " +
                              r.error().message);
  } else if (!m.entries.empty()) {
    c.deadline = Clock::time_point::max();  // our own disk, not the peer, is what we wait for
    c.timer.cancel();
    auto r = co_await append(m);
    if (!r) co_return refuse(c, "store refused " + std::to_string(m.entries.size()) + " record(s) of tag '" +
                                    std::string(m.tag) + "': " + r.error().message);
    stats.records += r->stored;
    stats.duplicates += r->duplicates;
  } else if (!m.payload.empty()) {
    co_return refuse(c, "PackedForward payload without entries for tag '" + std::string(m.tag) + "'");
  }
  if (!m.options.chunk || stopped) co_return !stopped;
  std::string ack = m.json ? encode_ack_json(*m.options.chunk) : encode_ack(*m.options.chunk);
  bool sent = co_await send(c, std::move(ack));
  stats.acks += sent;
  co_return sent;
}

ForwardServer::ForwardServer(asio::io_context& io, LogStore& store, ForwardServerOptions options)
    : impl_(std::make_shared<Impl>(io, store, std::move(options))) {}

ForwardServer::~ForwardServer() {
  stop();
  impl_->writer.join();  // no append may outlive the decoder buffers it reads
}

Result<std::string> ForwardServer::start() {
  auto b = impl_->bind();
  if (!b) return fail("--forward-listen: " + b.error().message);
  impl_->bound = *b;
  asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
  asio::co_spawn(impl_->io, impl_->heartbeat_loop(), asio::detached);
  return *b;
}

std::string ForwardServer::address() const { return impl_->bound; }

void ForwardServer::stop() {
  auto& i = *impl_;
  if (i.stopped) return;
  i.stopped = true;
  boost::system::error_code ec;
  i.acceptor.close(ec);
  i.udp_sock.close(ec);
  for (auto& c : i.conns) c->close();
}

ForwardServer::Stats ForwardServer::stats() const { return impl_->stats; }

}  // namespace stele::logs
