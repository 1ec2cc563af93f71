#include "scheduler/constraints.h"

#include <algorithm>
#include <charconv>
#include <set>

#include <fmt/format.h>

#include "scheduler/cluster.h"

namespace stele::sched::detail {
namespace {

constexpr const char* kOperators = "UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER";

std::optional<Op> parse_op(const std::string& op) {
  if (op == "UNIQUE") return Op::kUnique;
  if (op == "CLUSTER") return Op::kCluster;
  if (op == "GROUP_BY") return Op::kGroupBy;
  if (op == "LIKE") return Op::kLike;
  if (op == "UNLIKE") return Op::kUnlike;
  if (op == "MAX_PER") return Op::kMaxPer;
  return std::nullopt;
}

std::optional<int> parse_count(const std::string& s) {
  int n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return n;
}

std::string describe(const Constraint& c) {
  return c.value.empty() ? fmt::format("{} {}", c.field, c.op)
                         : fmt::format("{} {} {}", c.field, c.op, c.value);
}

// Fills the operator-specific part of `out`; empty string = fine.
std::string compile_value(const Constraint& c, CompiledConstraint& out, Cluster& cluster,
                          RegexCache& regexes) {
  switch (out.op) {
    case Op::kUnique:
      return "";
    case Op::kCluster:
      if (!c.value.empty()) out.value = cluster.values.intern(c.value);
      return "";
    case Op::kGroupBy:
    case Op::kMaxPer: {
      if (c.value.empty() && out.op == Op::kGroupBy) return "";
      auto n = parse_count(c.value);
      if (!n || *n < 1) return "needs a positive integer value";
      out.limit = *n;
      return "";
    }
    case Op::kLike:
    case Op::kUnlike:
      if (c.value.empty()) return "needs a regular expression value";
      out.regex = regexes.get(c.value);
      return out.regex ? "" : "has an invalid regular expression";
  }
  return "";
}

Result<CompiledConstraint> compile_one(const Constraint& c, Cluster& cluster, RegexCache& regexes) {
  if (c.field.empty()) return fail(fmt::format("constraint '{}' has no field", describe(c)));
  auto op = parse_op(c.op);
  if (!op)
    return fail(fmt::format("constraint {}: unknown operator '{}' (one of {})", describe(c), c.op,
                            kOperators));
  CompiledConstraint out;
  out.op = *op;
  out.field = cluster.fields.intern(c.field);
  out.field_name = c.field;
  out.text = describe(c);
  std::string problem = compile_value(c, out, cluster, regexes);
  if (!problem.empty()) return fail(fmt::format("constraint {}: {} {}", out.text, c.op, problem));
  return out;
}

size_t distinct_values(const std::vector<Index>& agents, Index field, const Cluster& cluster) {
  std::set<Index> seen;
  for (Index a : agents)
    if (Index v = cluster.agent(a).value(field); v != kNone) seen.insert(v);
  return seen.size();
}

// "2 agents" for hostname, "3 rack values" for attributes.
std::string places(const CompiledConstraint& c, const std::vector<Index>& candidates,
                   const Cluster& cluster) {
  const size_t n = distinct_values(candidates, c.field, cluster);
  if (c.field == kHostnameField) return fmt::format("{} agent{}", n, n == 1 ? "" : "s");
  return fmt::format("{} {} value{}", n, c.field_name, n == 1 ? "" : "s");
}

std::string used_value(const CompiledConstraint& c, const App& app, const Cluster& cluster) {
  for (Index v : cluster.values_of(c.field))
    if (app.tasks_on(c.field, v) > 0) return cluster.values.name(v);
  return "?";
}

std::string detail(const CompiledConstraint& c, const std::vector<Index>& candidates,
                   const App& app, const Cluster& cluster) {
  const int n = app.tasks;
  switch (c.op) {
    case Op::kUnique:
    case Op::kMaxPer:
      return fmt::format("{}, {} instance{} already", places(c, candidates, cluster), n,
                         n == 1 ? "" : "s");
    case Op::kCluster:
      if (c.value != kNone)
        return fmt::format("no agent with {} {}", c.field_name, cluster.values.name(c.value));
      return fmt::format("instances already run on {} {}", c.field_name,
                         used_value(c, app, cluster));
    case Op::kGroupBy:
      return fmt::format("only {}, all already used", places(c, candidates, cluster));
    case Op::kLike:
      return fmt::format("no agent's {} matches", c.field_name);
    case Op::kUnlike:
      return fmt::format("every agent's {} matches", c.field_name);
  }
  return "";
}

}  // namespace

bool RegexMatcher::matches(Index value, const StringPool& values) {
  if (value >= by_value_.size()) by_value_.resize(std::max<size_t>(values.size(), value + 1), -1);
  int8_t& cached = by_value_[value];
  if (cached < 0) cached = std::regex_match(values.name(value), re_) ? 1 : 0;
  return cached == 1;
}

RegexMatcher* RegexCache::get(const std::string& pattern) {
  auto it = matchers_.find(pattern);
  if (it != matchers_.end()) return it->second.get();
  try {
    auto m = std::make_unique<RegexMatcher>(std::regex(pattern, std::regex::ECMAScript));
    return matchers_.emplace(pattern, std::move(m)).first->second.get();
  } catch (const std::regex_error&) {
    return nullptr;  // invalid patterns are not cached: they fail the app's compile once
  }
}

Result<CompiledConstraints> compile_constraints(const std::vector<Constraint>& spec,
                                                Cluster& cluster, RegexCache& regexes) {
  CompiledConstraints out;
  for (const Constraint& c : spec) {
    auto one = compile_one(c, cluster, regexes);
    if (!one) return fail(one.error());
    out.push_back(std::move(*one));
  }
  return out;
}

bool same_constraints(const std::vector<Constraint>& a, const std::vector<Constraint>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const auto& x, const auto& y) {
    return x.field == y.field && x.op == y.op && x.value == y.value;
  });
}

bool allows(const CompiledConstraint& c, Index value, const App& app, const Cluster& cluster) {
  if (value == kNone) return c.op == Op::kUnlike;  // Marathon: absent attribute only passes UNLIKE
  switch (c.op) {
    case Op::kUnique:
      return app.tasks_on(c.field, value) == 0;
    case Op::kMaxPer:
      return app.tasks_on(c.field, value) < c.limit;
    case Op::kCluster:
      if (c.value != kNone) return value == c.value;
      return app.values_used_of(c.field) == 0 || app.tasks_on(c.field, value) > 0;
    case Op::kGroupBy:
      // With n given and fewer than n values, only unused values (Marathon waits for more).
      return c.limit == 0 || cluster.values_of(c.field).size() >= static_cast<size_t>(c.limit) ||
             app.tasks_on(c.field, value) == 0;
    case Op::kLike:
      return c.regex->matches(value, cluster.values);
    case Op::kUnlike:
      return !c.regex->matches(value, cluster.values);
  }
  return false;
}

std::string unsatisfiable_reason(const CompiledConstraint& c, const std::vector<Index>& candidates,
                                 const App& app, const Cluster& cluster) {
  const bool any_has_field = std::any_of(candidates.begin(), candidates.end(), [&](Index a) {
    return cluster.agent(a).value(c.field) != kNone;
  });
  const std::string why = any_has_field || c.op == Op::kUnlike
                              ? detail(c, candidates, app, cluster)
                              : fmt::format("no agent has attribute {}", c.field_name);
  return fmt::format("constraint {} not satisfiable ({})", c.text, why);
}

}  // namespace stele::sched::detail
