// Nagios plugin output and performance data parsing (see plugin_output.h for
// the rules). No allocation-heavy machinery and no JSON here: the fuzz
// target builds this file with clang alone (plus common/names.cpp).
#include "monitor/plugin_output.h"

#include <array>
#include <charconv>
#include <cmath>

#include "common/names.h"

namespace stele::monitor {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

std::string_view rtrim(std::string_view s) {
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

// Length of the numeric prefix of `s` ([+-]digits[.digits][e[+-]digits]),
// 0 when there is none. Only the characters, not whether they make sense.
size_t number_prefix(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  size_t digits = 0;
  while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == ',')) {
    digits += s[i] != '.' && s[i] != ',';
    ++i;
  }
  if (digits == 0) return 0;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    size_t j = i + 1;
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
    size_t exp_digits = 0;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j, ++exp_digits;
    if (exp_digits > 0) i = j;
  }
  return i;
}

// A whole finite decimal number; ',' is read as the decimal point.
std::optional<double> to_number(std::string_view s) {
  if (s.empty() || s.size() > 64 || number_prefix(s) != s.size()) return std::nullopt;
  std::array<char, 65> buf{};
  size_t n = 0;
  for (char c : s)
    if (!(n == 0 && c == '+')) buf[n++] = c == ',' ? '.' : c;
  double v = 0;
  auto [end, ec] = std::from_chars(buf.data(), buf.data() + n, v);
  if (ec != std::errc() || end != buf.data() + n || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

// The shortest text that reads back as `v` ("10", "0.000123", "1e+20").
std::string number_text(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::string("0");
}

// Splits a perfdata item's value part "value[UOM];warn;crit;min;max".
Result<void> read_fields(std::string_view rest, PerfValue& p) {
  std::array<std::string_view, 5> f{};
  size_t count = 0;
  for (;;) {
    size_t semi = rest.find(';');
    if (count == f.size()) return fail("more than 5 ';'-separated fields");
    f[count++] = rest.substr(0, semi);
    if (semi == std::string_view::npos) break;
    rest.remove_prefix(semi + 1);
  }
  std::string_view value = f[0];
  if (value == "U") {
    p.value.reset();
  } else {
    size_t n = number_prefix(value);
    if (n == 0) return fail("value " + quoted(value) + " is not a number or U");
    p.value = to_number(value.substr(0, n));
    if (!p.value) return fail("value " + quoted(value.substr(0, n)) + " is not a finite number");
    auto uom = parse_uom(value.substr(n));
    if (!uom) return fail("unknown unit " + quoted(value.substr(n)) + " (expected s, ms, us, %, B, KB, MB, GB, TB or c)");
    p.uom = *uom;
  }
  const char* names[] = {"value", "warn", "crit", "min", "max"};
  for (size_t i = 1; i < count; ++i) {
    if (f[i].empty()) continue;
    if (i <= 2) {
      auto r = parse_range(f[i]);
      if (!r) return fail(std::string(names[i]) + ": " + r.error().message);
      (i == 1 ? p.warn : p.crit) = *r;
    } else {
      auto v = to_number(f[i]);
      if (!v) return fail(std::string(names[i]) + " " + quoted(f[i]) + " is not a number");
      (i == 3 ? p.min : p.max) = *v;
    }
  }
  return {};
}

// End of the item starting at `at`: the first whitespace outside a quoted
// label (an unterminated quote ends at the next whitespace instead).
size_t item_end(std::string_view text, size_t at) {
  size_t i = at;
  if (i < text.size() && text[i] == '\'') {
    size_t j = i + 1;
    for (; j < text.size(); ++j) {
      if (text[j] != '\'') continue;
      if (j + 1 < text.size() && text[j + 1] == '\'') {
        ++j;
        continue;
      }
      break;
    }
    if (j < text.size()) i = j + 1;  // closed: the label may hold spaces
  }
  while (i < text.size() && !is_space(text[i])) ++i;
  return i;
}

}  // namespace

CheckStatus status_from_exit_code(int exit_code) {
  switch (exit_code) {
    case 0: return CheckStatus::kOk;
    case 1: return CheckStatus::kWarning;
    case 2: return CheckStatus::kCritical;
    default: return CheckStatus::kUnknown;
  }
}

const char* status_name(CheckStatus s) {
  switch (s) {
    case CheckStatus::kOk: return "OK";
    case CheckStatus::kWarning: return "WARNING";
    case CheckStatus::kCritical: return "CRITICAL";
    case CheckStatus::kUnknown: break;
  }
  return "UNKNOWN";
}

std::optional<CheckStatus> status_from_int(int64_t v) {
  if (v < 0 || v > 3) return std::nullopt;
  return static_cast<CheckStatus>(v);
}

Result<Range> parse_range(std::string_view text) {
  std::string what = "range " + quoted(text);
  Range r;
  std::string_view s = text;
  if (!s.empty() && s.front() == '@') {
    r.inside = true;
    s.remove_prefix(1);
  }
  if (s.empty()) return fail(what + ": empty");
  size_t colon = s.find(':');
  if (colon == std::string_view::npos) {
    r.start = 0.0;
    r.end = to_number(s);
    if (!r.end) return fail(what + ": " + quoted(s) + " is not a number");
  } else {
    std::string_view a = s.substr(0, colon), b = s.substr(colon + 1);
    if (a == "~") {
      r.start.reset();
    } else if (a.empty()) {
      r.start = 0.0;  // ":10" is read by the plugins' own parser as 0..10
    } else {
      r.start = to_number(a);
      if (!r.start) return fail(what + ": start " + quoted(a) + " is not a number or ~");
    }
    if (!b.empty()) {
      r.end = to_number(b);
      if (!r.end) return fail(what + ": end " + quoted(b) + " is not a number");
    }
  }
  if (r.start && r.end && *r.start > *r.end) return fail(what + ": start is greater than end");
  return r;
}

bool range_alerts(const Range& r, double v) {
  bool in = (!r.start || v >= *r.start) && (!r.end || v <= *r.end);
  return r.inside ? in : !in;
}

std::string format_range(const Range& r) {
  std::string out = r.inside ? "@" : "";
  if (r.start && *r.start == 0.0 && r.end) return out + number_text(*r.end);
  out += r.start ? number_text(*r.start) : "~";
  out += ':';
  if (r.end) out += number_text(*r.end);
  return out;
}

namespace {
constexpr std::array<std::pair<Uom, std::string_view>, 11> kUoms = {{
    {Uom::kNone, ""}, {Uom::kSeconds, "s"}, {Uom::kMilliseconds, "ms"}, {Uom::kMicroseconds, "us"},
    {Uom::kPercent, "%"}, {Uom::kBytes, "B"}, {Uom::kKilobytes, "KB"}, {Uom::kMegabytes, "MB"},
    {Uom::kGigabytes, "GB"}, {Uom::kTerabytes, "TB"}, {Uom::kCounter, "c"},
}};
}  // namespace

std::optional<Uom> parse_uom(std::string_view text) {
  for (const auto& [u, name] : kUoms)
    if (iequals(text, name)) return u;
  return std::nullopt;
}

std::string_view uom_text(Uom u) {
  for (const auto& [v, name] : kUoms)
    if (v == u) return name;
  return "";
}

std::string PerfError::message() const {
  return "perfdata at " + std::to_string(position) + " (" + quoted(item) + "): " + reason;
}

Result<PerfValue> parse_perf_item(std::string_view item) {
  PerfValue p;
  size_t eq;
  if (!item.empty() && item.front() == '\'') {
    size_t i = 1;
    for (;; ++i) {
      if (i >= item.size()) return fail("unterminated quote in the label");
      if (item[i] != '\'') {
        p.label += item[i];
      } else if (i + 1 < item.size() && item[i + 1] == '\'') {
        p.label += '\'';
        ++i;
      } else {
        break;
      }
    }
    eq = i + 1;
    if (eq >= item.size() || item[eq] != '=') return fail("no '=' after the quoted label");
  } else {
    eq = item.find('=');
    if (eq == std::string_view::npos) return fail("no '=' (expected 'label'=value[UOM];warn;crit;min;max)");
    p.label = item.substr(0, eq);
    for (char c : p.label)
      if (c == '\'' || is_space(c)) return fail("a label with spaces or quotes must be in single quotes");
  }
  if (p.label.empty()) return fail("empty label");
  auto fields = read_fields(item.substr(eq + 1), p);
  if (!fields) return fail(fields.error());
  return p;
}

std::vector<PerfValue> parse_perfdata(std::string_view text, std::vector<PerfError>* errors) {
  std::vector<PerfValue> out;
  size_t at = 0;
  for (;;) {
    while (at < text.size() && is_space(text[at])) ++at;
    if (at >= text.size()) break;
    size_t end = item_end(text, at);
    std::string_view item = text.substr(at, end - at);
    auto p = parse_perf_item(item);
    if (p) {
      out.push_back(std::move(*p));
    } else if (errors) {
      errors->push_back(PerfError{at, std::string(item.substr(0, 80)), p.error().message});
    }
    at = end;
  }
  return out;
}

std::string PluginOutput::text() const {
  if (long_output.empty()) return output;
  return output + "\n" + long_output;
}

PluginOutput parse_plugin_output(std::string_view in) {
  PluginOutput r;
  if (in.size() > kMaxPluginOutput) {
    in = in.substr(0, kMaxPluginOutput);
    r.truncated = true;
  }
  std::string perf;  // perfdata text of every line, ' '-joined
  bool in_perf = false;
  for (size_t at = 0, line_no = 0; at < in.size(); ++line_no) {
    size_t nl = in.find('\n', at);
    std::string_view line = in.substr(at, nl == std::string_view::npos ? std::string_view::npos : nl - at);
    at = nl == std::string_view::npos ? in.size() : nl + 1;
    if (in_perf) {
      if (!perf.empty()) perf += ' ';
      perf += line;
      continue;
    }
    size_t bar = line.find('|');
    std::string_view text = rtrim(line.substr(0, bar));
    if (line_no == 0) {
      r.output = text;
    } else {
      if (line_no > 1) r.long_output += '\n';
      r.long_output += text;
    }
    if (bar != std::string_view::npos) {
      if (!perf.empty()) perf += ' ';
      perf += line.substr(bar + 1);
      in_perf = line_no > 0;  // after a long-text '|', every line is perfdata
    }
  }
  // Blank lines at the end of the long text are no text.
  r.long_output.resize(rtrim(r.long_output).size());
  r.perfdata = parse_perfdata(perf, &r.perfdata_errors);
  return r;
}

std::optional<double> to_metric_value(const PerfValue& p) {
  if (!p.value) return std::nullopt;
  double v = *p.value;
  switch (p.uom) {
    case Uom::kMilliseconds: return v / 1e3;
    case Uom::kMicroseconds: return v / 1e6;
    case Uom::kKilobytes: return v * 1024.0;
    case Uom::kMegabytes: return v * 1024.0 * 1024.0;
    case Uom::kGigabytes: return v * 1024.0 * 1024.0 * 1024.0;
    case Uom::kTerabytes: return v * 1024.0 * 1024.0 * 1024.0 * 1024.0;
    default: return v;
  }
}

std::string check_metric_path(std::string_view entity, std::string_view check, std::string_view label) {
  return "stele.check." + metric_node(entity) + "." + metric_node(check) + "." + metric_node(label);
}

}  // namespace stele::monitor
