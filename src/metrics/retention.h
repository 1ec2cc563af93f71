// Graphite retention semantics, pure (no I/O, no clock): which archives a
// metric gets (storage schemas matched by regex), how finer points roll up
// into coarser ones (aggregation + xFilesFactor), and which archive a read
// is answered from. Follows carbon (graphite-project/carbon
// lib/carbon/storage.py, lib/carbon/util.py parseRetentionDef) and whisper
// (graphite-project/whisper whisper.py) unless marked [Stele].
//
// Retentions, e.g. "10s:6h,1m:7d,10m:1y" (parse_retentions):
// - Comma-separated `precision:points` pairs, each trimmed of ASCII
//   whitespace. Precision is a bare number of seconds or `<digits><unit>`;
//   points is a bare count or `<digits><unit>`, a duration that becomes
//   duration / precision points, rounded down. A unit is any lowercase
//   prefix of seconds, minutes, hours, days, weeks, years, checked in that
//   order: "m" and "min" are minutes, "mo" is invalid; a week is 7 days and
//   a year 365 days. Uppercase ("10S") is invalid, as in carbon.
// - The archives are sorted finest first (whisper sorts them too) and must
//   pass whisper's validateArchiveList: at least one archive; no two with
//   the same precision; each finer precision divides every coarser one; a
//   coarser archive retains strictly more time; each archive has at least
//   as many points as the next coarser one consolidates.
// - [Stele] Also rejected: precision 0 (carbon divides by zero), an archive
//   of 0 points ("1h:30m"; whisper creates it and then divides by zero when
//   propagating), and precision, points or retention above 2^32-1 seconds
//   (whisper's header stores them as unsigned 32-bit; whisper.create fails).
// - Errors: code 400 for text that does not parse, 422 for a whisper rule;
//   the message quotes the offending part ("retention '10x:10': invalid unit
//   'x' ...").
//
// Aggregation: average, sum, min, max, last, plus whisper's avg_zero,
// absmax and absmin so carbon configs using them load. A rollup of N finer
// slots is stored only when at least one is known and known/N >= xff.
//
// Reads (plan_fetch, whisper's file_fetch + __archive_fetch): from > until is
// an error; a range wholly in the future or wholly older than the coarsest
// retention has no data; otherwise from/until are clamped to
// [now - max retention, now], the finest archive whose retention covers
// now - from is chosen, and the window is aligned to its step.
//
// Thread-safety: everything here is immutable after construction; a const
// Schemas may be matched from many threads at once.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <regex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace stele::metrics {

// One whisper archive: a point every step_s seconds, `points` of them.
struct Archive {
  int64_t step_s = 0;
  int64_t points = 0;
  int64_t retention_s() const { return step_s * points; }
  bool operator==(const Archive&) const = default;
};

// One `precision:points` definition ("1m:7d" -> {60, 10080}), not validated
// against other archives. Errors (code 400) quote the definition.
Result<Archive> parse_retention_def(std::string_view def);

// A whole retentions value, sorted finest first and validated (see above).
Result<std::vector<Archive>> parse_retentions(std::string_view text);

// whisper's validateArchiveList on already-parsed archives (sorted here).
// Messages name archives as "<step>s:<points>". Code 422.
Result<std::vector<Archive>> validate_archives(std::vector<Archive> archives);

// "10s:2160,60s:10080" -- canonical text, seconds and point counts.
std::string format_retentions(const std::vector<Archive>& archives);

enum class Aggregation : uint8_t { average, sum, min, max, last, avg_zero, absmax, absmin };

// whisper's method names, exactly ("average", not "avg"). Code 400 listing
// the valid names.
Result<Aggregation> parse_aggregation(std::string_view name);
const char* aggregation_name(Aggregation a);

// Rolls up the finer slots of one coarser point, as whisper's __propagate +
// aggregate do: nullopt when no value is known or known/total < xff
// (whisper then writes nothing). average and sum add left to right; last is
// the last known value; absmax/absmin return the signed value of largest /
// smallest magnitude, the first one on ties; avg_zero counts unknown slots
// as 0. NaN and inf are ordinary doubles here.
std::optional<double> aggregate(Aggregation agg, std::span<const std::optional<double>> values,
                                double xff);

// Retention and rollup rules for the metrics whose name the pattern finds.
// Build with make_schema (it compiles and validates); fields are not meant
// to be edited afterwards.
struct StorageSchema {
  std::string name;     // the config section, for logs and /metrics/info
  std::string pattern;  // ECMAScript regex, searched anywhere in the name (Python re.search)
  std::vector<Archive> archives;  // sorted finest first, valid
  Aggregation agg = Aggregation::average;
  double x_files_factor = 0.5;
  std::regex regex;  // `pattern`, compiled
  // Only for entries built from carbon's two files (parse_carbon_schemas):
  // the storage-aggregation.conf pattern that must also match. Empty = none.
  std::string aggregation_pattern;
  std::regex aggregation_regex;

  bool matches(std::string_view metric) const;
};

// Validates archives (422), xff in [0, 1] (422) and compiles the pattern
// (400, naming it).
Result<StorageSchema> make_schema(std::string name, std::string_view pattern,
                                  std::vector<Archive> archives,
                                  Aggregation agg = Aggregation::average, double xff = 0.5);

// Stele's built-in default: "default", pattern ".*", 10s:6h,1m:7d,10m:1y,
// average, xff 0.5. (carbon's own default is 1m:7d.)
const StorageSchema& default_schema();

// An ordered list of schemas; match() returns the first one whose pattern is
// found in the metric name, in the order added (carbon's first match wins),
// or the default when none is. Never fails. References stay valid as long as
// the Schemas is not modified.
class Schemas {
 public:
  Schemas();  // empty list, Stele's default
  explicit Schemas(StorageSchema fallback);

  void add(StorageSchema schema);
  const StorageSchema& match(std::string_view metric) const;

  const std::vector<StorageSchema>& entries() const { return entries_; }
  const StorageSchema& fallback() const { return fallback_; }

 private:
  std::vector<StorageSchema> entries_;
  StorageSchema fallback_;
};

// Carbon's config files (Python ConfigParser syntax as carbon reads it):
// `[section]` headers, `key = value` or `key: value` lines, keys
// case-insensitive, '#' and ';' whole-line comments, blank lines; no inline
// comments (a '#' after a value is part of it, as in Python 3).
//
// storage-schemas.conf sections need `pattern` and `retentions`.
// storage-aggregation.conf sections need `pattern` and may set
// `xFilesFactor` (float in [0, 1]) and `aggregationMethod`; an unset one
// means whisper's default (0.5, average), not the next section's. As in
// carbon the two files are matched independently, each first match wins:
// the result holds one entry per (schema section, aggregation section or
// none) pair, in that order, so match() finds exactly carbon's pair.
// [Stele] A storage-schemas section may itself set xFilesFactor and/or
// aggregationMethod; it then ignores the aggregation file (unset -> default).
//
// [Stele] Where carbon logs and skips a section (no pattern, no retentions,
// an archive list whisper rejects, a bad xFilesFactor) or crashes (unknown
// method, xff out of range), this is an error; so are unknown keys,
// duplicate sections and keys, and lines outside any section. Messages start
// "storage-schemas.conf line N:" (or storage-aggregation.conf) and name the
// section. Unmatched metrics get Stele's default, not carbon's 1m:7d.
Result<Schemas> parse_carbon_schemas(std::string_view schemas_conf,
                                     std::string_view aggregation_conf = {});

// Index of the archive whisper reads for a range starting at `from`: the
// first (finest) whose retention >= now - from. A from in the future gives
// 0; one older than every retention gives the last (coarsest). `archives`
// must be non-empty and sorted finest first.
size_t choose_archive(const std::vector<Archive>& archives, int64_t now, int64_t from);

// The points a read returns: timestamps from, from+step, ... < until.
struct FetchWindow {
  int64_t from = 0;
  int64_t until = 0;
  int64_t step = 0;
  int64_t points() const { return step > 0 ? (until - from) / step : 0; }
  bool operator==(const FetchWindow&) const = default;
};

// whisper's __archive_fetch alignment: both ends round down to the step and
// move one step later (so a point stamped exactly `from` is not returned);
// an empty result gets one point. Python's floor modulo, also for negative
// times. Expects from <= until.
FetchWindow align(const Archive& archive, int64_t from, int64_t until);

struct FetchPlan {
  size_t archive = 0;
  FetchWindow window;
  bool operator==(const FetchPlan&) const = default;
};

// whisper's file_fetch: error (400) when from > until; nullopt (no data)
// when from > now or until < now - max retention; otherwise clamps, picks
// the archive and aligns. `archives` non-empty, sorted finest first.
Result<std::optional<FetchPlan>> plan_fetch(const std::vector<Archive>& archives, int64_t now,
                                            int64_t from, int64_t until);

}  // namespace stele::metrics
