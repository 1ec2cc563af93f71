// Shipper: the agent's half of "shipping without loss" (issue 4 point 2).
//
// Sources are spools (logs/spool.h) under the agent's data dir: every task's
// `records.*` in its sandbox (written by its executor, which outlives agent
// restarts). The shipper reads each source from its persisted cursor, groups
// the records by tag into PackedForward requests, each with a chunk id
// derived from (node, source, segment, byte range, tag), and sends them with
// the Fluentd Forward protocol v1 to the forward address the server named at
// registration, waiting for every ack. Before a range is sent the cursor
// records it as in flight; only after all its acks does the cursor move past
// it and shipped segments are deleted. So:
//   - server down or restarting: the range is retried (backoff) until acked;
//     the server stored it at most once (same chunk ids -> LogStore dedup);
//   - agent restarted: the new shipper resends exactly the in-flight range
//     (same bytes, same ids) and continues;
//   - executor killed: its records already in the spool are shipped; a torn
//     last frame is skipped with a warning.
// A source is finished when its writer wrote the end marker (or its task was
// acked over 10 s ago) and everything is acked; its spool files are removed
// then (TaskRunner::gc_sandboxes keeps a sandbox whose spool is not shipped).
//
// Records are opaque: any record stream can be shipped; the agent's metric
// points (metric_record.h) travel this way with fluent_signal 1.
//
// Threading: the io_context's thread; file reads run on `workers`.
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include <utility>  // before Asio with g++ 12
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "net/http.h"

namespace stele::agent {

struct ShipperOptions {
  std::string executors_dir;  // <agent data>/executors
  // Spools of the agent's own (name -> dir), e.g. its metric points; never
  // finished, shipped like a task's. Records tagged metrics::kMetricTag go
  // out with fluent_signal 1.
  std::map<std::string, std::string> extra_sources;
  std::string node;           // this agent's hostname (part of chunk ids, sent in PING)
  size_t batch_bytes = 1 << 20;
  std::chrono::milliseconds scan_interval{200};
};

class Shipper {
 public:
  Shipper(boost::asio::io_context& io, boost::asio::thread_pool& workers, ShipperOptions options);
  ~Shipper();
  Shipper(const Shipper&) = delete;
  Shipper& operator=(const Shipper&) = delete;

  // Where to ship (from the registration answer); "" pauses shipping.
  // A change closes the current connection. `tls`: the input speaks TLS,
  // verified with the client CA (net/tls.h).
  void set_destination(const std::string& address, const std::string& shared_key, bool tls = false);
  void start();
  void stop();
  bool has_destination() const;

  // Resumes once the task's records are all acked (its spool finished and
  // shipped) -> true, or after `timeout` -> false.
  net::awaitable<bool> drained(std::string task_id, std::chrono::milliseconds timeout);

  struct Stats {
    uint64_t records = 0, requests = 0, bytes = 0, failures = 0, sources_finished = 0;
  };
  Stats stats() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace stele::agent
