// One log record as it travels (Fluentd forward protocol) and as it is
// stored: a tag, a nanosecond timestamp, and the record map kept as the
// msgpack bytes it arrived in (no re-encoding on the ingest path; queries
// decode it). design.md "Names": task output is tagged
// `stele.<app name>.<stream>`, pipeline steps `stele.<app name>.pipeline`;
// external senders keep their own tags.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace stele::logs {

// A view into a decoded request's buffer (valid while that buffer lives).
struct LogEntry {
  std::string_view tag;
  int64_t time_ns = 0;
  std::string_view record;  // one msgpack map, exactly as received
};

// An owning copy.
struct OwnedLogEntry {
  std::string tag;
  int64_t time_ns = 0;
  std::string record;  // msgpack map
  LogEntry view() const { return {tag, time_ns, record}; }
};

}  // namespace stele::logs
