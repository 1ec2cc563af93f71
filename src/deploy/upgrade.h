// Upgrade planning: what to start and what to kill next, for one app, so a
// rolling change (deploy, scale, restart, rollback) keeps capacity within
// upgradeStrategy. Pure: the Cluster feeds it the task picture every tick.
#pragma once
#include <string>
#include <vector>

namespace stele::deploy {

struct PlanTask {
  std::string id;
  int seq = 0;
  bool is_new = false;    // belongs to the target release and generation
  bool healthy = false;   // running and passing health checks
  bool killing = false;   // a kill was already sent
};

struct UpgradeInput {
  int target = 0;                       // instances wanted of the new version
  double minimum_health_capacity = 1.0;
  double maximum_over_capacity = 1.0;
  std::vector<PlanTask> tasks;          // every live task of the app
};

struct UpgradePlan {
  std::vector<int> start_slots;   // seq numbers of new tasks to launch now
  std::vector<std::string> kill;  // task ids to kill now
  bool done = false;              // target reached: all new healthy, no old left
};

// Marathon's rule: never more than target + floor(target * maxOver) live tasks,
// never fewer than ceil(target * minHealth) healthy ones while old tasks go
// away; new instances count only once healthy. When the bounds allow no move
// (minHealth 1 with maxOver 0) one old task is killed at a time, as Marathon does.
UpgradePlan plan_upgrade(const UpgradeInput& in);

}  // namespace stele::deploy
