// graphite-web 1.1.8's render/evaluator.py and the render/functions.py
// functions in the table, one C++ function each (fn_<name>), plus the
// helpers they share (functions/safe.py, aggfuncs.py, normalize(), the
// consolidating iterator of render/datalib.py's TimeSeries).
//
// How graphite's mutable TimeSeries map onto values here: graphite's
// functions mostly edit their argument series in place and return them; the
// evaluator owns every list it passes, so the C++ functions do the same.
// normalize() in graphite sets a valuesPerPoint on each series, which changes
// how it iterates (consolidated) but not its step or length; here that state
// is a Column (one series iterated with a valuesPerPoint), and asPercent,
// which reads it after several normalize() calls, keeps it per series (Ref).
//
// Where graphite-web fails (HTTP 500) or never ends, Stele answers 400:
//   - constantLine over a range under 2 seconds (step 0);
//   - summarize with an interval <= 0 (division by zero / endless loop), or
//     more than kMaxPoints buckets; timeShift with an empty shift;
//   - movingAverage with a negative window (graphite computes nonsense); a
//     window of more than kMaxPoints points counts as kMaxPoints;
//   - steps whose least common multiple overflows;
//   - a re-evaluation blow-up (nested movingAverage / timeShift evaluate
//     their first argument twice each): more than kMaxEvaluations nodes.
// Where graphite fails and the meaning is evident, Stele answers:
//   - asPercent with nodes producing a MISSING series before any normalize
//     (UnboundLocalError): the MISSING series keeps its own start/end/step;
//   - a name ending in ')' that does not parse even in part (aliasByNode,
//     groupByNode, asPercent nodes look for its first path): the name
//     itself is used; an empty name (graphite indexes name[-1]) likewise.
#include "metrics/render_eval.h"

#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <limits>
#include <map>
#include <optional>
#include <regex>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "metrics/render_format.h"

namespace stele::metrics {
namespace {

using SeriesList = std::vector<Series>;
constexpr double kNone = std::numeric_limits<double>::quiet_NaN();
constexpr int64_t kMaxPoints = 10'000'000;   // points one function may create per series
constexpr size_t kMaxEvaluations = 100'000;  // nodes evaluated per target, re-evaluations included

bool none(double v) { return std::isnan(v); }

// Python's a % b (the sign of b).
int64_t py_mod(int64_t a, int64_t b) {
  const int64_t r = a % b;
  return r != 0 && ((r < 0) != (b < 0)) ? r + b : r;
}

// How many of range(start, end, step) there are (step > 0).
int64_t range_len(int64_t start, int64_t end, int64_t step) {
  return end > start ? (end - start + step - 1) / step : 0;
}

// xff() of functions.py: at least one known value, and known/total >= xff.
bool xff_ok(double non_null, double total, double xff) {
  if (non_null == 0 || total == 0) return false;
  return non_null / total >= xff;
}

// --- tags (TimeSeries.__init__ and tags/utils.py TaggedSeries.parse_carbon) ---

bool looks_like_call(std::string_view name) {  // re.match('^[a-z]+[(].+[)]$', name, re.I)
  size_t i = 0;
  while (i < name.size() && std::isalpha(static_cast<unsigned char>(name[i]))) ++i;
  return i > 0 && name.size() >= i + 3 && name[i] == '(' && name.back() == ')' &&
         name.find('\n') == std::string_view::npos;
}

std::optional<std::map<std::string, std::string>> parse_carbon_tags(std::string_view name) {
  std::map<std::string, std::string> tags;
  size_t semi = name.find(';');
  std::string_view metric = name.substr(0, semi);
  while (semi != std::string_view::npos) {
    const size_t next = name.find(';', semi + 1);
    std::string_view seg = name.substr(semi + 1, next == std::string_view::npos ? next : next - semi - 1);
    const size_t eq = seg.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == seg.size()) return std::nullopt;
    std::string_view tag = seg.substr(0, eq), value = seg.substr(eq + 1);
    if (tag.find_first_of(";!^=") != std::string_view::npos || value.front() == '~') return std::nullopt;
    tags[std::string(tag)] = std::string(value);
    semi = next;
  }
  metric.remove_prefix(std::min(metric.find_first_not_of('~'), metric.size()));
  if (metric.empty()) return std::nullopt;
  tags["name"] = std::string(metric);
  return tags;
}

std::map<std::string, std::string> default_tags(const std::string& name) {
  if (!looks_like_call(name))
    if (auto parsed = parse_carbon_tags(name)) return *parsed;
  return {{"name", name}};
}

// TimeSeries(name, start, end, step, values, xFilesFactor=...): a new series.
Series make_series(std::string name, int64_t start, int64_t end, int64_t step, std::vector<double> values, double xff) {
  Series s;
  s.tags = default_tags(name);
  s.path_expression = name;
  s.name = std::move(name);
  s.start = start, s.end = end, s.step = step;
  s.values = std::move(values);
  s.x_files_factor = xff;
  return s;
}

// What `series.name = ...; series.pathExpression = series.name` and
// series.copy(name=...) both leave.
void rename(Series& s, std::string name) {
  s.name = std::move(name);
  s.path_expression = s.name;
}

// formatPathExpressions(): the distinct path expressions, in order, joined by ','.
template <class SeriesRange, class Get>
std::string format_path_expressions(const SeriesRange& list, Get get) {
  std::string out;
  std::unordered_set<std::string_view> seen;
  for (const auto& item : list) {
    const std::string& pe = get(item).path_expression;
    if (!seen.insert(pe).second) continue;
    if (!out.empty()) out += ',';
    out += pe;
  }
  return out;
}

// --- aggregation functions (functions/aggfuncs.py over functions/safe.py) ---

enum class AggFn : uint8_t { average, avg_zero, median, sum, min, max, diff, stddev, count, range, multiply, last };

std::optional<AggFn> agg_fn(std::string_view name) {
  static const std::pair<std::string_view, AggFn> kNames[] = {
      {"average", AggFn::average}, {"avg_zero", AggFn::avg_zero}, {"median", AggFn::median},
      {"sum", AggFn::sum},         {"min", AggFn::min},           {"max", AggFn::max},
      {"diff", AggFn::diff},       {"stddev", AggFn::stddev},     {"count", AggFn::count},
      {"range", AggFn::range},     {"multiply", AggFn::multiply}, {"last", AggFn::last},
      {"rangeOf", AggFn::range},   {"avg", AggFn::average},       {"total", AggFn::sum},
      {"current", AggFn::last}};
  for (const auto& [n, f] : kNames)
    if (n == name) return f;
  return std::nullopt;
}

// Python's sum() of the known values: left to right from 0.
double known_sum(std::span<const double> v, size_t* count = nullptr) {
  double sum = 0;
  size_t n = 0;
  for (double x : v)
    if (!none(x)) sum += x, ++n;
  if (count) *count = n;
  return sum;
}

double safe_median(std::span<const double> v, std::vector<double>& scratch) {
  scratch.clear();
  for (double x : v)
    if (!none(x)) scratch.push_back(x);
  if (scratch.empty()) return kNone;
  std::sort(scratch.begin(), scratch.end());
  const size_t mid = scratch.size() / 2;
  return scratch.size() % 2 == 0 ? (scratch[mid - 1] + scratch[mid]) / 2 : scratch[mid];
}

double safe_extreme(std::span<const double> v, bool want_max) {
  double best = kNone;
  for (double x : v)
    if (!none(x) && (none(best) || (want_max ? x > best : x < best))) best = x;
  return best;
}

double safe_stddev(std::span<const double> v) {
  size_t n = 0;
  const double sum = known_sum(v, &n);
  if (n == 0) return kNone;
  const double avg = sum / double(n);
  double sq = 0;
  for (double x : v)
    if (!none(x)) sq = sq + (x - avg) * (x - avg);
  return std::sqrt(sq / double(n));
}

double safe_multiply(std::span<const double> v) {
  if (v.empty()) return kNone;
  double product = v[0];
  for (size_t i = 0; i < v.size(); ++i) {
    if (none(v[i])) return kNone;
    if (i) product = product * v[i];
  }
  return product;
}

double safe_last(std::span<const double> v) {
  for (size_t i = v.size(); i-- > 0;)
    if (!none(v[i])) return v[i];
  return kNone;
}

// The aggregation function over one row or window; NaN for None.
double apply_agg(AggFn f, std::span<const double> v, std::vector<double>& scratch) {
  size_t n = 0;
  switch (f) {
    case AggFn::sum: {
      const double s = known_sum(v, &n);
      return n ? s : kNone;
    }
    case AggFn::average: {
      const double s = known_sum(v, &n);
      return n ? s / double(n) : kNone;
    }
    case AggFn::avg_zero: return v.empty() ? kNone : known_sum(v) / double(v.size());
    case AggFn::median: return safe_median(v, scratch);
    case AggFn::min: return safe_extreme(v, false);
    case AggFn::max: return safe_extreme(v, true);
    case AggFn::diff: {
      double s = 0;
      for (double x : v)
        if (!none(x)) s += n++ ? -x : x;
      return n ? s : kNone;
    }
    case AggFn::stddev: return safe_stddev(v);
    case AggFn::count: known_sum(v, &n); return double(n);
    case AggFn::range: {
      const double hi = safe_extreme(v, true), lo = safe_extreme(v, false);
      return none(hi) || none(lo) ? kNone : hi - lo;
    }
    case AggFn::multiply: return safe_multiply(v);
    case AggFn::last: return safe_last(v);
  }
  return kNone;
}

// --- consolidation: TimeSeries.__consolidatingGenerator ---

double consolidate_run(Aggregation how, std::span<const double> run, double xff, int64_t vpp) {
  size_t known = 0;
  double sum = 0, first_known = kNone;
  for (double x : run)
    if (!none(x)) sum += x, ++known, first_known = none(first_known) ? x : first_known;
  if (known == 0 || double(known) / double(vpp) < xff) return kNone;
  switch (how) {
    case Aggregation::sum: return sum;
    case Aggregation::avg_zero: return sum / double(run.size());
    case Aggregation::max: return safe_extreme(run, true);
    case Aggregation::min: return safe_extreme(run, false);
    case Aggregation::last: return safe_last(run);
    case Aggregation::absmax:  // graphite has no such consolidation (it raises); whisper's meaning
    case Aggregation::absmin: {
      double best = first_known;
      for (double x : run)
        if (!none(x) && (how == Aggregation::absmax ? std::fabs(x) > std::fabs(best) : std::fabs(x) < std::fabs(best)))
          best = x;
      return best;
    }
    case Aggregation::average: break;
  }
  return sum / double(known);
}

std::vector<double> consolidate_values(const Series& s, int64_t vpp) {
  std::vector<double> out;
  out.reserve(s.values.size() / size_t(vpp) + 1);
  for (size_t i = 0; i < s.values.size(); i += size_t(vpp)) {
    const size_t n = std::min(size_t(vpp), s.values.size() - i);
    out.push_back(
        consolidate_run(s.consolidation, std::span<const double>(s.values).subspan(i, n), s.x_files_factor, vpp));
  }
  return out;
}

// One series as graphite iterates it with a valuesPerPoint: its own values,
// or consolidated ones.
class Column {
 public:
  Column(const Series& s, int64_t vpp) : src_(&s.values) {
    if (vpp > 1) owned_ = consolidate_values(s, vpp), src_ = nullptr;
  }
  Column(Column&& o) noexcept : src_(o.src_), owned_(std::move(o.owned_)) {}
  const std::vector<double>& values() const { return src_ ? *src_ : owned_; }
  size_t size() const { return values().size(); }
  double at(size_t i) const { return i < size() ? values()[i] : kNone; }  // izip_longest's None

 private:
  const std::vector<double>* src_;
  std::vector<double> owned_;
};

// --- normalize() ---

struct Norm {
  int64_t start = 0, end = 0, step = 1;
};

std::optional<int64_t> lcm(int64_t a, int64_t b) {
  if (a == b) return a;
  if (a < b) std::swap(a, b);
  int64_t x = a, y = b;
  while (y != 0) x = std::exchange(y, x % y);
  int64_t out = 0;
  if (x == 0 || __builtin_mul_overflow(a / x, b, &out)) return std::nullopt;
  return out;
}

// A series and the valuesPerPoint graphite's normalize() last gave it.
struct Ref {
  const Series* s = nullptr;
  int64_t vpp = 1;
  Column column() const { return Column(*s, vpp); }
};

// normalize([refs]): the lcm step, each valuesPerPoint, the outer start and
// an end trimmed to whole steps. `refs` is non-empty.
std::optional<Norm> normalize(std::span<Ref* const> refs) {
  Norm n;
  n.step = refs[0]->s->step;
  for (const Ref* r : refs) {
    auto l = r->s->step > 0 ? lcm(n.step, r->s->step) : std::nullopt;
    if (!l) return std::nullopt;
    n.step = *l;
  }
  n.start = refs[0]->s->start, n.end = refs[0]->s->end;
  for (Ref* r : refs) {
    r->vpp = n.step / r->s->step;
    n.start = std::min(n.start, r->s->start), n.end = std::max(n.end, r->s->end);
  }
  n.end -= py_mod(n.end - n.start, n.step);
  return n;
}

std::vector<Ref> refs_of(const SeriesList& list) {
  std::vector<Ref> refs;
  refs.reserve(list.size());
  for (const Series& s : list) refs.push_back(Ref{&s, 1});
  return refs;
}

std::vector<Ref*> pointers(std::vector<Ref>& refs) {
  std::vector<Ref*> out;
  out.reserve(refs.size());
  for (Ref& r : refs) out.push_back(&r);
  return out;
}

std::vector<Column> columns(std::span<Ref* const> refs) {
  std::vector<Column> cols;
  cols.reserve(refs.size());
  for (const Ref* r : refs) cols.push_back(r->column());
  return cols;
}

size_t longest(const std::vector<Column>& cols) {
  size_t n = 0;
  for (const Column& c : cols) n = std::max(n, c.size());
  return n;
}

// izip_longest(*cols) rows through `f(row)`.
template <class F>
std::vector<double> by_row(const std::vector<Column>& cols, F f) {
  const size_t n = longest(cols);
  std::vector<double> out(n), row(cols.size());
  for (size_t i = 0; i < n; ++i) {
    for (size_t k = 0; k < cols.size(); ++k) row[k] = cols[k].at(i);
    out[i] = f(std::span<const double>(row));
  }
  return out;
}

double safe_div(double a, double b) { return none(a) || none(b) || b == 0 ? kNone : a / b; }
double percent(double v, double total) { return safe_div(v, total) * 100.0; }

// --- nodes and tags as keys: getNodeOrTag() and aggKey() ---

// graphite parses a name with parseString, which accepts the longest
// leading expression and ignores the rest: a call up to its closing
// parenthesis, or else the path before the first character no path holds.
std::string_view leading_expression(std::string_view name) {
  const size_t open = name.find('(');
  if (open == std::string_view::npos) return name;
  int depth = 0;
  char quote = 0;
  for (size_t i = open; i < name.size(); ++i) {
    const char c = name[i];
    if (quote) {
      i += c == '\\';  // an escaped character
      quote = c == quote ? 0 : quote;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '(' || c == ')') {
      depth += c == '(' ? 1 : -1;
      if (depth == 0) {
        if (parse_target(name.substr(0, i + 1))) return name.substr(0, i + 1);
        break;
      }
    }
  }
  return name.substr(0, name.find_first_of("(),'\"\\| \t"));
}

// _getFirstPathExpression(): the path reached by following first arguments.
std::optional<std::string> first_path_expression(std::string_view name) {
  auto e = parse_target(name);
  if (!e) e = parse_target(leading_expression(name));
  if (!e) return std::nullopt;
  uint32_t i = e->root;
  while (i != kNoNode) {
    const Node& n = e->node(i);
    if (n.kind == NodeKind::kPath) return path_pattern(e->text_of(n));
    if (n.kind != NodeKind::kCall) return std::nullopt;
    i = kNoNode;
    for (uint32_t a : e->args(n))
      if (!e->is_keyword(e->node(a))) {
        i = a;
        break;
      }
  }
  return std::nullopt;
}

std::string node_or_tag(const Series& s, const BoundArg& n, const std::optional<std::string>& path) {
  std::string key = n.text;
  if (n.kind == ValueKind::kNumber) {
    std::string_view p = path ? std::string_view(*path) : std::string_view(s.name);
    p = p.substr(0, p.find(';'));
    std::vector<std::string_view> parts;
    for (size_t from = 0;;) {
      const size_t dot = p.find('.', from);
      parts.push_back(p.substr(from, dot == std::string_view::npos ? dot : dot - from));
      if (dot == std::string_view::npos) break;
      from = dot + 1;
    }
    const double size = double(parts.size());
    const double idx = n.number < 0 ? n.number + size : n.number;
    if (idx >= 0 && idx < size) return std::string(parts[size_t(idx)]);
    key = python_number_str(n.number, true);
  }
  auto it = s.tags.find(key);
  return it == s.tags.end() ? std::string() : it->second;
}

std::string agg_key(const Series& s, std::span<const BoundArg* const> nodes) {
  std::optional<std::string> path;
  if (!s.name.empty() && s.name.back() == ')') path = first_path_expression(s.name);
  std::string key;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (i) key += '.';
    key += node_or_tag(s, *nodes[i], path);
  }
  return key;
}

// --- aliasSub: Python's re.sub over std::regex ---

struct PyRegex {
  std::regex re;
  unsigned groups = 0;
  std::map<std::string, unsigned> names;
};

// A Python '{' that starts no quantifier ("{", "{}", "{x") is a literal.
std::optional<std::string> py_quantifier(std::string_view p, size_t& i) {
  size_t j = i + 1;
  std::string lo, hi;
  while (j < p.size() && std::isdigit(static_cast<unsigned char>(p[j]))) lo += p[j++];
  bool comma = j < p.size() && p[j] == ',';
  if (comma)
    for (++j; j < p.size() && std::isdigit(static_cast<unsigned char>(p[j]));) hi += p[j++];
  if (j >= p.size() || p[j] != '}' || (!comma && lo.empty())) return std::nullopt;
  i = j + 1;
  return "{" + (lo.empty() ? std::string("0") : lo) + (comma ? "," + hi : std::string()) + "}";
}

Result<PyRegex> compile_py_regex(std::string_view p) {
  PyRegex out;
  std::string ecma;
  auto flags = std::regex::ECMAScript;
  size_t i = 0;
  if (p.starts_with("(?i)")) flags |= std::regex::icase, i = 4;
  bool in_class = false;
  while (i < p.size()) {
    const char c = p[i];
    if (c == '\\') {
      if (i + 1 >= p.size()) return fail("bad escape (end of pattern)", 400);
      const char n = p[i + 1];
      ecma += !in_class && n == 'A' ? std::string("^") : !in_class && n == 'Z' ? std::string("$") : std::string{c, n};
      i += 2;
      continue;
    }
    if (in_class) {
      ecma += c == '[' ? std::string("\\[") : std::string(1, c);
      in_class = c != ']';
      ++i;
      continue;
    }
    if (c == '[') {
      ecma += '[', in_class = true, ++i;
      if (i < p.size() && p[i] == '^') ecma += '^', ++i;
      if (i < p.size() && p[i] == ']') ecma += "\\]", ++i;
      continue;
    }
    if (c == '{') {
      if (auto q = py_quantifier(p, i)) {
        ecma += *q;
        continue;
      }
      ecma += "\\{", ++i;
      continue;
    }
    if (c == '}') {
      ecma += "\\}", ++i;
      continue;
    }
    if (c != '(') {
      ecma += c, ++i;
      continue;
    }
    std::string_view rest = p.substr(i);
    if (rest.starts_with("(?P<")) {
      const size_t close = rest.find('>');
      if (close == std::string_view::npos) return fail("missing > in group name", 400);
      out.names[std::string(rest.substr(4, close - 4))] = ++out.groups;
      ecma += '(', i += close + 1;
    } else if (rest.starts_with("(?P=")) {
      const size_t close = rest.find(')');
      auto it =
          close == std::string_view::npos ? out.names.end() : out.names.find(std::string(rest.substr(4, close - 4)));
      if (it == out.names.end()) return fail("unknown group name in (?P=...)", 400);
      ecma += "(?:\\" + std::to_string(it->second) + ")", i += close + 1;
    } else if (rest.starts_with("(?:") || rest.starts_with("(?=") || rest.starts_with("(?!")) {
      ecma += rest.substr(0, 3), i += 3;
    } else if (rest.starts_with("(?")) {
      return fail("unsupported group '" + std::string(rest.substr(0, 4)) + "' (no lookbehind or inline flags)", 400);
    } else {
      ++out.groups, ecma += '(', ++i;
    }
  }
  try {
    out.re = std::regex(ecma, flags);
  } catch (const std::regex_error& e) {
    return fail(e.what(), 400);
  }
  return out;
}

// A replacement template: literal text and group references (-1: none).
struct TemplatePiece {
  std::string text;
  int group = -1;
};

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else {
    out += char(0xc0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3f));
  }
}

bool is_octal(char c) { return c >= '0' && c <= '7'; }

// sre_parse.parse_template: \1..\99, \g<n>, \g<name>, \0 and 3-digit octal,
// \n-style escapes; other letters are errors, other escapes stay as written.
Result<std::vector<TemplatePiece>> parse_py_template(std::string_view t, const PyRegex& re) {
  std::vector<TemplatePiece> out(1);
  auto group = [&](unsigned g) -> Result<void> {
    if (g > re.groups) return fail("invalid group reference " + std::to_string(g), 400);
    out.push_back(TemplatePiece{"", int(g)});
    out.emplace_back();
    return {};
  };
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] != '\\') {
      out.back().text += t[i];
      continue;
    }
    if (++i >= t.size()) return fail("bad escape (end of pattern)", 400);
    const char c = t[i];
    if (c == 'g') {
      const size_t close = t.find('>', i);
      if (i + 1 >= t.size() || t[i + 1] != '<' || close == std::string_view::npos)
        return fail("missing group name in \\g<...>", 400);
      const std::string name(t.substr(i + 2, close - i - 2));
      i = close;
      if (!name.empty() &&
          std::all_of(name.begin(), name.end(), [](char d) { return std::isdigit((unsigned char)d); })) {
        if (name.size() > 9) return fail("invalid group reference " + name, 400);
        if (auto r = group(unsigned(std::stoul(name))); !r) return fail(r.error());
        continue;
      }
      auto it = re.names.find(name);
      if (it == re.names.end()) return fail("unknown group name '" + name + "'", 400);
      if (auto r = group(it->second); !r) return fail(r.error());
    } else if (c == '0') {
      unsigned v = 0;
      for (int k = 0; k < 2 && i + 1 < t.size() && is_octal(t[i + 1]); ++k) v = v * 8 + unsigned(t[++i] - '0');
      append_utf8(out.back().text, v & 0xff);
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      unsigned g = unsigned(c - '0');
      if (i + 1 < t.size() && std::isdigit(static_cast<unsigned char>(t[i + 1]))) {
        const char d = t[++i];
        if (is_octal(c) && is_octal(d) && i + 1 < t.size() && is_octal(t[i + 1])) {
          const unsigned v = unsigned(c - '0') * 64 + unsigned(d - '0') * 8 + unsigned(t[++i] - '0');
          if (v > 0377) return fail("octal escape value outside of range 0-0o377", 400);
          append_utf8(out.back().text, v);
          continue;
        }
        g = g * 10 + unsigned(d - '0');
      }
      if (auto r = group(g); !r) return fail(r.error());
    } else {
      static const std::string_view kFrom = "abfnrtv\\", kTo = "\a\b\f\n\r\t\v\\";
      if (size_t k = kFrom.find(c); k != std::string_view::npos) {
        out.back().text += kTo[k];
      } else if (std::isalpha(static_cast<unsigned char>(c)) && static_cast<unsigned char>(c) < 0x80) {
        return fail(std::string("bad escape \\") + c, 400);
      } else {
        out.back().text += '\\';
        out.back().text += c;
      }
    }
  }
  return out;
}

void expand(std::string& out, const std::vector<TemplatePiece>& pieces, const std::cmatch& m) {
  for (const TemplatePiece& p : pieces) {
    if (p.group < 0) {
      out += p.text;
    } else if (m[size_t(p.group)].matched) {
      out.append(m[size_t(p.group)].first, m[size_t(p.group)].second);
    }
  }
}

// re.sub(pattern, template, s): every non-overlapping match, an empty match
// allowed right after a non-empty one but never twice at one position.
std::string py_re_sub(const PyRegex& re, const std::vector<TemplatePiece>& pieces, std::string_view s) {
  namespace rc = std::regex_constants;
  const char *b = s.data(), *e = s.data() + s.size();
  std::string out;
  std::cmatch m;
  size_t pos = 0, copied = 0;
  bool must_advance = false;
  while (pos <= s.size()) {
    const auto prev = pos > 0 ? rc::match_prev_avail : rc::match_default;
    bool found;
    if (must_advance) {
      found = std::regex_search(b + pos, e, m, re.re, prev | rc::match_not_null | rc::match_continuous);
      if (!found && pos < s.size()) found = std::regex_search(b + pos + 1, e, m, re.re, rc::match_prev_avail);
    } else {
      found = std::regex_search(b + pos, e, m, re.re, prev);
    }
    if (!found) break;
    const size_t mb = size_t(m[0].first - b), me = size_t(m[0].second - b);
    out.append(s.substr(copied, mb - copied));
    expand(out, pieces, m);
    copied = me;
    must_advance = mb == me;
    pos = me;
  }
  out.append(s.substr(copied));
  return out;
}

// --- the evaluator ---

class Evaluator;

// One function call being evaluated: its bound arguments, evaluated on demand.
class Call {
 public:
  Call(Evaluator& ev, uint32_t node, const RenderContext& ctx);

  std::string_view fn() const { return fn_; }
  const RenderContext& ctx() const { return ctx_; }
  // The value of parameter `param`, its default included; nullptr for None.
  const BoundArg* arg(size_t param) const;
  // Every value of the multiple parameter `param`.
  std::vector<const BoundArg*> rest(size_t param) const;
  // Parameter `param` evaluated as a series list (empty when None), every value
  // of a multiple parameter concatenated.
  Result<SeriesList> series(size_t param) const;
  // graphite's requestContext['args'][0] evaluated again in another context.
  Result<SeriesList> first_again(const RenderContext& ctx) const;
  // str() of a number argument as graphite holds it (an int literal stays an int).
  std::string literal_str(const BoundArg& a) const;
  tl::unexpected<Error> error(const std::string& message) const { return fail(std::string(fn_) + ": " + message, 400); }

 private:
  Evaluator& ev_;
  const RenderContext& ctx_;
  std::string_view fn_;
  std::span<const BoundArg> args_;
};

class Evaluator {
 public:
  Evaluator(const Expr& e, const Binding& b, const FetchFn& fetch) : expr(e), binding(b), fetch_(fetch) {}

  Result<SeriesList> eval(uint32_t node, const RenderContext& ctx);

  const Expr& expr;
  const Binding& binding;

 private:
  Result<SeriesList> fetch(const Node& n, const RenderContext& ctx);

  const FetchFn& fetch_;
  size_t evaluations_ = 0;
};

Call::Call(Evaluator& ev, uint32_t node, const RenderContext& ctx)
    : ev_(ev), ctx_(ctx), fn_(ev.expr.text_of(ev.expr.node(node))), args_(ev.binding.args_of(node)) {}

const BoundArg* Call::arg(size_t param) const {
  for (const BoundArg& a : args_)
    if (a.param == param) return a.kind == ValueKind::kNone ? nullptr : &a;
  return nullptr;
}

std::vector<const BoundArg*> Call::rest(size_t param) const {
  std::vector<const BoundArg*> out;
  for (const BoundArg& a : args_)
    if (a.param == param && a.kind != ValueKind::kNone) out.push_back(&a);
  return out;
}

Result<SeriesList> Call::series(size_t param) const {
  SeriesList out;
  for (const BoundArg& a : args_) {
    if (a.param != param || a.kind != ValueKind::kSeries) continue;
    auto got = ev_.eval(a.node, ctx_);
    if (!got) return got;
    if (out.empty()) {
      out = std::move(*got);
    } else {
      out.insert(out.end(), std::make_move_iterator(got->begin()), std::make_move_iterator(got->end()));
    }
  }
  return out;
}

Result<SeriesList> Call::first_again(const RenderContext& ctx) const {
  for (const BoundArg& a : args_)
    if (a.param == 0 && a.kind == ValueKind::kSeries) return ev_.eval(a.node, ctx);
  return SeriesList{};
}

std::string Call::literal_str(const BoundArg& a) const {
  const bool integer =
      a.node != kNoNode && ev_.expr.node(a.node).kind == NodeKind::kNumber && ev_.expr.node(a.node).integer;
  return python_number_str(a.number, integer);
}

// --- Combine: aggregate() and the functions built on it ---

// aggregate(requestContext, seriesList, func): `func` names the result
// ("<func>Series(...)") and its aggregatedBy tag.
Result<SeriesList> aggregate(const Call& c, const SeriesList& list, std::string_view func) {
  if (list.empty()) return SeriesList{};
  const AggFn f = agg_fn(func).value_or(AggFn::average);
  std::vector<Ref> refs = refs_of(list);
  std::vector<Ref*> ptrs = pointers(refs);
  const auto n = normalize(ptrs);
  if (!n) return c.error("the series' steps have no usable common multiple");
  const double xff = c.ctx().x_files_factor;
  std::vector<double> scratch;
  const std::vector<Column> cols = columns(ptrs);
  std::vector<double> values = by_row(cols, [&](std::span<const double> row) {
    size_t known = 0;
    for (double v : row) known += !none(v);
    return xff_ok(double(known), double(row.size()), xff) ? apply_agg(f, row, scratch) : kNone;
  });
  std::string name = std::string(func) + "Series(" +
                     format_path_expressions(list, [](const Series& s) -> const Series& { return s; }) + ")";
  std::map<std::string, std::string> tags = list[0].tags;
  for (const Series& s : list)
    std::erase_if(tags, [&](const auto& kv) {
      auto it = s.tags.find(kv.first);
      return it == s.tags.end() || it->second != kv.second;
    });
  Series out = make_series(name, n->start, n->end, n->step, std::move(values), xff);
  tags.emplace("name", name);
  tags["aggregatedBy"] = std::string(func);
  out.tags = std::move(tags);
  return SeriesList{std::move(out)};
}

Result<SeriesList> aggregate_all(const Call& c, std::string_view func) {
  auto list = c.series(0);
  if (!list) return list;
  return aggregate(c, *list, func);
}

Result<SeriesList> fn_sumSeries(Call& c) { return aggregate_all(c, "sum"); }
Result<SeriesList> fn_averageSeries(Call& c) { return aggregate_all(c, "average"); }
Result<SeriesList> fn_maxSeries(Call& c) { return aggregate_all(c, "max"); }
Result<SeriesList> fn_minSeries(Call& c) { return aggregate_all(c, "min"); }

Result<SeriesList> fn_divideSeries(Call& c) {
  auto dividends = c.series(0);
  if (!dividends) return dividends;
  auto divisors = c.series(1);
  if (!divisors) return divisors;
  if (divisors->empty()) {
    for (Series& s : *dividends) {
      rename(s, "divideSeries(" + s.name + ",MISSING)");
      std::fill(s.values.begin(), s.values.end(), kNone);
    }
    return dividends;
  }
  if (divisors->size() > 1)
    return c.error("second argument must reference exactly 1 series (got " + std::to_string(divisors->size()) + ")");
  SeriesList out;
  Ref divisor{&divisors->front()};
  for (const Series& s : *dividends) {
    Ref dividend{&s};
    Ref* pair[] = {&dividend, &divisor};
    const auto n = normalize(pair);
    if (!n) return c.error("the series' steps have no usable common multiple");
    const Column a = dividend.column(), b = divisor.column();
    std::vector<double> values(std::max(a.size(), b.size()));
    for (size_t i = 0; i < values.size(); ++i) values[i] = safe_div(a.at(i), b.at(i));
    out.push_back(make_series("divideSeries(" + s.name + "," + divisor.s->name + ")", n->start, n->end, n->step,
                              std::move(values), c.ctx().x_files_factor));
  }
  return out;
}

// asPercent(seriesList, total=None, *nodes). graphite's normalize() calls
// leave valuesPerPoint on the series they touch, and later loops iterate
// them that way, so each series here is a Ref carrying it.
class AsPercent {
 public:
  AsPercent(const Call& c, SeriesList& list) : c_(c), list_(list), refs_(refs_of(list)) {}

  // total: nullptr (None), a series list, or a number (total_number).
  Result<SeriesList> run(const SeriesList* total, const BoundArg* total_number,
                         const std::vector<const BoundArg*>& nodes) {
    if (list_.empty()) return SeriesList{};                 // normalize() raises NormalizeEmptyResultError
    if (!normalize(pointers(refs_))) return steps_error();  // graphite keeps no start/end/step from this one
    if (!nodes.empty()) {
      if (total_number) return c_.error("total must be None or a seriesList");
      return by_nodes(total, nodes);
    }
    return plain(total, total_number);
  }

 private:
  tl::unexpected<Error> steps_error() const { return c_.error("the series' steps have no usable common multiple"); }

  bool normalize_refs(const std::vector<Ref*>& refs) {
    auto n = normalize(refs);
    if (n) last_ = n;
    return n.has_value();
  }

  Series result(std::string name, const Norm& n, std::vector<double> values) const {
    return make_series(std::move(name), n.start, n.end, n.step, std::move(values), c_.ctx().x_files_factor);
  }

  static std::vector<double> percents(const Column& a, const std::vector<double>& totals) {
    std::vector<double> out(std::max(a.size(), totals.size()));
    for (size_t i = 0; i < out.size(); ++i) out[i] = percent(a.at(i), i < totals.size() ? totals[i] : kNone);
    return out;
  }

  // A pair normalised together, then divided point by point.
  Result<Series> pair(Ref& a, Ref& b, std::string name) {
    if (!normalize_refs({&a, &b})) return steps_error();
    return result(std::move(name), *last_, percents(a.column(), b.column().values()));
  }

  Result<SeriesList> plain(const SeriesList* total, const BoundArg* number) {
    std::vector<double> totals;
    std::string total_text;
    std::vector<Ref> total_refs = total ? refs_of(*total) : std::vector<Ref>{};
    if (!total && !number) {
      const std::vector<Column> cols = columns(pointers(refs_));
      totals = by_row(cols, [](std::span<const double> row) {
        size_t n = 0;
        const double s = known_sum(row, &n);
        return n ? s : kNone;
      });
      total_text =
          "sumSeries(" + format_path_expressions(refs_, [](const Ref& r) -> const Series& { return *r.s; }) + ")";
    } else if (total) {
      if (total->size() != 1 && total->size() != list_.size())
        return c_.error(
            "second argument must be missing, a single digit, reference exactly 1 series or reference "
            "the same number of series as the first argument");
      if (total->size() == 1) {
        std::vector<Ref*> all = pointers(refs_);
        all.push_back(&total_refs[0]);
        if (!normalize_refs(all)) return steps_error();
        totals = total_refs[0].column().values();
        total_text = total->front().name;
      }
    } else {
      totals.assign(list_.front().values.size(), number->number);
      total_text = c_.literal_str(*number);
    }
    if (total && total->size() == list_.size()) return matched(total_refs);
    SeriesList out;
    for (const Ref& r : refs_) {
      const Series& s = *r.s;
      out.push_back(
          make_series("asPercent(" + s.name + "," + (total_text.empty() ? s.path_expression : total_text) + ")",
                      s.start, s.end, s.step, percents(r.column(), totals), c_.ctx().x_files_factor));
    }
    return out;
  }

  // matchSeries(): both lists sorted by name, paired in order.
  Result<SeriesList> matched(std::vector<Ref>& totals) {
    auto by_name = [](std::vector<Ref*> v) {
      std::stable_sort(v.begin(), v.end(), [](const Ref* a, const Ref* b) { return a->s->name < b->s->name; });
      return v;
    };
    const std::vector<Ref*> a = by_name(pointers(refs_)), b = by_name(pointers(totals));
    SeriesList out;
    for (size_t i = 0; i < a.size(); ++i) {
      auto s = pair(*a[i], *b[i], "asPercent(" + a[i]->s->name + "," + b[i]->s->name + ")");
      if (!s) return fail(s.error());
      out.push_back(std::move(*s));
    }
    return out;
  }

  // A group's total: the series itself, or a new sumSeries of the group.
  Result<Ref*> group_total(const std::vector<Ref*>& group) {
    if (group.size() == 1) return group[0];
    if (!normalize_refs(group)) return steps_error();
    std::vector<double> sums = by_row(columns(group), [](std::span<const double> row) {
      size_t n = 0;
      const double s = known_sum(row, &n);
      return n ? s : kNone;
    });
    const std::string name =
        "sumSeries(" + format_path_expressions(group, [](const Ref* r) -> const Series& { return *r->s; }) + ")";
    owned_.push_back(result(name, *last_, std::move(sums)));
    owned_refs_.push_back(Ref{&owned_.back()});
    return &owned_refs_.back();
  }

  using Groups = std::unordered_map<std::string, std::vector<Ref*>>;

  Result<SeriesList> by_nodes(const SeriesList* total, const std::vector<const BoundArg*>& nodes) {
    std::vector<std::string> keys;
    Groups meta, total_groups;
    std::vector<std::string> total_keys;
    for (Ref& r : refs_) {
      auto& g = meta[agg_key(*r.s, nodes)];
      if (g.empty()) keys.push_back(agg_key(*r.s, nodes));
      g.push_back(&r);
    }
    std::vector<Ref> total_refs = total ? refs_of(*total) : std::vector<Ref>{};
    for (Ref& r : total_refs) {
      const std::string key = agg_key(*r.s, nodes);
      auto& g = total_groups[key];
      if (g.empty()) total_keys.push_back(key);
      if (g.empty() && !meta.count(key)) keys.push_back(key);
      g.push_back(&r);
    }
    std::unordered_map<std::string, Ref*> totals;
    for (const std::string& key : total ? total_keys : keys) {
      auto t = group_total(total ? total_groups[key] : meta[key]);
      if (!t) return fail(t.error());
      totals[key] = *t;
    }
    return results(keys, meta, totals);
  }

  Result<SeriesList> results(const std::vector<std::string>& keys, Groups& meta,
                             std::unordered_map<std::string, Ref*>& totals) {
    SeriesList out;
    auto missing = [&](const Ref& r, std::string name) {
      const Norm own{r.s->start, r.s->end, r.s->step};
      out.push_back(result(std::move(name), last_.value_or(own), std::vector<double>(r.column().size(), kNone)));
    };
    for (const std::string& key : keys) {
      auto t = totals.find(key);
      auto m = meta.find(key);
      if (m == meta.end()) {
        missing(*t->second, "asPercent(MISSING," + t->second->s->name + ")");
        continue;
      }
      for (Ref* r : m->second) {
        if (t == totals.end()) {
          missing(*r, "asPercent(" + r->s->name + ",MISSING)");
          continue;
        }
        auto s = pair(*r, *t->second, "asPercent(" + r->s->name + "," + t->second->s->name + ")");
        if (!s) return fail(s.error());
        out.push_back(std::move(*s));
      }
    }
    return out;
  }

  const Call& c_;
  SeriesList& list_;
  std::vector<Ref> refs_;
  std::optional<Norm> last_;  // the start/end/step graphite's last normalize() left in its locals
  std::deque<Series> owned_;
  std::deque<Ref> owned_refs_;
};

Result<SeriesList> fn_asPercent(Call& c) {
  auto list = c.series(0);
  if (!list) return list;
  const BoundArg* total = c.arg(1);
  SeriesList total_list;
  if (total && total->kind == ValueKind::kSeries) {
    auto t = c.series(1);
    if (!t) return t;
    total_list = std::move(*t);
  }
  const bool is_list = total && total->kind == ValueKind::kSeries;
  return AsPercent(c, *list).run(is_list ? &total_list : nullptr, is_list ? nullptr : total, c.rest(2));
}

// groupByNode -> groupByNodes(seriesList, callback, nodeNum): callbacks that
// are series functions (SeriesFunctions: sum, avg, sumSeries, averageSeries,
// maxSeries, minSeries, asPercent) run as such, the rest through aggregate().
Result<SeriesList> fn_groupByNode(Call& c) {
  auto list = c.series(0);
  if (!list) return list;
  const std::vector<const BoundArg*> nodes = {c.arg(1)};
  const std::string callback = c.arg(2)->text;
  std::vector<std::string> keys;
  std::unordered_map<std::string, SeriesList> groups;
  for (Series& s : *list) {
    std::string key = agg_key(s, nodes);
    auto& g = groups[key];
    if (g.empty()) keys.push_back(key);
    g.push_back(std::move(s));
  }
  static const std::map<std::string_view, std::string_view> kSeriesFunctions = {
      {"sum", "sum"},       {"sumSeries", "sum"}, {"avg", "average"}, {"averageSeries", "average"},
      {"maxSeries", "max"}, {"minSeries", "min"}};
  SeriesList out;
  for (const std::string& key : keys) {
    SeriesList& group = groups[key];
    auto it = kSeriesFunctions.find(callback);
    auto r = callback == "asPercent" ? AsPercent(c, group).run(nullptr, nullptr, {})
                                     : aggregate(c, group, it != kSeriesFunctions.end() ? it->second : callback);
    if (!r) return r;
    out.push_back(std::move(r->front()));
    out.back().name = key;
  }
  return out;
}

// --- Filter Series ---

// highest(seriesList, n, func): a stable sort by func's value, highest first
// (None lowest), then seriesList[:n].
Result<SeriesList> highest(Call& c, AggFn f) {
  auto list = c.series(0);
  if (!list) return list;
  std::vector<double> scratch;
  std::vector<std::pair<double, size_t>> keyed;
  for (size_t i = 0; i < list->size(); ++i) {
    const double k = apply_agg(f, (*list)[i].values, scratch);
    keyed.emplace_back(none(k) ? -INFINITY : k, i);
  }
  std::stable_sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  const double n = c.arg(1)->number, size = double(list->size());
  const size_t keep = size_t(std::clamp(n < 0 ? size + n : n, 0.0, size));
  SeriesList out;
  for (size_t i = 0; i < keep; ++i) out.push_back(std::move((*list)[keyed[i].second]));
  return out;
}

Result<SeriesList> fn_highestAverage(Call& c) { return highest(c, AggFn::average); }
Result<SeriesList> fn_highestCurrent(Call& c) { return highest(c, AggFn::last); }

// --- Alias ---

Result<SeriesList> fn_alias(Call& c) {
  auto list = c.series(0);
  if (!list) return list;
  for (Series& s : *list) s.name = c.arg(1)->text;
  return list;
}

Result<SeriesList> fn_aliasByNode(Call& c) {
  auto list = c.series(0);
  if (!list) return list;
  const std::vector<const BoundArg*> nodes = c.rest(1);
  for (Series& s : *list) s.name = agg_key(s, nodes);
  return list;
}

Result<SeriesList> fn_aliasSub(Call& c) {
  auto list = c.series(0);
  if (!list) return list;
  auto re = compile_py_regex(c.arg(1)->text);
  if (!re) return c.error("invalid regular expression '" + c.arg(1)->text + "': " + re.error().message);
  auto pieces = parse_py_template(c.arg(2)->text, *re);
  if (!pieces) return c.error("invalid replacement '" + c.arg(2)->text + "': " + pieces.error().message);
  try {
    for (Series& s : *list) s.name = py_re_sub(*re, *pieces, s.name);
  } catch (const std::regex_error& e) {  // std::regex gives up on pathological input
    return c.error(std::string("regular expression failed: ") + e.what());
  }
  return list;
}

// --- Transform: point by point ---

Result<SeriesList> fn_scale(Call& c) {
  auto list = c.series(0);
  if (!list) return list;
  const double factor = c.arg(1)->number;
  for (Series& s : *list) {
    s.tags["scale"] = python_float_repr(factor);
    rename(s, "scale(" + s.name + "," + python_percent_g(factor) + ")");
    for (double& v : s.values) v = v * factor;  // None stays NaN
  }
  return list;
}

Result<SeriesList> fn_offset(Call& c) {
  auto list = c.series(0);
  if (!list) return list;
  const double factor = c.arg(1)->number;
  for (Series& s : *list) {
    s.tags["offset"] = python_float_repr(factor);
    rename(s, "offset(" + s.name + "," + python_percent_g(factor) + ")");
    for (double& v : s.values)
      if (!none(v)) v = v + factor;
  }
  return list;
}

Result<SeriesList> fn_removeBelowValue(Call& c) {
  auto list = c.series(0);
  if (!list) return list;
  const double n = c.arg(1)->number;
  for (Series& s : *list) {
    rename(s, "removeBelowValue(" + s.name + ", " + python_percent_g(n) + ")");
    for (double& v : s.values)
      if (none(v) || v < n) v = kNone;
  }
  return list;
}

Result<SeriesList> fn_derivative(Call& c) {
  auto list = c.series(0);
  if (!list) return list;
  for (Series& s : *list) {
    double prev = kNone;
    for (double& v : s.values) {
      const double cur = v;
      v = none(prev) || none(cur) ? kNone : cur - prev;
      prev = cur;
    }
    s.tags["derivative"] = "1";
    rename(s, "derivative(" + s.name + ")");
  }
  return list;
}

// _nonNegativeDelta(val, prev, maxValue, minValue): the delta, and the next prev.
std::pair<double, double> non_negative_delta(double val, double prev, const BoundArg* max, const BoundArg* min) {
  if (max && !none(val) && val > max->number) return {kNone, kNone};
  if (min && !none(val) && val < min->number) return {kNone, kNone};
  if (none(prev) || none(val)) return {kNone, val};
  if (val >= prev) return {val - prev, val};
  if (max) return {max->number + 1 + val - prev - (min ? min->number : 0), val};
  if (min) return {val - min->number, val};
  return {kNone, val};
}

// round(x, 6) in Python: correctly rounded to 6 decimals, half to even.
double round6(double x) {
  if (!std::isfinite(x)) return x;
  char buf[400];
  snprintf(buf, sizeof buf, "%.6f", x);
  return std::strtod(buf, nullptr);
}

Result<SeriesList> non_negative(Call& c, bool per_second) {
  auto list = c.series(0);
  if (!list) return list;
  const BoundArg *max = c.arg(1), *min = c.arg(2);
  for (Series& s : *list) {
    double prev = kNone;
    for (double& v : s.values) {
      auto [delta, next] = non_negative_delta(v, prev, max, min);
      prev = next;
      v = per_second && !none(delta) ? round6(delta / double(s.step)) : delta;
    }
    const std::string fn(c.fn());
    s.tags[fn] = "1";
    rename(s, fn + "(" + s.name + ")");
  }
  return list;
}

Result<SeriesList> fn_nonNegativeDerivative(Call& c) { return non_negative(c, false); }
Result<SeriesList> fn_perSecond(Call& c) { return non_negative(c, true); }

Result<SeriesList> fn_keepLastValue(Call& c) {
  auto list = c.series(0);
  if (!list) return list;
  const double limit = c.arg(1)->number;
  for (Series& s : *list) {
    rename(s, "keepLastValue(" + s.name + ")");
    size_t gap = 0;
    double last = kNone;
    auto fill = [&](size_t end) {
      if (gap > 0 && double(gap) <= limit && !none(last))
        std::fill(s.values.begin() + long(end - gap), s.values.begin() + long(end), last);
    };
    for (size_t i = 0; i < s.values.size(); ++i) {
      if (none(s.values[i])) {
        ++gap;
        continue;
      }
      fill(i);
      gap = 0;
      last = s.values[i];
    }
    fill(s.values.size());
  }
  return list;
}

Result<SeriesList> fn_transformNull(Call& c) {
  auto list = c.series(0);
  if (!list) return list;
  const BoundArg* d = c.arg(1);
  const double fallback = d->number;
  const bool has_ref = c.arg(2) != nullptr;
  SeriesList ref;
  if (has_ref) {
    auto r = c.series(2);
    if (!r) return r;
    ref = std::move(*r);
  }
  std::vector<double> defaults;  // per point: the default where any reference series is known, else None
  if (!ref.empty()) {
    std::vector<Ref> refs = refs_of(ref);
    defaults = by_row(columns(pointers(refs)), [&](std::span<const double> row) {
      return std::any_of(row.begin(), row.end(), [](double v) { return !none(v); }) ? fallback : kNone;
    });
  }
  const std::string g = python_percent_g(fallback);
  for (Series& s : *list) {
    s.tags["transformNull"] = d->is_default ? python_number_str(fallback, true) : python_float_repr(fallback);
    if (!ref.empty()) s.tags["referenceSeries"] = "1";
    rename(s, "transformNull(" + s.name + "," + g + (ref.empty() ? ")" : ",referenceSeries)"));
    if (defaults.empty()) {
      for (double& v : s.values)
        if (none(v)) v = fallback;
      continue;
    }
    // graphite extends the series by the new values, then deletes as many
    // from the front: with more defaults than points, the last ones remain.
    std::vector<double> values(std::max(s.values.size(), defaults.size()), kNone);
    for (size_t i = 0; i < values.size(); ++i) {
      const double v = i < s.values.size() ? s.values[i] : kNone;
      values[i] = none(v) && i < defaults.size() ? defaults[i] : v;
    }
    s.values.assign(values.end() - long(s.values.size()), values.end());
  }
  return list;
}

// summarize()'s _summarizeValues: one value per bucket [t, t + interval); a
// bucket's slice starts at the last point at or before t, as graphite's does.
std::pair<std::vector<double>, int64_t> summarize_values(const Series& s, AggFn f, int64_t interval, int64_t start,
                                                         int64_t end) {
  const int64_t points = std::min<int64_t>(range_len(s.start, s.end, s.step), int64_t(s.values.size()));
  const double interval_points = double(interval) / double(s.step);
  std::vector<double> out, scratch;
  int64_t i = 0, t = start;
  for (; t < end; t += interval) {
    int64_t from = i, known = 0;
    for (; i < points && s.start + i * s.step < t + interval; ++i) {
      const int64_t ts = s.start + i * s.step;
      if (ts <= t) from = i;
      if (ts >= t && !none(s.values[size_t(i)])) ++known;
    }
    const bool ok = xff_ok(double(known), interval_points, s.x_files_factor);
    out.push_back(ok ? apply_agg(f, std::span<const double>(s.values).subspan(size_t(from), size_t(i - from)), scratch)
                     : kNone);
  }
  return {std::move(out), t};
}

Result<SeriesList> fn_summarize(Call& c) {
  auto list = c.series(0);
  if (!list) return list;
  const BoundArg& interval_arg = *c.arg(1);
  const int64_t interval = int64_t(interval_arg.number);
  if (interval <= 0) return c.error("interval '" + interval_arg.text + "' must be positive");
  const std::string func = c.arg(2)->text;
  const AggFn f = agg_fn(func).value_or(AggFn::sum);
  const bool align = c.arg(3)->boolean;
  for (Series& s : *list) {
    int64_t start = s.start, end = s.end;
    if (!align) start -= py_mod(s.start, interval), end = end - py_mod(end, interval) + interval;
    if ((end - start) / interval > kMaxPoints)
      return c.error("interval '" + interval_arg.text + "' gives too many points");
    auto [values, aligned_end] = summarize_values(s, f, interval, start, end);
    s.tags["summarize"] = interval_arg.text;
    s.tags["summarizeFunction"] = func;
    rename(s,
           "summarize(" + s.name + ", \"" + interval_arg.text + "\", \"" + func + "\"" + (align ? ", true" : "") + ")");
    s.start = start, s.end = align ? aligned_end : end, s.step = interval;
    s.values = std::move(values);
  }
  return list;
}

// movingAverage -> movingWindow(seriesList, windowSize, 'average', xff): the
// first argument evaluated again from `from` minus the window, so the first
// points have a full window behind them.
Result<SeriesList> fn_movingAverage(Call& c) {
  auto list = c.series(0);
  if (!list || list->empty()) return list;
  const BoundArg& w = *c.arg(1);
  const bool interval = w.kind == ValueKind::kString;
  if (!interval && w.number < 0) return c.error("windowSize must not be negative");
  int64_t preview = 0, points = 0;
  if (interval) {
    preview = std::abs(int64_t(w.number));
  } else {
    int64_t max_step = 0;
    for (const Series& s : *list) max_step = std::max(max_step, s.step);
    points = w.number < double(kMaxPoints) ? int64_t(w.number) : kMaxPoints;
    if (__builtin_mul_overflow(max_step, points, &preview)) return c.error("windowSize is too large");
  }
  RenderContext earlier = c.ctx();
  if (__builtin_sub_overflow(earlier.from, preview, &earlier.from)) return c.error("windowSize is too large");
  auto again = c.first_again(earlier);
  if (!again) return again;
  const std::string window = interval ? "\"" + w.text + "\"" : c.literal_str(w);
  const BoundArg* xff = c.arg(2);
  for (Series& s : *again) {
    const int64_t wp = interval ? preview / s.step : points;
    const double eff_xff = xff ? xff->number : s.x_files_factor;
    std::vector<double> values;
    for (int64_t i = wp; i < int64_t(s.values.size()); ++i) {
      size_t known = 0;
      const double sum = known_sum(std::span<const double>(s.values).subspan(size_t(i - wp), size_t(wp)), &known);
      values.push_back(known && xff_ok(double(known), double(wp), eff_xff) ? sum / double(known) : kNone);
    }
    s.tags["movingAverage"] = interval ? w.text : c.literal_str(w);
    rename(s, "movingAverage(" + s.name + "," + window + ")");
    s.start += preview;
    s.values = std::move(values);
  }
  return again;
}

// Whether `t` is in daylight saving time as graphite's timeShift sees it:
// time.localtime(time.mktime(dt.timetuple())).tm_isdst for a datetime in
// the request's zone, the process's zone deciding.
bool in_dst(int64_t t, TimeZone tz) {
  time_t tt = time_t(t);
  struct tm tm {};
  if (tz == TimeZone::kLocal) return localtime_r(&tt, &tm) && tm.tm_isdst > 0;
  if (!gmtime_r(&tt, &tm)) return false;
  tm.tm_isdst = 0;  // a UTC datetime's dst() is 0
  time_t local = mktime(&tm);
  struct tm out {};
  return localtime_r(&local, &out) && out.tm_isdst > 0;
}

Result<SeriesList> fn_timeShift(Call& c) {
  auto list = c.series(0);
  if (!list) return list;
  std::string shift = c.arg(1)->text;
  if (shift.empty()) return c.error("timeShift must not be empty");
  if (std::isdigit(static_cast<unsigned char>(shift[0]))) shift = "-" + shift;  // no sign means back in time
  auto delta = parse_time_offset(shift);
  if (!delta) return c.error(delta.error().message);
  RenderContext shifted = c.ctx();
  shifted.from += *delta, shifted.until += *delta;
  if (c.arg(3)->boolean) {
    const bool req_start = in_dst(c.ctx().from, c.ctx().tz), req_end = in_dst(c.ctx().until, c.ctx().tz);
    const bool my_start = in_dst(shifted.from, c.ctx().tz), my_end = in_dst(shifted.until, c.ctx().tz);
    const int64_t dst = req_start && req_end && !my_start && !my_end   ? 3600
                        : !req_start && !req_end && my_start && my_end ? -3600
                                                                       : 0;
    shifted.from += dst, shifted.until += dst;
  }
  if (list->empty()) return list;
  const Series& first = list->front();
  auto again = c.first_again(shifted);
  if (!again) return again;
  for (Series& s : *again) {
    s.tags["timeShift"] = shift;
    s.name = "timeShift(" + s.name + ", \"" + shift + "\")";
    s.end = c.arg(2)->boolean ? first.end : s.end - s.start + first.start;
    s.start = first.start;
  }
  return again;
}

// --- Special ---

Result<SeriesList> fn_constantLine(Call& c) {
  const double value = c.arg(0)->number;
  const int64_t start = c.ctx().from, end = c.ctx().until, step = (end - start) / 2;
  if (step <= 0) return c.error("the time range must be at least 2 seconds");
  const std::string name = python_float_repr(value);
  Series s = make_series(name, start, end, step, {value, value, value}, c.ctx().x_files_factor);
  s.path_expression = "constantLine(" + name + ")";
  return SeriesList{std::move(s)};
}

// --- dispatch ---

using Handler = Result<SeriesList> (*)(Call&);

// Sorted by name, one per render_functions() entry.
constexpr std::pair<std::string_view, Handler> kHandlers[] = {
    {"alias", fn_alias},
    {"aliasByNode", fn_aliasByNode},
    {"aliasSub", fn_aliasSub},
    {"asPercent", fn_asPercent},
    {"averageSeries", fn_averageSeries},
    {"constantLine", fn_constantLine},
    {"derivative", fn_derivative},
    {"divideSeries", fn_divideSeries},
    {"groupByNode", fn_groupByNode},
    {"highestAverage", fn_highestAverage},
    {"highestCurrent", fn_highestCurrent},
    {"keepLastValue", fn_keepLastValue},
    {"maxSeries", fn_maxSeries},
    {"minSeries", fn_minSeries},
    {"movingAverage", fn_movingAverage},
    {"nonNegativeDerivative", fn_nonNegativeDerivative},
    {"offset", fn_offset},
    {"perSecond", fn_perSecond},
    {"removeBelowValue", fn_removeBelowValue},
    {"scale", fn_scale},
    {"sumSeries", fn_sumSeries},
    {"summarize", fn_summarize},
    {"timeShift", fn_timeShift},
    {"transformNull", fn_transformNull},
};

Handler find_handler(std::string_view name) {
  auto it = std::lower_bound(std::begin(kHandlers), std::end(kHandlers), name,
                             [](const auto& h, std::string_view n) { return h.first < n; });
  return it != std::end(kHandlers) && it->first == name ? it->second : nullptr;
}

Result<SeriesList> Evaluator::eval(uint32_t node, const RenderContext& ctx) {
  if (++evaluations_ > kMaxEvaluations)
    return fail("target needs too many evaluations (movingAverage and timeShift evaluate their first argument twice)",
                400);
  const Node& n = expr.node(node);
  if (n.kind == NodeKind::kPath) return fetch(n, ctx);
  if (n.kind != NodeKind::kCall) return fail("position " + std::to_string(n.pos) + ": not a series expression", 400);
  if (node >= binding.calls.size() || !binding.calls[node].fn)
    return fail("call at position " + std::to_string(n.pos) + " is not bound", 400);
  const Handler h = find_handler(binding.calls[node].fn->name);
  if (!h) return fail(std::string(binding.calls[node].fn->name) + ": not implemented", 400);
  Call call(*this, node, ctx);
  return h(call);
}

// fetchData(): the store's series sorted by name, one per name (the one with
// fewest None when a name repeats), tagged with the pattern that found them.
Result<SeriesList> Evaluator::fetch(const Node& n, const RenderContext& ctx) {
  const std::string pattern = path_pattern(expr.text_of(n));
  auto got = fetch_(pattern, ctx.from, ctx.until);
  if (!got) return got;
  SeriesList& list = *got;
  auto by_name = [](const Series& a, const Series& b) { return a.name < b.name; };
  if (!std::is_sorted(list.begin(), list.end(), by_name)) std::stable_sort(list.begin(), list.end(), by_name);
  auto nones = [](const Series& s) { return std::count_if(s.values.begin(), s.values.end(), none); };
  SeriesList out;
  out.reserve(list.size());
  for (Series& s : list) {
    if (!out.empty() && out.back().name == s.name) {
      if (nones(out.back()) > nones(s) && !s.values.empty()) out.back() = std::move(s);
      continue;
    }
    out.push_back(std::move(s));
  }
  for (Series& s : out) {
    s.path_expression = pattern;
    s.x_files_factor = ctx.x_files_factor;
    s.consolidation = Aggregation::average;
    if (s.tags.empty()) s.tags = default_tags(s.name);
  }
  return out;
}

}  // namespace

Result<std::vector<Series>> evaluate(const Expr& expr, const Binding& binding, const RenderContext& context,
                                     const FetchFn& fetch) {
  if (expr.root == kNoNode) return fail("empty target", 400);
  Evaluator ev(expr, binding, fetch);
  return ev.eval(expr.root, context);
}

void consolidate_for_max_points(std::vector<Series>& series, int64_t max_points) {
  if (max_points <= 0) return;
  int64_t start = INT64_MAX, end = INT64_MIN;
  bool any = false;
  for (const Series& s : series) {
    any = any || !s.values.empty();
    start = std::min(start, s.start), end = std::max(end, s.end);
  }
  if (!any) return;
  const double range = double(end - start);
  for (Series& s : series) {
    if (s.step <= 0 || s.values.empty()) continue;
    int64_t vpp = 1;
    if (max_points == 1) {
      vpp = int64_t(s.values.size());
    } else if (const double points = range / double(s.step); double(max_points) < points) {
      vpp = int64_t(std::ceil(points / double(max_points)));
      const int64_t per_point = vpp * s.step;
      const int64_t nudge = per_point + py_mod(s.start, s.step) - py_mod(s.start, per_point);
      s.start += nudge;
      const int64_t lose = std::min<int64_t>(nudge / s.step - 1, int64_t(s.values.size()));
      if (lose > 0) s.values.erase(s.values.begin(), s.values.begin() + lose);
    }
    if (vpp <= 1) continue;
    s.values = consolidate_values(s, vpp);
    s.step *= vpp;
  }
}

}  // namespace stele::metrics
