// Marathon placement constraints, compiled once per app spec so the hot path
// compares interned ids and cached regex results instead of strings.
#pragma once
#include <cstdint>
#include <memory>
#include <regex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "common/spec.h"

namespace stele::sched::detail {

using Index = uint32_t;
inline constexpr Index kNone = UINT32_MAX;

inline uint64_t value_key(Index field, Index value) { return uint64_t{field} << 32 | value; }

class StringPool;
class Cluster;
struct App;

// One pattern, compiled once, with its full-match result cached per value id.
class RegexMatcher {
 public:
  explicit RegexMatcher(std::regex re) : re_(std::move(re)) {}
  bool matches(Index value, const StringPool& values);

 private:
  std::regex re_;
  std::vector<int8_t> by_value_;  // -1 unknown, 0 no, 1 yes
};

// Pattern -> matcher. Matchers live as long as the cache.
class RegexCache {
 public:
  // nullptr if the pattern does not compile.
  RegexMatcher* get(const std::string& pattern);

 private:
  std::unordered_map<std::string, std::unique_ptr<RegexMatcher>> matchers_;
};

enum class Op { kUnique, kCluster, kGroupBy, kLike, kUnlike, kMaxPer };

struct CompiledConstraint {
  Op op = Op::kUnique;
  Index field = kNone;
  std::string field_name;
  std::string text;             // "hostname UNIQUE", "rack MAX_PER 2": for messages
  Index value = kNone;          // CLUSTER's value, kNone when none is given
  int limit = 0;                // MAX_PER n; GROUP_BY n (0 = not given)
  RegexMatcher* regex = nullptr;  // LIKE / UNLIKE
};
using CompiledConstraints = std::vector<CompiledConstraint>;

// Interns fields and values into `cluster`'s pools. Fails naming the first
// invalid constraint (unknown operator, missing or bad value, bad regex).
Result<CompiledConstraints> compile_constraints(const std::vector<Constraint>& spec,
                                                Cluster& cluster, RegexCache& regexes);

bool same_constraints(const std::vector<Constraint>& a, const std::vector<Constraint>& b);

// Whether one more task of `app` may go where `c.field` has `value` (kNone =
// the agent lacks the attribute). Depends only on the value, so it also
// filters whole values (GROUP_BY search).
bool allows(const CompiledConstraint& c, Index value, const App& app, const Cluster& cluster);

// Why no agent of `candidates` (which all satisfy the constraints before `c`)
// satisfies `c`: "constraint hostname UNIQUE not satisfiable (2 agents, 2
// instances already)".
std::string unsatisfiable_reason(const CompiledConstraint& c, const std::vector<Index>& candidates,
                                 const App& app, const Cluster& cluster);

}  // namespace stele::sched::detail
