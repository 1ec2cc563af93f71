// MetricsIngest: the one way points enter the metrics store, whatever their
// source (Graphite plaintext, agents' forward records, log-derived request
// metrics, Stele's own metrics): appended to the Tsdb and, with
// --carbon-relay, queued for the upstream Graphite. Refusals (series limit,
// bad timestamps) are counted per source and logged at most a few times per
// 10 s with the reason.
//
// Thread-safe.
#pragma once
#include <functional>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>

#include "metrics/graphite_line.h"
#include "metrics/tsdb.h"

namespace stele::metrics {

class CarbonRelay;

class MetricsIngest {
 public:
  // `replicate`: receives the points of external senders (see append), to be
  // relayed to the other servers (design.md, Storage and HA).
  MetricsIngest(Tsdb& tsdb, CarbonRelay* relay = nullptr,
                std::function<void(std::span<const Point>)> replicate = nullptr)
      : tsdb_(tsdb), relay_(relay), replicate_(std::move(replicate)) {}

  // `source` names the sender in refusal logs ("graphite 127.0.0.1:4711").
  // `external`: points no other server receives by itself (Graphite
  // plaintext, a forward sender other than Stele's agents and servers, check
  // perfdata): handed to `replicate` too.
  Tsdb::AppendResult append(std::span<const Point> points, int64_t now, std::string_view source,
                            bool external = false);

  Tsdb& tsdb() { return tsdb_; }
  CarbonRelay* relay() { return relay_; }

 private:
  Tsdb& tsdb_;
  CarbonRelay* relay_;
  std::function<void(std::span<const Point>)> replicate_;
  std::mutex log_mu_;
  RateLimitedLog log_;
};

}  // namespace stele::metrics
