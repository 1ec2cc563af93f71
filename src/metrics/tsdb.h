// Tsdb: Stele's embedded time-series store with Graphite's (whisper's)
// retention semantics: every series has fixed-interval archives chosen by the
// storage schemas (retention.h) when it is first written, finer points roll
// up into coarser ones with the schema's aggregation and xFilesFactor, and a
// read is answered from the finest archive covering the range.
//
// Layout under `dir`:
//   series.idx    one line per series: id, offset, retentions, aggregation,
//                 xFilesFactor, name (append-only; a torn last line is cut)
//   format        "stele-metrics-store 2" (the slot layout below; a store
//                 without it that has data is refused, not misread)
//   data.bin      every series' archives at its offset, whisper's slots
//                 (12 bytes: uint32 timestamp then float64 value, side by
//                 side so a point dirties one page; slot = (t / step) mod
//                 points, a slot counts only when its timestamp is the one
//                 expected); a sparse file sized for max_series up front,
//                 mapped once with MADV_RANDOM (no fault readahead, so only
//                 touched pages take disk)
//   wal/NNNNNNNNNNNNNNNN.wal  write-ahead log: CRC-framed batches of points
//                 (series id, arrival time, timestamp, value) and series
//                 definitions
//
// Durability: append() puts points in the WAL buffer and the pending list;
// the committer thread writes and fdatasyncs the WAL every commit_interval
// (group commit), so a point is durable once points_durable counts it, or
// after sync() returns. A background pass applies pending points to the
// archives in arrival order (exactly whisper's update_many per point: the
// finest archive whose retention covers now - t, then propagation); reads
// apply whatever is still pending first, so a point is readable as soon as
// append() returns. A checkpoint (WAL over checkpoint_wal_bytes or every
// checkpoint_interval) applies everything, starts a new WAL segment, msyncs
// the archives, appends new series to series.idx with fsync and only then
// deletes the old segments. open() replays the WAL, so a crash at any point
// loses nothing that was durable; applying a point twice is harmless.
//
// Bounded disk: data.bin never exceeds max_series × the largest schema's
// bytes (12 bytes per slot, as whisper); the WAL stays near
// checkpoint_wal_bytes. A new series past max_series is refused: append()
// counts it and returns the error "series limit N reached: ..." naming the
// series; existing series keep accepting points.
//
// Timestamps: epoch seconds in (0, 2^32) (whisper's unsigned 32-bit); others
// are refused and counted. Points older than the coarsest retention (relative
// to their arrival) are dropped as whisper drops them, and counted.
//
// Thread-safety: every public method may be called from any thread; one
// mutex guards the index, buffers and archives.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "metrics/glob.h"
#include "metrics/graphite_line.h"
#include "metrics/retention.h"
#include "metrics/series.h"

namespace stele::metrics {

struct TsdbOptions {
  std::string dir;
  Schemas schemas;                                  // Stele's default when empty
  size_t max_series = 100'000;
  std::chrono::milliseconds commit_interval{50};    // WAL group-commit period
  std::chrono::milliseconds apply_interval{200};    // pending points -> archives
  uint64_t checkpoint_wal_bytes = 256ull << 20;
  std::chrono::seconds checkpoint_interval{300};
};

struct TsdbStats {
  uint64_t series = 0;
  uint64_t points_received = 0;  // accepted by append()
  uint64_t points_durable = 0;   // of those, in an fdatasynced WAL
  uint64_t points_applied = 0;   // written to the archives (or dropped there)
  uint64_t points_dropped_old = 0;   // older than every archive's retention
  uint64_t points_bad_time = 0;      // timestamp outside (0, 2^32)
  uint64_t series_refused = 0;       // points refused by the series limit
  uint64_t wal_bytes = 0;            // current WAL size on disk
  uint64_t data_bytes_allocated = 0; // data.bin blocks actually on disk
  uint64_t data_bytes_bound = 0;     // data.bin's size (the bound)
  uint64_t checkpoints = 0;
  uint64_t commits = 0;              // fdatasyncs of the WAL
};

// One node of /metrics/find's answer.
struct FindNode {
  std::string path;
  bool leaf = false;
  bool operator==(const FindNode&) const = default;
};

class Tsdb {
 public:
  explicit Tsdb(TsdbOptions options);
  ~Tsdb();  // close()
  Tsdb(const Tsdb&) = delete;
  Tsdb& operator=(const Tsdb&) = delete;

  // Loads the index, maps the archives, replays the WAL, checkpoints and
  // starts the committer. Errors name the file.
  Result<void> open();
  // Stops the committer after a last commit and checkpoint. Idempotent.
  void close();

  struct AppendResult {
    size_t accepted = 0;
    size_t refused = 0;  // new series past the limit, or a bad timestamp
    std::string error;   // the first refusal's reason ("" when none)
    uint64_t seq = 0;    // pass to sync() to wait for durability
  };
  // `now` is the arrival time (epoch seconds) that decides, as in whisper,
  // which archive a point goes to.
  AppendResult append(std::span<const Point> points, int64_t now);
  // Blocks until everything appended up to `seq` is fdatasynced (0 = all so
  // far). An error when the WAL cannot be written.
  Result<void> sync(uint64_t seq = 0);

  // Nodes at the pattern's depth whose path matches it, sorted by path; a
  // path that is both a series and a prefix of others appears twice
  // (branch first), as in graphite's standard finder.
  std::vector<FindNode> find(const GlobPattern& pattern) const;
  // Series (leaves) matching, sorted.
  std::vector<std::string> leaves(const GlobPattern& pattern, size_t limit = SIZE_MAX) const;
  // Every series matching `pattern`, read for [from, until) as whisper's
  // fetch does (plan_fetch): name = the series path, path_expression =
  // pattern. Series with no archive covering the range are left out.
  Result<std::vector<Series>> fetch(const GlobPattern& pattern, int64_t from, int64_t until, int64_t now);
  // One series by exact name; nullopt when unknown or out of range.
  std::optional<Series> fetch_one(std::string_view name, int64_t from, int64_t until, int64_t now);

  // Applies pending points, rotates the WAL, msyncs archives, persists the
  // index and deletes applied WAL segments.
  Result<void> checkpoint();

  TsdbStats stats() const;
  const TsdbOptions& options() const { return options_; }

 private:
  struct Impl;
  TsdbOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace stele::metrics
