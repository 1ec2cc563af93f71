#include "deploy/upgrade.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace stele::deploy {

namespace {

struct Counts {
  int total = 0;        // every live task, killing ones included (they still use capacity)
  int healthy = 0;      // healthy and not being killed
};

Counts count(const std::vector<PlanTask>& tasks) {
  Counts c;
  for (const auto& t : tasks) {
    ++c.total;
    if (t.healthy && !t.killing) ++c.healthy;
  }
  return c;
}

// New tasks beyond the target, or a second task in one slot, go first.
void kill_surplus_new(const UpgradeInput& in, UpgradePlan& plan, std::set<int>& filled, Counts& c) {
  std::vector<const PlanTask*> news;
  for (const auto& t : in.tasks)
    if (t.is_new && !t.killing) news.push_back(&t);
  // Healthy first so that the healthy one keeps a doubly filled slot.
  std::stable_sort(news.begin(), news.end(), [](auto* a, auto* b) { return a->healthy > b->healthy; });
  for (const auto* t : news) {
    if (t->seq < in.target && filled.insert(t->seq).second) continue;
    plan.kill.push_back(t->id);
    if (t->healthy) --c.healthy;
  }
}

}  // namespace

UpgradePlan plan_upgrade(const UpgradeInput& in) {
  UpgradePlan plan;
  const int n = std::max(0, in.target);
  const int max_total = n + static_cast<int>(std::floor(n * in.maximum_over_capacity + 1e-9));
  const int min_healthy = static_cast<int>(std::ceil(n * in.minimum_health_capacity - 1e-9));
  Counts c = count(in.tasks);

  std::set<int> filled;
  kill_surplus_new(in, plan, filled, c);

  for (int slot = 0; slot < n; ++slot) {
    if (filled.count(slot) || c.total >= max_total) continue;
    plan.start_slots.push_back(slot);
    ++c.total;
  }

  std::vector<const PlanTask*> old;
  bool new_pending = false;
  for (const auto& t : in.tasks) {
    if (!t.is_new && !t.killing) old.push_back(&t);
    if (t.is_new && !t.killing && !t.healthy) new_pending = true;
  }
  // Unhealthy old tasks first (they add no capacity), then the highest slots.
  std::sort(old.begin(), old.end(), [](auto* a, auto* b) {
    if (a->healthy != b->healthy) return !a->healthy;
    return a->seq > b->seq;
  });
  int healthy_new = 0;
  for (const auto& t : in.tasks)
    if (t.is_new && !t.killing && t.healthy && t.seq < n) ++healthy_new;
  size_t killed_old = 0;
  for (const auto* t : old) {
    // Old tasks beyond what is still needed to hold capacity go now.
    int remaining_old = static_cast<int>(old.size() - killed_old);
    bool surplus = healthy_new + remaining_old > n;
    bool blocked = static_cast<int>(filled.size() + plan.start_slots.size()) < n;
    if (!t->healthy || (c.healthy - 1 >= min_healthy && (surplus || blocked))) {
      plan.kill.push_back(t->id);
      if (t->healthy) --c.healthy;
      ++killed_old;
    }
  }
  bool moved = !plan.start_slots.empty() || !plan.kill.empty();
  bool any_killing = std::any_of(in.tasks.begin(), in.tasks.end(), [](auto& t) { return t.killing; });
  // Stuck only when nothing is in flight either (no kill pending, no new task coming up).
  if (!moved && !new_pending && !any_killing && !old.empty() && static_cast<int>(filled.size()) < n) {
    // No move allowed by the bounds (e.g. minHealth 1, maxOver 0): make room.
    plan.kill.push_back(old.front()->id);
    ++killed_old;
  }
  plan.done = plan.start_slots.empty() && plan.kill.empty() && old.empty() && !any_killing &&
              healthy_new == n && static_cast<int>(filled.size()) == n;
  return plan;
}

}  // namespace stele::deploy
