// GraphiteServer (--graphite-listen, default 127.0.0.1:2003): carbon's
// plaintext protocol over TCP and UDP on the same address, feeding
// MetricsIngest. Lines follow carbon's rules (graphite_line.h); a bad line
// is counted by reason and dropped, logged at most 5 times per 10 s per
// listener with the reason, the line number and the sender, and the
// connection stays open. A TCP connection's points are appended after every
// read (one batch per read, up to 256 KiB of lines). Plaintext has no acks:
// points are durable within the store's commit interval (tsdb.h).
//
// Runs on its own thread and io_context, so a fast sender never holds up
// the API.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "common/result.h"
#include "metrics/graphite_line.h"
#include "metrics/ingest.h"

namespace stele::metrics {

struct GraphiteServerStats {
  uint64_t connections = 0, datagrams = 0;
  LineCounters lines;  // summed over closed and open connections
};

class GraphiteServer {
 public:
  GraphiteServer(MetricsIngest& ingest, std::string listen);
  ~GraphiteServer();  // stop()
  // Binds TCP and UDP and starts the thread; returns "host:port" bound.
  Result<std::string> start();
  void stop();
  GraphiteServerStats stats() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace stele::metrics
