// Fuzz target for the Nagios plugin API reader, fed whatever a plugin prints
// (plugin stdout is untrusted: any program can be a check). The first byte is
// the exit code, the rest stdout. It never crashes or leaks; the status is
// one of 0..3; the service output holds no newline or '|', the long text no
// '|'; every perfdata item has a non-empty label and finite numbers, its
// ranges read back the same from format_range(), the item written back as
// text parses to the same value, its metric value is never NaN and its
// metric path has only [A-Za-z0-9_.-]; `truncated` is set exactly when the
// input passes kMaxPluginOutput; every skipped item says why.
// fuzz-sources: src/monitor/plugin_output.cpp src/common/names.cpp
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "monitor/plugin_output.h"

using namespace stele::monitor;

namespace {

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "check_output_fuzz: %s\n", what);
  std::abort();
}

std::string number(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  if (ec != std::errc()) violated("to_chars failed");
  return std::string(buf, end);
}

// The item as a plugin would print it.
std::string item_text(const PerfValue& p) {
  std::string out = "'";
  for (char c : p.label) out += c == '\'' ? std::string("''") : std::string(1, c);
  out += "'=";
  out += p.value ? number(*p.value) : "U";
  if (p.value) out += uom_text(p.uom);
  out += ";" + (p.warn ? format_range(*p.warn) : "") + ";" + (p.crit ? format_range(*p.crit) : "");
  out += ";" + (p.min ? number(*p.min) : "") + ";" + (p.max ? number(*p.max) : "");
  return out;
}

void check_range(const Range& r) {
  if ((r.start && !std::isfinite(*r.start)) || (r.end && !std::isfinite(*r.end))) violated("non-finite range bound");
  if (r.start && r.end && *r.start > *r.end) violated("range start > end");
  auto back = parse_range(format_range(r));
  if (!back || !(*back == r)) violated("format_range does not read back");
  if (r.start && r.end && range_alerts(r, *r.start) != r.inside) violated("range_alerts wrong at the start");
}

void check_item(const PerfValue& p) {
  if (p.label.empty()) violated("empty label");
  if (p.value && !std::isfinite(*p.value)) violated("non-finite value");
  if ((p.min && !std::isfinite(*p.min)) || (p.max && !std::isfinite(*p.max))) violated("non-finite min/max");
  if (p.warn) check_range(*p.warn);
  if (p.crit) check_range(*p.crit);
  auto m = to_metric_value(p);
  if (m.has_value() != p.value.has_value() || (m && std::isnan(*m))) violated("bad metric value");
  auto again = parse_perf_item(item_text(p));
  if (!again) violated("an item written back does not parse");
  if (!(*again == p)) violated("an item written back parses differently");
  for (char c : check_metric_path("entity", "check", p.label)) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.';
    if (!ok) violated("unsafe character in a metric path");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  int code = static_cast<int8_t>(data[0]);
  int s = static_cast<int>(status_from_exit_code(code));
  if (s < 0 || s > 3 || (code >= 0 && code <= 2 && s != code)) violated("bad status");
  std::string_view out(reinterpret_cast<const char*>(data + 1), size - 1);
  PluginOutput o = parse_plugin_output(out);
  if (o.truncated != (out.size() > kMaxPluginOutput)) violated("truncated flag wrong");
  if (o.output.find_first_of("\n|") != std::string::npos) violated("newline or '|' in the service output");
  if (o.long_output.find('|') != std::string::npos) violated("'|' in the long text");
  if (o.text().size() > out.size()) violated("text longer than the input");
  for (const PerfValue& p : o.perfdata) check_item(p);
  for (const PerfError& e : o.perfdata_errors)
    if (e.reason.empty() || e.item.size() > 80) violated("perfdata error without a reason or with a long item");
  return 0;
}
