// PlacementSearch: finds the agent for one task (policy in scheduler.h).
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "scheduler/cluster.h"

namespace stele::sched::detail {

// splitmix64: small, fast, deterministic.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
    z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return static_cast<size_t>((__uint128_t{next()} * n) >> 64); }

 private:
  uint64_t state_;
};

// A union of agent lists, indexable without copying them.
class Candidates {
 public:
  void clear();
  void add(const std::vector<Index>& agents);
  size_t size() const { return ends_.empty() ? 0 : ends_.back(); }
  Index at(size_t i) const;

 private:
  std::vector<const std::vector<Index>*> lists_;
  std::vector<size_t> ends_;  // cumulative sizes
};

// Buffers reused from one placement to the next (no allocation per search).
struct SearchScratch {
  Candidates narrowest, other, level;
  std::vector<std::pair<int, Index>> levels;
};

class PlacementSearch {
 public:
  // Feasible candidates compared when sampling a large candidate set.
  static constexpr int kChoices = 3;
  // Random probes before a sampled search turns into a walk over the set.
  static constexpr int kProbes = 24;

  PlacementSearch(const Cluster& cluster, Rng& rng, SearchScratch& scratch, Index app,
                  const TaskRequest& req, const CompiledConstraints& constraints);

  // The chosen agent, or kNone when no agent is feasible.
  Index find();
  // Fits the task and satisfies the constraints; with GROUP_BY also on a
  // least-loaded value (used for preferred_agent).
  bool acceptable_preferred(Index agent) const;
  bool feasible(Index agent) const;

 private:
  struct Best {
    Index agent = kNone;
    int app_tasks = 0;
    double packing = 0;
  };
  Index find_grouped(const CompiledConstraint& group_by);
  Index find_in(const Candidates& set);
  void consider(Index agent, Best& best) const;
  double packing(const Agent& ag) const;
  bool narrow(const CompiledConstraint& c, Candidates& out) const;
  bool value_allowed(Index field, Index value) const;
  bool least_loaded_value(const CompiledConstraint& group_by, Index value) const;

  const Cluster& cluster_;
  Rng& rng_;
  SearchScratch& scratch_;
  const App& app_state_;
  const TaskRequest& req_;
  const CompiledConstraints& constraints_;
  int ports_needed_;
};

}  // namespace stele::sched::detail
