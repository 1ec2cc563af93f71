// MetricsService: the server's metrics subsystem in one place, so main only
// wires it: the store (tsdb.h) under <data>/metrics with the storage schemas
// from --metrics-schemas / --metrics-aggregation (carbon's files), the
// Graphite plaintext input (--graphite-listen), the carbon relay
// (--carbon-relay), the forward input's signal sink for agents' points, the
// log-derived request metrics and Stele's own stele.server.* metrics.
//
// Thread-safety: open/close on the main thread; signal_sink's function runs
// on the forward input's io thread; poll_requests and record_self on one
// worker at a time (the caller serialises them); stats from anywhere.
#pragma once
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/result.h"
#include "common/spec.h"
#include "logs/forward_codec.h"
#include "logs/log_store.h"
#include "metrics/carbon_relay.h"
#include "metrics/graphite_server.h"
#include "metrics/ingest.h"
#include "metrics/request_metrics.h"
#include "metrics/tsdb.h"

namespace stele::metrics {

// Where an app's access lines come from: its own output (the spec's
// "accessLog", tag stele.<app>.stdout) or the router's access records
// (stele.<app>.access).
struct RequestSource {
  AccessLogSpec spec;
  std::string tag;
};

struct MetricsServiceOptions {
  std::string dir;                                // <data>/metrics
  std::string graphite_listen = "127.0.0.1:2003";  // "off": none
  std::string schemas_file;                       // carbon storage-schemas.conf; empty = Stele's default
  std::string aggregation_file;                   // carbon storage-aggregation.conf
  size_t max_series = 100'000;
  std::string carbon_relay;                       // "host:port"; empty = off
  // The log store's last seq when this server started: access lines stored
  // before (history) are not recounted into request metrics.
  uint64_t request_logs_after = 0;
  // External senders' points, for the other servers (MetricsIngest).
  std::function<void(std::span<const Point>)> replicate;
};

class MetricsService {
 public:
  MetricsService() = default;
  ~MetricsService();  // close()
  Result<void> open(MetricsServiceOptions options);
  void close();

  Tsdb& tsdb() { return *tsdb_; }
  MetricsIngest& ingest() { return *ingest_; }
  std::string graphite_address() const { return graphite_bound_; }
  const GraphiteServer* graphite() const { return graphite_.get(); }
  const CarbonRelay* relay() const { return relay_.get(); }
  // --carbon-relay sends only while active (with several servers: the leader).
  void set_relay_active(bool active);

  // For logs::ForwardServerOptions::signal_sink: fluent_signal 1 requests of
  // metric records (metric_record.h) are decoded whole (a bad one is refused
  // and nothing of it kept), appended, and acked once the WAL holds them.
  std::function<Result<std::function<Result<void>()>>(const logs::ForwardMessage&)> signal_sink();

  // Reads the apps' new access lines from the log store (`apps` maps app
  // name to where they are), feeds the request counters and appends every
  // closed 10 s window. Called about every second.
  void poll_requests(const logs::LogStore& logs, const std::map<std::string, RequestSource>& apps, int64_t now_s);

  // Appends stele.server.<name> points (the caller's plus the store's and
  // the listener's own counters) at `now_s`.
  void record_self(const std::vector<std::pair<std::string, double>>& extra, int64_t now_s);

 private:
  std::unique_ptr<Tsdb> tsdb_;
  std::unique_ptr<CarbonRelay> relay_;
  std::unique_ptr<MetricsIngest> ingest_;
  std::unique_ptr<GraphiteServer> graphite_;
  std::string graphite_bound_;
  RequestMetrics requests_;
  std::map<std::string, uint64_t> request_cursor_;  // app name -> last log seq read
  uint64_t request_start_seq_ = 0;
};

}  // namespace stele::metrics
