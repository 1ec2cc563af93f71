// LogStore: the durable log store (issue 4 points 4-5; design.md "Logs").
//
// Records are kept in append-only streams: tag `stele.<app name>.<anything>`
// goes to stream `app.<app name>`, any other tag to `tag.<tag>` (characters
// outside [A-Za-z0-9_.-] -> '_'). Every record gets a sequence number from
// one store-wide counter: strictly increasing within a stream and across the
// store, so a single number is the resume point / follow cursor for any query.
//
// Durability: append() returns only once its records are written and
// fdatasync'ed ("acked = durable"). append_batch() is the group commit: it
// stores several requests with one write and ONE fdatasync per stream they
// touch, and returns each request's own result. Each stream has a small
// write-ahead file (wal) holding the not-yet-compressed tail; once the tail reaches block_bytes it is
// compressed (zstd) into a block of the stream's current segment. Segments roll
// by size and age; retention deletes whole segments. See segment.h for the
// on-disk format; recovery (open) truncates a torn tail of any file.
//
// Thread-safety: one writer at a time (append, append_batch, compact, flush,
// enforce_retention are serialised by an internal mutex, so several callers
// are safe but gain nothing -- hand their requests to one thread that calls
// append_batch instead); any number of concurrent readers (query,
// change_count, wait_for_change, stats) run alongside the writer. A query
// sees every record whose append()/append_batch() has returned. Blocking:
// every call may do disk I/O -- call from a worker pool, never an asio I/O
// thread (wait_for_change blocks by design; the API layer can poll
// change_count() instead).
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/json.h"
#include "common/result.h"
#include "logs/record.h"
#include "logs/segment_stream.h"

namespace stele::logs {

// `--log-retention 7d,10GB`: either part may be given alone, in any order.
// Ages: <n>s|m|h|d|w. Sizes: <n>B|KB|MB|GB|TB (powers of 1000) or
// KiB|MiB|GiB|TiB (powers of 1024). 0 in a part means "no limit".
struct RetentionPolicy {
  int64_t max_age_ms = 0;   // 0 = keep forever
  uint64_t max_bytes = 0;   // 0 = unbounded
};
Result<RetentionPolicy> parse_retention(std::string_view text);

struct LogStoreOptions {
  RetentionPolicy retention;
  size_t block_bytes = 256 << 10;        // tail size that is compressed into one block
  uint64_t segment_bytes = 64ull << 20;  // a segment rolls past this size...
  int64_t segment_age_ms = 3600'000;     // ...or once its first block is this old
  size_t dedup_window = 4096;            // chunk ids remembered per stream
  // A stream's wal is rewritten (3 fsyncs) past this + 4 blocks. (At 100+ MiB/s
  // of ingest, 4 MiB meant ~20 rewrites a second.)
  uint64_t wal_rewrite_bytes = 32ull << 20;
  int zstd_level = 1;
  const Clock* clock = nullptr;          // nullptr = system clock
  // Called on the writer thread before each group's wal fdatasyncs (tests: a slow disk).
  std::function<void()> before_wal_sync_for_test;
};

struct AppendResult {
  uint64_t first_seq = 0;  // of the first stored record (0 when nothing was stored)
  uint64_t last_seq = 0;
  size_t stored = 0;       // records stored by this call
  size_t duplicates = 0;   // records skipped: their chunk was stored before
};

// One request of append_batch: its entries (views that must stay valid for
// the call) and its chunk id (empty: no dedup).
struct AppendRequest {
  std::span<const LogEntry> entries;
  std::string_view chunk_id;
};

struct LogStoreStats {
  uint64_t appends = 0;    // requests given to append/append_batch
  uint64_t batches = 0;    // append/append_batch calls
  uint64_t wal_syncs = 0;  // fdatasyncs of wal files by those calls (compaction's own syncs not counted)
  uint64_t records = 0;    // records stored
};

struct LogQuery {
  std::string app;     // app id or app name ("/shop/web" or "shop_web"); empty = any
  std::string tag;     // exact tag; empty = any
  std::string task;    // record field "task" equals; empty = any
  std::string stream;  // record field "stream" equals; empty = any
  std::optional<int64_t> since_ns;  // time_ns >= since
  std::optional<int64_t> until_ns;  // time_ns < until
  std::string grep;    // substring of "log" (or of the record's JSON when it has no string "log")
  std::string regex;   // ECMAScript regex searched in the same text as grep
  size_t limit = 1000;
  std::optional<uint64_t> after;  // only seq > after; results then in seq order (follow)
};

struct LogResult {
  std::string stream_key;
  uint64_t seq = 0;
  std::string tag;
  int64_t time_ns = 0;
  Json record;
};

class LogStore {
 public:
  LogStore(std::string dir, LogStoreOptions options);
  ~LogStore();
  LogStore(const LogStore&) = delete;
  LogStore& operator=(const LogStore&) = delete;

  // Creates the directory if needed, recovers every stream (a torn tail is
  // truncated; see the log line). Must be called once before anything else.
  Result<void> open();

  // Stores `entries` durably. With a non-empty chunk_id (the forward
  // protocol's `chunk`), a stream that already stored this chunk id within its
  // last dedup_window chunks skips the chunk's records again, so a resent
  // chunk is stored once even if a crash cut the first attempt between
  // streams. chunk_id longer than 1024 bytes is refused.
  Result<AppendResult> append(std::span<const LogEntry> entries, std::string_view chunk_id = {});
  static constexpr size_t kMaxChunkIdBytes = 1024;

  // Group commit: stores every request as append() would, in order (request
  // i's records get lower sequences than request i+1's), with one write and
  // one fdatasync per stream touched, and returns one result per request.
  // A request's result is an error when any stream it touches failed to
  // store (the other requests are unaffected; records of it that did reach a
  // healthy stream stay stored, as with append(), and its resend dedups
  // them). Dedup works per request: a chunk id seen before, or by an earlier
  // request of the same batch, is skipped per stream.
  // Unlike append(), it does not compact what it stored: compression of full
  // tails into blocks is owed to the next append_batch, which does it while
  // its own fdatasync runs (on a helper thread): one core compresses while
  // the disk syncs, instead of one after the other.
  std::vector<Result<AppendResult>> append_batch(std::span<const AppendRequest> requests);
  // Does the owed compaction now: cuts blocks of full tails, rewrites
  // oversized wals. For an idle writer (a busy one gets it from
  // append_batch). Failures are logged; they only delay it.
  void compact();
  bool compaction_owed() const;

  // Compresses every stream's pending tail into a block (used at shutdown and
  // by maintenance so idle streams don't keep their tail in the wal forever).
  Result<void> flush();

  // Deletes whole segments older than retention.max_age_ms (by write time on
  // the store's clock) and, oldest first, while the store exceeds max_bytes.
  // A stream's active segment is first rolled if it is past its age.
  Result<void> enforce_retention();

  // Matching records: with `after`, the first `limit` records with seq > after
  // in seq order; else with since_ns the oldest `limit` from since, without it
  // the newest `limit`, in (time, seq) order. A bad regex is a 400 error.
  Result<std::vector<LogResult>> query(const LogQuery& q) const;

  // Bumped after every append/append_batch that stored records. Never decreases.
  uint64_t change_count() const;
  // Blocks until change_count() != seen or timeout; returns the current count.
  uint64_t wait_for_change(uint64_t seen, std::chrono::milliseconds timeout) const;
  // Highest sequence whose append has returned (0 when empty): every record
  // up to it is queryable, so a follower starting after it misses nothing.
  // (Sequences are taken before the write; this moves only after it.)
  uint64_t last_seq() const;

  // Stream key for a tag ("stele.shop_web.stdout" -> "app.shop_web").
  static std::string stream_key_for_tag(std::string_view tag);

  // Bytes on disk (segments + wal files) -- what max_bytes bounds.
  uint64_t disk_bytes() const;
  LogStoreStats stats() const;
  std::vector<std::string> segment_files_for_test(const std::string& stream_key) const;

 private:
  struct Staged;
  Result<StreamFiles*> stream_for(const std::string& key);  // writer only
  Result<void> stage(size_t req, const AppendRequest& r, std::vector<Staged>& staged, AppendResult& res);
  void stage_group(size_t req, const AppendRequest& r, StreamFiles* s, std::span<const uint32_t> idx,
                   std::vector<Staged>& staged, AppendResult& res);
  class Syncer;
  std::vector<Result<void>> write_and_sync(std::vector<Staged>& staged);
  std::vector<StreamFiles*> streams_for(const LogQuery& q) const;
  int64_t now_ms() const { return clock_->now_ms(); }

  std::string dir_;
  LogStoreOptions opt_;
  std::unique_ptr<Clock> own_clock_;
  const Clock* clock_;
  mutable std::mutex write_mu_;  // one writer at a time
  mutable std::shared_mutex streams_mu_;
  std::map<std::string, std::unique_ptr<StreamFiles>, std::less<>> streams_;  // GUARDED_BY(streams_mu_); never erased
  std::atomic<uint64_t> next_seq_{1};
  std::atomic<uint64_t> changes_{0};
  std::atomic<uint64_t> visible_seq_{0};  // last_seq(): advanced after each append
  std::vector<StreamFiles*> owed_;         // streams append_batch left uncompacted (writer only)
  std::unique_ptr<Syncer> syncer_;         // started on the first batch that overlaps a sync (writer only)
  std::atomic<uint64_t> n_appends_{0}, n_batches_{0}, n_wal_syncs_{0}, n_records_{0};
  mutable std::mutex change_mu_;
  mutable std::condition_variable change_cv_;
};

}  // namespace stele::logs
