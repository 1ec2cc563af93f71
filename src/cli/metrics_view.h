// What `stele metrics` and `stele top` make of the Graphite render API's
// JSON answer ([{"target", "datapoints": [[value|null, time], ...]}], see
// docs/api.md "Metrics"): per-series summaries with a sparkline, and the
// per-instance cpu/memory table of `top`. Pure functions of the answers and
// the current time, so they are unit-tested.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cli/table.h"
#include "common/json.h"

namespace stele::cli {

// --since / --until as Graphite reads them: a bare duration (the forms of
// `stele logs --since`: 30s, 10m, 2h, 7d, 2w) is "that long before now"
// ("10m" -> "-10min"; Graphite reads "m" as minutes only in "min"); anything
// else (-1h, now, epoch seconds, HH:MM_YYYYMMDD, YYYYMMDD) is Graphite's own
// form and passed unchanged.
std::string graphite_time(const std::string& s);

// `width` columns of ▁▂▃▄▅▆▇█: the values are averaged into `width` equal
// buckets (one column per value when there are fewer), each scaled between
// the lowest and highest bucket; a bucket holding only nulls is a blank. A
// flat series draws a mid-height line. "" when width is 0 or no values.
std::string sparkline(const std::vector<std::optional<double>>& values, size_t width);

// A number for a narrow column: up to 2 decimals below 10,000, above that
// three significant digits and an SI suffix (12.3k, 4.56M, 7.89G); "-" for
// none.
std::string format_metric(std::optional<double> v);

struct SeriesSummary {
  std::string name;
  std::vector<std::optional<double>> values;
  int64_t first_time = 0, step = 0;  // seconds
  size_t points = 0;                 // non-null values
  std::optional<double> last, min, avg, max;
};
// One summary per series of a render answer, in its order; entries that
// are not series are skipped.
std::vector<SeriesSummary> summarize_render(const Json& render);

// `stele metrics`: SERIES LAST MIN AVG MAX TREND (a sparkline of
// `spark_width` columns).
Table metrics_table(const std::vector<SeriesSummary>& series, size_t spark_width);
// "13:05:00 to 14:05:00 UTC, step 10s, 360 points per series" (dates shown
// when the range spans days). "" when there are no series.
std::string metrics_range_line(const std::vector<SeriesSummary>& series);

// ---- top ----------------------------------------------------------------

// Graphite targets `stele top` renders: the tasks' cpu.usage,
// memory.{usage,rss,limit} and pids.current, the nodes' cpu.*, load.1 and
// memory.{total,available}. `app_name` ("" = every app) narrows the tasks.
std::vector<std::string> top_targets(const std::string& app_name);

struct TopTask {
  std::string id, app, host, state;
  std::optional<double> cpu_percent;  // of one core, over the last two samples
  std::optional<double> mem, rss, limit, pids;  // bytes, bytes, bytes, count
};
struct TopNode {
  std::string host;
  std::optional<double> cpu_percent;  // of all cores: busy / (busy + idle + iowait)
  std::optional<double> load1, mem_used, mem_total;
};
struct TopView {
  std::vector<TopTask> tasks;  // every running task, sorted as asked
  std::vector<TopNode> nodes;  // nodes with points, by host
};
enum class TopSort { kCpu, kMem, kTask };
// Joins the task list (GET /api/v1/tasks "tasks") with the render answer of
// top_targets by metric path (design.md "Names": stele.task.<host>.<app
// name>-r<release>.<seq>.*), the host being the task's agent's hostname from
// the node list (GET /api/v1/nodes "nodes"; the task's "host" is the agent's
// address). Tasks without points keep empty figures.
TopView make_top_view(const Json& tasks, const Json& nodes, const Json& render, TopSort sort);

// The screen: a summary line, the nodes table, a blank line, the tasks
// table (TASK APP HOST CPU% MEM RSS LIMIT MEM% PIDS).
std::string render_top(const TopView& v, int64_t now_ms);
// --json: {"time": ms, "nodes": [...], "tasks": [...]} (figures null when
// unknown).
Json top_json(const TopView& v, int64_t now_ms);

}  // namespace stele::cli
