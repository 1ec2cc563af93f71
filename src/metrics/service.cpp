#include "metrics/service.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "common/names.h"
#include "metrics/metric_record.h"

namespace stele::metrics {

namespace {
Result<std::string> slurp(const std::string& path, const char* flag) {
  std::ifstream in(path);
  if (!in) return fail(std::string(flag) + " " + path + ": cannot read it");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

MetricsService::~MetricsService() { close(); }

Result<void> MetricsService::open(MetricsServiceOptions o) {
  TsdbOptions to;
  to.dir = o.dir;
  to.max_series = o.max_series;
  request_start_seq_ = o.request_logs_after;
  if (!o.schemas_file.empty() || !o.aggregation_file.empty()) {
    std::string schemas, aggregation;
    if (!o.schemas_file.empty()) {
      auto t = slurp(o.schemas_file, "--metrics-schemas");
      if (!t) return fail(t.error());
      schemas = *t;
    }
    if (!o.aggregation_file.empty()) {
      auto t = slurp(o.aggregation_file, "--metrics-aggregation");
      if (!t) return fail(t.error());
      aggregation = *t;
    }
    auto parsed = parse_carbon_schemas(schemas, aggregation);
    if (!parsed) return fail(parsed.error());
    to.schemas = std::move(*parsed);
  }
  tsdb_ = std::make_unique<Tsdb>(std::move(to));
  if (auto r = tsdb_->open(); !r) return fail("metrics store " + o.dir + ": " + r.error().message);
  if (!o.carbon_relay.empty()) {
    auto r = CarbonRelay::create(o.carbon_relay);
    if (!r) return fail(r.error());
    relay_ = std::move(*r);
    relay_->start();
  }
  ingest_ = std::make_unique<MetricsIngest>(*tsdb_, relay_.get(), o.replicate);
  if (o.graphite_listen != "off") {
    graphite_ = std::make_unique<GraphiteServer>(*ingest_, o.graphite_listen);
    auto b = graphite_->start();
    if (!b) return fail(b.error());
    graphite_bound_ = *b;
  }
  return {};
}

void MetricsService::set_relay_active(bool active) {
  if (relay_) relay_->set_active(active);
}

void MetricsService::close() {
  if (graphite_) graphite_->stop();
  if (relay_) relay_->stop();
  if (tsdb_) tsdb_->close();
}

std::function<Result<std::function<Result<void>()>>(const logs::ForwardMessage&)> MetricsService::signal_sink() {
  return [this](const logs::ForwardMessage& m) -> Result<std::function<Result<void>()>> {
    int64_t sig = m.options.fluent_signal.value_or(0);
    if (sig != 1) return fail("fluent_signal " + std::to_string(sig) + " is not supported here (1 = metrics)");
    if (m.entries.empty() && !m.payload.empty())
      return fail("metric payloads other than Stele metric records (Fluent Bit cmetrics) are not supported; "
                  "send Graphite plaintext instead");
    std::vector<Point> points;
    for (const auto& e : m.entries) {
      int64_t t = e.time_ns / 1'000'000'000;
      if (auto r = decode_metric_record(e.record, t, points); !r)
        return fail("tag '" + std::string(e.tag) + "': " + r.error().message);
    }
    int64_t now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    auto r = ingest_->append(points, now, "forward " + std::string(m.tag), !m.options.replicated);
    Tsdb* db = tsdb_.get();
    uint64_t seq = r.seq;
    return std::function<Result<void>()>([db, seq] { return db->sync(seq); });
  };
}

void MetricsService::poll_requests(const logs::LogStore& logs, const std::map<std::string, RequestSource>& apps,
                                   int64_t now_s) {
  std::map<std::string, AccessLogSpec> specs;
  for (const auto& [name, src] : apps) specs.emplace(name, src.spec);
  requests_.configure(specs);
  for (const auto& [name, src] : apps) {
    uint64_t& cur = request_cursor_.try_emplace(name, request_start_seq_).first->second;
    for (int page = 0; page < 20; ++page) {
      logs::LogQuery q;
      q.app = name;
      q.tag = src.tag;
      q.after = cur;
      q.limit = 5000;
      auto rows = logs.query(q);
      if (!rows) {
        spdlog::warn("request metrics of {}: {}", name, rows.error().message);
        break;
      }
      for (const auto& row : *rows) {
        cur = std::max(cur, row.seq);
        auto it = row.record.find("log");
        if (it == row.record.end() || !it->is_string()) continue;
        requests_.observe(name, row.time_ns, it->get_ref<const std::string&>());
      }
      if (rows->size() < q.limit) break;
    }
  }
  for (auto it = request_cursor_.begin(); it != request_cursor_.end();)
    it = apps.count(it->first) ? std::next(it) : request_cursor_.erase(it);
  auto points = requests_.flush(now_s);
  if (points.empty()) return;
  std::vector<Point> view;
  view.reserve(points.size());
  for (const auto& p : points) view.push_back(Point{p.path, p.value, p.time_s});
  ingest_->append(view, now_s, "request metrics");
}

void MetricsService::record_self(const std::vector<std::pair<std::string, double>>& extra, int64_t now_s) {
  std::vector<std::pair<std::string, double>> all = extra;
  TsdbStats s = tsdb_->stats();
  auto add = [&all](std::string name, double v) { all.emplace_back(std::move(name), v); };
  add("metrics.series", double(s.series));
  add("metrics.points_received", double(s.points_received));
  add("metrics.points_durable", double(s.points_durable));
  add("metrics.points_dropped_old", double(s.points_dropped_old));
  add("metrics.series_refused", double(s.series_refused));
  add("metrics.wal_bytes", double(s.wal_bytes));
  add("metrics.data_bytes", double(s.data_bytes_allocated));
  if (graphite_) {
    auto g = graphite_->stats();
    add("graphite.connections", double(g.connections));
    add("graphite.lines", double(g.lines.lines));
    add("graphite.points", double(g.lines.points));
    add("graphite.bad_lines", double(g.lines.bad()));
  }
  if (relay_) {
    auto r = relay_->stats();
    add("carbon_relay.points_sent", double(r.points_sent));
    add("carbon_relay.points_dropped", double(r.points_dropped));
  }
  std::vector<std::string> names;
  names.reserve(all.size());
  for (const auto& [n, v] : all) names.push_back("stele.server." + n);
  std::vector<Point> view;
  for (size_t i = 0; i < all.size(); ++i) view.push_back(Point{names[i], all[i].second, now_s});
  ingest_->append(view, now_s, "stele.server");
}

}  // namespace stele::metrics
