// RouterService: the built-in router as a Stele process runs it (`stele
// server` / `stele up` with --router-listen): a Proxy (proxy.h) on its own
// io_context thread, fed route tables as the JSON the server builds
// (route_table.h), and its access log stored as records in the log store.
//
// Access records: one per answered request, tag stele.<app name>.access,
// record {"app", "task", "node", "stream": "access", "log": <LTSV line with
// time, host, method, path, status, size, reqtime (s), upstream, app, task>}
// -- the shape of task output, so `stele logs APP --tag stele.<app>.access`
// and the log-derived request metrics read them (kAccessLogSpec). Requests
// that matched no app are not logged. Records are batched on the proxy
// thread and stored from a worker every 200 ms (never on the proxy thread);
// a batch the store refuses is dropped with a (rate-limited) log line.
//
// TLS (tls_listen): a second listener of the same proxy terminating TLS with
// the certificates of certs_dir (certificates.h names the files), loaded at
// start -- an empty or missing directory is logged, not fatal: certificates
// added later are picked up within seconds.
#pragma once
#include <utility>  // before asio, for g++ 12

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/json.h"
#include "common/result.h"
#include "common/spec.h"
#include "logs/log_store.h"
#include "logs/record.h"
#include "router/proxy.h"

namespace stele::router {

// How the router's access lines read (for the request metrics).
AccessLogSpec access_log_spec();

// Where access records go when there is no log store at hand (an agent's
// router: its spool, shipped to the server). Called from one worker job at a
// time; an error drops the batch (logged, rate-limited).
using AccessSink = std::function<Result<void>(const std::vector<logs::LogEntry>&)>;

struct RouterServiceOptions {
  std::string listen = "127.0.0.1:7080";
  std::string tls_listen = "off";  // host:port of the TLS listener, "off" for none
  std::string certs_dir;           // <host>.crt/.key pairs for tls_listen
  std::string node;  // this host's name, in the access records
  AccessSink access_sink;  // used when the service has no log store
  ProxyOptions proxy;
};

class RouterService {
 public:
  RouterService(RouterServiceOptions options, logs::LogStore* logs);
  ~RouterService();  // stop()
  RouterService(const RouterService&) = delete;
  RouterService& operator=(const RouterService&) = delete;

  // Listens and starts the thread; the bound "host:port".
  Result<std::string> start();
  // Stops accepting, stores the access records still batched, joins.
  void stop();

  // A new table (route_table.h JSON with "version"). A table the router
  // cannot use is refused (the error names the field) and the previous one
  // stays in force.
  Result<void> update(const Json& table);
  // The version requests are routed by now (0 before the first table).
  uint64_t applied_version() const;
  const std::string& address() const { return bound_; }
  const std::string& tls_address() const { return tls_bound_; }  // "" without TLS

 private:
  Result<void> start_tls();
  void on_access(const AccessRecord& r);
  Result<void> store(const std::vector<logs::LogEntry>& views);  // the log store or the sink
  void arm_flush();
  void flush();

  RouterServiceOptions options_;
  logs::LogStore* logs_;
  boost::asio::io_context io_{1};
  std::unique_ptr<Proxy> proxy_;
  boost::asio::steady_timer flush_timer_{io_};
  std::thread thread_;
  std::string bound_;
  std::string tls_bound_;
  std::mutex mu_;                             // batch_
  std::vector<logs::OwnedLogEntry> batch_;    // access records not yet stored
  std::shared_ptr<std::atomic<bool>> storing_ = std::make_shared<std::atomic<bool>>(false);
  bool running_ = false;
};

}  // namespace stele::router
