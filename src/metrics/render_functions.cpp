// The function table (graphite-web 1.1.8 render/functions.py `.params`) and
// bind() (functions/params.py validateParams plus each ParamType's validator).
#include "metrics/render_functions.h"

#include <locale.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "metrics/render_time.h"

namespace stele::metrics {
namespace {

// The same character classes and strtod as the parser's (render_target.cpp).
bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// strtod in the C locale: correctly rounded, overflow to +-inf, like Python's float().
double c_strtod(std::string_view s) {
  static const locale_t c_locale = newlocale(LC_ALL_MASK, "C", locale_t(0));
  std::string z(s);
  return strtod_l(z.c_str(), nullptr, c_locale);
}

using enum ParamType;

constexpr ParamSpec required(std::string_view name, ParamType type) {
  ParamSpec p;
  p.name = name, p.type = type, p.required = true;
  return p;
}
constexpr ParamSpec optional(std::string_view name, ParamType type, ParamDefault fallback = {}) {
  ParamSpec p;
  p.name = name, p.type = type, p.fallback = fallback;
  return p;
}
constexpr ParamSpec variadic(std::string_view name, ParamType type, bool is_required) {
  ParamSpec p;
  p.name = name, p.type = type, p.required = is_required, p.multiple = true;
  return p;
}
constexpr ParamDefault default_number(double v) {
  ParamDefault d;
  d.kind = ValueKind::kNumber, d.number = v;
  return d;
}
constexpr ParamDefault default_bool(bool v) {
  ParamDefault d;
  d.kind = ValueKind::kBool, d.boolean = v;
  return d;
}
constexpr ParamDefault default_string(std::string_view v) {
  ParamDefault d;
  d.kind = ValueKind::kString, d.text = v;
  return d;
}

constexpr ParamSpec kSeries = required("seriesList", kSeriesList);
constexpr ParamSpec kSeriesOnly[] = {kSeries};
constexpr ParamSpec kSeriesLists[] = {variadic("seriesLists", kSeriesList, true)};
constexpr ParamSpec kFactor[] = {kSeries, required("factor", kFloat)};
constexpr ParamSpec kTopN[] = {kSeries, required("n", kInteger)};
constexpr ParamSpec kMaxMin[] = {kSeries, optional("maxValue", kFloat), optional("minValue", kFloat)};
constexpr ParamSpec kAlias[] = {kSeries, required("newName", kString)};
constexpr ParamSpec kAliasByNode[] = {kSeries, variadic("nodes", kNodeOrTag, true)};
constexpr ParamSpec kAliasSub[] = {kSeries, required("search", kString), required("replace", kString)};
constexpr ParamSpec kAsPercent[] = {kSeries, optional("total", kAny), variadic("nodes", kNodeOrTag, false)};
constexpr ParamSpec kConstantLine[] = {required("value", kFloat)};
constexpr ParamSpec kDivideSeries[] = {required("dividendSeriesList", kSeriesList),
                                       required("divisorSeries", kSeriesList)};
constexpr ParamSpec kGroupByNode[] = {kSeries, required("nodeNum", kNodeOrTag),
                                      optional("callback", kAggOrSeriesFunc, default_string("average"))};
constexpr ParamSpec kKeepLastValue[] = {kSeries, optional("limit", kIntOrInf, default_number(INFINITY))};
constexpr ParamSpec kMovingAverage[] = {kSeries, required("windowSize", kIntOrInterval),
                                        optional("xFilesFactor", kFloat)};
constexpr ParamSpec kRemoveBelowValue[] = {kSeries, required("n", kFloat)};
constexpr ParamSpec kSummarize[] = {kSeries, required("intervalString", kInterval),
                                    optional("func", kAggFunc, default_string("sum")),
                                    optional("alignToFrom", kBoolean, default_bool(false))};
// graphite's Python argument is alignDST but its Param (and so the keyword
// validateParams accepts) is alignDst.
constexpr ParamSpec kTimeShift[] = {kSeries, required("timeShift", kInterval),
                                    optional("resetEnd", kBoolean, default_bool(true)),
                                    optional("alignDst", kBoolean, default_bool(false))};
constexpr ParamSpec kTransformNull[] = {kSeries, optional("default", kFloat, default_number(0)),
                                        optional("referenceSeries", kSeriesList)};

// Sorted by name (find_render_function searches it).
constexpr FunctionSpec kFunctions[] = {
    {"alias", "Alias", kAlias, false},
    {"aliasByNode", "Alias", kAliasByNode, false},
    {"aliasSub", "Alias", kAliasSub, false},
    {"asPercent", "Combine", kAsPercent, true},
    {"averageSeries", "Combine", kSeriesLists, true},
    {"constantLine", "Special", kConstantLine, false},
    {"derivative", "Transform", kSeriesOnly, false},
    {"divideSeries", "Combine", kDivideSeries, false},
    {"groupByNode", "Combine", kGroupByNode, false},
    {"highestAverage", "Filter Series", kTopN, false},
    {"highestCurrent", "Filter Series", kTopN, false},
    {"keepLastValue", "Transform", kKeepLastValue, false},
    {"maxSeries", "Combine", kSeriesLists, true},
    {"minSeries", "Combine", kSeriesLists, true},
    {"movingAverage", "Calculate", kMovingAverage, false},
    {"nonNegativeDerivative", "Transform", kMaxMin, false},
    {"offset", "Transform", kFactor, false},
    {"perSecond", "Transform", kMaxMin, false},
    {"removeBelowValue", "Filter Data", kRemoveBelowValue, false},
    {"scale", "Transform", kFactor, false},
    {"sumSeries", "Combine", kSeriesLists, true},
    {"summarize", "Transform", kSummarize, false},
    {"timeShift", "Transform", kTimeShift, false},
    {"transformNull", "Transform", kTransformNull, false},
};

// functions/aggfuncs.py: aggFuncs and aggFuncAliases.
constexpr std::string_view kAggFuncs[] = {"average", "avg_zero", "median", "sum",    "min",      "max",
                                          "diff",    "stddev",   "count",  "range",  "multiply", "last",
                                          "rangeOf", "avg",      "total",  "current"};

bool is_agg_func(std::string_view s) {
  return std::find(std::begin(kAggFuncs), std::end(kAggFuncs), s) != std::end(kAggFuncs);
}

std::string agg_func_list(bool series_funcs) {
  std::string out;
  for (std::string_view f : kAggFuncs) out.append(out.empty() ? "" : ", ").append(f);
  if (series_funcs)
    for (const FunctionSpec& f : kFunctions)
      if (f.aggregator) out.append(", ").append(f.name);
  return out;
}

std::string_view trim_py(std::string_view s) {
  while (!s.empty() && (is_ws(s.front()) || s.front() == '\v' || s.front() == '\f')) s.remove_prefix(1);
  while (!s.empty() && (is_ws(s.back()) || s.back() == '\v' || s.back() == '\f')) s.remove_suffix(1);
  return s;
}

// Python int(str): whitespace, a sign, decimal digits.
std::optional<double> py_int_string(std::string_view s) {
  s = trim_py(s);
  std::string_view digits = s.starts_with('+') || s.starts_with('-') ? s.substr(1) : s;
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), is_digit)) return std::nullopt;
  return c_strtod(s);
}

// Python float(str): whitespace, a sign, then inf/infinity/nan or a decimal
// number with an optional exponent.
std::optional<double> py_float_string(std::string_view s) {
  s = trim_py(s);
  std::string_view body = s.starts_with('+') || s.starts_with('-') ? s.substr(1) : s;
  std::string lower;
  for (char c : body) lower += char(c | 0x20);
  if (lower == "inf" || lower == "infinity") return s.starts_with('-') ? -INFINITY : INFINITY;
  if (lower == "nan") return NAN;
  size_t i = 0, digits = 0;
  while (i < body.size() && is_digit(body[i])) ++i, ++digits;
  if (i < body.size() && body[i] == '.') {
    ++i;
    while (i < body.size() && is_digit(body[i])) ++i, ++digits;
  }
  if (digits == 0) return std::nullopt;
  if (i < body.size() && (body[i] | 0x20) == 'e') {
    size_t j = i + 1 + (i + 1 < body.size() && (body[i + 1] == '+' || body[i + 1] == '-'));
    if (j >= body.size() || !is_digit(body[j])) return std::nullopt;
    while (j < body.size() && is_digit(body[j])) ++j;
    i = j;
  }
  if (i != body.size()) return std::nullopt;
  return c_strtod(s);
}

std::string_view type_wanted(ParamType t) {
  switch (t) {
    case kSeriesList: return "a series list";
    case kFloat: return "a number";
    case kInteger: return "an integer";
    case kBoolean: return "a boolean";
    case kString: return "a string";
    case kInterval: return "an interval string such as '1h'";
    case kIntOrInterval: return "a number of points or an interval string such as '5min'";
    case kIntOrInf: return "an integer or inf";
    case kNodeOrTag: return "a node number or a tag name";
    case kAggFunc: return "an aggregation function name";
    case kAggOrSeriesFunc: return "an aggregation function name";
    case kAny: return "a number, a series list or None";
  }
  return "a value";
}

// validateFloat, validateInteger and validateIntOrInf: float(value);
// int(value) but never of a float; an integer or float('inf').
std::optional<double> as_number(ParamType t, const Node& a, std::string_view text) {
  switch (a.kind) {
    case NodeKind::kBool: return a.boolean ? 1 : 0;
    case NodeKind::kNumber:
      if (t == kFloat || a.integer || (t == kIntOrInf && a.number == INFINITY)) return a.number;
      return std::nullopt;
    case NodeKind::kString: {
      if (t == kFloat) return py_float_string(text);
      if (auto v = py_int_string(text)) return v;
      auto f = t == kIntOrInf ? py_float_string(text) : std::nullopt;
      return f && *f == INFINITY ? f : std::nullopt;
    }
    default: return std::nullopt;
  }
}

// validateBoolean: a boolean, 0 or 1, or "true"/"false" in any case.
std::optional<bool> as_boolean(const Node& a, std::string_view text) {
  if (a.kind == NodeKind::kBool) return a.boolean;
  if (a.kind == NodeKind::kNumber && (a.number == 0 || a.number == 1)) return a.number == 1;
  if (a.kind != NodeKind::kString || (text.size() != 4 && text.size() != 5)) return std::nullopt;
  std::string lower;
  for (char c : text) lower += (c >= 'A' && c <= 'Z') ? char(c | 0x20) : c;
  if (lower == "true" || lower == "false") return lower == "true";
  return std::nullopt;
}

class Binder {
 public:
  explicit Binder(const Expr& e) : e_(e) { b_.calls.resize(e.nodes.size()); }

  Result<Binding> run() {
    if (e_.root != kNoNode && e_.node(e_.root).kind == NodeKind::kCall && !call(e_.root)) return fail(*error_);
    return std::move(b_);
  }

 private:
  bool failed(std::string message) {
    error_ = Error{std::move(message), {}, 400};
    return false;
  }

  bool call(uint32_t i) {
    const Node& n = e_.node(i);
    const std::string_view name = e_.text_of(n);
    const FunctionSpec* fn = find_render_function(name);
    if (!fn) {
      std::string m = "unknown function '" + std::string(name) + "' at position " + std::to_string(n.pos);
      if (name == "seriesByTag" || name == "template") m += " (not supported)";
      return failed(std::move(m));
    }
    for (uint32_t a : e_.args(n))
      if (e_.node(a).kind == NodeKind::kCall && !call(a)) return false;
    return check(i, *fn);
  }

  // validateParams: positional arguments fill the parameters in order (the
  // multiple one takes the rest), keyword arguments the parameters after them.
  // given[k] is parameter k's argument node, rest the multiple one's.
  bool assign(const Node& n, const FunctionSpec& fn, std::vector<uint32_t>& given, std::vector<uint32_t>& rest) {
    const std::string name(fn.name);
    const size_t np = fn.params.size();
    size_t positional = 0;
    for (uint32_t a : e_.args(n)) {
      const Node& arg = e_.node(a);
      if (!e_.is_keyword(arg)) {
        const size_t k = positional++;
        if (fn.params.back().multiple && k + 1 >= np) {
          rest.push_back(a);
        } else if (k >= np) {
          return failed(name + ": too many arguments: takes at most " + std::to_string(np) + ", argument " +
                        std::to_string(k + 1) + " at position " + std::to_string(arg.pos));
        } else {
          given[k] = a;
        }
        continue;
      }
      const std::string key(e_.key_of(arg));
      const std::string where = " (position " + std::to_string(arg.key_pos) + ")";
      auto p = std::find_if(fn.params.begin(), fn.params.end(), [&](const ParamSpec& s) { return s.name == key; });
      if (p == fn.params.end()) return failed(name + ": unexpected keyword argument '" + key + "'" + where);
      if (p->multiple) return failed(name + ": '" + key + "' cannot be given by keyword" + where);
      uint32_t& slot = given[size_t(p - fn.params.begin())];
      if (slot != kNoNode)
        return failed(name + ": keyword argument '" + key + "' repeats an argument already given" + where);
      slot = a;
    }
    return true;
  }

  bool check(uint32_t i, const FunctionSpec& fn) {
    const Node& n = e_.node(i);
    std::vector<uint32_t> given(fn.params.size(), kNoNode), rest;
    if (!assign(n, fn, given, rest)) return false;
    auto missing = [&](const ParamSpec& p) {
      return failed(std::string(fn.name) + ": missing required argument '" + std::string(p.name) +
                    "' (call at position " + std::to_string(n.pos) + ")");
    };
    b_.calls[i] = BoundCall{&fn, uint32_t(b_.args.size()), 0};
    for (size_t k = 0; k < fn.params.size(); ++k) {
      const ParamSpec& p = fn.params[k];
      if (p.multiple) {
        if (rest.empty() && p.required) return missing(p);
        for (size_t r = 0; r < rest.size(); ++r)
          if (!value(fn, uint16_t(k), rest[r], k + r + 1)) return false;
        continue;
      }
      const bool absent = given[k] == kNoNode || e_.node(given[k]).kind == NodeKind::kNone;
      if (absent && p.required) {
        if (given[k] != kNoNode) return wrong(fn, k + 1, e_.node(given[k]), p.type, "");  // None
        return missing(p);
      }
      if (!absent) {
        if (!value(fn, uint16_t(k), given[k], k + 1)) return false;
        continue;
      }
      BoundArg d;  // graphite's default; None given for an optional parameter means it too
      d.param = uint16_t(k);
      d.is_default = true;
      d.kind = p.fallback.kind;
      d.number = p.fallback.number;
      d.boolean = p.fallback.boolean;
      d.text = std::string(p.fallback.text);
      d.node = given[k];
      b_.args.push_back(std::move(d));
    }
    b_.calls[i].count = uint32_t(b_.args.size() - b_.calls[i].first);
    return true;
  }

  bool wrong(const FunctionSpec& fn, size_t ordinal, const Node& arg, ParamType t, std::string_view why) {
    std::string which = e_.is_keyword(arg) ? "'" + std::string(e_.key_of(arg)) + "'" : std::to_string(ordinal);
    std::string m = std::string(fn.name) + ": argument " + which + " (position " + std::to_string(arg.pos) + ") ";
    if (!why.empty()) return failed(m + std::string(why));
    m += "must be " + std::string(type_wanted(t));
    if (t == kAggFunc || t == kAggOrSeriesFunc) m += " (" + agg_func_list(t == kAggOrSeriesFunc) + ")";
    return failed(std::move(m));
  }

  // One value through its ParamType's validator (functions/params.py).
  bool value(const FunctionSpec& fn, uint16_t k, uint32_t node, size_t ordinal) {
    const ParamType t = fn.params[k].type;
    const Node& a = e_.node(node);
    const std::string_view text = a.kind == NodeKind::kString ? e_.text_of(a) : std::string_view();
    const bool series = a.kind == NodeKind::kPath || a.kind == NodeKind::kCall;
    BoundArg out;
    out.param = k;
    out.node = node;
    auto set_number = [&](std::optional<double> v) {
      return v && (out.kind = ValueKind::kNumber, out.number = *v, true);
    };
    auto set_string = [&](bool fits) { return fits && (out.kind = ValueKind::kString, out.text = text, true); };
    bool ok = false;
    switch (t) {
      case kSeriesList: ok = series, out.kind = ValueKind::kSeries; break;
      case kFloat:
      case kInteger:
      case kIntOrInf: ok = set_number(as_number(t, a, text)); break;
      case kBoolean:
        if (auto v = as_boolean(a, text)) ok = true, out.kind = ValueKind::kBool, out.boolean = *v;
        break;
      case kString: ok = set_string(a.kind == NodeKind::kString); break;
      case kInterval:
      case kIntOrInterval:
        if (a.kind == NodeKind::kString) {
          auto secs = parse_time_offset(text);
          if (!secs) return wrong(fn, ordinal, a, t, "is not a valid interval: " + secs.error().message);
          ok = set_string(true), out.number = double(*secs);
        } else if (t == kIntOrInterval && a.kind == NodeKind::kNumber) {
          ok = set_number(a.number);
        }
        break;
      case kNodeOrTag:
        ok = a.kind == NodeKind::kNumber && a.integer ? set_number(a.number) : set_string(a.kind == NodeKind::kString);
        break;
      case kAggFunc: ok = set_string(a.kind == NodeKind::kString && is_agg_func(text)); break;
      case kAggOrSeriesFunc: {
        const FunctionSpec* f = find_render_function(text);
        ok = set_string(a.kind == NodeKind::kString && (is_agg_func(text) || (f && f->aggregator)));
        break;
      }
      case kAny:
        if (series) ok = true, out.kind = ValueKind::kSeries;
        if (a.kind == NodeKind::kNumber) ok = set_number(a.number);
        break;
    }
    if (!ok) return wrong(fn, ordinal, a, t, "");
    b_.args.push_back(std::move(out));
    return true;
  }

  const Expr& e_;
  Binding b_;
  std::optional<Error> error_;
};

}  // namespace

std::string_view param_type_name(ParamType t) {
  switch (t) {
    case kSeriesList: return "seriesList";
    case kFloat: return "float";
    case kInteger: return "integer";
    case kBoolean: return "boolean";
    case kString: return "string";
    case kInterval: return "interval";
    case kIntOrInterval: return "intOrInterval";
    case kIntOrInf: return "intOrInf";
    case kNodeOrTag: return "nodeOrTag";
    case kAggFunc: return "aggFunc";
    case kAggOrSeriesFunc: return "aggOrSeriesFunc";
    case kAny: return "any";
  }
  return "any";
}

std::span<const FunctionSpec> render_functions() { return kFunctions; }

const FunctionSpec* find_render_function(std::string_view name) {
  auto it = std::lower_bound(std::begin(kFunctions), std::end(kFunctions), name,
                             [](const FunctionSpec& f, std::string_view n) { return f.name < n; });
  return it != std::end(kFunctions) && it->name == name ? &*it : nullptr;
}

Result<Binding> bind(const Expr& e) { return Binder(e).run(); }

}  // namespace stele::metrics
