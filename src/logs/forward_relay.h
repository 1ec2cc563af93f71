// ForwardRelay: `--forward-to host:port` (issue 4 point 6) -- everything the
// log store holds is relayed, in sequence order, to an upstream Fluentd
// forward input (Fluentd, Fluent Bit, another Stele), with acks and retry,
// for teams that already run an aggregation stack.
//
// Loop: read up to batch_records records after the cursor from the LogStore
// (all streams, seq order), cut them into chunks of consecutive records with
// the same tag, send each as a PackedForward request with a chunk id and wait
// for its ack (ForwardClient), then advance the cursor. Once caught up it
// polls LogStore::change_count() every poll_interval (a timer; nothing blocks
// the io thread). A failed send is retried, same chunk id and bytes, with a
// backoff from retry_initial doubling to retry_max; one warning per outage
// and one line when delivery resumes, not a line per attempt. Records are
// never dropped by the relay: until acked they stay in the store (retention
// may still delete them; then the relay continues with what is left).
//
// Delivery is at-least-once. The cursor file (text, written atomically:
// tmp + fsync + rename) holds the relay's id, the last acked sequence and the
// last sequence of the chunk in flight, written before that chunk is sent. A
// restarted relay therefore resends exactly the chunk that was in flight, with
// the same records and the same chunk id (derived from the relay id, the tag
// and the first and last sequence), so an upstream that deduplicates chunk ids
// (Stele does) stores it once. Without a cursor file the relay starts from the
// oldest record the store holds. The cursor belongs to this store, not to the
// upstream: pointing --forward-to elsewhere continues where it stopped.
//
// Record fidelity: a record is re-encoded from the store's JSON view
// (LogResult.record) with nlohmann's msgpack encoder, so strings, numbers,
// booleans, nulls, arrays and maps arrive as sent; msgpack bin values arrive
// as strings and ext values (EventTime inside a record) as their JSON text
// form. The event time keeps its nanoseconds (EventTime).
//
// Threads: store reads and cursor writes block, so they run on the relay's
// own one-thread pool (not the shared worker pool: the destructor joins it,
// so no read can outlive the LogStore). Everything else runs on the
// io_context's thread; start/stop/stats are called there (or before it runs).
// The LogStore must outlive the relay; destroy the relay before its io_context.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>

#include "common/result.h"
#include "logs/forward_client.h"
#include "logs/log_store.h"

namespace stele::logs {

struct ForwardRelayOptions {
  ForwardClientOptions client;           // upstream address, shared key, timeouts
  std::string cursor_path;               // e.g. <server data>/logs/forward-to.cursor
  // Without a cursor file: relay the records after this sequence (a server
  // that takes over from a leader that relayed); unset = from the oldest.
  std::optional<uint64_t> start_after;
  size_t batch_records = 1000;           // records read from the store per round
  size_t max_chunk_bytes = 4u << 20;     // a chunk is cut before it grows past this
  bool compress = false;                 // CompressedPackedForward (gzip)
  std::chrono::milliseconds poll_interval{150};  // caught up: change_count() checks
  std::chrono::milliseconds retry_initial{250};
  std::chrono::milliseconds retry_max{10000};
};

class ForwardRelay {
 public:
  ForwardRelay(boost::asio::io_context& io, LogStore& store, ForwardRelayOptions options);
  ~ForwardRelay();
  ForwardRelay(const ForwardRelay&) = delete;
  ForwardRelay& operator=(const ForwardRelay&) = delete;

  // Reads the cursor file (creating the relay id when there is none) and
  // starts relaying. The error names the cursor file and what is wrong with
  // it (an unreadable or corrupt file is not silently replaced).
  Result<void> start();
  // Stops relaying: the send in progress is abandoned (its chunk is resent
  // after a restart), timers are cancelled. Idempotent.
  void stop();

  struct Stats {
    uint64_t acked_seq = 0;        // every record up to this sequence was acked
    uint64_t chunks = 0, records = 0;  // acked by the upstream since start()
    uint64_t failed_attempts = 0;  // sends that failed (each was retried)
    bool delivering = true;        // false during an outage
  };
  Stats stats() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace stele::logs
