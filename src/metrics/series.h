// A fetched or computed time series, graphite-web's TimeSeries: evenly spaced
// values from `start` (inclusive) to `end` (exclusive) every `step` seconds,
// NaN meaning None. Shared by the store (what a read returns), the render
// evaluator (what functions take and return) and the output formats.
#pragma once
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "metrics/retention.h"

namespace stele::metrics {

struct Series {
  std::string name;             // graphite's series.name (functions rename it)
  std::string path_expression;  // the path (glob) that fetched it, kept through functions
  int64_t start = 0;            // epoch seconds of values[0]
  int64_t end = 0;              // start + step * values.size()
  int64_t step = 1;
  std::vector<double> values;   // NaN = None
  // How maxDataPoints consolidation merges points (graphite's consolidationFunc;
  // consolidateBy changes it): average, sum, min, max, last...
  Aggregation consolidation = Aggregation::average;
  double x_files_factor = 0;  // graphite's series.xFilesFactor (used by consolidation)
  std::map<std::string, std::string> tags;  // at least {"name": name}

  static bool is_none(double v) { return std::isnan(v); }
};

}  // namespace stele::metrics
