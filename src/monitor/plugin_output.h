// The Nagios plugin API, input side, pure (no I/O, no clock): exit code ->
// status, stdout -> service output, long text and performance data, after
// the Nagios Plugin Development Guidelines (nagios-plugins.org/doc/guidelines)
// and Nagios Core's reading of plugin output.
//
// Output rules:
// - Only the first kMaxPluginOutput bytes (64 KiB) of stdout are read; the
//   rest is dropped and `truncated` says so. (Nagios Core keeps 8 KiB.)
// - Lines end at '\n'; a '\r' before it is dropped, so CR LF works.
// - Line 1: the text before its first '|' is the service output, the text
//   after it is performance data.
// - Later lines are long text until a line holding a '|': the text before
//   that '|' is the last long text, everything after it -- the rest of that
//   line and every later line, '|' or not -- is performance data.
// - Trailing whitespace of output and long text lines is dropped.
//
// Performance data: items separated by whitespace, each
// `'label'=value[UOM];[warn];[crit];[min];[max]`:
// - A label in single quotes may hold spaces and '=', and `''` for a quote;
//   an unquoted label runs up to '=' and holds no whitespace or quote.
//   Labels are non-empty.
// - value: a decimal number (optional sign, fraction, exponent), or `U` for
//   "could not be determined" (then nothing may follow it but ';' fields).
//   A ',' decimal separator (plugins under a German locale) is read as '.'.
// - UOM: none, s, ms, us, %, B, KB, MB, GB, TB or c; letter case is ignored
//   (`kB` and `Mb` are seen in the wild meaning bytes).
// - warn and crit: ranges (below); min and max: numbers. Each may be empty,
//   trailing ones may be left out, more than five fields is an error.
// - A malformed item is skipped and reported in `perfdata_errors` with its
//   byte position in the perfdata text (every line's perfdata part joined
//   by ' '); the other items are kept.
//
// Ranges (guidelines "Threshold and ranges"): `10` = 0..10, `10:` = 10..inf,
// `~:10` = -inf..10, `10:20`, and a leading `@` alerts inside instead of
// outside. start > end is an error.
//
// Everything here is thread-safe (no shared state).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace stele::monitor {

enum class CheckStatus : int { kOk = 0, kWarning = 1, kCritical = 2, kUnknown = 3 };

// 0 OK, 1 WARNING, 2 CRITICAL; anything else -- 3, 127 (not found), 126,
// negative, 128+signal for a killed plugin -- is UNKNOWN.
CheckStatus status_from_exit_code(int exit_code);
// "OK", "WARNING", "CRITICAL", "UNKNOWN".
const char* status_name(CheckStatus s);
// 0..3 -> status; other values -> nullopt (for JSON read back).
std::optional<CheckStatus> status_from_int(int64_t v);

inline constexpr size_t kMaxPluginOutput = 64 * 1024;

struct Range {
  std::optional<double> start;  // nullopt = -infinity ('~')
  std::optional<double> end;    // nullopt = +infinity (nothing after ':')
  bool inside = false;          // '@': alert when start <= v <= end

  friend bool operator==(const Range&, const Range&) = default;
};

// Errors name what is wrong ("range '20:10': start is greater than end").
Result<Range> parse_range(std::string_view text);
// True when `value` should raise the alert this range stands for.
bool range_alerts(const Range& r, double value);
// Canonical text that parse_range reads back as the same range ("10", "10:",
// "~:10", "@10:20").
std::string format_range(const Range& r);

enum class Uom : uint8_t {
  kNone, kSeconds, kMilliseconds, kMicroseconds, kPercent,
  kBytes, kKilobytes, kMegabytes, kGigabytes, kTerabytes, kCounter,
};
std::optional<Uom> parse_uom(std::string_view text);  // case-insensitive
std::string_view uom_text(Uom u);                     // "", "s", "ms", ..., "KB", "c"

struct PerfValue {
  std::string label;
  std::optional<double> value;  // nullopt: 'U' (unknown)
  Uom uom = Uom::kNone;
  std::optional<Range> warn, crit;
  std::optional<double> min, max;

  friend bool operator==(const PerfValue&, const PerfValue&) = default;
};

// One skipped perfdata item: its byte offset in the perfdata text, the item
// (at most 80 bytes of it) and why.
struct PerfError {
  size_t position = 0;
  std::string item;
  std::string reason;
  std::string message() const;  // "perfdata at 12 ('x=1zz'): unknown unit 'zz'"
};

// Parses whitespace-separated items; bad ones go to `errors` (may be null).
std::vector<PerfValue> parse_perfdata(std::string_view text, std::vector<PerfError>* errors);

// Parses one item (no surrounding whitespace). Errors say what is wrong.
Result<PerfValue> parse_perf_item(std::string_view item);

struct PluginOutput {
  std::string output;       // first line, before '|'
  std::string long_output;  // the long text lines, '\n'-joined, no perfdata
  std::vector<PerfValue> perfdata;
  std::vector<PerfError> perfdata_errors;
  bool truncated = false;   // stdout was longer than kMaxPluginOutput

  // output, then "\n" + long_output when there is any: what a user reads.
  std::string text() const;
};

PluginOutput parse_plugin_output(std::string_view stdout_text);

// The value in base units, for metrics: s, ms, us -> seconds; B, KB, MB, GB,
// TB -> bytes with 1024 multiples (as check_disk and the guidelines mean
// them: KB is 1024 bytes); %, c and none unchanged. nullopt for 'U'.
std::optional<double> to_metric_value(const PerfValue& p);

// "stele.check.<entity>.<check>.<label>", each node through metric_node()
// (characters outside [A-Za-z0-9_-] -> '_', so "/" -> "_").
std::string check_metric_path(std::string_view entity, std::string_view check, std::string_view label);

}  // namespace stele::monitor
