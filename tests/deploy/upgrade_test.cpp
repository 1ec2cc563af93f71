// Rolling-upgrade planning, simulated: new tasks become healthy a fixed time
// after launch on a simulated clock; every step is checked against
// upgradeStrategy's bounds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "common/clock.h"
#include "deploy/upgrade.h"

using namespace stele;
using namespace stele::deploy;

namespace {

struct SimTask {
  std::string id;
  int seq;
  bool is_new;
  int64_t healthy_at;  // ms on the simulated clock; INT64_MAX = never
  bool killing = false;
  int64_t dies_at = 0;
};

struct Outcome {
  int steps = 0;
  int min_healthy_seen = 1 << 30;
  int max_total_seen = 0;
  bool done = false;
};

// Runs the planner every 100 ms until done (or 10 min simulated).
Outcome simulate(int instances, double min_health, double max_over, int64_t start_delay_ms, bool new_ever_healthy = true) {
  SimulatedClock clock;
  std::vector<SimTask> tasks;
  for (int i = 0; i < instances; ++i) tasks.push_back({"old" + std::to_string(i), i, false, 0});
  Outcome out;
  int launches = 0;
  for (int step = 0; step < 6000; ++step) {
    int64_t now = clock.now_ms();
    // Killed tasks disappear 200 ms after the kill.
    tasks.erase(std::remove_if(tasks.begin(), tasks.end(), [&](auto& t) { return t.killing && now >= t.dies_at; }), tasks.end());
    UpgradeInput in{instances, min_health, max_over, {}};
    int healthy = 0;
    for (auto& t : tasks) {
      bool h = now >= t.healthy_at && !t.killing;
      healthy += h;
      in.tasks.push_back({t.id, t.seq, t.is_new, now >= t.healthy_at, t.killing});
    }
    out.min_healthy_seen = std::min(out.min_healthy_seen, healthy);
    out.max_total_seen = std::max(out.max_total_seen, static_cast<int>(tasks.size()));
    UpgradePlan plan = plan_upgrade(in);
    if (plan.done) {
      out.done = true;
      out.steps = step;
      return out;
    }
    for (auto& id : plan.kill)
      for (auto& t : tasks)
        if (t.id == id) {
          t.killing = true;
          t.dies_at = now + 200;
        }
    for (int seq : plan.start_slots)
      tasks.push_back({"new" + std::to_string(launches++), seq, true,
                       new_ever_healthy ? now + start_delay_ms : INT64_MAX});
    clock.advance_ms(100);
  }
  return out;
}

}  // namespace

struct Combo {
  int instances;
  double min_health, max_over;
};

class UpgradeBounds : public ::testing::TestWithParam<Combo> {};

TEST_P(UpgradeBounds, StaysWithinStrategyAndCompletes) {
  auto c = GetParam();
  Outcome o = simulate(c.instances, c.min_health, c.max_over, 1500);
  ASSERT_TRUE(o.done) << "upgrade never completed";
  int min_healthy = static_cast<int>(std::ceil(c.instances * c.min_health - 1e-9));
  int max_total = c.instances + static_cast<int>(std::floor(c.instances * c.max_over + 1e-9));
  // minHealth 1 with maxOver 0 cannot hold both bounds: Marathon (and Stele)
  // then replace one instance at a time.
  if (!(c.min_health >= 1.0 && c.max_over == 0.0)) EXPECT_GE(o.min_healthy_seen, min_healthy);
  else EXPECT_GE(o.min_healthy_seen, c.instances - 1);
  EXPECT_LE(o.max_total_seen, std::max(max_total, c.instances));
}

INSTANTIATE_TEST_SUITE_P(Combos, UpgradeBounds,
                         ::testing::Values(Combo{3, 1.0, 1.0}, Combo{3, 1.0, 0.34}, Combo{4, 0.5, 0.0},
                                           Combo{4, 0.5, 0.5}, Combo{10, 0.8, 0.2}, Combo{1, 1.0, 1.0},
                                           Combo{1, 0.0, 0.0}, Combo{5, 0.0, 1.0}, Combo{3, 1.0, 0.0}));

TEST(Upgrade, NewInstancesThatNeverBecomeHealthyKeepAllOldOnes) {
  Outcome o = simulate(3, 1.0, 1.0, 0, /*new_ever_healthy=*/false);
  EXPECT_FALSE(o.done);
  EXPECT_EQ(o.min_healthy_seen, 3);  // the old release kept serving at full capacity
}

TEST(Upgrade, ScaleUpStartsMissingSlotsAtOnce) {
  UpgradeInput in{5, 1.0, 1.0, {}};
  for (int i = 0; i < 2; ++i) in.tasks.push_back({"t" + std::to_string(i), i, true, true, false});
  auto plan = plan_upgrade(in);
  EXPECT_EQ(plan.start_slots, (std::vector<int>{2, 3, 4}));
  EXPECT_TRUE(plan.kill.empty());
}

TEST(Upgrade, ScaleDownKillsHighestSlots) {
  UpgradeInput in{2, 1.0, 1.0, {}};
  for (int i = 0; i < 5; ++i) in.tasks.push_back({"t" + std::to_string(i), i, true, true, false});
  auto plan = plan_upgrade(in);
  std::sort(plan.kill.begin(), plan.kill.end());
  EXPECT_EQ(plan.kill, (std::vector<std::string>{"t2", "t3", "t4"}));
  EXPECT_TRUE(plan.start_slots.empty());
}

TEST(Upgrade, ReplacesAFailedSlot) {
  UpgradeInput in{3, 1.0, 1.0, {{"a", 0, true, true, false}, {"c", 2, true, true, false}}};
  auto plan = plan_upgrade(in);
  EXPECT_EQ(plan.start_slots, std::vector<int>{1});
  EXPECT_FALSE(plan.done);
}

TEST(Upgrade, DoneOnlyWhenAllNewHealthyAndNoOldLeft) {
  UpgradeInput in{2, 1.0, 1.0, {{"a", 0, true, true, false}, {"b", 1, true, true, false}}};
  EXPECT_TRUE(plan_upgrade(in).done);
  in.tasks.push_back({"old", 0, false, true, true});  // still being killed
  EXPECT_FALSE(plan_upgrade(in).done);
}

TEST(Upgrade, ScaleToZeroKillsEverything) {
  UpgradeInput in{0, 1.0, 1.0, {{"a", 0, true, true, false}, {"old", 0, false, true, false}}};
  auto plan = plan_upgrade(in);
  EXPECT_EQ(plan.kill.size(), 2u);
}
