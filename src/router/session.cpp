// One client connection of the proxy: (TLS handshake,) read a head, route,
// forward, answer, repeat (proxy.h has the contract; forward.cpp moves the
// bytes). Session is a template over the client's stream, tcp::socket or
// SslStream; the few places they differ test kTls at compile time.
#include <utility>  // before asio, for g++ 12

#include <array>
#include <span>
#include <type_traits>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "router/forward.h"
#include "router/messages.h"
#include "router/proxy_impl.h"

namespace stele::router {

using asio::use_awaitable;
using http1::BodyKind;

namespace {

enum class HeadRead : uint8_t { kOk, kClosed, kBad };
enum class ResponseRead : uint8_t { kOk, kClosedEarly, kBroken, kTimeout, kBad };

// Holds one in-flight request against an upstream's count.
class InFlight {
 public:
  InFlight(Proxy::Impl& p, std::string_view addr, std::string_view task) : p_(p), entry_(p.load_entry(addr, task)) {
    ++entry_.second.in_flight;
  }
  // The entry outlives the count: entries are erased only at zero.
  ~InFlight() {
    if (--entry_.second.in_flight == 0) p_.request_ended(entry_.first);
  }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  Proxy::Impl& p_;
  StringMap<UpstreamLoad>::value_type& entry_;
};

// "http://host/x?y" -> authority "host", origin form "/x?y"; false for
// origin-form targets.
bool split_absolute_form(std::string_view target, std::string_view& authority, std::string_view& origin) {
  size_t scheme = target.find("://");
  if (scheme == std::string_view::npos || scheme > 5 || target[0] == '/') return false;
  std::string_view rest = target.substr(scheme + 3);
  size_t slash = rest.find_first_of("/?");
  authority = rest.substr(0, slash);
  origin = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
  return true;
}

template <class Stream>
class Session {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, SslStream>;

  Session(std::shared_ptr<Proxy::Impl> proxy, Stream sock)
      : proxy_(std::move(proxy)), p_(*proxy_), sock_(std::move(sock)), deadline_(p_, tcp_of(sock_)) {
    boost::system::error_code ec;
    auto peer = tcp_of(sock_).remote_endpoint(ec);
    if (!ec) peer_ = peer.address().to_string();
    tcp_of(sock_).set_option(tcp::no_delay(true), ec);
    load_fn_ = [this](std::string_view addr) -> size_t {
      auto it = p_.load.find(addr);
      return it == p_.load.end() ? 0 : it->second.in_flight;
    };
  }

  awaitable<void> run() {
    if constexpr (kTls) {
      if (!co_await handshake()) co_return;
    }
    for (bool first = true;; first = false) {
      HeadRead r = co_await read_request_head(first);
      if (r == HeadRead::kClosed) break;
      if (r == HeadRead::kBad) {
        begin_request();
        co_await answer(parse_error_.status, parse_error_.reason, false);
        break;
      }
      bool again = co_await handle_request();
      if (!again) break;
    }
    boost::system::error_code ec;
    tcp_of(sock_).close(ec);
  }

 private:
  Side<Stream> client() { return Side<Stream>{sock_, buf_, deadline_}; }
  static Side<tcp::socket> side_of(UpstreamConn& up) { return Side<tcp::socket>{up.sock, up.buf, up.deadline}; }

  // The TLS handshake, under the header timeout: a client that stalls in it
  // is cut as one that stalls in its head. Failures (no certificate for the
  // name, no common protocol, a port scan) are the client's: logged at debug.
  awaitable<bool> handshake() {
    boost::system::error_code ec;
    deadline_.expires_after(p_.opts.header_timeout);
    co_await sock_.async_handshake(asio::ssl::stream_base::server, asio::redirect_error(use_awaitable, ec));
    if (!ec) co_return true;
    spdlog::debug("router: TLS handshake with {} failed: {}", peer_, deadline_.fired ? "timed out" : ec.message());
    tcp_of(sock_).close(ec);
    co_return false;
  }

  awaitable<HeadRead> read_request_head(bool first) {
    const auto& o = p_.opts;
    bool started = first || !buf_.empty();
    deadline_.expires_after(started ? o.header_timeout : o.keepalive_timeout);
    size_t scanned = 0;
    for (;;) {
      if (!buf_.empty()) {
        auto st = http1::parse_request(buf_.data(), o.max_head_bytes, scanned, req_, parse_error_);
        if (st == http1::ParseStatus::kDone) co_return HeadRead::kOk;
        if (st == http1::ParseStatus::kError) co_return HeadRead::kBad;
      }
      boost::system::error_code ec;
      auto space = buf_.prepare(o.max_head_bytes + 1);
      size_t n = co_await sock_.async_read_some(space, asio::redirect_error(use_awaitable, ec));
      if (ec) co_return HeadRead::kClosed;  // closed, reset or timed out: nobody to answer
      buf_.commit(n);
      if (!started) {  // the head's clock starts with its first byte
        started = true;
        deadline_.expires_after(o.header_timeout);
      }
    }
  }

  void begin_request() {
    start_ = SteadyClock::now();
    wall_ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch()).count();
    status_ = 0;
    sent_ = 0;
    method_.clear();
    target_.clear();
    host_.clear();
    app_ = task_ = upstream_ = {};
  }

  // Returns whether the connection stays open for another request.
  awaitable<bool> handle_request() {
    begin_request();
    deadline_.clear();  // the head's timeout is over; each transfer sets its own
    method_.assign(req_.method);
    target_.assign(req_.target);
    http1::ParseError err;
    bool ok = http1::request_info(req_, info_, err);
    host_.assign(info_.host);
    upgrade_.assign(info_.upgrade_protocol);
    std::string_view target = target_;
    std::string_view authority;
    if (split_absolute_form(target_, authority, target)) host_.assign(authority);
    if (!ok) co_return co_await refuse(err.status, err.reason);
    const ProxyOptions& o = p_.opts;
    if (info_.body == BodyKind::kLength && o.max_body_bytes && info_.length > o.max_body_bytes)
      co_return co_await refuse(413, "request body larger than " + std::to_string(o.max_body_bytes) + " bytes");
    table_ = p_.table;
    std::string_view path = target.substr(0, target.find('?'));
    const Route* route = table_->match(host_, path);
    if (!route)
      co_return co_await refuse(503, "no route for host '" + host_ + "' and path '" + std::string(path) + "'");
    app_ = route->app;
    if (!kTls && route->redirect_https) co_return co_await redirect_to_https(target);
    co_return co_await proxy_request(*route, target);
  }

  // 301 for GET and HEAD (cacheable, what browsers expect), 308 for other
  // methods: unlike 301 it keeps the method and the body.
  awaitable<bool> redirect_to_https(std::string_view target) {
    std::string scratch;
    std::string location = "https://" + std::string(normalize_host(host_, scratch));
    if (uint16_t port = p_.https_port(); port != 443) location += ":" + std::to_string(port);
    location += target;
    buf_.consume(req_.head_len);
    const bool keep = info_.keep_alive && info_.body == BodyKind::kNone;
    const int status = method_ == "GET" || method_ == "HEAD" ? 301 : 308;
    write_redirect(status, location, keep, out_);
    co_return co_await send_own(status, keep);
  }

  // Answers a request whose head is in req_ without reading its body: the
  // connection stays open only when there is no body to skip.
  awaitable<bool> refuse(int status, std::string cause) {
    buf_.consume(req_.head_len);
    bool keep = info_.keep_alive && info_.body == BodyKind::kNone && status != 400 && status != 431;
    co_return co_await answer(status, cause, keep);
  }

  awaitable<bool> answer(int status, std::string_view cause, bool keep) {
    write_error_response(status, app_, cause, keep, out_);
    if (status >= 500) ++p_.stats.errors_5xx;
    co_return co_await send_own(status, keep);
  }

  // Sends out_ (a complete response the proxy made) and logs it.
  awaitable<bool> send_own(int status, bool keep) {
    status_ = status;
    size_t head_end = out_.find("\r\n\r\n");
    sent_ = head_end == std::string::npos ? 0 : out_.size() - head_end - 4;
    bool ok = co_await write_all(client(), out_, p_.opts.idle_timeout);
    log();
    if (!ok) co_return false;
    if (!keep) co_await linger_close();
    co_return keep;
  }

  // Half-closes and discards what the client still sends for a moment, so
  // the answer is not lost to a reset while its request is still arriving.
  // Over TLS the half-close is a close_notify, and the shutdown reads (and
  // drops) records until the client's close_notify or the deadline.
  awaitable<void> linger_close() {
    boost::system::error_code ec;
    deadline_.expires_after(std::min<std::chrono::milliseconds>(p_.opts.header_timeout, std::chrono::seconds(2)));
    if constexpr (kTls) {
      co_await sock_.async_shutdown(asio::redirect_error(use_awaitable, ec));
      tcp_of(sock_).close(ec);
      co_return;
    }
    tcp_of(sock_).shutdown(tcp::socket::shutdown_send, ec);
    size_t discarded = 0;
    while (!ec && discarded < (1u << 20)) {
      buf_.consume(buf_.size());
      auto space = buf_.prepare(16 * 1024);
      discarded += co_await sock_.async_read_some(space, asio::redirect_error(use_awaitable, ec));
    }
    tcp_of(sock_).close(ec);
  }

  awaitable<std::unique_ptr<UpstreamConn>> connect(const Instance& in, size_t port_index, int& status,
                                                   std::string& cause) {
    auto up = std::make_unique<UpstreamConn>(p_, in.addrs[port_index]);
    const uint16_t port = in.ports[port_index];
    boost::system::error_code ec;
    tcp::endpoint ep;
    auto ip = asio::ip::make_address(in.host, ec);
    if (!ec) {
      ep = tcp::endpoint(ip, port);
    } else {
      tcp::resolver resolver(p_.io);
      std::string service = std::to_string(port);
      auto results = co_await resolver.async_resolve(in.host, service, asio::redirect_error(use_awaitable, ec));
      if (ec || results.empty()) {
        status = 502;
        cause = "cannot resolve upstream host " + in.host;
        co_return nullptr;
      }
      ep = results.begin()->endpoint();
    }
    up->deadline.expires_after(p_.opts.connect_timeout);
    co_await up->sock.async_connect(ep, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      status = up->deadline.fired ? 504 : 502;
      cause = "connecting to " + up->addr +
              (up->deadline.fired ? " timed out after " + std::to_string(p_.opts.connect_timeout.count()) + " ms"
                                  : " failed: " + ec.message());
      co_return nullptr;
    }
    up->sock.set_option(tcp::no_delay(true), ec);
    ++p_.stats.upstream_connects;
    co_return up;
  }

  // Picks instances and connects until one answers the connect, trying at
  // most max_connect_attempts distinct instances.
  awaitable<std::unique_ptr<UpstreamConn>> acquire(const Route& route, const Instance*& inst, bool& reused,
                                                   int& status, std::string& cause) {
    std::array<const Instance*, 16> tried{};
    size_t ntried = 0;
    const size_t attempts = std::min(p_.opts.max_connect_attempts, tried.size());
    const RouteTable::LoadFn no_load;
    const RouteTable::LoadFn& load = route.balance == Balance::kLeastConn ? load_fn_ : no_load;
    while (ntried < attempts) {
      std::span<const Instance* const> exclude(tried.data(), ntried);
      inst = table_->pick(route, exclude, load);
      if (!inst) break;
      if (ntried > 0) ++p_.stats.retries;
      tried[ntried++] = inst;
      auto up = p_.take_pooled(inst->addrs[route.port_index]);
      if (up) {
        ++p_.stats.upstream_reuses;
        reused = true;
        co_return up;
      }
      up = co_await connect(*inst, route.port_index, status, cause);
      if (up) co_return up;
      upstream_ = inst->addrs[route.port_index];
    }
    if (ntried == 0) {
      status = 503;
      cause = table_->instances(route.app) ? "no healthy instance" : "the app has no instances";
    }
    co_return nullptr;
  }

  awaitable<ResponseRead> read_response_head(UpstreamConn& up) {
    const auto& o = p_.opts;
    up.deadline.expires_after(o.response_timeout);
    size_t scanned = 0;
    bool got_any = !up.buf.empty();
    for (;;) {
      if (!up.buf.empty()) {
        auto st = http1::parse_response(up.buf.data(), o.max_head_bytes, scanned, resp_, parse_error_);
        if (st == http1::ParseStatus::kDone) co_return ResponseRead::kOk;
        if (st == http1::ParseStatus::kError) co_return ResponseRead::kBad;
      }
      boost::system::error_code ec;
      auto space = up.buf.prepare(o.max_head_bytes + 1);
      size_t n = co_await up.sock.async_read_some(space, asio::redirect_error(use_awaitable, ec));
      if (ec) {
        if (up.deadline.fired) co_return ResponseRead::kTimeout;
        co_return got_any ? ResponseRead::kBroken : ResponseRead::kClosedEarly;
      }
      got_any = true;
      up.buf.commit(n);
    }
  }

  std::string response_failure(ResponseRead r, int& status) const {
    std::string who = "upstream " + std::string(upstream_);
    status = 502;
    switch (r) {
      case ResponseRead::kTimeout:
        status = 504;
        return who + " did not answer within " + std::to_string(p_.opts.response_timeout.count()) + " ms";
      case ResponseRead::kClosedEarly: return who + " closed the connection before answering";
      case ResponseRead::kBroken: return who + " closed or reset the connection in the middle of its response head";
      case ResponseRead::kBad: return who + " sent an invalid response head: " + parse_error_.reason;
      case ResponseRead::kOk: break;
    }
    return who;
  }

  // Sends the request (head from out_, body from the client) and reads the
  // response head into resp_. An idempotent request without a body whose
  // upstream closed before any answer is sent again, up to
  // max_connect_attempts more times: first on a new connection to the same
  // instance when the dead one came from the pool (the instance merely
  // closed an idle connection), then to instances not tried yet (this one is
  // likely going away, as nginx's proxy_next_upstream does for GET).
  awaitable<ResponseRead> exchange(std::unique_ptr<UpstreamConn>& up, const Route& route, const Instance*& inst,
                                   bool reused, Xfer& sent) {
    const ProxyOptions& o = p_.opts;
    const bool replayable = info_.body == BodyKind::kNone && http1::is_idempotent(method_);
    if (info_.expect_continue && info_.body != BodyKind::kNone && req_minor_ == 1) {
      bool ok = co_await write_all(client(), "HTTP/1.1 100 Continue\r\n\r\n", o.idle_timeout);
      if (!ok) co_return ResponseRead::kBroken;
    }
    std::array<const Instance*, 16> tried{inst};
    size_t ntried = 1;
    size_t resends = 0;
    const size_t max_resends = std::min(o.max_connect_attempts, tried.size() - 1);
    for (;;) {
      BodyPlan plan{info_.body, info_.length, o.max_body_bytes, o.idle_timeout, 64 * 1024};
      uint64_t moved = 0;
      sent = co_await forward_body(client(), side_of(*up), plan, out_, moved);
      deadline_.clear();  // the client waits for the answer under the upstream's deadline
      if (sent != Xfer::kDone && sent != Xfer::kWriteFailed) co_return ResponseRead::kBroken;
      ResponseRead r = co_await read_response_head(*up);
      bool stale = r == ResponseRead::kClosedEarly || (sent == Xfer::kWriteFailed && r != ResponseRead::kOk);
      if (!stale || !replayable) co_return r;
      // Find a connection for the resend; a refused connect moves on too.
      up.reset();
      while (!up) {
        if (resends == max_resends) co_return r;
        ++resends;
        const Instance* next = inst;
        if (!reused) {
          std::span<const Instance* const> exclude(tried.data(), ntried);
          next = table_->pick(route, exclude, route.balance == Balance::kLeastConn ? load_fn_ : RouteTable::LoadFn());
          if (!next) co_return r;
          tried[ntried++] = next;
        }
        reused = false;
        ++p_.stats.retries;
        int status = 0;
        std::string cause;
        up = co_await connect(*next, route.port_index, status, cause);
        inst = next;
        upstream_ = inst->addrs[route.port_index];
        task_ = inst->task;
      }
    }
  }

  awaitable<bool> proxy_request(const Route& route, std::string_view target) {
    const ProxyOptions& o = p_.opts;
    const Instance* inst = nullptr;
    bool reused = false;
    int status = 0;
    std::string cause;
    req_minor_ = req_.minor_version;
    std::unique_ptr<UpstreamConn> up = co_await acquire(route, inst, reused, status, cause);
    if (!up) co_return co_await refuse(status, cause);
    upstream_ = inst->addrs[route.port_index];
    task_ = inst->task;
    InFlight counted(p_, upstream_, task_);
    ForwardedFor fwd{peer_, host_, kTls};
    write_upstream_head(req_, info_, target, fwd, out_);
    buf_.consume(req_.head_len);

    Xfer sent = Xfer::kDone;
    ResponseRead r = co_await exchange(up, route, inst, reused, sent);
    // Skip 1xx interim responses (100 Continue was answered by the proxy).
    while (r == ResponseRead::kOk && resp_.status < 200 && resp_.status != 101) {
      up->buf.consume(resp_.head_len);
      r = co_await read_response_head(*up);
    }
    const bool request_done = sent == Xfer::kDone;
    if (sent == Xfer::kTooLarge)
      co_return co_await answer(413, "request body larger than " + std::to_string(o.max_body_bytes) + " bytes", false);
    if (sent == Xfer::kBadFraming) co_return co_await answer(400, "malformed chunked request body", false);
    if (sent == Xfer::kReadClosed || sent == Xfer::kReadTimeout) {
      status_ = 499;  // nginx's "client closed request"
      log();
      co_return false;
    }
    if (r != ResponseRead::kOk) {
      cause = response_failure(r, status);
      co_return co_await answer(status, cause, request_done && info_.keep_alive);
    }
    co_return co_await relay_response(std::move(up), request_done);
  }

  awaitable<bool> relay_response(std::unique_ptr<UpstreamConn> up, bool request_done) {
    const ProxyOptions& o = p_.opts;
    http1::MessageInfo rinfo;
    http1::ParseError err;
    if (!http1::response_info(resp_, method_ == "HEAD", rinfo, err) || (resp_.status == 101 && !info_.upgrade)) {
      std::string cause = "upstream " + std::string(upstream_) + " sent an invalid response head: " +
                          (resp_.status == 101 ? "101 to a request without Upgrade" : err.reason);
      co_return co_await answer(502, cause, false);
    }
    const bool upgraded = resp_.status == 101;
    if (upgraded && rinfo.upgrade_protocol.empty()) rinfo.upgrade_protocol = upgrade_;
    const bool keep = info_.keep_alive && request_done && !upgraded && rinfo.body != BodyKind::kUntilClose;
    write_client_head(resp_, rinfo, keep, req_minor_, out_);
    status_ = resp_.status;
    up->buf.consume(resp_.head_len);
    if (upgraded) {
      bool ok = co_await write_all(client(), out_, o.idle_timeout);
      log();
      if (ok) co_await tunnel(p_.io, client(), side_of(*up), o.tunnel_timeout);
      co_return false;
    }
    BodyPlan plan{rinfo.body, rinfo.length, 0, o.idle_timeout, 64 * 1024};
    Xfer x = co_await forward_body(side_of(*up), client(), plan, out_, sent_);
    log();
    if (x != Xfer::kDone) co_return false;  // a response cut short: the client sees the connection end
    if (rinfo.keep_alive && request_done && up->buf.empty() && rinfo.body != BodyKind::kUntilClose)
      p_.release(std::move(up));
    co_return keep;
  }

  void log() {
    ++p_.stats.requests;
    if (!p_.access_log) return;
    AccessRecord r;
    r.time_ms = wall_ms_;
    r.client = peer_;
    r.host = host_;
    r.method = method_;
    r.path = target_;
    r.status = status_;
    r.bytes_sent = sent_;
    r.request_time_s = std::chrono::duration<double>(SteadyClock::now() - start_).count();
    r.upstream = upstream_;
    r.app = app_;
    r.task = task_;
    r.scheme = kTls ? "https" : "http";
    p_.access_log(r);
  }

  std::shared_ptr<Proxy::Impl> proxy_;
  Proxy::Impl& p_;
  Stream sock_;
  ByteBuffer buf_;
  Deadline deadline_;
  std::string peer_;
  RouteTable::LoadFn load_fn_;
  http1::RequestHead req_;
  http1::ResponseHead resp_;
  http1::MessageInfo info_;
  http1::ParseError parse_error_;
  // The current request; strings keep their capacity across requests.
  int req_minor_ = 1;
  std::string method_, target_, host_, upgrade_, out_;
  std::shared_ptr<const RouteTable> table_;  // keeps app_/task_/upstream_ alive
  std::string_view app_, task_, upstream_;
  int status_ = 0;
  uint64_t sent_ = 0;
  SteadyClock::time_point start_;
  int64_t wall_ms_ = 0;
};

}  // namespace

namespace {
template <class Stream>
awaitable<void> serve(std::shared_ptr<Proxy::Impl> proxy, Stream sock) {
  Session<Stream> session(std::move(proxy), std::move(sock));
  try {
    co_await session.run();
  } catch (const std::exception& e) {
    spdlog::warn("router: connection ended by an error: {}", e.what());
  }
}
}  // namespace

awaitable<void> serve_client(std::shared_ptr<Proxy::Impl> proxy, tcp::socket sock) {
  return serve(std::move(proxy), std::move(sock));
}

awaitable<void> serve_tls_client(std::shared_ptr<Proxy::Impl> proxy, tcp::socket sock) {
  asio::ssl::context& ctx = proxy->certs->context();  // the store outlives the proxy's sessions
  return serve(std::move(proxy), SslStream(std::move(sock), ctx));
}

}  // namespace stele::router
