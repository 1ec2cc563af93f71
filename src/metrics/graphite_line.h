// Graphite plaintext protocol ("carbon line protocol"), input side, pure (no
// I/O, no clock): `<metric path> <value> <timestamp>\n`, as carbon's
// MetricLineReceiver (TCP) and MetricDatagramReceiver (UDP) accept it
// (graphite-project/carbon lib/carbon/protocols.py).
//
// Rules, carbon's unless marked [Stele]:
// - A line ends at '\n'; a '\r' before it is whitespace, so CR LF works.
//   Fields are split on runs of whitespace, as Python's `line.strip().split()`
//   does for ASCII: space, \t \n \v \f \r and \x1c-\x1f. There must be
//   exactly three fields.
// - Value and timestamp are read as Python's float() reads them: optional
//   sign, decimal or exponent form, "nan", "inf", "infinity" (any case), '_'
//   between digits; no hex, no "nan(...)". Out-of-range literals become
//   +-inf or +-0, as in Python.
// - A NaN value is dropped silently: not a bad line, not logged, counted in
//   nan_dropped (carbon's metricReceived filters `value != value` after the
//   line parsed). +-inf values are kept, as carbon keeps them.
// - The timestamp is float seconds truncated toward zero (whisper's int()).
//   When it truncates to -1 the point gets the caller's `now` (carbon issue
//   #54: `int(timestamp) == -1`). [Stele] A NaN, infinite or out-of-int64
//   timestamp is a bad line; carbon raises outside its try and the
//   connection dies.
// - [Stele] Blank (empty or whitespace-only) lines are ignored and counted in
//   `blank`, not as bad lines; carbon logs them as invalid.
// - [Stele] Metric names are checked (carbon checks nothing and lets its
//   storage rename or lose odd names): every dot-separated node is non-empty
//   (carbon strips a leading '.', collapses "a..b" into a/b on disk, and
//   stores "a." as a hidden a/.wsp graphite-web never lists); no control
//   bytes or DEL; valid UTF-8 without Unicode whitespace (carbon decodes
//   UTF-8 and drops the connection when that fails; names end up in JSON);
//   no ';' -- carbon 1.1 reads `name;tag=value` as a tagged series, which
//   Stele does not support yet, so storing it as a plain name would be wrong.
//   Other printable characters (including glob characters) are kept, as
//   carbon keeps them.
// - A line longer than max_line bytes (not counting its '\n'; 16384 by
//   default, Twisted's LineOnlyReceiver.MAX_LENGTH, so anything carbon
//   accepts is accepted) is a bad line. [Stele] It is reported as soon as
//   it passes the limit and then skipped up to the next '\n' without being
//   buffered; the connection stays open (Twisted closes it).
// - [Stele] Bad lines are reported and the stream goes on (carbon: the same,
//   except for the cases above where its connection dies).
// - [Stele] finish() parses an unterminated last line at end of stream;
//   Twisted silently discards it.
//
// Thread-safety: a LineParser is one connection's (or one UDP socket's)
// state and is not safe for concurrent use; the free functions are.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace stele::metrics {

// One parsed point. `name` views the caller's input or the parser's buffer:
// valid only during the callback (or until the viewed line is gone).
struct Point {
  std::string_view name;
  double value = 0;
  int64_t time_s = 0;
};

// Outcome of one line. Everything from kFieldCount on is a bad line.
enum class LineStatus : uint8_t {
  kPoint,         // a good point
  kBlank,         // empty or whitespace only: ignored
  kNaN,           // value is NaN: dropped (carbon does the same)
  kFieldCount,    // not exactly three fields
  kBadValue,      // value is not a float
  kBadTimestamp,  // timestamp is not a float, or NaN / inf / beyond int64
  kBadName,       // empty node, control byte, ';', invalid UTF-8
  kTooLong,       // longer than max_line
};
inline constexpr size_t kLineStatusCount = 8;
// "point", "blank", "nan", "field_count", "bad_value", "bad_timestamp",
// "bad_name", "too_long" (for counters and metric names).
const char* line_status_name(LineStatus s);
inline bool is_bad(LineStatus s) { return s >= LineStatus::kFieldCount; }

// Parses one line (without its '\n'; surrounding whitespace allowed). On
// kPoint fills `out` (name views `line`). Never allocates. `now` is the
// caller's clock in seconds, used for timestamp -1. Does not check length.
LineStatus scan_line(std::string_view line, int64_t now, Point& out);

// Convenience for one line: the point, or an error whose message says what
// is wrong ("expected 3 fields (path value timestamp), got 2"); blank lines
// and NaN values are errors here too (the caller has nothing to store).
Result<Point> parse_line(std::string_view line, int64_t now);

// Python's float() on one field (see the rules above). False when invalid.
bool parse_carbon_float(std::string_view field, double& out);

// Why `name` is not an acceptable metric path (see the rules above), or
// nullopt when it is.
std::optional<std::string> metric_name_error(std::string_view name);

// A bad line as the parser reports it. `text` is the line (for kTooLong, its
// first max_line bytes); valid only during the callback.
struct BadLine {
  LineStatus reason = LineStatus::kFieldCount;
  uint64_t line_no = 0;  // 1-based, counting every line of the stream (or datagram)
  std::string_view text;
  size_t max_line = 0;   // the limit, for kTooLong's message
  // "line 3: expected 3 fields (path value timestamp), got 2: \"foo 1\"" --
  // names the line, what is wrong and (escaped, cut at 200 bytes) the text.
  std::string message() const;
};

struct LineCounters {
  uint64_t lines = 0;   // every line seen, blank and bad included
  uint64_t points = 0;  // handed to on_point
  std::array<uint64_t, kLineStatusCount> by_status{};  // indexed by LineStatus
  uint64_t blank() const { return by_status[size_t(LineStatus::kBlank)]; }
  uint64_t nan_dropped() const { return by_status[size_t(LineStatus::kNaN)]; }
  uint64_t bad() const {
    uint64_t n = 0;
    for (size_t i = size_t(LineStatus::kFieldCount); i < kLineStatusCount; ++i) n += by_status[i];
    return n;
  }
};

// Streaming parser for one TCP connection: feed() bytes as they arrive, split
// anywhere; on_point(const Point&) runs for every good point and
// on_bad(const BadLine&) for every bad line, in stream order. Memory stays
// bounded by max_line. A complete line inside one feed() is parsed in place
// (no copy); only a line split across reads is copied into the buffer.
class LineParser {
 public:
  static constexpr size_t kDefaultMaxLine = 16384;
  explicit LineParser(size_t max_line = kDefaultMaxLine) : max_line_(max_line) {}

  template <class OnPoint, class OnBad>
  void feed(std::string_view data, int64_t now, OnPoint&& on_point, OnBad&& on_bad) {
    while (!data.empty()) {
      const void* hit = std::memchr(data.data(), '\n', data.size());
      size_t nl = hit ? size_t(static_cast<const char*>(hit) - data.data()) : data.size();
      std::string_view piece = data.substr(0, nl);
      if (skipping_) {
        if (hit) {
          skipping_ = false;
          ++counters_.lines;
        }
      } else if (partial_.empty() && hit && piece.size() <= max_line_) {
        line(piece, now, on_point, on_bad);  // the common case: no copy
      } else if (partial_.size() + piece.size() > max_line_) {
        too_long(piece, on_bad);
        if (hit) ++counters_.lines;
        else skipping_ = true;
      } else {
        partial_.append(piece);
        if (hit) {
          line(partial_, now, on_point, on_bad);
          partial_.clear();
        }
      }
      data.remove_prefix(hit ? nl + 1 : nl);
    }
  }

  // End of stream: parses a last line that had no '\n' and resets the line
  // state (counters stay), so the parser can start a new stream.
  template <class OnPoint, class OnBad>
  void finish(int64_t now, OnPoint&& on_point, OnBad&& on_bad) {
    if (!skipping_ && !partial_.empty()) line(partial_, now, on_point, on_bad);
    else if (skipping_) ++counters_.lines;
    partial_.clear();
    skipping_ = false;
    line_no_base_ = counters_.lines;
  }

  // One UDP datagram: its own lines (numbered from 1), the last one needing
  // no '\n'; nothing carries over to the next datagram. Do not mix with
  // feed() on the same parser.
  template <class OnPoint, class OnBad>
  void feed_datagram(std::string_view datagram, int64_t now, OnPoint&& on_point, OnBad&& on_bad) {
    partial_.clear();
    skipping_ = false;
    line_no_base_ = counters_.lines;
    feed(datagram, now, on_point, on_bad);
    finish(now, on_point, on_bad);
  }

  const LineCounters& counters() const { return counters_; }
  size_t max_line() const { return max_line_; }
  bool has_partial() const { return !partial_.empty() || skipping_; }

 private:
  template <class OnPoint, class OnBad>
  void line(std::string_view text, int64_t now, OnPoint& on_point, OnBad& on_bad) {
    Point p;
    LineStatus s = scan_line(text, now, p);
    ++counters_.lines;
    ++counters_.by_status[size_t(s)];
    if (s == LineStatus::kPoint) {
      ++counters_.points;
      on_point(static_cast<const Point&>(p));
    } else if (is_bad(s)) {
      on_bad(BadLine{s, counters_.lines - line_no_base_, text, max_line_});
    }
  }

  // Reports the line in progress as too long; keeps nothing of it.
  template <class OnBad>
  void too_long(std::string_view piece, OnBad& on_bad) {
    size_t room = max_line_ - partial_.size();
    partial_.append(piece.substr(0, room));
    ++counters_.by_status[size_t(LineStatus::kTooLong)];
    on_bad(BadLine{LineStatus::kTooLong, counters_.lines + 1 - line_no_base_, partial_, max_line_});
    partial_.clear();
  }

  size_t max_line_;
  std::string partial_;      // the start of a line split across feeds (<= max_line_ bytes)
  bool skipping_ = false;    // inside a too-long line, dropping bytes up to '\n'
  uint64_t line_no_base_ = 0;  // counters_.lines when the stream (datagram) began
  LineCounters counters_;
};

// Decides when a repeated warning may be logged (e.g. "bad graphite line"):
// at most `burst` lines per `interval_ms` window; the rest are suppressed and
// counted, and the next line that is let through says how many were
// suppressed before it. Pure: the caller passes its clock. Not thread-safe
// (one per listener, used on its strand).
class RateLimitedLog {
 public:
  explicit RateLimitedLog(int64_t interval_ms = 10'000, uint32_t burst = 5)
      : interval_ms_(interval_ms), burst_(burst) {}

  struct Decision {
    bool emit = false;
    uint64_t suppressed = 0;  // with emit: how many were suppressed since the last emitted line
  };
  // One event at now_ms. A clock that steps back starts a new window.
  Decision admit(int64_t now_ms);
  // Suppressed events not yet reported by an emitted line; resets the count
  // (for a periodic "N more bad lines suppressed" summary).
  uint64_t take_suppressed();
  uint64_t pending_suppressed() const { return suppressed_; }

 private:
  int64_t interval_ms_;
  uint32_t burst_;
  bool started_ = false;
  int64_t window_start_ = 0;
  uint32_t in_window_ = 0;
  uint64_t suppressed_ = 0;
};

}  // namespace stele::metrics
