// The render functions Stele supports, with graphite-web 1.1.8's parameter
// lists (webapp/graphite/render/functions.py `.params`), and bind(), which
// checks every call of a parsed target (render_target.h) against its function
// the way functions/params.py validateParams and each ParamType's validator
// do, and gives each parameter its coerced value or its default.
//
// Rules: function names are case-sensitive and the table is sorted by name.
// Positional arguments fill the parameters in order and a `multiple` (last)
// parameter takes every remaining one; a keyword argument names any other
// parameter not already given. Errors are Result errors with code 400 naming
// the function and the 1-based byte position in the target; see bind().
// Interval parameters are read with parse_time_offset() (render_time.h).
//
// Everything here is pure and thread-safe: the table is constant, and a
// Binding is a plain value (node indices into its Expr, pointers into the
// table).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "metrics/render_target.h"

namespace stele::metrics {

// graphite's ParamTypes, with its names (for /functions).
enum class ParamType : uint8_t {
  kSeriesList,
  kFloat,
  kInteger,
  kBoolean,
  kString,
  kInterval,         // "1h", "-7d": parse_time_offset()
  kIntOrInterval,    // a number of points or an interval
  kIntOrInf,         // an integer or inf
  kNodeOrTag,        // a node index (negative counts from the end) or a tag name
  kAggFunc,          // "sum", "average", ... (graphite's aggFuncs and aliases)
  kAggOrSeriesFunc,  // an aggFunc or an aggregating series function ("sumSeries")
  kAny,              // asPercent's total: a number, a series list or None
};
std::string_view param_type_name(ParamType t);

enum class ValueKind : uint8_t { kNone, kSeries, kNumber, kString, kBool };

struct ParamDefault {
  ValueKind kind = ValueKind::kNone;  // kNone: no default
  double number = 0;
  bool boolean = false;
  std::string_view text;
};

struct ParamSpec {
  std::string_view name;
  ParamType type = ParamType::kAny;
  bool required = false;
  bool multiple = false;  // only the last parameter; takes every remaining positional argument
  ParamDefault fallback;  // graphite's `default`
};

struct FunctionSpec {
  std::string_view name;
  std::string_view group;  // graphite's group ("Combine", "Transform"...)
  std::span<const ParamSpec> params;
  bool aggregator = false;  // usable as groupByNode's callback
};

// Every function Stele renders, in alphabetical order.
std::span<const FunctionSpec> render_functions();
// nullptr when unknown (the name is case-sensitive, as in graphite).
const FunctionSpec* find_render_function(std::string_view name);

// The value one parameter of a call gets after graphite's validation and
// coercion (an integer given as "5", a boolean as 1...), or its default.
struct BoundArg {
  uint16_t param = 0;  // index into FunctionSpec::params; a multiple parameter repeats
  ValueKind kind = ValueKind::kNone;
  bool is_default = false;  // not in the target: the parameter's default (or None)
  uint32_t node = kNoNode;  // the argument's node (a None taking the default too); kNoNode if not written
  double number = 0;        // kNumber; interval parameters: seconds (parse_time_offset)
  bool boolean = false;     // kBool
  std::string text;         // kString (interval parameters keep their text too)
};

struct BoundCall {
  const FunctionSpec* fn = nullptr;
  uint32_t first = 0, count = 0;  // Binding::args[first, first + count)
};

// For each call node (indexed like Expr::nodes; other entries stay empty) its
// arguments: one BoundArg per parameter in order, except that the multiple
// parameter has one per value given (possibly none).
struct Binding {
  std::vector<BoundCall> calls;
  std::vector<BoundArg> args;

  std::span<const BoundArg> args_of(uint32_t call_node) const {
    const BoundCall& c = calls[call_node];
    return std::span<const BoundArg>(args).subspan(c.first, c.count);
  }
};

// Checks every call of `e` (an outer function's name before its arguments,
// then its arguments, then its parameters), in graphite's terms; a 400 error
// names the function and position: "unknown function 'foo' at position 3",
// "sumSeries: argument 2 (position 15) must be a series list". Stricter than
// graphite-web, which only logs most of these (ENFORCE_INPUT_VALIDATION off)
// and then fails or renders nonsense: string parameters take only strings,
// a keyword may not repeat or name a positional or multiple parameter, None
// for an optional parameter means its default.
Result<Binding> bind(const Expr& e);

}  // namespace stele::metrics
