// MetricsIngest: the one way points enter the metrics store, whatever their
// source (Graphite plaintext, agents' forward records, log-derived request
// metrics, Stele's own metrics): appended to the Tsdb and, with
// --carbon-relay, queued for the upstream Graphite. Refusals (series limit,
// bad timestamps) are counted per source and logged at most a few times per
// 10 s with the reason.
//
// Thread-safe.
#pragma once
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
  MetricsIngest(Tsdb& tsdb, CarbonRelay* relay = nullptr) : tsdb_(tsdb), relay_(relay) {}

  // `source` names the sender in refusal logs ("graphite 127.0.0.1:4711").
  Tsdb::AppendResult append(std::span<const Point> points, int64_t now, std::string_view source);

  Tsdb& tsdb() { return tsdb_; }
  CarbonRelay* relay() { return relay_; }

 private:
  Tsdb& tsdb_;
  CarbonRelay* relay_;
  std::mutex log_mu_;
  RateLimitedLog log_;
};

}  // namespace stele::metrics
