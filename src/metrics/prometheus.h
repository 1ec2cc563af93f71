// Prometheus text exposition format 0.0.4 (what GET /metrics answers):
//
//   # HELP <name> <help, '\' and newline escaped>
//   # TYPE <name> counter|gauge
//   <name>{<label>="<value, '\' '"' and newline escaped>",...} <value> [<timestamp ms>]
//
// A small builder: declare a family, then add its samples. Samples are
// grouped under their family however the calls interleave (the format allows
// each family's HELP/TYPE once, its samples together), families come out in
// the order first declared, samples in the order added.
//
// Values: integral ones with |v| <= 2^53 (every such double is an exact
// integer) are written without exponent or fraction ("1000000", not
// "1e+06"); others in the shortest form that reads back to the same double
// ("0.25", "1e+20"); and "+Inf", "-Inf", "NaN".
//
// Refused, with an error naming the offending name or label and nothing
// written: metric names outside [a-zA-Z_:][a-zA-Z0-9_:]*, label names
// outside [a-zA-Z_][a-zA-Z0-9_]* or starting with "__" (reserved for
// Prometheus itself), a label named twice in one sample, a sample whose
// label set its family already has (Prometheus rejects the whole scrape), a
// family declared again with another help or type, a negative counter.
//
// Not thread-safe: build one per scrape.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace stele::metrics {

inline constexpr std::string_view kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

enum class PrometheusType : uint8_t { kCounter, kGauge };

// Label name/value pairs, written in this order.
using PrometheusLabels = std::vector<std::pair<std::string, std::string>>;

class PrometheusWriter {
 public:
  // Makes `name` the family that sample() adds to, declaring it on first use.
  // Declaring it again (same help and type) returns to it.
  Result<void> family(std::string_view name, std::string_view help, PrometheusType type);

  // One sample of the current family (error if no family was declared).
  // `timestamp_ms`: milliseconds since the epoch, for samples not taken now.
  Result<void> sample(const PrometheusLabels& labels, double value,
                      std::optional<int64_t> timestamp_ms = std::nullopt);

  // The exposition text so far (every line ends in '\n'; "" when empty). A
  // family with an empty help has no HELP line; one without samples is
  // written as its HELP and TYPE lines only.
  std::string text() const;

 private:
  struct Family {
    std::string name;
    std::string help;
    PrometheusType type;
    std::string samples;               // rendered sample lines
    std::set<std::string> label_sets;  // canonical (sorted) label sets seen
  };
  std::vector<Family> families_;
  std::map<std::string, size_t, std::less<>> index_;  // name -> families_ slot
  std::optional<size_t> current_;                      // families_ slot sample() adds to
};

// Helpers, exposed for other writers and tests.
bool valid_prometheus_metric_name(std::string_view name);
bool valid_prometheus_label_name(std::string_view name);
std::string escape_prometheus_label_value(std::string_view v);  // \ " newline
std::string escape_prometheus_help(std::string_view v);         // \ newline
std::string format_prometheus_value(double v);

}  // namespace stele::metrics
