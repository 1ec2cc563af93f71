// CarbonRelay (--carbon-relay host:port): every point the metrics store
// accepts is also sent, as Graphite plaintext, to an upstream carbon line
// receiver. Points queue in memory (bounded, max_queue_bytes; past it the
// oldest lines are dropped and counted, as carbon-relay drops when its
// queue is full) and a sender thread writes them over one TCP connection,
// reconnecting with backoff (250 ms doubling to 10 s) after any error, the
// unsent data kept. Plaintext has no acks: what the kernel accepted before
// a connection broke may be lost, as with carbon's own relay.
//
// Thread-safe: enqueue() from any thread.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <string>
#include <thread>

#include "common/result.h"
#include "metrics/graphite_line.h"

namespace stele::metrics {

struct CarbonRelayStats {
  uint64_t points_sent = 0, points_dropped = 0, connects = 0, errors = 0, queued_bytes = 0;
};

class CarbonRelay {
 public:
  // `upstream` is "host:port"; checked here (error names it).
  static Result<std::unique_ptr<CarbonRelay>> create(std::string upstream, size_t max_queue_bytes = 64u << 20);
  ~CarbonRelay();  // stop()
  void start();
  void stop();
  // Points are dropped (not queued) while inactive: a follower server, whose
  // leader relays them (design.md: relays are leader-only).
  void enqueue(std::span<const Point> points);
  void set_active(bool active) { active_ = active; }
  CarbonRelayStats stats() const;
  const std::string& upstream() const { return upstream_; }

 private:
  CarbonRelay(std::string host, std::string port, std::string upstream, size_t max_queue_bytes);
  void run();

  std::string host_, port_, upstream_;
  size_t max_queue_bytes_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  struct Chunk {
    uint64_t id;
    std::string lines;
    uint64_t points;
  };
  std::deque<Chunk> queue_;
  uint64_t next_id_ = 0;
  size_t queued_bytes_ = 0;
  bool running_ = false;
  std::thread thread_;
  std::atomic<bool> active_{true};
  std::atomic<uint64_t> sent_{0}, dropped_{0}, connects_{0}, errors_{0};
};

}  // namespace stele::metrics
