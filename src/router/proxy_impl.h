// Internals of the Proxy shared by proxy.cpp (listeners, pool, deadlines,
// table) and session.cpp / forward.cpp (one client connection). All of it
// lives on the proxy's single io thread; nothing here locks.
#pragma once
#include <utility>  // before asio, for g++ 12

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>

#include "router/certificates.h"
#include "router/proxy.h"

namespace stele::router {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using SslStream = asio::ssl::stream<tcp::socket>;
using SteadyClock = std::chrono::steady_clock;
template <class T>
using awaitable = asio::awaitable<T>;

// The TCP socket under a client stream: for its options, its peer and
// closing it (which fails whatever is pending on the stream above).
inline tcp::socket& tcp_of(tcp::socket& s) { return s; }
inline tcp::socket& tcp_of(SslStream& s) { return s.next_layer(); }

// Unread bytes of one socket: [begin, end) of a heap block that grows by
// doubling up to the limit its caller gives, and compacts before growing.
class ByteBuffer {
 public:
  explicit ByteBuffer(size_t initial = 4096);
  std::string_view data() const { return {buf_.get() + begin_, end_ - begin_}; }
  size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  void consume(size_t n);
  // Free space to read into, growing the block up to `max_total` bytes;
  // empty only when size() == max_total.
  asio::mutable_buffer prepare(size_t max_total);
  void commit(size_t n) { end_ += n; }

 private:
  std::unique_ptr<char[]> buf_;
  size_t cap_;
  size_t begin_ = 0;
  size_t end_ = 0;
};

// A socket's deadline. The owner sets `at` before each operation; the
// Proxy's sweeper closes the socket of every deadline past due and sets
// `fired`, so the pending operation fails and the owner can tell a timeout
// from a peer error. Registered with the proxy for its whole life.
class Deadline {
 public:
  Deadline(Proxy::Impl& proxy, tcp::socket& sock);
  ~Deadline();
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;

  void expires_after(std::chrono::milliseconds d) { at = SteadyClock::now() + d; }
  void clear() { at = SteadyClock::time_point::max(); }

  SteadyClock::time_point at = SteadyClock::time_point::max();
  bool fired = false;

 private:
  friend struct Proxy::Impl;
  Proxy::Impl& proxy_;
  tcp::socket& sock_;
  Deadline* prev_ = nullptr;
  Deadline* next_ = nullptr;
};

// One connection to an upstream "addr:port", in use by a request or idle
// in the pool (then its deadline is the pool idle timeout).
struct UpstreamConn {
  UpstreamConn(Proxy::Impl& proxy, std::string_view addr);
  tcp::socket sock;
  ByteBuffer buf;
  std::string addr;
  Deadline deadline;
};

// Requests in flight to one "addr:port".
struct UpstreamLoad {
  size_t in_flight = 0;
  std::string task;
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

struct Proxy::Impl : std::enable_shared_from_this<Proxy::Impl> {
  Impl(asio::io_context& io, ProxyOptions opts);
  ~Impl() { pool.clear(); }  // pooled connections unlink their deadlines first

  asio::io_context& io;
  const ProxyOptions opts;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::shared_ptr<CertificateStore> certs;  // the TLS listeners' (one store per proxy)
  uint16_t tls_port = 0;                   // first TLS listener's port, for redirects
  std::shared_ptr<std::atomic<bool>> certs_reloading = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<const RouteTable> table;
  std::atomic<uint64_t> applied_version{0};
  // A table applied while requests were in flight to instances it removed:
  // its version, reported once `draining` empties or at drain_deadline.
  uint64_t pending_version = 0;
  std::vector<std::string> draining;
  SteadyClock::time_point drain_deadline;
  AccessLogFn access_log;
  ProxyStats stats;
  StringMap<std::vector<std::unique_ptr<UpstreamConn>>> pool;
  StringMap<UpstreamLoad> load;
  asio::steady_timer sweep_timer;
  asio::steady_timer cert_timer;
  bool stopped = false;
  Deadline* deadlines = nullptr;  // intrusive list head

  // Accepts clients; with `tls`, each is served over TLS with `certs`.
  awaitable<void> accept_loop(tcp::acceptor& acceptor, bool tls);
  awaitable<void> sweep_loop();
  // Every cert_check_interval: certs->reload() on the worker pool.
  awaitable<void> cert_loop();
  uint16_t https_port() const;
  void sweep(SteadyClock::time_point now);
  void apply_table(std::shared_ptr<const RouteTable> t);
  // Called when the last request in flight to `addr` ends; acknowledges a pending table
  // version once nothing it removed has requests in flight.
  void request_ended(std::string_view addr);
  void acknowledge_pending();
  void stop();

  void link(Deadline& d);
  void unlink(Deadline& d);

  // A pooled connection to addr that is still open, or nullptr.
  std::unique_ptr<UpstreamConn> take_pooled(std::string_view addr);
  // Returns a connection whose last exchange ended cleanly to the pool.
  void release(std::unique_ptr<UpstreamConn> c);
  // The in-flight count of addr, created at zero for task.
  StringMap<UpstreamLoad>::value_type& load_entry(std::string_view addr, std::string_view task);
};

// Runs one client connection to its end (session.cpp): plain, or TLS with
// proxy->certs (handshake first, under the header timeout).
awaitable<void> serve_client(std::shared_ptr<Proxy::Impl> proxy, tcp::socket sock);
awaitable<void> serve_tls_client(std::shared_ptr<Proxy::Impl> proxy, tcp::socket sock);

}  // namespace stele::router
