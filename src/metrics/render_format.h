// The render API's text output formats, byte for byte as graphite-web 1.1.8
// writes them (webapp/graphite/render/views.py renderViewJson, renderViewCsv,
// renderViewRaw), and the Python number spellings graphite's series names and
// values use (repr(float), '%g').
//
// Series are written as evaluate() (render_eval.h) returns them, in order.
// A value is NaN for None. Python keeps NaN and None apart; here NaN is None,
// so a point graphite would write as "nan" in csv or raw is written as None
// there ("" and "None"); json writes both as null anyway.
//
// Known differences from graphite-web, all cosmetic:
//   - graphite writes a value that is a Python int (transformNull's default
//     0, summarize's "count") without ".0"; every value here is a float: 0.0.
//   - json "tags": graphite keeps insertion order; Series::tags is sorted, so
//     "name" comes first and the others follow sorted by key.
//
// Everything here is pure and thread-safe (csv reads the process's zone for
// TimeZone::kLocal, like render_time.h).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/render_time.h"
#include "metrics/series.h"

namespace stele::metrics {

enum class RenderFormat : uint8_t { kJson, kCsv, kRaw };

// views.py's `format` names ("json", "csv", "raw"); nullopt for any other
// (graphite then renders an image, which Stele does not). `rawData` and
// `pickle` query flags are the caller's business.
std::optional<RenderFormat> parse_render_format(std::string_view name);

// "application/json" ("text/javascript" when a jsonp callback is given),
// "text/csv", "text/plain".
std::string_view render_content_type(RenderFormat f, bool jsonp = false);

struct JsonOptions {
  bool no_null_points = false;  // noNullPoints: drop null points, and series left with none
  bool pretty = false;          // pretty: json.dumps(indent=2)
  std::string jsonp;            // non-empty: wrap as "<jsonp>(<json>)"
};

// [{"target": name, "tags": {...}, "datapoints": [[value, ts], ...]}, ...]
// with Python json.dumps spacing and escaping (ensure_ascii), values as
// repr(float), null for None, and graphite's textual fix-ups applied to the
// whole text: "NaN," -> "null," and "Infinity," -> "1e9999," (so +-inf
// values become +-1e9999). Timestamps are start, start + step, ... up to and
// including end, as many as there are values. "[]" when no series has any
// value (graphite's `any(data)`). maxDataPoints is applied beforehand, with
// consolidate_for_max_points() (render_eval.h).
std::string format_json(const std::vector<Series>& series, const JsonOptions& options = {});

// One "name,YYYY-MM-DD HH:MM:SS,value\r\n" line per value (Python's csv
// module, excel dialect: a name holding , " CR or LF is quoted), the
// timestamp start + i * step in `tz`, an empty value for None.
std::string format_csv(const std::vector<Series>& series, TimeZone tz);

// One "name,start,end,step|v1,v2,None,...\n" line per series, values as
// repr(float).
std::string format_raw(const std::vector<Series>& series);

// Python's repr(float) / str(float): the shortest text that reads back as
// `v`, "1.0", "0.0001", "1e-05", "1e+16", "inf", "-inf", "nan".
std::string python_float_repr(double v);

// Python's '%g' % v: "2", "0.5", "1e+06", "inf", "nan".
std::string python_percent_g(double v);

// str() of a number graphite holds as a Python int when `integer`, else as a
// float (python_float_repr).
std::string python_number_str(double v, bool integer);

}  // namespace stele::metrics
