#include "scheduler/placement.h"

#include <algorithm>
#include <utility>

namespace stele::sched::detail {
namespace {

constexpr double kEpsilon = 1e-9;

bool fits(const Resources& free, const Resources& need) {
  return need.cpus <= free.cpus + kEpsilon && need.mem <= free.mem + kEpsilon &&
         need.disk <= free.disk + kEpsilon;
}

double share(double used, double total) { return total > 0 ? used / total : 0; }

const CompiledConstraint* first_group_by(const CompiledConstraints& cs) {
  for (const auto& c : cs)
    if (c.op == Op::kGroupBy) return &c;
  return nullptr;
}

}  // namespace

void Candidates::clear() {
  lists_.clear();
  ends_.clear();
}

void Candidates::add(const std::vector<Index>& agents) {
  if (agents.empty()) return;
  lists_.push_back(&agents);
  ends_.push_back(size() + agents.size());
}

Index Candidates::at(size_t i) const {
  if (lists_.size() == 1) return (*lists_[0])[i];
  const size_t k = std::upper_bound(ends_.begin(), ends_.end(), i) - ends_.begin();
  return (*lists_[k])[i - (k == 0 ? 0 : ends_[k - 1])];
}

PlacementSearch::PlacementSearch(const Cluster& cluster, Rng& rng, SearchScratch& scratch,
                                 Index app, const TaskRequest& req,
                                 const CompiledConstraints& constraints)
    : cluster_(cluster),
      rng_(rng),
      scratch_(scratch),
      app_state_(cluster.app(app)),
      req_(req),
      constraints_(constraints),
      ports_needed_(req.port_count + static_cast<int>(req.fixed_ports.size())) {}

bool PlacementSearch::feasible(Index agent) const {
  const Agent& ag = cluster_.agent(agent);
  if (!fits(ag.free, req_.res) || ag.ports.free_count() < ports_needed_) return false;
  for (const auto& c : constraints_)
    if (!allows(c, ag.value(c.field), app_state_, cluster_)) return false;
  for (int p : req_.fixed_ports)
    if (!ag.ports.is_free(p)) return false;
  return true;
}

bool PlacementSearch::acceptable_preferred(Index agent) const {
  if (!feasible(agent)) return false;
  const CompiledConstraint* g = first_group_by(constraints_);
  return !g || least_loaded_value(*g, cluster_.agent(agent).value(g->field));
}

bool PlacementSearch::least_loaded_value(const CompiledConstraint& g, Index value) const {
  const int mine = app_state_.tasks_on(g.field, value);
  for (Index v : cluster_.values_of(g.field))
    if (app_state_.tasks_on(g.field, v) < mine) return false;
  return true;
}

// Share of the agent in use once the task is there (cpus and mem, disk when
// the agent offers any): higher = fuller = preferred by bin-packing.
double PlacementSearch::packing(const Agent& ag) const {
  const Resources& t = ag.info.total;
  return share(ag.used.cpus + req_.res.cpus, t.cpus) + share(ag.used.mem + req_.res.mem, t.mem) +
         share(ag.used.disk + req_.res.disk, t.disk);
}

void PlacementSearch::consider(Index agent, Best& best) const {
  const Agent& ag = cluster_.agent(agent);
  const int n = app_state_.tasks_at(agent);
  const double p = packing(ag);
  if (best.agent == kNone || n < best.app_tasks ||
      (n == best.app_tasks && p > best.packing + kEpsilon))
    best = {agent, n, p};
}

// Samples up to kChoices feasible agents from a large set (random probes,
// then a walk from a random point that covers the whole set if need be);
// small sets are scanned completely.
Index PlacementSearch::find_in(const Candidates& set) {
  const size_t n = set.size();
  if (n == 0) return kNone;
  const bool sampled = n > static_cast<size_t>(Scheduler::kExhaustiveSearchLimit);
  Best best;
  int found = 0;
  for (int p = 0; sampled && p < kProbes && found < kChoices; ++p) {
    const Index a = set.at(rng_.below(n));
    if (feasible(a)) consider(a, best), ++found;
  }
  if (found > 0) return best.agent;
  const size_t start = sampled ? rng_.below(n) : 0;
  for (size_t i = 0; i < n; ++i) {
    const Index a = set.at((start + i) % n);
    if (!feasible(a)) continue;
    consider(a, best);
    if (sampled && ++found >= kChoices) break;
  }
  return best.agent;
}

// Whether every constraint on `field` allows `value` (prunes whole values).
bool PlacementSearch::value_allowed(Index field, Index value) const {
  for (const auto& c : constraints_)
    if (c.field == field && !allows(c, value, app_state_, cluster_)) return false;
  return true;
}

// GROUP_BY: the least loaded values first (those with the fewest tasks of
// the app, together); a level with no feasible agent passes to the next.
// Levels are peeled off one at a time: usually the first one succeeds.
Index PlacementSearch::find_grouped(const CompiledConstraint& g) {
  auto& levels = scratch_.levels;
  levels.clear();
  for (Index v : cluster_.values_of(g.field))
    if (value_allowed(g.field, v)) levels.emplace_back(app_state_.tasks_on(g.field, v), v);
  Candidates& set = scratch_.level;
  for (auto begin = levels.begin(); begin != levels.end();) {
    const int least = std::min_element(begin, levels.end())->first;
    auto end = std::partition(begin, levels.end(), [&](const auto& l) { return l.first == least; });
    set.clear();
    for (auto it = begin; it != end; ++it) set.add(cluster_.agents_with(g.field, it->second));
    if (Index a = find_in(set); a != kNone) return a;
    begin = end;
  }
  return kNone;
}

// The agents that can satisfy `c` at all, when `c` restricts them to some
// values (CLUSTER, LIKE); false when `c` does not narrow the search.
bool PlacementSearch::narrow(const CompiledConstraint& c, Candidates& out) const {
  out.clear();
  if (c.op == Op::kCluster && c.value != kNone) {
    out.add(cluster_.agents_with(c.field, c.value));
    return true;
  }
  const bool cluster_on_used = c.op == Op::kCluster && app_state_.values_used_of(c.field) > 0;
  if (c.op != Op::kLike && !cluster_on_used) return false;
  for (Index v : cluster_.values_of(c.field))
    if (allows(c, v, app_state_, cluster_)) out.add(cluster_.agents_with(c.field, v));
  return true;
}

Index PlacementSearch::find() {
  if (const CompiledConstraint* g = first_group_by(constraints_)) return find_grouped(*g);
  Candidates& best = scratch_.narrowest;
  Candidates& other = scratch_.other;
  best.clear();
  best.add(cluster_.live_agents());
  for (const auto& c : constraints_)
    if (narrow(c, other) && other.size() < best.size()) std::swap(best, other);
  return find_in(best);
}

}  // namespace stele::sched::detail
