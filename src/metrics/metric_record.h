// Metric points as forward-protocol records: how agents ship what their
// collectors measure over the same acked, spooled path as logs (design.md:
// "metrics as records with fluent_signal 1").
//
// One record holds the points of one collection at one time (the entry's
// EventTime, whole seconds used): a msgpack map
//   {"metrics": {"<path>": <float or int>, ...}}
// under the tag kMetricTag. Paths follow design.md's "Names" and must pass
// metric_name_error() (graphite_line.h); values are finite or not, as sent
// (NaN is dropped like a graphite NaN line).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "metrics/graphite_line.h"

namespace stele::metrics {

inline constexpr std::string_view kMetricTag = "stele.metrics";

// A point with an owned name, for building records.
struct NamedValue {
  std::string path;
  double value = 0;
};

// The record's msgpack bytes.
std::string encode_metric_record(const std::vector<NamedValue>& points);

// Calls on_point(Point) for every point of one record (names view `record`).
// An error names what is wrong ("metrics record: key 'metrics' missing",
// "metrics record: value of 'a.b' is a str, expected a number", "metrics
// record: bad path 'a..b': empty node"); nothing is delivered then.
Result<size_t> decode_metric_record(std::string_view record, int64_t time_s, std::vector<Point>& out);

}  // namespace stele::metrics
