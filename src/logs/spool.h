// Spool: the on-disk record buffer between a producer (a task's executor
// turning output into records; later the agent's metric collectors) and the
// agent's shipper (issue 4 point 2: "from an on-disk buffer under its data
// dir"). The producer and the shipper are different processes and either may
// restart or be killed at any moment; the spool is what makes that lose
// nothing.
//
// Layout, in a directory D with a name prefix P:
//   P.00000001, P.00000002, ...  segments, written in order by ONE writer;
//                                a segment is complete once the next exists
//   P.end                        the writer finished: no segment will follow
//   P.cursor                     the shipper's position (SpoolCursor)
// A segment is a sequence of frames:
//   u32 LE payload length | u32 LE crc32(payload) | payload
//   payload = u16 LE tag length | tag | i64 LE time_ns | record (one msgpack map)
// Records are opaque to the spool (log lines, metric points: anything).
//
// Bounded: the writer refuses to grow the spool past max_bytes (counting the
// segments still present; the shipper deletes shipped ones) and counts what
// it had to drop; once there is room again it writes one record saying how
// many were dropped ({"log": "stele: N records dropped ..."} on the drop tag).
#pragma once
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "logs/record.h"

namespace stele::logs {

struct SpoolWriterOptions {
  uint64_t segment_bytes = 8ull << 20;
  uint64_t max_bytes = 256ull << 20;  // segments present, at most (then records are dropped)
  int file_mode = 0600;
};

// Not thread-safe. Files are opened O_NOFOLLOW|O_CLOEXEC (a sandbox is
// writable by the task user).
class SpoolWriter {
 public:
  SpoolWriter(std::string dir, std::string prefix, SpoolWriterOptions options = {});
  ~SpoolWriter();  // flushes (does not write the end marker)
  SpoolWriter(const SpoolWriter&) = delete;
  SpoolWriter& operator=(const SpoolWriter&) = delete;

  // Buffers one record; flush() writes the buffered frames with one write(2).
  void append(std::string_view tag, int64_t time_ns, std::string_view record);
  // Writes what is buffered (rolling to a new segment past segment_bytes).
  // Errors are remembered (last_error) and counted as drops; never throws.
  void flush();
  // flush(), then the end marker: the shipper may finish this spool.
  void finish();

  uint64_t dropped() const { return dropped_total_; }
  const std::string& last_error() const { return last_error_; }

 private:
  bool open_segment();
  uint64_t bytes_present() const;

  std::string dir_, prefix_;
  SpoolWriterOptions opt_;
  int fd_ = -1;
  uint32_t seg_ = 0;
  uint64_t seg_size_ = 0;
  std::string buf_;
  size_t buf_records_ = 0;
  std::string drop_tag_;
  uint64_t dropped_ = 0, dropped_total_ = 0;
  std::string last_error_;
};

// A SpoolWriter for several producer threads (a server's relay of what
// external senders gave it: the forward input's writer thread, the Graphite
// input, the monitor's perfdata). Every call appends and flushes.
class SharedSpoolWriter {
 public:
  SharedSpoolWriter(std::string dir, std::string prefix, SpoolWriterOptions options = {})
      : writer_(std::move(dir), std::move(prefix), options) {}
  void append(std::span<const LogEntry> entries) {
    std::lock_guard lock(mu_);
    for (const auto& e : entries) writer_.append(e.tag, e.time_ns, e.record);
    writer_.flush();
  }
  uint64_t dropped() const {
    std::lock_guard lock(mu_);
    return writer_.dropped();
  }

 private:
  mutable std::mutex mu_;
  SpoolWriter writer_;
};

// A position in a spool: the next byte to ship.
struct SpoolPos {
  uint32_t segment = 1;
  uint64_t offset = 0;
  bool operator==(const SpoolPos&) const = default;
};

// The shipper's state, kept in P.cursor: `acked` is everything the receiver
// confirmed; a non-empty `inflight` is the exact range [acked, inflight_end)
// of the segment acked.segment that was sent but not confirmed. A restarted
// shipper resends exactly that range first (same bytes, same chunk ids), so
// a receiver that stored it before skips it.
struct SpoolCursor {
  SpoolPos acked;
  std::optional<uint64_t> inflight_end;
};
// With a `destination` name (a shipper sending one spool to several
// receivers), the cursor is that destination's own: P.cursor.<destination>;
// without one, P.cursor.
Result<SpoolCursor> load_spool_cursor(const std::string& dir, const std::string& prefix,
                                      std::string_view destination = {});  // absent: start
Result<void> save_spool_cursor(const std::string& dir, const std::string& prefix, const SpoolCursor& c,
                               std::string_view destination = {});
bool spool_cursor_exists(const std::string& dir, const std::string& prefix, std::string_view destination = {});

// Records read from one segment range.
struct SpoolBatch {
  SpoolPos start, end;          // [start, end) within start.segment (end.segment may be the next)
  std::string bytes;            // the frames' bytes; entries view into it
  std::vector<LogEntry> entries;
  uint64_t skipped_bytes = 0;   // a torn or corrupt frame at the end of a complete segment
};

// Reads a spool from a position. Not thread-safe; stateless between calls
// apart from the directory itself.
class SpoolReader {
 public:
  SpoolReader(std::string dir, std::string prefix);

  // Up to max_bytes of whole frames from `from` (at least one frame when one
  // is there, even if larger). When `from` is at the end of a complete
  // segment, the batch is empty and batch.end is the next segment's start.
  // With `exact_end`, reads exactly [from, *exact_end) (the inflight resend).
  Result<SpoolBatch> read(SpoolPos from, size_t max_bytes, std::optional<uint64_t> exact_end = std::nullopt) const;
  // True when the writer finished and `pos` is past everything it wrote.
  bool drained(SpoolPos pos) const;
  // Deletes the segments before pos.segment (shipped).
  void release_before(SpoolPos pos) const;
  // Deletes every spool file, every cursor included (shipped and finished).
  void remove_all() const;
  bool exists() const;  // any segment or the end marker

  std::string segment_path(uint32_t n) const;

 private:
  std::string dir_, prefix_;
};

}  // namespace stele::logs
