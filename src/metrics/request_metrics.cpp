// Access-line parsing (LTSV, JSON via nlohmann's SAX interface so no DOM is
// built per line) and the per-app windows of request metrics.
#include "metrics/request_metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "common/json.h"
#include "common/names.h"

namespace stele::metrics {
namespace {

// ---- field values ---------------------------------------------------------------

int status_of_text(std::string_view v) {
  int s = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), s);
  if (ec != std::errc() || end != v.data() + v.size() || s < 100 || s > 599) return 0;
  return s;
}

int status_of_number(double d) {
  if (!(d >= 100 && d < 600) || std::floor(d) != d) return 0;
  return static_cast<int>(d);
}

double to_ms(double v, AccessLogSpec::LatencyUnit unit) {
  switch (unit) {
    case AccessLogSpec::LatencyUnit::kSeconds: return v * 1000;
    case AccessLogSpec::LatencyUnit::kMilliseconds: return v;
    case AccessLogSpec::LatencyUnit::kMicroseconds: return v / 1000;
  }
  return v;
}

std::optional<double> latency_of_number(double d, AccessLogSpec::LatencyUnit unit) {
  if (!std::isfinite(d) || d < 0) return std::nullopt;
  return to_ms(d, unit);
}

// nginx writes "-" for a time it has not got; that (and any non-number) is no sample.
std::optional<double> latency_of_text(std::string_view v, AccessLogSpec::LatencyUnit unit) {
  double d = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), d);
  if (ec != std::errc() || end != v.data() + v.size()) return std::nullopt;
  return latency_of_number(d, unit);
}

std::string_view strip_newline(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

// ---- LTSV ----------------------------------------------------------------------

std::optional<AccessLine> parse_ltsv(const AccessLogSpec& spec, std::string_view line) {
  if (line.empty()) return std::nullopt;
  AccessLine out;
  bool has_status = false;
  while (true) {
    size_t tab = line.find('\t');
    std::string_view field = line.substr(0, tab);
    size_t colon = field.find(':');
    if (colon == 0 || colon == std::string_view::npos) return std::nullopt;
    std::string_view label = field.substr(0, colon), value = field.substr(colon + 1);
    if (label == spec.status) {
      has_status = true;
      out.status = status_of_text(value);
    } else if (label == spec.latency) {
      out.latency_ms = latency_of_text(value, spec.latency_unit);
    }
    if (tab == std::string_view::npos) break;
    line.remove_prefix(tab + 1);
  }
  if (!has_status) return std::nullopt;
  return out;
}

// ---- JSON ----------------------------------------------------------------------

// Picks the status and latency out of a top-level object. Returning false
// stops the parse (not an object, too deep).
class AccessLineSax : public nlohmann::json_sax<Json> {
 public:
  explicit AccessLineSax(const AccessLogSpec& spec) : spec_(spec) {}

  bool null() override { return scalar_text(""); }
  bool boolean(bool) override { return scalar_text(""); }
  bool number_integer(number_integer_t v) override { return scalar_number(static_cast<double>(v)); }
  bool number_unsigned(number_unsigned_t v) override { return scalar_number(static_cast<double>(v)); }
  bool number_float(number_float_t v, const string_t&) override { return scalar_number(v); }
  bool string(string_t& v) override { return scalar_text(v); }
  bool binary(binary_t&) override { return scalar_text(""); }
  bool start_object(std::size_t) override { return open(); }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return depth_ > 0 && open(); }
  bool end_array() override { return close(); }
  bool key(string_t& k) override {
    if (depth_ == 1) target_ = k == spec_.status ? kStatus : k == spec_.latency ? kLatency : kNone;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

  bool has_status = false;
  AccessLine line;

 private:
  enum Target { kNone, kStatus, kLatency };

  bool open() {
    if (depth_ == 1) take(0, std::nullopt);  // an object or array as the value: not usable
    return ++depth_ <= kMaxJsonDepth;
  }
  bool close() {
    --depth_;
    return true;
  }
  bool scalar_number(double d) {
    if (depth_ == 0) return false;  // the document is not an object
    if (depth_ == 1) take(status_of_number(d), latency_of_number(d, spec_.latency_unit));
    return true;
  }
  bool scalar_text(std::string_view v) {
    if (depth_ == 0) return false;
    if (depth_ == 1) take(status_of_text(v), latency_of_text(v, spec_.latency_unit));
    return true;
  }
  void take(int status, std::optional<double> latency_ms) {
    if (target_ == kStatus) {
      has_status = true;
      line.status = status;
    } else if (target_ == kLatency) {
      line.latency_ms = latency_ms;
    }
    target_ = kNone;
  }

  const AccessLogSpec& spec_;
  int depth_ = 0;
  Target target_ = kNone;
};

std::optional<AccessLine> parse_json_line(const AccessLogSpec& spec, std::string_view line) {
  AccessLineSax sax(spec);
  if (!Json::sax_parse(line.begin(), line.end(), &sax) || !sax.has_status) return std::nullopt;
  return sax.line;
}

// ---- windows ---------------------------------------------------------------------

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// Nearest rank: the ceil(p/100 * n)-th smallest of `sorted` (n > 0).
double nearest_rank(const std::vector<double>& sorted, uint64_t p) {
  uint64_t n = sorted.size();
  uint64_t rank = std::max<uint64_t>(1, (p * n + 99) / 100);
  return sorted[rank - 1];
}

}  // namespace

std::optional<AccessLine> parse_access_line(const AccessLogSpec& spec, std::string_view line) {
  line = strip_newline(line);
  if (spec.format == AccessLogSpec::Format::kJson) return parse_json_line(spec, line);
  return parse_ltsv(spec, line);
}

RequestMetrics::RequestMetrics(RequestMetricsOptions options) : options_(options), rng_(options.seed) {
  options_.interval_s = std::max<int64_t>(1, options_.interval_s);
  options_.grace_s = std::max<int64_t>(0, options_.grace_s);
  options_.max_open_windows = std::max<size_t>(1, options_.max_open_windows);
  options_.max_gap_fill = std::max<int64_t>(1, options_.max_gap_fill);
}

void RequestMetrics::configure(const std::map<std::string, AccessLogSpec>& apps) {
  std::map<std::string, App, std::less<>> next;
  for (const auto& [key, spec] : apps) {
    std::string name = metric_node(app_name(key));
    auto old = apps_.find(name);
    App& a = next[name];
    if (old != apps_.end()) a = std::move(old->second);
    a.spec = spec;
  }
  apps_ = std::move(next);
}

RequestMetrics::App* RequestMetrics::find(std::string_view app) {
  auto it = apps_.find(app);
  if (it == apps_.end()) it = apps_.find(metric_node(app_name(app)));
  return it == apps_.end() ? nullptr : &it->second;
}

int64_t RequestMetrics::window_start(int64_t time_ns) const {
  return floor_div(floor_div(time_ns, 1'000'000'000), options_.interval_s) * options_.interval_s;
}

RequestMetrics::Window* RequestMetrics::open_window(App& a, int64_t start) {
  auto it = a.windows.find(start);
  if (it != a.windows.end()) return &it->second;
  if (a.windows.size() >= options_.max_open_windows) return nullptr;
  return &a.windows[start];
}

LineOutcome RequestMetrics::observe(std::string_view app, int64_t time_ns, std::string_view line) {
  App* a = find(app);
  if (!a) return LineOutcome::kUnconfigured;
  std::optional<AccessLine> parsed = parse_access_line(a->spec, line);
  int64_t start = window_start(time_ns);
  Window* w = nullptr;
  bool late = a->flushed_until && start < *a->flushed_until;
  if (!late) w = open_window(*a, start);
  if (!parsed) {
    ++(w ? *w : a->pending).parse_errors;
    return LineOutcome::kNotAccessLine;
  }
  if (late) {
    ++a->pending.late;
    return LineOutcome::kLate;
  }
  if (!w) {
    ++a->pending.dropped;
    return LineOutcome::kDropped;
  }
  count(*w, *parsed);
  return LineOutcome::kCounted;
}

void RequestMetrics::count(Window& w, const AccessLine& line) {
  ++w.count;
  if (line.status >= 100)
    ++w.classes[line.status / 100 - 1];
  else
    ++w.other;
  if (!line.latency_ms) return;
  uint64_t seen = ++w.latencies_seen;
  if (w.samples.size() < options_.max_samples) {
    w.samples.push_back(*line.latency_ms);
    return;
  }
  // Algorithm R: the seen-th value replaces a random slot with probability max_samples/seen.
  uint64_t j = std::uniform_int_distribution<uint64_t>(0, seen - 1)(rng_);
  if (j < w.samples.size()) w.samples[j] = *line.latency_ms;
}

std::vector<OwnedPoint> RequestMetrics::flush(int64_t now_s) {
  const int64_t interval = options_.interval_s;
  int64_t closed_end = floor_div(now_s - options_.grace_s, interval) * interval;
  std::vector<OwnedPoint> out;
  for (auto& [name, a] : apps_) flush_app(name, a, closed_end, out);
  return out;
}

// Emits the app's windows in [first unemitted, closed_end): those with lines
// all, the empty ones only within the last max_gap_fill windows.
void RequestMetrics::flush_app(const std::string& name, App& a, int64_t closed_end,
                               std::vector<OwnedPoint>& out) {
  if (!a.flushed_until && a.windows.empty()) return;  // no traffic yet: nothing to zero-fill
  int64_t from = a.flushed_until ? *a.flushed_until : a.windows.begin()->first;
  if (from >= closed_end) return;
  const int64_t interval = options_.interval_s;
  int64_t fill_from = std::max(from, closed_end - options_.max_gap_fill * interval);
  auto it = a.windows.begin();
  for (; it != a.windows.end() && it->first < fill_from; ++it) emit(name, it->first, it->second, out);
  for (int64_t start = fill_from; start < closed_end; start += interval) {
    Window empty;
    bool has = it != a.windows.end() && it->first == start;
    Window& w = has ? it->second : empty;
    if (start + interval == closed_end) {  // the newest: takes what happened "now"
      w.parse_errors += a.pending.parse_errors;
      w.late += a.pending.late;
      w.dropped += a.pending.dropped;
      a.pending = Window{};
    }
    emit(name, start, w, out);
    if (has) ++it;
  }
  a.windows.erase(a.windows.begin(), it);
  a.flushed_until = closed_end;
}

void RequestMetrics::emit(const std::string& name, int64_t start, Window& w,
                          std::vector<OwnedPoint>& out) const {
  std::string base = "stele.app." + name + ".requests.";
  auto put = [&](const char* metric, double v) { out.push_back(OwnedPoint{base + metric, start, v}); };
  put("count", static_cast<double>(w.count));
  static const char* const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
  for (int c = 0; c < 5; ++c) put(classes[c], static_cast<double>(w.classes[c]));
  put("other", static_cast<double>(w.other));
  if (w.count > 0) put("error_ratio", static_cast<double>(w.classes[4]) / static_cast<double>(w.count));
  if (!w.samples.empty()) {
    std::sort(w.samples.begin(), w.samples.end());
    put("latency.p50", nearest_rank(w.samples, 50));
    put("latency.p90", nearest_rank(w.samples, 90));
    put("latency.p99", nearest_rank(w.samples, 99));
  }
  put("parse_errors", static_cast<double>(w.parse_errors));
  put("late", static_cast<double>(w.late));
  put("dropped", static_cast<double>(w.dropped));
}

}  // namespace stele::metrics
