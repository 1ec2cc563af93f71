#include "cli/metrics_view.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "cli/fields.h"
#include "common/clock.h"
#include "common/names.h"

namespace stele::cli {

std::string graphite_time(const std::string& s) {
  size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
  if (digits == 0 || digits + 1 != s.size()) return s;
  std::string n = s.substr(0, digits);
  switch (s.back()) {
    case 's': return "-" + n + "s";
    case 'm': return "-" + n + "min";
    case 'h': return "-" + n + "h";
    case 'd': return "-" + n + "d";
    case 'w': return "-" + n + "w";
    default: return s;
  }
}

std::string sparkline(const std::vector<std::optional<double>>& values, size_t width) {
  static const char* const kBars[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  if (width == 0 || values.empty()) return "";
  size_t cols = std::min(width, values.size());
  std::vector<std::optional<double>> buckets(cols);
  for (size_t c = 0; c < cols; ++c) {
    size_t from = c * values.size() / cols, to = (c + 1) * values.size() / cols;
    double sum = 0;
    size_t n = 0;
    for (size_t i = from; i < to; ++i)
      if (values[i] && std::isfinite(*values[i])) sum += *values[i], ++n;
    if (n) buckets[c] = sum / double(n);
  }
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& b : buckets)
    if (b) lo = std::min(lo, *b), hi = std::max(hi, *b);
  std::string out;
  for (const auto& b : buckets) {
    if (!b) {
      out += ' ';
      continue;
    }
    int level = hi > lo ? static_cast<int>(std::lround((*b - lo) / (hi - lo) * 7)) : 3;
    out += kBars[std::clamp(level, 0, 7)];
  }
  return out;
}

std::string format_metric(std::optional<double> v) {
  if (!v || !std::isfinite(*v)) return "-";
  double a = std::fabs(*v);
  if (a < 10'000) return format_number(*v);
  static const char kSuffix[] = {'k', 'M', 'G', 'T', 'P', 'E'};
  int i = -1;
  while (a >= 1000 && i < 5) a /= 1000, ++i;
  // Three significant digits; rounding may reach 1000 (999.96k -> 1.00M).
  if (std::round(a * 100) / 100 >= 1000 && i < 5) a /= 1000, ++i;
  int decimals = a < 10 ? 2 : a < 100 ? 1 : 0;
  return fmt::format("{}{:.{}f}{}", *v < 0 ? "-" : "", a, decimals, kSuffix[i]);
}

std::vector<SeriesSummary> summarize_render(const Json& render) {
  std::vector<SeriesSummary> out;
  for (const auto& s : array_or_empty(render)) {
    if (!s.is_object() || !s.contains("datapoints") || !s["datapoints"].is_array()) continue;
    SeriesSummary m;
    m.name = field_str(s, "target");
    double sum = 0;
    int64_t prev_t = 0;
    for (const auto& p : s["datapoints"]) {
      if (!p.is_array() || p.size() != 2 || !p[1].is_number()) continue;
      int64_t t = p[1].get<int64_t>();
      if (m.values.empty()) m.first_time = t;
      else if (m.step == 0) m.step = t - prev_t;
      prev_t = t;
      std::optional<double> v;
      if (p[0].is_number()) v = p[0].get<double>();
      m.values.push_back(v);
      if (!v) continue;
      ++m.points;
      sum += *v;
      m.last = v;
      m.min = m.min ? std::min(*m.min, *v) : *v;
      m.max = m.max ? std::max(*m.max, *v) : *v;
    }
    if (m.points) m.avg = sum / double(m.points);
    out.push_back(std::move(m));
  }
  return out;
}

Table metrics_table(const std::vector<SeriesSummary>& series, size_t spark_width) {
  Table t({"SERIES", "LAST", "MIN", "AVG", "MAX", "TREND"});
  for (const auto& s : series)
    t.add_row({s.name, format_metric(s.last), format_metric(s.min), format_metric(s.avg), format_metric(s.max),
               sparkline(s.values, spark_width)});
  return t;
}

namespace {

// "2026-11-27 14:05:00" of epoch seconds, UTC.
std::string utc(int64_t s) {
  std::string iso = iso8601(s * 1000);
  return iso.substr(0, 10) + " " + iso.substr(11, 8);
}

std::string step_text(int64_t step) {
  if (step <= 0) return "-";
  if (step % 86400 == 0) return std::to_string(step / 86400) + "d";
  if (step % 3600 == 0) return std::to_string(step / 3600) + "h";
  if (step % 60 == 0) return std::to_string(step / 60) + "min";
  return std::to_string(step) + "s";
}

}  // namespace

std::string metrics_range_line(const std::vector<SeriesSummary>& series) {
  if (series.empty()) return "";
  const SeriesSummary& s = series.front();
  int64_t step = s.step > 0 ? s.step : 1;
  int64_t last = s.first_time + step * static_cast<int64_t>(s.values.empty() ? 0 : s.values.size() - 1);
  std::string from = utc(s.first_time), to = utc(last);
  if (from.substr(0, 10) == to.substr(0, 10)) to = to.substr(11);
  return fmt::format("{} to {} UTC, step {}, {} values per series", from, to, step_text(s.step),
                     s.values.size());
}

// ---- top ----------------------------------------------------------------

std::vector<std::string> top_targets(const std::string& app_name) {
  std::string task = "stele.task.*." + (app_name.empty() ? std::string("*") : metric_node(app_name) + "-r*") + ".*.";
  return {task + "cpu.usage", task + "memory.{usage,rss,limit}", task + "pids.current",
          "stele.node.*.cpu.*", "stele.node.*.load.1", "stele.node.*.memory.{total,available}"};
}

namespace {

struct Samples {
  std::optional<double> last;
  std::optional<double> rate;  // per second, from the last two non-null values
};

Samples samples_of(const SeriesSummary& s) {
  Samples out;
  std::optional<size_t> a, b;  // the last two non-null indexes, b newest
  for (size_t i = s.values.size(); i-- > 0;) {
    if (!s.values[i]) continue;
    if (!b) b = i;
    else {
      a = i;
      break;
    }
  }
  if (b) out.last = s.values[*b];
  if (a && b && s.step > 0) {
    double dv = *s.values[*b] - *s.values[*a];
    if (dv >= 0) out.rate = dv / double(static_cast<int64_t>(*b - *a) * s.step);  // a reset reads unknown
  }
  return out;
}

std::vector<std::string> split_dots(const std::string& s) {
  std::vector<std::string> out(1);
  for (char c : s) {
    if (c == '.') out.emplace_back();
    else out.back() += c;
  }
  return out;
}

bool task_sort_less(const TopTask& a, const TopTask& b, TopSort sort) {
  auto num = [](const std::optional<double>& v) { return v.value_or(-1); };
  if (sort == TopSort::kCpu && num(a.cpu_percent) != num(b.cpu_percent)) return num(a.cpu_percent) > num(b.cpu_percent);
  if (sort == TopSort::kMem && num(a.mem) != num(b.mem)) return num(a.mem) > num(b.mem);
  return a.id < b.id;
}

}  // namespace

TopView make_top_view(const Json& tasks, const Json& nodes_list, const Json& render, TopSort sort) {
  std::map<std::string, std::string> hostname_of;  // agent id -> its --hostname (the metric paths' host)
  for (const auto& n : array_or_empty(nodes_list))
    if (auto h = field_str(n, "hostname"); !h.empty()) hostname_of[field_str(n, "id")] = h;
  // stele.task.<host>.<app>-r<rel>.<seq>.<group>.<metric> -> "<host>.<app>-r<rel>.<seq>" -> figures
  std::map<std::string, std::map<std::string, Samples>> per_task;
  struct NodeCpu {
    double busy = 0, total = 0;
    bool any = false;
  };
  std::map<std::string, std::map<std::string, Samples>> per_node;
  std::map<std::string, NodeCpu> node_cpu;
  for (const auto& s : summarize_render(render)) {
    auto parts = split_dots(s.name);
    if (parts.size() == 7 && parts[0] == "stele" && parts[1] == "task") {
      per_task[parts[2] + "." + parts[3] + "." + parts[4]][parts[5] + "." + parts[6]] = samples_of(s);
    } else if (parts.size() == 5 && parts[0] == "stele" && parts[1] == "node") {
      Samples sm = samples_of(s);
      if (parts[3] == "cpu") {
        if (!sm.rate) continue;
        NodeCpu& c = node_cpu[parts[2]];
        c.any = true;
        c.total += *sm.rate;
        if (parts[4] != "idle" && parts[4] != "iowait") c.busy += *sm.rate;
      } else {
        per_node[parts[2]][parts[3] + "." + parts[4]] = sm;
      }
    }
  }

  TopView v;
  for (const auto& k : array_or_empty(tasks)) {
    std::string state = field_str(k, "state");
    if (state != "running") continue;
    TopTask t;
    t.id = field_str(k, "id");
    t.app = field_str(k, "appId");
    auto agent = hostname_of.find(field_str(k, "agentId"));
    t.host = agent != hostname_of.end() ? agent->second : field_str(k, "host");
    t.state = state;
    if (auto parts = parse_task_id(t.id)) {
      std::string key = metric_node(host_name(t.host)) + "." + metric_node(parts->app_name) + "-r" +
                        std::to_string(parts->release) + "." + std::to_string(parts->seq);
      if (auto it = per_task.find(key); it != per_task.end()) {
        auto get = [&](const char* m) {
          auto f = it->second.find(m);
          return f == it->second.end() ? Samples{} : f->second;
        };
        if (auto r = get("cpu.usage").rate) t.cpu_percent = *r * 100;
        t.mem = get("memory.usage").last;
        t.rss = get("memory.rss").last;
        t.limit = get("memory.limit").last;
        t.pids = get("pids.current").last;
      }
    }
    v.tasks.push_back(std::move(t));
  }
  std::stable_sort(v.tasks.begin(), v.tasks.end(),
                   [sort](const TopTask& a, const TopTask& b) { return task_sort_less(a, b, sort); });

  std::map<std::string, TopNode> nodes;
  for (const auto& [host, figures] : per_node) {
    TopNode& n = nodes[host];
    auto get = [&](const char* m) {
      auto f = figures.find(m);
      return f == figures.end() ? std::optional<double>{} : f->second.last;
    };
    n.load1 = get("load.1");
    n.mem_total = get("memory.total");
    if (auto avail = get("memory.available"); avail && n.mem_total) n.mem_used = *n.mem_total - *avail;
  }
  for (const auto& [host, c] : node_cpu)
    if (c.any && c.total > 0) nodes[host].cpu_percent = c.busy / c.total * 100;
  for (auto& [host, n] : nodes) {
    n.host = host;
    v.nodes.push_back(std::move(n));
  }
  return v;
}

namespace {

std::string percent(std::optional<double> v) { return v ? fmt::format("{:.1f}", *v) : "-"; }

std::string bytes(std::optional<double> v) { return v ? format_bytes(*v) : "-"; }

}  // namespace

std::string render_top(const TopView& v, int64_t now_ms) {
  double cpu = 0, mem = 0;
  for (const auto& t : v.tasks) cpu += t.cpu_percent.value_or(0), mem += t.mem.value_or(0);
  std::string out = fmt::format("stele top - {} UTC - {} running task{} on {} node{} - cpu {:.1f}% - mem {}\n\n",
                                utc(now_ms / 1000).substr(11), v.tasks.size(), v.tasks.size() == 1 ? "" : "s",
                                v.nodes.size(), v.nodes.size() == 1 ? "" : "s", cpu, format_bytes(mem));
  Table nodes({"NODE", "CPU%", "LOAD", "MEM"});
  for (const auto& n : v.nodes)
    nodes.add_row({n.host, percent(n.cpu_percent), n.load1 ? format_number(*n.load1) : "-",
                   n.mem_used && n.mem_total ? format_bytes(*n.mem_used) + "/" + format_bytes(*n.mem_total) : "-"});
  if (!nodes.empty()) out += nodes.render() + "\n";
  Table tasks({"TASK", "APP", "HOST", "CPU%", "MEM", "RSS", "LIMIT", "MEM%", "PIDS"});
  for (const auto& t : v.tasks)
    tasks.add_row({t.id, t.app, t.host.empty() ? "-" : t.host, percent(t.cpu_percent), bytes(t.mem), bytes(t.rss), bytes(t.limit),
                   t.mem && t.limit && *t.limit > 0 ? percent(*t.mem / *t.limit * 100) : "-",
                   t.pids ? format_number(*t.pids) : "-"});
  out += tasks.empty() ? "No running tasks.\n" : tasks.render();
  return out;
}

Json top_json(const TopView& v, int64_t now_ms) {
  auto num = [](const std::optional<double>& d) { return d ? Json(*d) : Json(nullptr); };
  Json nodes = Json::array(), tasks = Json::array();
  for (const auto& n : v.nodes)
    nodes.push_back({{"host", n.host}, {"cpuPercent", num(n.cpu_percent)}, {"load1", num(n.load1)},
                     {"memUsedBytes", num(n.mem_used)}, {"memTotalBytes", num(n.mem_total)}});
  for (const auto& t : v.tasks)
    tasks.push_back({{"id", t.id}, {"appId", t.app}, {"host", t.host}, {"cpuPercent", num(t.cpu_percent)},
                     {"memBytes", num(t.mem)}, {"rssBytes", num(t.rss)}, {"memLimitBytes", num(t.limit)},
                     {"pids", num(t.pids)}});
  return {{"time", now_ms}, {"nodes", nodes}, {"tasks", tasks}};
}

}  // namespace stele::cli
