#include "logs/forward_client.h"

#include <sys/socket.h>

#include <cerrno>
#include <random>

#include <utility>  // before Asio with g++ 12
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "logs/forward_codec.h"
#include "net/http_server.h"  // split_host_port
#include "net/tls.h"

namespace stele::logs {

namespace asio = boost::asio;
using asio::ip::tcp;
using net::awaitable;

namespace {

std::string random_salt() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 32; ++i) s.push_back(hex[rng() % 16]);
  return s;
}

const char* kind_name(ForwardKind k) {
  switch (k) {
    case ForwardKind::kEvents: return "an events request";
    case ForwardKind::kPing: return "a PING";
    case ForwardKind::kHelo: return "a HELO";
    case ForwardKind::kPong: return "a PONG";
    case ForwardKind::kAck: return "an ack";
  }
  return "a message";
}

}  // namespace

// All state lives on the executor's thread. Every socket operation runs under
// a deadline (`timer`): when it passes, the socket is closed, which fails the
// pending operation; `timed_out` then turns that failure into "timed out".
struct ForwardClient::Impl : std::enable_shared_from_this<ForwardClient::Impl> {
  Impl(asio::any_io_executor io, ForwardClientOptions o)
      : opt(std::move(o)), sock(io), resolver(io), timer(io) {}

  ForwardClientOptions opt;
  tcp::socket sock;  // the connection; moved into `tls` once connected with TLS
  std::unique_ptr<asio::ssl::stream<tcp::socket>> tls;  // the TLS connection (opt.tls)
  tcp::resolver resolver;
  asio::steady_timer timer;
  ForwardDecoder dec;          // the server's answers (HELO, PONG, acks)
  bool connected = false;      // connected and, with a shared key, authenticated
  bool keepalive = true;       // the server's HELO may ask us to reconnect per request
  bool timed_out = false;      // the deadline closed the socket
  bool busy = false;           // a send() is in progress
  uint64_t deadline_gen = 0;   // a timer handler of an older deadline is ignored
  std::chrono::milliseconds armed{0};

  void arm(std::chrono::milliseconds t);
  void disarm();
  void close_socket();
  tcp::socket& lowest() { return tls ? tls->next_layer() : sock; }
  bool stale();
  tl::unexpected<Error> failure(const std::string& cause) const;
  tl::unexpected<Error> io_failure(const char* doing, const boost::system::error_code& ec) const;

  awaitable<Result<void>> exchange(std::string_view request, std::string_view chunk_id);
  awaitable<Result<void>> connect();
  awaitable<Result<void>> handshake();
  awaitable<Result<void>> handshake_tls(const std::string& host);
  awaitable<Result<void>> write(std::string_view bytes, const char* doing);
  awaitable<Result<const ForwardMessage*>> read_message(const char* doing);
};

void ForwardClient::Impl::arm(std::chrono::milliseconds t) {
  uint64_t gen = ++deadline_gen;
  timed_out = false;
  armed = t;
  timer.expires_after(t);
  std::weak_ptr<Impl> weak = weak_from_this();
  timer.async_wait([weak, gen](boost::system::error_code ec) {
    auto self = weak.lock();
    if (!self || ec || gen != self->deadline_gen) return;
    self->timed_out = true;
    self->close_socket();
  });
}

void ForwardClient::Impl::disarm() {
  ++deadline_gen;
  timer.cancel();
}

void ForwardClient::Impl::close_socket() {
  boost::system::error_code ec;
  resolver.cancel();
  tcp::socket& s = lowest();
  if (s.is_open()) {
    s.shutdown(tcp::socket::shutdown_both, ec);
    s.close(ec);
  }
  connected = false;
}

// A kept connection the server has closed meanwhile (idle timeout, restart)
// shows as EOF or an error to a non-blocking peek; unsolicited bytes mean the
// stream is out of step. Either way: reconnect rather than send into it.
bool ForwardClient::Impl::stale() {
  char c;
  if (tls && SSL_pending(tls->native_handle()) > 0) return true;
  ssize_t n = ::recv(lowest().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

tl::unexpected<Error> ForwardClient::Impl::failure(const std::string& cause) const {
  return fail("forward to " + opt.address + ": " + cause);
}

tl::unexpected<Error> ForwardClient::Impl::io_failure(const char* doing,
                                                      const boost::system::error_code& ec) const {
  if (timed_out) return failure(std::string("timed out after ") + std::to_string(armed.count()) + " ms " + doing);
  if (ec == asio::error::eof || ec == asio::error::connection_reset)
    return failure(std::string("connection closed by the server ") + doing);
  if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor)
    return failure(std::string("connection closed locally ") + doing);
  return failure(std::string(doing) + ": " + ec.message());
}

awaitable<Result<void>> ForwardClient::Impl::write(std::string_view bytes, const char* doing) {
  boost::system::error_code ec;
  auto buf = asio::buffer(bytes.data(), bytes.size());
  if (tls) co_await asio::async_write(*tls, buf, asio::redirect_error(asio::use_awaitable, ec));
  else co_await asio::async_write(sock, buf, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return io_failure(doing, ec);
  co_return Result<void>{};
}

// The next complete message from the server, read under the armed deadline.
// The views in the message stay valid until the next read.
awaitable<Result<const ForwardMessage*>> ForwardClient::Impl::read_message(const char* doing) {
  for (;;) {
    auto m = dec.next();
    if (!m) co_return failure(std::string("malformed answer ") + doing + ": " + m.error().message);
    if (*m) co_return *m;
    auto space = dec.prepare(4096);
    auto buf = asio::buffer(space.data(), space.size());
    boost::system::error_code ec;
    size_t n = tls ? co_await tls->async_read_some(buf, asio::redirect_error(asio::use_awaitable, ec))
                   : co_await sock.async_read_some(buf, asio::redirect_error(asio::use_awaitable, ec));
    dec.commit(n);
    if (ec) co_return io_failure(doing, ec);
  }
}

awaitable<Result<void>> ForwardClient::Impl::connect() {
  auto hp = net::split_host_port(opt.address);
  if (!hp) co_return failure(hp.error().message);
  if (hp->second == 0) co_return failure("port 0 is not a destination");
  std::string host = hp->first;
  std::string port = std::to_string(hp->second);
  close_socket();
  tls.reset();  // no operation is pending on it: close_socket() ended the last one
  arm(opt.connect_timeout);
  boost::system::error_code ec;
  auto endpoints = co_await resolver.async_resolve(host, port, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return timed_out ? io_failure("resolving", ec) : failure("cannot resolve " + host + ": " + ec.message());
  co_await asio::async_connect(sock, endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return timed_out ? io_failure("connecting", ec) : failure("cannot connect: " + ec.message());
  sock.set_option(tcp::no_delay(true), ec);
  if (opt.tls) {
    auto t = co_await handshake_tls(host);  // still under the connect deadline
    if (!t) co_return t;
  }
  dec = ForwardDecoder();
  keepalive = true;
  if (!opt.shared_key.empty()) {
    auto h = co_await handshake();  // still under the connect deadline
    if (!h) co_return h;
  }
  disarm();
  connected = true;
  co_return Result<void>{};
}

awaitable<Result<void>> ForwardClient::Impl::handshake_tls(const std::string& host) {
  auto ctx = net::client_context();
  if (!ctx) co_return failure(ctx.error().message);
  tls = std::make_unique<asio::ssl::stream<tcp::socket>>(std::move(sock), **ctx);
  if (auto r = net::set_peer_name(tls->native_handle(), host); !r) co_return failure(r.error().message);
  boost::system::error_code ec;
  co_await tls->async_handshake(asio::ssl::stream_base::client, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return timed_out ? io_failure("in the TLS handshake", ec)
                              : failure(net::handshake_failure(tls->native_handle(), opt.address, ec));
  co_return Result<void>{};
}

// HELO -> PING -> PONG (forward_codec.h): we prove the shared key, and the
// PONG's digest proves the server knows it too.
awaitable<Result<void>> ForwardClient::Impl::handshake() {
  auto m = co_await read_message("waiting for the server's HELO");
  if (!m) co_return tl::unexpected(m.error());
  if ((*m)->kind != ForwardKind::kHelo)
    co_return failure(std::string("expected HELO (a shared key is configured), got ") + kind_name((*m)->kind));
  const Helo& helo = (*m)->helo;
  if (!helo.auth_salt.empty())
    co_return failure("the server asks for username/password authentication, which is not supported");
  keepalive = helo.keepalive;
  std::string nonce(helo.nonce);
  std::string salt = random_salt();
  std::string ping = encode_ping(opt.self_hostname, salt, helo, opt.shared_key);
  auto w = co_await write(ping, "sending PING");
  if (!w) co_return w;
  m = co_await read_message("waiting for PONG");
  if (!m) co_return tl::unexpected(m.error());
  if ((*m)->kind != ForwardKind::kPong)
    co_return failure(std::string("expected PONG, got ") + kind_name((*m)->kind));
  if (auto v = verify_pong((*m)->pong, salt, nonce, opt.shared_key); !v)
    co_return failure("shared-key handshake failed: " + v.error().message);
  co_return Result<void>{};
}

awaitable<Result<void>> ForwardClient::Impl::exchange(std::string_view request, std::string_view chunk_id) {
  if (connected && stale()) close_socket();
  if (!connected) {
    auto c = co_await connect();
    if (!c) co_return c;
  }
  arm(opt.ack_timeout);
  auto w = co_await write(request, "sending a request");
  if (!w) co_return w;
  if (chunk_id.empty()) {  // the request asks for no ack: written is all we learn
    disarm();
    co_return Result<void>{};
  }
  auto m = co_await read_message("waiting for the ack");
  if (!m) co_return tl::unexpected(m.error());
  disarm();
  const ForwardMessage& msg = **m;
  if (msg.kind == ForwardKind::kHelo)
    co_return failure("the server requires the shared-key handshake (it sent HELO): configure its shared key");
  if (msg.kind != ForwardKind::kAck)
    co_return failure(std::string("expected an ack, got ") + kind_name(msg.kind));
  if (msg.ack != chunk_id)
    co_return failure("ack for chunk '" + std::string(msg.ack) + "', expected '" + std::string(chunk_id) + "'");
  if (!keepalive) close_socket();
  co_return Result<void>{};
}

ForwardClient::ForwardClient(asio::any_io_executor io, ForwardClientOptions options)
    : impl_(std::make_shared<Impl>(std::move(io), std::move(options))) {}

ForwardClient::~ForwardClient() { close(); }

awaitable<Result<void>> ForwardClient::send(std::string_view request, std::string_view chunk_id) {
  std::shared_ptr<Impl> self = impl_;  // outlives this ForwardClient if it is destroyed meanwhile
  if (self->busy) co_return self->failure("send() called while another send() is in progress");
  self->busy = true;
  Result<void> r = co_await self->exchange(request, chunk_id);
  self->busy = false;
  if (!r) {
    self->disarm();
    self->close_socket();
  }
  co_return r;
}

void ForwardClient::close() {
  impl_->disarm();
  impl_->close_socket();
}

bool ForwardClient::connected() const { return impl_->connected; }

const ForwardClientOptions& ForwardClient::options() const { return impl_->opt; }

}  // namespace stele::logs
