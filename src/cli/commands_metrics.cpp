// `stele metrics` and `stele top`: the Graphite render API (docs/api.md
// "Metrics") read for a person -- series summaries with sparklines, and the
// running instances' cpu and memory refreshed like top(1).
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "cli/fields.h"
#include "cli/metrics_view.h"
#include "common/clock.h"
#include "common/names.h"
#include "net/http.h"

namespace stele::cli {

namespace {

struct MetricsArgs {
  std::vector<std::string> targets;
  std::string since = "1h", until;
  size_t width = 40;
};

std::string render_path(const std::vector<std::string>& targets, const std::string& from, const std::string& until) {
  std::string q = "/render?format=json&from=" + net::percent_encode(graphite_time(from));
  if (!until.empty()) q += "&until=" + net::percent_encode(graphite_time(until));
  for (const auto& t : targets) q += "&target=" + net::percent_encode(t);
  return q;
}

int show_metrics(const ApiClient& api, const MetricsArgs& a) {
  auto r = api.get(render_path(a.targets, a.since, a.until));
  if (!r) return report(r.error());
  if (api.options().json) {
    print_json(*r);
    return 0;
  }
  auto series = summarize_render(*r);
  if (series.empty()) {
    std::cout << "No series match in that range (see the names with: stele metrics 'stele.*' or /metrics/find)."
              << std::endl;
    return 0;
  }
  std::cout << metrics_range_line(series) << "\n\n" << metrics_table(series, a.width).render() << std::flush;
  return 0;
}

struct TopArgs {
  std::string app, sort = "cpu";
  double interval = 2;
  int iterations = -1;  // -1: until Ctrl-C on a terminal, once otherwise
};

int run_top(const ApiClient& api, const TopArgs& a) {
  TopSort sort = a.sort == "mem" ? TopSort::kMem : a.sort == "task" ? TopSort::kTask : TopSort::kCpu;
  std::string tasks_path = a.app.empty() ? "/api/v1/tasks" : app_path(a.app) + "/tasks";
  std::string render = render_path(top_targets(a.app.empty() ? "" : app_name(canonical_app_id(a.app))), "-3min", "");
  bool tty = ::isatty(STDOUT_FILENO) == 1 && !api.options().json;
  int iterations = a.iterations >= 0 ? a.iterations : (tty ? 0 : 1);
  for (int i = 0; iterations == 0 || i < iterations; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(a.interval * 1000)));
    auto tasks = api.get(tasks_path);
    if (!tasks) return report(tasks.error());
    auto nodes = api.get("/api/v1/nodes");
    if (!nodes) return report(nodes.error());
    auto points = api.get(render);
    if (!points) return report(points.error());
    TopView v = make_top_view(field(*tasks, "tasks"), field(*nodes, "nodes"), *points, sort);
    int64_t now = SystemClock().now_ms();
    if (api.options().json) {
      print_json(top_json(v, now));
      continue;
    }
    std::string screen = render_top(v, now);
    if (tty) std::cout << "\033[H\033[2J" << screen << "\n(every " << format_number(a.interval) << "s; Ctrl-C quits)";
    else std::cout << (i > 0 ? "\n" : "") << screen;
    std::cout << std::flush;
  }
  return 0;
}

}  // namespace

void add_metrics_commands(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags) {
  auto m = std::make_shared<MetricsArgs>();
  auto& c = add_verb(
      root, flags, "metrics",
      {"Show metric series: last, min, average, max and a sparkline each",
       "TARGET is a Graphite target, as Grafana sends it: a path with globs (*, ?, [a-z], {a,b})\n"
       "or functions of paths (sumSeries, perSecond, movingAverage, ... -- GET /functions lists them).\n"
       "Paths: stele.task.<host>.<app>-r<release>.<seq>.{cpu,memory,pids}.*, stele.node.<host>.*,\n"
       "stele.app.<app>.requests.*, stele.server.*, and whatever external senders write.\n"
       "--since/--until: a duration before now (30s, 10m, 2h, 7d) or Graphite's forms (-1h, now,\n"
       "epoch seconds, HH:MM_YYYYMMDD, YYYYMMDD). Times are UTC. --json prints the render answer.",
       "  stele metrics 'stele.task.*.web-*.*.memory.usage'\n"
       "  stele metrics 'perSecond(stele.task.*.*.*.cpu.usage)' --since 6h\n"
       "  stele metrics 'stele.app.shop_web.requests.{count,5xx}' 'stele.app.shop_web.requests.latency.p99'"});
  c.add_option("TARGET", m->targets, "Graphite target(s)")->required();
  c.add_option("--since", m->since, "Start of the range (default 1h: the last hour)");
  c.add_option("--until", m->until, "End of the range (default now)");
  c.add_option("--width", m->width, "Columns of each sparkline (default 40; 0 hides them)");
  c.set_runner([m](const ApiClient& api) { return show_metrics(api, *m); });

  auto t = std::make_shared<TopArgs>();
  auto& top = add_verb(
      root, flags, "top",
      {"Live cpu and memory of every running instance, like top",
       "From the agents' cgroup metrics (collected every 10 s): CPU% is of one core over the last\n"
       "two samples, MEM the cgroup's usage (page cache included), RSS its anonymous memory, LIMIT\n"
       "the memory limit and MEM% usage against it. Nodes show busy cpu of all cores, load and\n"
       "memory used/total. On a terminal the screen refreshes until Ctrl-C; piped, or with -n,\n"
       "it prints that many times. --json prints one document per refresh.",
       "  stele top\n  stele top /shop/web --sort mem\n  stele top -n 1 --json"});
  top.add_option("APP", t->app, "Only the instances of this app");
  top.add_option("--sort", t->sort, "cpu (default), mem or task")->check(CLI::IsMember({"cpu", "mem", "task"}));
  top.add_option("-d,--interval", t->interval, "Seconds between refreshes (default 2)")->check(CLI::Range(0.2, 3600.0));
  top.add_option("-n,--iterations", t->iterations, "Refresh this many times, then exit (0 = until Ctrl-C)")
      ->check(CLI::NonNegativeNumber);
  top.set_runner([t](const ApiClient& api) { return run_top(api, *t); });
}

}  // namespace stele::cli
