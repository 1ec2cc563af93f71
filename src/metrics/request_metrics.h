// Request metrics derived from apps' access logs (the seed's
// fluent-plugin-datacounter): an app that declares "accessLog" in its spec
// (common/spec.h AccessLogSpec) gets, per window of `interval_s` (10 s)
// aligned to multiples of it, under stele.app.<app name>.requests.:
//
//   count          access lines in the window (every status, `other` included)
//   1xx .. 5xx     by status class
//   other          access lines whose status is not a number in 100..599
//   error_ratio    5xx / count -- 4xx are the client's errors, as in most SLOs;
//                  absent (a gap) for a window with no requests
//   latency.p50 .p90 .p99   milliseconds, nearest-rank quantiles of the
//                  window's latency samples; absent when it has none
//   parse_errors   lines that are not access lines (not LTSV / not a JSON
//                  object / no status field) -- counted, never logged one by one
//   late           access lines whose window had already been emitted:
//                  dropped, not counted into another window (that would put
//                  them at a wrong time)
//   dropped        access lines that would have opened more than
//                  max_open_windows windows for the app (timestamps far in
//                  the future): dropped
//
// Every point carries its window's start as its time. A window is emitted
// once, by the first flush(now_s) with now_s >= window end + grace_s, so
// lines that shippers deliver a little late still land in their window.
// `late`, `dropped` and parse errors of closed windows happen "now": they
// are added to the newest window of the next flush that emits any.
//
// Zeros rather than gaps: from an app's first line on (since it was
// configured), every closed window is emitted, with count, classes and
// counters 0 when nothing came, so rates graph as 0, not as holes (graphite
// reads a hole as "unknown"). After a long pause (flush not called, or a first
// line far in the past) at most max_gap_fill empty windows are emitted per
// flush, the newest; windows with lines are always emitted.
//
// Quantiles: exact nearest-rank (the ceil(p/100 * n)-th smallest sample) while
// a window has at most max_samples latency samples; beyond that a uniform
// reservoir of max_samples (Vitter's algorithm R) stands in for them, so
// memory per window stays bounded (10,000 samples = 80 KB; the p99 of a
// 10,000-sample reservoir is off by about 0.1 percentile points).
//
// Pure: no clock, no I/O; the caller passes line times and `now`. Not
// thread-safe: one owner (strand) calls configure, observe and flush.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/spec.h"

namespace stele::metrics {

// graphite_line.h's Point with its own path (Point views its input; agent's
// MetricPoint and metric_record.h's NamedValue carry no time).
struct OwnedPoint {
  std::string path;
  int64_t time_s = 0;
  double value = 0;

  friend bool operator==(const OwnedPoint&, const OwnedPoint&) = default;
};

// One access line as read by parse_access_line.
struct AccessLine {
  int status = 0;                     // 100..599, or 0 when the status field holds anything else
  std::optional<double> latency_ms;   // absent when the field is missing, negative or not a number
};

// Reads `line` (a trailing "\n" or "\r\n" is ignored) in the app's format:
// LTSV is tab-separated `label:value` fields (every field needs a non-empty
// label; the value may contain ':'); JSON is one object, whose top-level
// status and latency may be numbers or strings. nullopt when the line is not
// an access line: not LTSV / not a JSON object, or no status field.
std::optional<AccessLine> parse_access_line(const AccessLogSpec& spec, std::string_view line);

struct RequestMetricsOptions {
  int64_t interval_s = 10;         // window length; windows start at multiples of it
  int64_t grace_s = 2;             // a window is emitted at end + grace_s
  size_t max_samples = 10'000;     // latency samples kept per window (reservoir beyond)
  size_t max_open_windows = 64;    // per app; more would only come from clock trouble
  int64_t max_gap_fill = 360;      // empty windows emitted per app per flush (1 h of 10 s)
  uint64_t seed = 0x5eed;          // reservoir sampling; fixed so runs are reproducible
};

// What observe() did with a line.
enum class LineOutcome : uint8_t {
  kCounted,        // an access line, counted in its window
  kNotAccessLine,  // counted in parse_errors
  kLate,           // its window was already emitted: counted in `late` only
  kDropped,        // too many open windows: counted in `dropped` only
  kUnconfigured,   // the app has no accessLog: ignored
};

class RequestMetrics {
 public:
  explicit RequestMetrics(RequestMetricsOptions options = {});

  // Replaces the set of apps with an access log. Keys are app ids
  // ("/shop/web") or app names ("shop_web"); both become the metric node of
  // the app name (design.md "Names"). Apps kept keep their open windows (with
  // the new spec for new lines); apps left out lose theirs unflushed, so
  // flush first to keep them.
  void configure(const std::map<std::string, AccessLogSpec>& apps);

  // One log line of an app (id or name), with the line's time (the log
  // record's, not the arrival's).
  LineOutcome observe(std::string_view app, int64_t time_ns, std::string_view line);

  // Points of every window closed by `now_s` and not emitted before, ordered
  // by app name, then time, then metric (the order of the list above).
  std::vector<OwnedPoint> flush(int64_t now_s);

 private:
  struct Window {
    uint64_t count = 0;
    uint64_t classes[5] = {};  // 1xx..5xx
    uint64_t other = 0;
    uint64_t parse_errors = 0;
    uint64_t late = 0;
    uint64_t dropped = 0;
    uint64_t latencies_seen = 0;  // >= samples.size() once the reservoir is full
    std::vector<double> samples;  // ms
  };
  struct App {
    AccessLogSpec spec;
    std::map<int64_t, Window> windows;     // by start, not yet emitted
    std::optional<int64_t> flushed_until;  // windows before this were emitted
    Window pending;                        // late / dropped / parse errors for the next flush
  };

  App* find(std::string_view app);
  int64_t window_start(int64_t time_ns) const;
  Window* open_window(App& a, int64_t start);
  void count(Window& w, const AccessLine& line);
  void flush_app(const std::string& name, App& a, int64_t closed_end, std::vector<OwnedPoint>& out);
  void emit(const std::string& name, int64_t start, Window& w, std::vector<OwnedPoint>& out) const;

  RequestMetricsOptions options_;
  std::map<std::string, App, std::less<>> apps_;  // by app name (metric node)
  std::mt19937_64 rng_;
};

}  // namespace stele::metrics
