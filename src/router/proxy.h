// Proxy: the router's HTTP/1.1 reverse proxy on one io_context.
//
// Each accepted client connection is one coroutine: read a request head,
// route it by Host and path through the current RouteTable, take a
// keep-alive connection to a healthy instance from the per-upstream pool
// (or connect), forward the rewritten head and stream the body, then stream
// the response back, and loop for the next (possibly pipelined) request.
// After a 101 to an Upgrade request both directions are spliced until either
// side closes. Bodies are streamed, never buffered whole, and chunked bodies
// are forwarded as they came.
//
// TLS (listen_tls()): clients of a TLS listener handshake first, under the
// header timeout, with the certificate their SNI selects from a
// CertificateStore (certificates.h), which the proxy re-reads every
// cert_check_interval on the worker pool; then they are served as plain
// clients are, with X-Forwarded-Proto: https and "scheme:https" in the access
// record. Plain and TLS clients are one Session template over the stream
// type, so the plain path does not pay for TLS.
//
// Errors the proxy answers itself (small HTML pages naming app and cause):
//   400 bad request syntax, 431 head over max_head_bytes, 413 body over
//   max_body_bytes, a redirect to https://<host>[:port]<target> for requests
//   on a plain listener matching a route with redirectHttps (301 for GET and
//   HEAD, 308 for other methods so that they keep method and body; the port
//   is https_port, left out when 443), 502 the
//   upstream refused / reset / closed early / sent a bad head, 503 no route
//   for the host and path, or no healthy instance of the app, 504 the upstream
//   did not connect or answer in time.
//
// Retries: a failed connect (refused, unreachable, connect timeout) is
// retried on another instance not yet tried, for every method -- no request
// byte has gone out. An idempotent request without a body whose upstream
// closed before answering is sent once more: on a fresh connection to the
// same instance when the dead connection came from the pool, else to another
// instance (one being stopped drops what is in its listen queue). Nothing is
// retried once response bytes came back, and non-idempotent requests never.
//
// Timeouts (ProxyOptions): a client has header_timeout from its first byte
// (or from accept) to send a complete head -- a slowloris client is cut then
// without delaying anyone else -- and keepalive_timeout between requests;
// body transfers and upgraded tunnels are cut after idle_timeout /
// tunnel_timeout without progress. Timeouts are enforced by one sweeper
// timer per Proxy that closes overdue sockets, so setting a deadline costs a
// clock read, not a timer operation; their granularity is sweep_interval.
//
// Threading: every member except set_table(), applied_version() and stop()
// must be called on the io_context's thread; the io_context must be run by
// exactly one thread (run one Proxy per thread to use more cores).
// set_table() may be called from any thread: the table is applied on the io
// thread, between requests, and applied_version() then reports it.
#pragma once
#include <utility>  // before asio, for g++ 12

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "common/result.h"
#include "router/access_log.h"
#include "router/certificates.h"
#include "router/route_table.h"

namespace stele::router {

struct ProxyOptions {
  std::chrono::milliseconds header_timeout{10'000};    // complete request head (and TLS handshake)
  std::chrono::milliseconds keepalive_timeout{60'000};  // idle client between requests
  std::chrono::milliseconds idle_timeout{60'000};       // no progress while streaming a body
  std::chrono::milliseconds tunnel_timeout{3'600'000};  // no progress on an upgraded connection
  std::chrono::milliseconds connect_timeout{5'000};     // upstream TCP connect -> 504
  std::chrono::milliseconds response_timeout{60'000};   // request sent -> response head -> 504
  // Idle pooled upstream connections are closed after this; below Node's
  // 5 s keepAliveTimeout so the router, not the app, closes first.
  std::chrono::milliseconds pool_idle_timeout{4'000};
  std::chrono::milliseconds sweep_interval{100};        // deadline granularity
  size_t max_head_bytes = 32 * 1024;                    // request and response heads
  uint64_t max_body_bytes = 64ull * 1024 * 1024;        // request bodies; 0 = no limit
  size_t max_idle_per_upstream = 256;                   // pooled idle connections per host:port
  size_t max_connect_attempts = 3;                      // distinct instances tried per request
  // Port of https:// redirects: 0 = the first TLS listener's, or 443
  // without one (TLS terminated in front of the router).
  uint16_t https_port = 0;
  std::chrono::milliseconds cert_check_interval{2'000};  // TLS certificate files re-read
  // A table that removes instances is acknowledged (applied_version) once
  // the requests in flight to them have finished, or after this long.
  std::chrono::milliseconds drain_ack_timeout{4'000};
};

// Counters since start, for `stele routes` and metrics.
struct ProxyStats {
  uint64_t connections = 0;        // client connections accepted
  uint64_t requests = 0;           // requests answered
  uint64_t upstream_connects = 0;  // new upstream connections
  uint64_t upstream_reuses = 0;    // requests sent on a pooled connection
  uint64_t retries = 0;            // connect retries and stale-connection resends
  uint64_t errors_5xx = 0;         // 502/503/504 the proxy answered itself
};

class Proxy {
 public:
  using AccessLogFn = std::function<void(const AccessRecord&)>;

  explicit Proxy(boost::asio::io_context& io, ProxyOptions opts = {});
  ~Proxy();  // stop(); connections still open end when the io_context does
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // Binds "host:port" (port 0 = ephemeral; "[::1]:0" for v6) and accepts.
  // May be called more than once. Returns the bound "host:port".
  Result<std::string> listen(const std::string& host_port);
  // The same for a TLS listener whose certificates come from `certs` (one
  // store per proxy: a second call must pass the same). The store is
  // reloaded while the proxy runs; load it once before for the first
  // clients.
  Result<std::string> listen_tls(const std::string& host_port, std::shared_ptr<CertificateStore> certs);
  // Closes the listeners and the idle pool. Requests in flight finish.
  void stop();

  // Replaces the table for requests routed from now on; requests in flight
  // keep the instance they were sent to. Listeners and client connections
  // are untouched. Idle pooled connections to instances absent from the new
  // table are closed. Any thread.
  void set_table(RouteTable table);
  // Version of the table in use (0 before the first) once no request is in
  // flight to an instance an applied table removed (or drain_ack_timeout
  // passed): the server's drain handshake waits for every router to report
  // a version before it stops the instances it took out. Any thread.
  uint64_t applied_version() const;

  // Called on the io thread once per answered request.
  void set_access_log(AccessLogFn fn);

  // Requests in flight to an instance, by "addr:port" or by task id (the
  // sum over its ports). Io thread.
  size_t in_flight(std::string_view addr) const;
  size_t in_flight_for_task(std::string_view task) const;
  ProxyStats stats() const;

  struct Impl;

 private:
  Result<std::string> bind_and_accept(const std::string& host_port, bool tls);

  std::shared_ptr<Impl> impl_;
};

}  // namespace stele::router
