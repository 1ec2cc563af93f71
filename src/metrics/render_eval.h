// The render evaluator: a parsed, bound target (render_target.h,
// render_functions.h) turned into series, as graphite-web 1.1.8's
// render/evaluator.py and render/functions.py compute them: the same values
// (same floating-point operations in the same order), the same series names,
// path expressions, tags, starts, ends and steps, for every function in
// render_functions(). Plus views.py's maxDataPoints consolidation. Sums add
// left to right from 0, as Python's sum() does up to 3.11 (graphite-web
// 1.1.8's Debian packaging; 3.12's sum() compensates and can differ in the
// last bit).
//
// Paths are fetched through a FetchFn, once per path per evaluation of the
// path: movingAverage fetches its first argument again from `from` minus the
// window (its bootstrap), and timeShift again over the shifted range, both by
// evaluating that argument a second time, as graphite does. A fetched series
// gets path_expression = the pattern, xFilesFactor = the request's (as in
// graphite, not the store's), consolidation average, and tags {"name": name}
// (plus ";tag=value" segments of the name) when the fetch gave none.
//
// Errors are Result errors. Bad arguments found only at evaluation are code
// 400 naming the function ("divideSeries: second argument must reference
// exactly 1 series (got 3)"); a FetchFn error is returned as is. Where
// graphite-web fails with an internal error (500) or loops, Stele answers 400
// or picks the evident meaning; each case is listed in render_eval.cpp.
//
// Semantic differences from graphite-web 1.1.8 that change numbers:
//   - nonNegativeDerivative / perSecond with maxValue or minValue: graphite
//     fails on a null point (Python 3 compares None with a float); here a
//     null point is not above maxValue nor below minValue.
//   - aliasSub uses std::regex (ECMAScript) on a translation of the Python
//     pattern: (?P<name>..), (?P=name), \A, \Z, a leading (?i) and literal
//     braces are translated; lookbehind and other inline flags are refused.
//     Replacement templates and empty-match rules are Python's.
//   - None and NaN are one value (Series::is_none), and values are floats
//     even where graphite holds a Python int (see render_format.h).
//
// Evaluation is pure apart from the FetchFn; evaluate() may be called from
// many threads at once if the FetchFn allows it.
#pragma once
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "metrics/render_functions.h"
#include "metrics/render_target.h"
#include "metrics/render_time.h"
#include "metrics/series.h"

namespace stele::metrics {

struct RenderContext {
  int64_t from = 0, until = 0, now = 0;  // the request's range and now, epoch seconds
  double x_files_factor = 0;             // the request's xFilesFactor (graphite's DEFAULT_XFILES_FACTOR is 0)
  TimeZone tz = TimeZone::kUtc;          // the request's zone: timeShift(alignDst=true) reads DST in it
};

// Series whose names match `pattern` (a glob, path_pattern() of the path as
// written) over [from, until], sorted by name (evaluate() sorts them if
// not), each with its name; the evaluator sets path_expression.
using FetchFn = std::function<Result<std::vector<Series>>(std::string_view pattern, int64_t from, int64_t until)>;

// Evaluates a target. `binding` must be bind(expr)'s. Each series is
// independent of the others (no sharing).
Result<std::vector<Series>> evaluate(const Expr& expr, const Binding& binding, const RenderContext& context,
                                     const FetchFn& fetch);

// views.py renderViewJson's maxDataPoints handling (graphite-web 1.1.8
// applies it to json only: csv, raw and pickle ignore maxDataPoints): when a
// series has more than max_points points over the whole response's range, its
// start is nudged forward to a multiple of the consolidated step, points are
// dropped from the front (one fewer than the nudge covers, as graphite does)
// and every values-per-point run is merged with the series' consolidation
// and xFilesFactor; max_points 1 merges each series into one point. The
// result is materialised: step becomes step * valuesPerPoint. Where graphite
// fails (max_points 0 divides by zero; an empty series with max_points 1,
// or more points to drop than there are) the series is left alone or
// emptied instead.
void consolidate_for_max_points(std::vector<Series>& series, int64_t max_points);

}  // namespace stele::metrics
