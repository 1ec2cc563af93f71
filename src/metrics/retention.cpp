#include "metrics/retention.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdlib>
#include <map>
#include <utility>

namespace stele::metrics {

namespace {

// whisper's header fields are "!L": unsigned 32-bit.
constexpr int64_t kMaxField = 4294967295LL;

constexpr std::string_view kSpaces = " \t\r\n\v\f";

std::string_view trim(std::string_view s) {
  size_t b = s.find_first_not_of(kSpaces);
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(kSpaces);
  return s.substr(b, e - b + 1);
}

std::string quote(std::string_view s) { return "'" + std::string(s) + "'"; }

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Digits to a number; anything above kMaxField saturates to kMaxField + 1
// (only ever compared against the limit).
int64_t digits_value(std::string_view s) {
  int64_t v = 0;
  for (char c : s) {
    v = v * 10 + (c - '0');
    if (v > kMaxField) return kMaxField + 1;
  }
  return v;
}

// carbon's getUnitString: the first of these names that starts with `unit`.
std::optional<int64_t> unit_seconds(std::string_view unit) {
  static constexpr std::pair<std::string_view, int64_t> kUnits[] = {
      {"seconds", 1},     {"minutes", 60},        {"hours", 3600},
      {"days", 86400},    {"weeks", 86400 * 7},   {"years", 86400 * 365}};
  for (auto [name, secs] : kUnits)
    if (name.starts_with(unit)) return secs;
  return std::nullopt;
}

struct Quantity {
  int64_t number = 0;
  std::optional<int64_t> unit_s;  // nullopt: bare number
};

// `<digits>` or `<digits><lowercase letters>`; `what` names the field in
// carbon's words ("precision", "retention").
Result<Quantity> parse_quantity(std::string_view def, std::string_view s, std::string_view what) {
  if (all_digits(s)) return Quantity{digits_value(s), std::nullopt};
  size_t d = 0;
  while (d < s.size() && s[d] >= '0' && s[d] <= '9') ++d;
  std::string_view unit = s.substr(d);
  bool lower = !unit.empty() && std::all_of(unit.begin(), unit.end(), [](char c) { return c >= 'a' && c <= 'z'; });
  if (d == 0 || !lower)
    return fail("retention " + quote(def) + ": invalid " + std::string(what) + " specification " +
                    quote(s) + " (expected a number, optionally followed by s, m, h, d, w or y)",
                400);
  auto secs = unit_seconds(unit);
  if (!secs)
    return fail("retention " + quote(def) + ": invalid unit " + quote(unit) +
                    " (units are s, m(inutes), h, d, w, y or longer prefixes of their names)",
                400);
  return Quantity{digits_value(s.substr(0, d)), secs};
}

std::string archive_text(const Archive& a) {
  return std::to_string(a.step_s) + "s:" + std::to_string(a.points);
}

tl::unexpected<Error> rule(std::string message) { return fail(std::move(message), 422); }

}  // namespace

Result<Archive> parse_retention_def(std::string_view raw) {
  std::string_view def = trim(raw);
  size_t colon = def.find(':');
  if (colon == std::string_view::npos)
    return fail("invalid retention definition " + quote(def) + " (expected precision:points, e.g. 1m:7d)", 400);
  auto precision = parse_quantity(def, def.substr(0, colon), "precision");
  if (!precision) return tl::unexpected(precision.error());
  auto points = parse_quantity(def, def.substr(colon + 1), "retention");
  if (!points) return tl::unexpected(points.error());

  int64_t step = precision->number * precision->unit_s.value_or(1);
  if (precision->number > kMaxField || step > kMaxField)
    return rule("retention " + quote(def) + ": precision exceeds 4294967295 seconds (whisper's limit)");
  if (step == 0) return rule("retention " + quote(def) + ": precision must be at least 1 second");
  if (points->number > kMaxField)
    return rule("retention " + quote(def) + ": retention exceeds 4294967295 (whisper's limit)");
  int64_t count = points->unit_s ? points->number * *points->unit_s / step : points->number;
  if (count == 0)
    return rule("retention " + quote(def) + ": keeps no points (the retention is shorter than the precision)");
  if (count > kMaxField || step * count > kMaxField)
    return rule("retention " + quote(def) + ": retains more than 4294967295 seconds or points (whisper's limit)");
  return Archive{step, count};
}

Result<std::vector<Archive>> validate_archives(std::vector<Archive> archives) {
  if (archives.empty()) return rule("you must specify at least one archive configuration (whisper)");
  std::stable_sort(archives.begin(), archives.end(),
                   [](const Archive& a, const Archive& b) { return a.step_s < b.step_s; });
  for (size_t i = 0; i + 1 < archives.size(); ++i) {
    const Archive& fine = archives[i];
    const Archive& coarse = archives[i + 1];
    std::string pair = " (" + archive_text(fine) + " and " + archive_text(coarse) + ")";
    if (fine.step_s <= 0 || fine.points <= 0)
      return rule("archive " + archive_text(fine) + " needs a positive precision and point count");
    if (fine.step_s == coarse.step_s)
      return rule("two archives have the same precision" + pair +
                  "; whisper allows one archive per precision");
    if (coarse.step_s % fine.step_s != 0)
      return rule("precision " + std::to_string(fine.step_s) + "s does not evenly divide " +
                  std::to_string(coarse.step_s) + "s" + pair +
                  "; whisper requires each finer precision to divide every coarser one");
    if (coarse.retention_s() <= fine.retention_s())
      return rule("the coarser archive retains " + std::to_string(coarse.retention_s()) +
                  "s, not more than the finer one's " + std::to_string(fine.retention_s()) + "s" + pair +
                  "; whisper requires coarser archives to cover longer time");
    int64_t per = coarse.step_s / fine.step_s;
    if (fine.points < per)
      return rule("archive " + archive_text(fine) + " has only " + std::to_string(fine.points) +
                  " points but each point of " + archive_text(coarse) + " consolidates " +
                  std::to_string(per) + "; whisper requires enough points to consolidate");
  }
  const Archive& last = archives.back();
  if (last.step_s <= 0 || last.points <= 0)
    return rule("archive " + archive_text(last) + " needs a positive precision and point count");
  return archives;
}

Result<std::vector<Archive>> parse_retentions(std::string_view text) {
  std::vector<Archive> archives;
  std::vector<std::string_view> defs;
  if (!trim(text).empty()) {
    size_t start = 0;
    while (true) {
      size_t comma = text.find(',', start);
      defs.push_back(text.substr(start, comma == std::string_view::npos ? comma : comma - start));
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
  }
  for (std::string_view def : defs) {
    auto a = parse_retention_def(def);
    if (!a) return tl::unexpected(a.error());
    archives.push_back(*a);
  }
  auto valid = validate_archives(std::move(archives));
  if (!valid) {
    Error e = valid.error();
    e.message = "retentions " + quote(trim(text)) + ": " + e.message;
    return fail(std::move(e));
  }
  return valid;
}

std::string format_retentions(const std::vector<Archive>& archives) {
  std::string out;
  for (const Archive& a : archives) {
    if (!out.empty()) out += ',';
    out += archive_text(a);
  }
  return out;
}

namespace {
constexpr std::pair<std::string_view, Aggregation> kAggregations[] = {
    {"average", Aggregation::average}, {"sum", Aggregation::sum},
    {"min", Aggregation::min},         {"max", Aggregation::max},
    {"last", Aggregation::last},       {"avg_zero", Aggregation::avg_zero},
    {"absmax", Aggregation::absmax},   {"absmin", Aggregation::absmin}};
}  // namespace

Result<Aggregation> parse_aggregation(std::string_view name) {
  for (auto [n, a] : kAggregations)
    if (n == name) return a;
  return fail("unknown aggregation method " + quote(name) +
                  " (expected average, sum, min, max, last, avg_zero, absmax or absmin)",
              400);
}

const char* aggregation_name(Aggregation a) {
  for (auto [n, v] : kAggregations)
    if (v == a) return n.data();
  return "unknown";
}

std::optional<double> aggregate(Aggregation agg, std::span<const std::optional<double>> values,
                                double xff) {
  std::vector<double> known;
  known.reserve(values.size());
  for (const auto& v : values)
    if (v) known.push_back(*v);
  if (known.empty()) return std::nullopt;
  // whisper: float(len(knownValues)) / float(len(neighborValues)) >= xff
  if (double(known.size()) / double(values.size()) < xff) return std::nullopt;
  auto sum = [](const std::vector<double>& xs) {
    double s = 0;
    for (double x : xs) s += x;
    return s;
  };
  switch (agg) {
    case Aggregation::average: return sum(known) / double(known.size());
    case Aggregation::sum: return sum(known);
    case Aggregation::last: return known.back();
    case Aggregation::max: return *std::max_element(known.begin(), known.end());
    case Aggregation::min: return *std::min_element(known.begin(), known.end());
    case Aggregation::avg_zero: return sum(known) / double(values.size());
    case Aggregation::absmax:
      return *std::max_element(known.begin(), known.end(),
                               [](double a, double b) { return std::fabs(a) < std::fabs(b); });
    case Aggregation::absmin:
      return *std::min_element(known.begin(), known.end(),
                               [](double a, double b) { return std::fabs(a) < std::fabs(b); });
  }
  return std::nullopt;
}

bool StorageSchema::matches(std::string_view metric) const {
  if (!std::regex_search(metric.begin(), metric.end(), regex)) return false;
  return aggregation_pattern.empty() || std::regex_search(metric.begin(), metric.end(), aggregation_regex);
}

namespace {
// Exceptions stay here: std::regex reports bad patterns by throwing.
Result<std::regex> compile(std::string_view pattern) {
  try {
    return std::regex(pattern.begin(), pattern.end(), std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    return fail("invalid pattern " + quote(pattern) + ": " + e.what(), 400);
  }
}
}  // namespace

Result<StorageSchema> make_schema(std::string name, std::string_view pattern,
                                  std::vector<Archive> archives, Aggregation agg, double xff) {
  auto valid = validate_archives(std::move(archives));
  if (!valid) return tl::unexpected(valid.error());
  if (!(xff >= 0 && xff <= 1))
    return rule("xFilesFactor " + std::to_string(xff) + " is outside [0, 1]");
  auto re = compile(pattern);
  if (!re) return tl::unexpected(re.error());
  StorageSchema s;
  s.name = std::move(name);
  s.pattern = std::string(pattern);
  s.archives = std::move(*valid);
  s.agg = agg;
  s.x_files_factor = xff;
  s.regex = std::move(*re);
  return s;
}

const StorageSchema& default_schema() {
  static const StorageSchema kDefault = [] {
    auto archives = parse_retentions("10s:6h,1m:7d,10m:1y");
    auto s = make_schema("default", ".*", archives.value());
    return std::move(s.value());
  }();
  return kDefault;
}

Schemas::Schemas() : fallback_(default_schema()) {}
Schemas::Schemas(StorageSchema fallback) : fallback_(std::move(fallback)) {}

void Schemas::add(StorageSchema schema) { entries_.push_back(std::move(schema)); }

const StorageSchema& Schemas::match(std::string_view metric) const {
  for (const StorageSchema& s : entries_)
    if (s.matches(metric)) return s;
  return fallback_;
}

// ---- carbon config files ----

namespace {

struct IniSection {
  std::string name;
  size_t line = 0;
  std::map<std::string, std::pair<std::string, size_t>> keys;  // lowercased key -> value, line
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return out;
}

tl::unexpected<Error> at_line(std::string_view file, size_t line, std::string message, int code = 400) {
  return fail(std::string(file) + " line " + std::to_string(line) + ": " + message, code);
}

// Python ConfigParser's syntax, as far as carbon's files use it.
Result<std::vector<IniSection>> parse_ini(std::string_view file, std::string_view text,
                                          std::initializer_list<std::string_view> allowed) {
  std::vector<IniSection> sections;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view raw = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    std::string_view line = trim(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[') {
      if (line.back() != ']' || line.size() < 3)
        return at_line(file, line_no, "malformed section header " + quote(line));
      std::string name(line.substr(1, line.size() - 2));
      for (const IniSection& s : sections)
        if (s.name == name)
          return at_line(file, line_no, "duplicate section [" + name + "] (first at line " +
                                            std::to_string(s.line) + ")");
      sections.push_back({name, line_no, {}});
      continue;
    }
    if (raw[0] == ' ' || raw[0] == '\t')
      return at_line(file, line_no, "continuation lines are not supported: " + quote(line));
    if (sections.empty()) return at_line(file, line_no, "key outside any [section]: " + quote(line));
    IniSection& sec = sections.back();
    size_t sep = line.find_first_of("=:");
    if (sep == std::string_view::npos)
      return at_line(file, line_no, "in [" + sec.name + "]: expected key = value, got " + quote(line));
    std::string key = lower(trim(line.substr(0, sep)));
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
      return at_line(file, line_no, "in [" + sec.name + "]: unknown key " + quote(trim(line.substr(0, sep))));
    if (sec.keys.count(key))
      return at_line(file, line_no, "in [" + sec.name + "]: duplicate key " + quote(key));
    sec.keys[key] = {std::string(trim(line.substr(sep + 1))), line_no};
  }
  return sections;
}

struct AggregationRule {
  std::string name;
  std::string pattern;
  Aggregation agg = Aggregation::average;
  double xff = 0.5;
};

// xFilesFactor / aggregationMethod keys of one section (either file).
Result<void> read_aggregation_keys(std::string_view file, const IniSection& sec, AggregationRule& out) {
  if (auto it = sec.keys.find("xfilesfactor"); it != sec.keys.end()) {
    const auto& [value, line] = it->second;
    char* end = nullptr;
    std::string v(value);
    double x = std::strtod(v.c_str(), &end);
    if (v.empty() || end != v.c_str() + v.size())
      return at_line(file, line, "in [" + sec.name + "]: xFilesFactor " + quote(value) + " is not a number");
    if (!(x >= 0 && x <= 1))
      return at_line(file, line, "in [" + sec.name + "]: xFilesFactor " + quote(value) + " is outside [0, 1]", 422);
    out.xff = x;
  }
  if (auto it = sec.keys.find("aggregationmethod"); it != sec.keys.end()) {
    auto a = parse_aggregation(it->second.first);
    if (!a) return at_line(file, it->second.second, "in [" + sec.name + "]: " + a.error().message);
    out.agg = *a;
  }
  return {};
}

Result<std::string> required(std::string_view file, const IniSection& sec, const std::string& key) {
  auto it = sec.keys.find(key);
  if (it == sec.keys.end() || it->second.first.empty())
    return at_line(file, sec.line, "section [" + sec.name + "] has no " + key);
  return it->second.first;
}

Result<std::vector<AggregationRule>> parse_aggregation_conf(std::string_view text) {
  constexpr std::string_view kFile = "storage-aggregation.conf";
  auto sections = parse_ini(kFile, text, {"pattern", "xfilesfactor", "aggregationmethod"});
  if (!sections) return tl::unexpected(sections.error());
  std::vector<AggregationRule> rules;
  for (const IniSection& sec : *sections) {
    AggregationRule r;
    r.name = sec.name;
    auto pattern = required(kFile, sec, "pattern");
    if (!pattern) return tl::unexpected(pattern.error());
    r.pattern = *pattern;
    if (auto ok = read_aggregation_keys(kFile, sec, r); !ok) return tl::unexpected(ok.error());
    if (auto re = compile(r.pattern); !re)
      return at_line(kFile, sec.keys.at("pattern").second, "in [" + sec.name + "]: " + re.error().message);
    rules.push_back(std::move(r));
  }
  return rules;
}

}  // namespace

Result<Schemas> parse_carbon_schemas(std::string_view schemas_conf, std::string_view aggregation_conf) {
  constexpr std::string_view kFile = "storage-schemas.conf";
  auto rules = parse_aggregation_conf(aggregation_conf);
  if (!rules) return tl::unexpected(rules.error());
  rules->push_back(AggregationRule{"default", "", Aggregation::average, 0.5});  // whisper's defaults

  auto sections = parse_ini(kFile, schemas_conf, {"pattern", "retentions", "xfilesfactor", "aggregationmethod"});
  if (!sections) return tl::unexpected(sections.error());
  Schemas schemas;
  for (const IniSection& sec : *sections) {
    auto pattern = required(kFile, sec, "pattern");
    if (!pattern) return tl::unexpected(pattern.error());
    auto retentions = required(kFile, sec, "retentions");
    if (!retentions) return tl::unexpected(retentions.error());
    size_t ret_line = sec.keys.at("retentions").second;
    auto archives = parse_retentions(*retentions);
    if (!archives)
      return at_line(kFile, ret_line, "in [" + sec.name + "]: " + archives.error().message, archives.error().code);
    auto base = make_schema(sec.name, *pattern, *archives);
    if (!base)
      return at_line(kFile, sec.keys.at("pattern").second, "in [" + sec.name + "]: " + base.error().message,
                     base.error().code);
    bool inline_agg = sec.keys.count("xfilesfactor") || sec.keys.count("aggregationmethod");
    if (inline_agg) {
      AggregationRule own;
      if (auto ok = read_aggregation_keys(kFile, sec, own); !ok) return tl::unexpected(ok.error());
      base->agg = own.agg;
      base->x_files_factor = own.xff;
      schemas.add(std::move(*base));
      continue;
    }
    // One entry per aggregation rule, in order: the first entry that matches
    // has this section's retentions and the first matching aggregation rule.
    for (const AggregationRule& r : *rules) {
      StorageSchema s = *base;
      s.agg = r.agg;
      s.x_files_factor = r.xff;
      if (!r.pattern.empty()) {
        s.name += "+" + r.name;
        s.aggregation_pattern = r.pattern;
        s.aggregation_regex = compile(r.pattern).value();  // checked while parsing the rules
      }
      schemas.add(std::move(s));
    }
  }
  // Metrics no schema matches: Stele's default retentions, aggregation still
  // from the aggregation file.
  for (const AggregationRule& r : *rules) {
    if (r.pattern.empty()) break;
    StorageSchema s = default_schema();
    s.name += "+" + r.name;
    s.agg = r.agg;
    s.x_files_factor = r.xff;
    s.aggregation_pattern = r.pattern;
    s.aggregation_regex = compile(r.pattern).value();
    schemas.add(std::move(s));
  }
  return schemas;
}

// ---- reads ----

size_t choose_archive(const std::vector<Archive>& archives, int64_t now, int64_t from) {
  assert(!archives.empty());
  int64_t diff = now - from;
  for (size_t i = 0; i < archives.size(); ++i)
    if (archives[i].retention_s() >= diff) return i;
  return archives.size() - 1;
}

namespace {
// Python's t - (t % step): rounds toward -inf.
int64_t floor_to(int64_t t, int64_t step) {
  int64_t r = t % step;
  if (r < 0) r += step;
  return t - r;
}
}  // namespace

FetchWindow align(const Archive& archive, int64_t from, int64_t until) {
  int64_t step = archive.step_s;
  FetchWindow w{floor_to(from, step) + step, floor_to(until, step) + step, step};
  if (w.from == w.until) w.until += step;  // zero-length range: always include the next point
  return w;
}

Result<std::optional<FetchPlan>> plan_fetch(const std::vector<Archive>& archives, int64_t now,
                                            int64_t from, int64_t until) {
  assert(!archives.empty());
  if (from > until)
    return fail("invalid time interval: from time " + std::to_string(from) + " is after until time " +
                    std::to_string(until),
                400);
  int64_t oldest = now - archives.back().retention_s();
  if (from > now) return std::optional<FetchPlan>();     // wholly in the future
  if (until < oldest) return std::optional<FetchPlan>();  // wholly beyond retention
  from = std::max(from, oldest);
  until = std::min(until, now);
  size_t i = choose_archive(archives, now, from);
  return std::optional<FetchPlan>(FetchPlan{i, align(archives[i], from, until)});
}

}  // namespace stele::metrics
