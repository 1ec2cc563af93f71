// Graphite's HTTP API over the metrics store, as Grafana's Graphite data
// source calls it: /render (GET and form POST), /metrics/find,
// /metrics/expand, /functions, /version; and Prometheus text at /metrics.
// Reads touch the store's mapped archives, so they run on the worker pool.
#include <chrono>
#include <set>

#include <fmt/format.h>

#include "api/api_impl.h"
#include "metrics/glob.h"
#include "metrics/prometheus.h"
#include "metrics/render_eval.h"
#include "metrics/render_format.h"
#include "metrics/render_functions.h"
#include "metrics/render_time.h"
#include "net/offload.h"

namespace stele::api {

using net::HttpRequest;
using net::HttpResponse;

namespace {

// Query and form parameters in order, repeats kept (`target` repeats).
struct Params {
  std::vector<std::pair<std::string, std::string>> all;

  static Params of(const HttpRequest& req) {
    Params p;
    size_t q = req.target.find('?');
    if (q != std::string::npos) p.all = net::parse_query_pairs(std::string_view(req.target).substr(q + 1));
    if (req.method == "POST" && req.header("content-type").find("application/x-www-form-urlencoded") != std::string::npos)
      for (auto& kv : net::parse_query_pairs(req.body)) p.all.push_back(std::move(kv));
    return p;
  }
  std::optional<std::string> get(std::string_view name) const {
    std::optional<std::string> v;  // the last one wins, as Django's QueryDict.get
    for (const auto& [k, val] : all)
      if (k == name) v = val;
    return v;
  }
  std::vector<std::string> list(std::string_view name) const {
    std::vector<std::string> out;
    for (const auto& [k, val] : all)
      if (k == name) out.push_back(val);
    return out;
  }
  Result<int64_t> integer(std::string_view name, int64_t def) const {
    auto v = get(name);
    if (!v) return def;
    try {
      size_t used = 0;
      long long x = std::stoll(*v, &used);
      if (used != v->size()) throw std::invalid_argument("");
      return int64_t(x);
    } catch (...) {
      return fail(fmt::format("invalid int value '{}' for param {}", *v, name), 400);
    }
  }
};

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

HttpResponse bad(const std::string& msg) { return HttpResponse::text(400, msg + "\n"); }

HttpResponse no_cache(HttpResponse r) {
  r.headers.emplace_back("Pragma", "no-cache");
  r.headers.emplace_back("Cache-Control", "no-cache");
  return r;
}

// graphite-web's tree_json (metrics/views.py): branches first, then leaves,
// a name once; with `wildcards` a leading "*" entry when more than one.
Json tree_json(const std::vector<metrics::FindNode>& nodes, const std::string& base, bool wildcards) {
  Json out = Json::array();
  auto name_of = [](const std::string& path) {
    size_t dot = path.rfind('.');
    return dot == std::string::npos ? path : path.substr(dot + 1);
  };
  auto shape = [](Json& j, bool leaf) {
    j["allowChildren"] = leaf ? 0 : 1;
    j["expandable"] = leaf ? 0 : 1;
    j["leaf"] = leaf ? 1 : 0;
  };
  if (nodes.size() > 1 && wildcards) {
    Json w = {{"text", "*"}, {"id", base + "*"}};
    bool any_branch = std::any_of(nodes.begin(), nodes.end(), [](const auto& n) { return !n.leaf; });
    shape(w, !any_branch);
    out.push_back(w);
  }
  std::set<std::string> seen;
  Json branches = Json::array(), leaves = Json::array();
  for (const auto& n : nodes) {
    std::string name = name_of(n.path);
    if (!seen.insert(name).second) continue;
    Json j = {{"text", name}, {"id", base + name}};
    shape(j, n.leaf);
    (n.leaf ? leaves : branches).push_back(j);
  }
  for (auto& b : branches) out.push_back(b);
  for (auto& l : leaves) out.push_back(l);
  return out;
}

Json functions_json() {
  Json out = Json::object();
  for (const auto& f : metrics::render_functions()) {
    Json params = Json::array();
    std::string sig = std::string(f.name) + "(";
    bool first = true;
    for (const auto& p : f.params) {
      Json pj = {{"name", p.name}, {"type", metrics::param_type_name(p.type)}};
      if (p.required) pj["required"] = true;
      if (p.multiple) pj["multiple"] = true;
      switch (p.fallback.kind) {
        case metrics::ValueKind::kNumber: pj["default"] = p.fallback.number; break;
        case metrics::ValueKind::kBool: pj["default"] = p.fallback.boolean; break;
        case metrics::ValueKind::kString: pj["default"] = std::string(p.fallback.text); break;
        default: break;
      }
      params.push_back(pj);
      sig += (first ? "" : ", ") + std::string(p.name) + (p.multiple ? "*" : "");
      first = false;
    }
    sig += ")";
    out[std::string(f.name)] = {{"name", f.name},  {"function", sig},       {"description", ""},
                                {"module", "stele"}, {"group", f.group}, {"params", params}};
  }
  return out;
}

// Stele's own counters and per-app aggregates, Prometheus text 0.0.4. Runs
// on the io thread (the cluster lives there); the store's counters are
// atomics and a short lock.
std::string prometheus_text(ApiServer::Impl& s) {
  metrics::PrometheusWriter w;
  using T = metrics::PrometheusType;
  auto one = [&w](std::string_view name, std::string_view help, T type, double v) {
    (void)w.family(name, help, type);
    (void)w.sample({}, v);
  };
  const deploy::Cluster& c = s.cluster;
  one("stele_apps", "Apps defined.", T::kGauge, double(c.apps().size()));
  one("stele_agents", "Agents registered.", T::kGauge, double(c.nodes().size()));
  (void)w.family("stele_app_instances_wanted", "Instances each app should run.", T::kGauge);
  for (const auto* a : c.apps()) (void)w.sample({{"app", app_name(a->id)}}, double(a->instances));
  (void)w.family("stele_app_tasks", "Live tasks per app and state.", T::kGauge);
  for (const auto* a : c.apps()) {
    std::map<std::string, int> by_state;
    for (const auto* t : c.tasks(a->id)) ++by_state[deploy::to_string(t->state)];
    for (const auto& [state, n] : by_state) (void)w.sample({{"app", app_name(a->id)}, {"state", state}}, double(n));
  }
  if (s.opts.logs) {
    auto l = s.opts.logs->stats();
    one("stele_logs_records_total", "Log records stored.", T::kCounter, double(l.records));
    one("stele_logs_wal_syncs_total", "fdatasyncs of the log store's write-ahead files.", T::kCounter, double(l.wal_syncs));
  }
  if (s.opts.metrics) {
    auto t = s.opts.metrics->tsdb().stats();
    one("stele_metrics_series", "Metric series in the store.", T::kGauge, double(t.series));
    one("stele_metrics_points_received_total", "Metric points accepted.", T::kCounter, double(t.points_received));
    one("stele_metrics_points_durable_total", "Metric points written and fdatasynced (write-ahead log).", T::kCounter,
        double(t.points_durable));
    one("stele_metrics_points_applied_total", "Metric points written to their archives.", T::kCounter,
        double(t.points_applied));
    one("stele_metrics_points_dropped_old_total", "Metric points older than every retention.", T::kCounter,
        double(t.points_dropped_old));
    one("stele_metrics_points_refused_total", "Metric points refused: series limit or timestamp out of range.",
        T::kCounter, double(t.series_refused + t.points_bad_time));
    one("stele_metrics_wal_bytes", "Size of the metrics write-ahead log.", T::kGauge, double(t.wal_bytes));
    one("stele_metrics_data_bytes", "Disk blocks used by the metric archives.", T::kGauge, double(t.data_bytes_allocated));
    one("stele_metrics_data_bytes_bound", "Most disk the metric archives may use (series limit x schema).", T::kGauge,
        double(t.data_bytes_bound));
    if (const auto* g = s.opts.metrics->graphite()) {
      auto gs = g->stats();
      one("stele_graphite_connections_total", "Graphite plaintext TCP connections accepted.", T::kCounter,
          double(gs.connections));
      (void)w.family("stele_graphite_lines_total", "Graphite plaintext lines by outcome.", T::kCounter);
      for (size_t i = 0; i < metrics::kLineStatusCount; ++i)
        (void)w.sample({{"status", metrics::line_status_name(metrics::LineStatus(i))}}, double(gs.lines.by_status[i]));
    }
    if (const auto* r = s.opts.metrics->relay()) {
      auto rs = r->stats();
      one("stele_carbon_relay_points_sent_total", "Points sent to the --carbon-relay upstream.", T::kCounter,
          double(rs.points_sent));
      one("stele_carbon_relay_points_dropped_total", "Points dropped by a full relay queue.", T::kCounter,
          double(rs.points_dropped));
    }
  }
  return w.text();
}

struct RenderRequest {
  std::vector<std::string> targets;
  metrics::RenderContext ctx;
  metrics::RenderFormat format = metrics::RenderFormat::kJson;
  int64_t max_points = 0;
  metrics::JsonOptions json;
};

// The request's parameters as graphite-web's views.py reads them. Errors
// name the parameter.
Result<RenderRequest> parse_render(const Params& p) {
  RenderRequest r;
  r.targets = p.list("target");
  std::string tz = p.get("tz").value_or("");
  if (!tz.empty() && tz != "UTC" && tz != "Etc/UTC")
    return fail("tz: only UTC is supported (got '" + tz + "')", 400);
  r.ctx.tz = metrics::TimeZone::kUtc;
  std::string format = p.get("format").value_or("json");
  auto f = metrics::parse_render_format(format);
  if (!f) return fail("format: '" + format + "' is not supported (json, csv or raw; Stele draws no PNG)", 400);
  r.format = *f;
  r.ctx.now = now_s();
  if (auto n = p.get("now")) {
    auto t = metrics::parse_at_time(*n, r.ctx.now, r.ctx.tz);
    if (!t) return fail("now: " + t.error().message, 400);
    r.ctx.now = *t;
  }
  auto range = metrics::parse_time_range(p.get("from"), p.get("until"), r.ctx.now, r.ctx.tz);
  if (!range) return fail(range.error().message, 400);
  r.ctx.from = range->from;
  r.ctx.until = range->until;
  auto mdp = p.integer("maxDataPoints", 0);
  if (!mdp) return fail(mdp.error());
  if (*mdp < 0) return fail("maxDataPoints: must be positive", 400);
  r.max_points = *mdp;
  if (auto x = p.get("xFilesFactor")) {
    char* end = nullptr;
    double v = std::strtod(x->c_str(), &end);
    if (x->empty() || *end || v < 0 || v > 1) return fail("xFilesFactor: expected a number in [0, 1], got '" + *x + "'", 400);
    r.ctx.x_files_factor = v;
  }
  std::string nn = p.get("noNullPoints").value_or("");
  r.json.no_null_points = !nn.empty() && nn != "0" && nn != "false";
  std::string pretty = p.get("pretty").value_or("");
  r.json.pretty = !pretty.empty() && pretty != "0" && pretty != "false";
  r.json.jsonp = p.get("jsonp").value_or("");
  return r;
}

// Every target evaluated against the store, in order; the body. Runs on a
// worker (reads the mapped archives).
Result<std::string> render(metrics::Tsdb& db, const RenderRequest& r) {
  std::vector<metrics::Series> all;
  metrics::FetchFn fetch = [&db, &r](std::string_view pattern, int64_t from,
                                     int64_t until) -> Result<std::vector<metrics::Series>> {
    auto g = metrics::GlobPattern::compile(pattern);
    if (!g) return fail("path '" + std::string(pattern) + "': " + g.error().message, 400);
    return db.fetch(*g, from, until, r.ctx.now);
  };
  for (const auto& t : r.targets) {
    if (t.find_first_not_of(" \t\r\n") == std::string::npos) continue;  // graphite skips empty targets
    auto expr = metrics::parse_target(t);
    if (!expr) return fail("target '" + t + "': " + expr.error().message, 400);
    auto binding = metrics::bind(*expr);
    if (!binding) return fail("target '" + t + "': " + binding.error().message, 400);
    auto series = metrics::evaluate(*expr, *binding, r.ctx, fetch);
    if (!series) return fail("target '" + t + "': " + series.error().message, series.error().code ? series.error().code : 400);
    for (auto& s : *series) all.push_back(std::move(s));
  }
  switch (r.format) {
    case metrics::RenderFormat::kJson:
      if (r.max_points > 0) metrics::consolidate_for_max_points(all, r.max_points);
      return metrics::format_json(all, r.json);
    case metrics::RenderFormat::kCsv: return metrics::format_csv(all, r.ctx.tz);
    case metrics::RenderFormat::kRaw: return metrics::format_raw(all);
  }
  return std::string();
}

}  // namespace

void add_metrics_routes(net::Router& r, ApiServer::Impl& s) {
  auto find = [&s](HttpRequest& req) -> net::awaitable<HttpResponse> {
    if (!s.opts.metrics) co_return HttpResponse::text(503, "metrics store not running\n");
    Params p = Params::of(req);
    std::string format = p.get("format").value_or("treejson");
    auto query = p.get("query");
    if (!query) co_return bad("Missing required parameter 'query'");
    if (query->empty()) co_return bad("Required parameter 'query' is empty");
    auto wildcards = p.integer("wildcards", 0);
    if (!wildcards) co_return bad(wildcards.error().message);
    auto leaves_only = p.integer("leavesOnly", 0);
    if (!leaves_only) co_return bad(leaves_only.error().message);
    auto automatic = p.integer("automatic_variants", 0);
    if (!automatic) co_return bad(automatic.error().message);
    std::string q = *query;
    std::string base = q.find('.') == std::string::npos ? "" : q.substr(0, q.rfind('.') + 1);
    if (format == "completer") q = metrics::completer_query(q, *automatic != 0);
    else if (format != "treejson" && format != "json" && format != "nodelist")
      co_return bad("Invalid value for 'format' parameter");
    auto glob = metrics::GlobPattern::compile(q);
    if (!glob) co_return bad("query '" + q + "': " + glob.error().message);
    metrics::Tsdb* db = &s.opts.metrics->tsdb();
    auto work = [db, g = std::move(*glob)] { return db->find(g); };
    std::vector<metrics::FindNode> nodes = co_await net::offload(work);
    if (*leaves_only) std::erase_if(nodes, [](const auto& n) { return !n.leaf; });
    Json body;
    if (format == "treejson") {
      body = tree_json(nodes, base, *wildcards != 0);
    } else if (format == "completer") {
      Json list = Json::array();
      for (const auto& n : nodes) {
        size_t dot = n.path.rfind('.');
        list.push_back({{"path", n.leaf ? n.path : n.path + "."},
                        {"name", dot == std::string::npos ? n.path : n.path.substr(dot + 1)},
                        {"is_leaf", n.leaf ? "1" : "0"}});
      }
      if (list.size() > 1 && *wildcards) list.push_back({{"name", "*"}});
      body = {{"metrics", list}};
    } else if (format == "nodelist") {
      auto pos = p.integer("position", -1);
      if (!pos) co_return bad(pos.error().message);
      std::set<std::string> found;
      for (const auto& n : nodes) {
        std::vector<std::string> parts;
        size_t i = 0;
        while (true) {
          size_t d = n.path.find('.', i);
          parts.push_back(n.path.substr(i, d == std::string::npos ? std::string::npos : d - i));
          if (d == std::string::npos) break;
          i = d + 1;
        }
        int64_t k = *pos < 0 ? int64_t(parts.size()) + *pos : *pos;
        if (k < 0 || k >= int64_t(parts.size())) co_return bad("position " + std::to_string(*pos) + " out of range");
        found.insert(parts[size_t(k)]);
      }
      body = {{"nodes", Json(std::vector<std::string>(found.begin(), found.end()))}};
    } else {
      body = Json::array();
      for (const auto& n : nodes) {
        Json j = {{"path", n.path}, {"is_leaf", n.leaf}};
        if (n.leaf) j["intervals"] = Json::array();
        body.push_back(j);
      }
    }
    co_return no_cache(HttpResponse::json(200, body));
  };
  r.add("GET", "/metrics/find", find);
  r.add("POST", "/metrics/find", find);
  r.add("GET", "/metrics/find/", find);
  r.add("POST", "/metrics/find/", find);

  auto expand = [&s](HttpRequest& req) -> net::awaitable<HttpResponse> {
    if (!s.opts.metrics) co_return HttpResponse::text(503, "metrics store not running\n");
    Params p = Params::of(req);
    auto group = p.integer("groupByExpr", 0);
    if (!group) co_return bad(group.error().message);
    auto leaves_only = p.integer("leavesOnly", 0);
    if (!leaves_only) co_return bad(leaves_only.error().message);
    std::vector<std::pair<std::string, metrics::GlobPattern>> globs;
    for (const auto& q : p.list("query")) {
      auto g = metrics::GlobPattern::compile(q);
      if (!g) co_return bad("query '" + q + "': " + g.error().message);
      globs.emplace_back(q, std::move(*g));
    }
    metrics::Tsdb* db = &s.opts.metrics->tsdb();
    bool lo = *leaves_only != 0;
    auto work = [db, globs, lo] {
      std::map<std::string, std::set<std::string>> out;
      for (const auto& [q, g] : globs) {
        auto& set = out[q];
        for (const auto& n : db->find(g))
          if (n.leaf || !lo) set.insert(n.path);
      }
      return out;
    };
    auto found = co_await net::offload(work);
    Json results;
    if (*group) {
      results = Json::object();
      for (const auto& [q, set] : found) results[q] = Json(std::vector<std::string>(set.begin(), set.end()));
    } else {
      std::set<std::string> all;
      for (const auto& [q, set] : found) all.insert(set.begin(), set.end());
      results = Json(std::vector<std::string>(all.begin(), all.end()));
    }
    co_return no_cache(HttpResponse::json(200, Json{{"results", results}}));
  };
  r.add("GET", "/metrics/expand", expand);
  r.add("POST", "/metrics/expand", expand);

  // Grafana reads the version to pick its feature set; 1.1.8 is what Stele's
  // render API follows.
  r.add("GET", "/version", [](HttpRequest&) -> net::awaitable<HttpResponse> {
    co_return HttpResponse::text(200, "1.1.8\n");
  });
  r.add("GET", "/version/", [](HttpRequest&) -> net::awaitable<HttpResponse> {
    co_return HttpResponse::text(200, "1.1.8\n");
  });
  auto render_route = [&s](HttpRequest& req) -> net::awaitable<HttpResponse> {
    if (!s.opts.metrics) co_return HttpResponse::text(503, "metrics store not running\n");
    auto rr = parse_render(Params::of(req));
    if (!rr) co_return bad(rr.error().message);
    metrics::Tsdb* db = &s.opts.metrics->tsdb();
    std::string type(metrics::render_content_type(rr->format, !rr->json.jsonp.empty()));
    auto work = [db, rr = std::move(*rr)] { return render(*db, rr); };
    Result<std::string> body = co_await net::offload(work);
    if (!body) co_return HttpResponse::text(body.error().code >= 400 ? body.error().code : 400, body.error().message + "\n");
    HttpResponse out;
    out.status = 200;
    out.content_type = std::move(type);
    out.body = std::move(*body);
    co_return no_cache(std::move(out));
  };
  r.add("GET", "/render", render_route);
  r.add("POST", "/render", render_route);
  r.add("GET", "/render/", render_route);
  r.add("POST", "/render/", render_route);

  r.add("GET", "/metrics", [&s](HttpRequest&) -> net::awaitable<HttpResponse> {
    co_return HttpResponse::text(200, prometheus_text(s), std::string(metrics::kPrometheusContentType));
  });

  auto functions = [](HttpRequest&) -> net::awaitable<HttpResponse> {
    static const Json j = functions_json();
    co_return HttpResponse::json(200, j);
  };
  r.add("GET", "/functions", functions);
  r.add("GET", "/functions/", functions);
}

}  // namespace stele::api
