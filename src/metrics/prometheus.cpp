#include "metrics/prometheus.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace stele::metrics {
namespace {

bool name_char(char c, bool first, bool colon) {
  bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
  return letter || (!first && c >= '0' && c <= '9');
}

bool valid_name(std::string_view n, bool colon) {
  if (n.empty()) return false;
  for (size_t i = 0; i < n.size(); ++i)
    if (!name_char(n[i], i == 0, colon)) return false;
  return true;
}

const char* type_name(PrometheusType t) { return t == PrometheusType::kCounter ? "counter" : "gauge"; }

// Why the label set cannot be written, or "" when it can.
std::string labels_problem(const PrometheusLabels& labels) {
  for (size_t i = 0; i < labels.size(); ++i) {
    const std::string& n = labels[i].first;
    if (!valid_prometheus_label_name(n))
      return "label name \"" + n + "\": must match [a-zA-Z_][a-zA-Z0-9_]* and not start with \"__\"";
    for (size_t j = 0; j < i; ++j)
      if (labels[j].first == n) return "label \"" + n + "\" is given twice";
  }
  return "";
}

// `{a="1",b="2"}` in the given order ("" without labels).
std::string render_labels(const PrometheusLabels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (const auto& [name, value] : labels) {
    if (out.size() > 1) out += ',';
    out += name + "=\"" + escape_prometheus_label_value(value) + '"';
  }
  return out + "}";
}

// The same label set in any order gives the same key.
std::string label_set_key(PrometheusLabels labels) {
  std::sort(labels.begin(), labels.end());
  return render_labels(labels);
}

}  // namespace

bool valid_prometheus_metric_name(std::string_view name) { return valid_name(name, true); }

bool valid_prometheus_label_name(std::string_view name) {
  return valid_name(name, false) && name.substr(0, 2) != "__";
}

std::string escape_prometheus_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string escape_prometheus_help(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string format_prometheus_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::floor(v) == v && std::fabs(v) <= 9007199254740992.0)  // 2^53
    return std::to_string(static_cast<int64_t>(v));
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);  // shortest round-trip form
  return std::string(buf, end);
}

Result<void> PrometheusWriter::family(std::string_view name, std::string_view help, PrometheusType type) {
  if (!valid_prometheus_metric_name(name))
    return fail("metric name \"" + std::string(name) + "\": must match [a-zA-Z_:][a-zA-Z0-9_:]*");
  if (auto it = index_.find(name); it != index_.end()) {
    const Family& f = families_[it->second];
    if (f.help != help || f.type != type)
      return fail("metric \"" + std::string(name) + "\" is declared again with another help or type");
    current_ = it->second;
    return {};
  }
  index_.emplace(std::string(name), families_.size());
  current_ = families_.size();
  families_.push_back(Family{std::string(name), std::string(help), type, {}, {}});
  return {};
}

Result<void> PrometheusWriter::sample(const PrometheusLabels& labels, double value,
                                      std::optional<int64_t> timestamp_ms) {
  if (!current_) return fail("a sample needs a family declared first");
  Family& f = families_[*current_];
  if (std::string problem = labels_problem(labels); !problem.empty())
    return fail("metric \"" + f.name + "\": " + problem);
  if (f.type == PrometheusType::kCounter && value < 0)
    return fail("counter \"" + f.name + "\": must not be negative, got " + format_prometheus_value(value));
  std::string rendered = render_labels(labels);
  if (!f.label_sets.insert(label_set_key(labels)).second)
    return fail("metric \"" + f.name + "\": sample " + (rendered.empty() ? "without labels" : rendered) +
                " is given twice");
  f.samples += f.name + rendered + ' ' + format_prometheus_value(value);
  if (timestamp_ms) f.samples += ' ' + std::to_string(*timestamp_ms);
  f.samples += '\n';
  return {};
}

std::string PrometheusWriter::text() const {
  std::string out;
  for (const Family& f : families_) {
    if (!f.help.empty()) out += "# HELP " + f.name + ' ' + escape_prometheus_help(f.help) + '\n';
    out += "# TYPE " + f.name + ' ' + type_name(f.type) + '\n';
    out += f.samples;
  }
  return out;
}

}  // namespace stele::metrics
