// Random sequences of agent and task changes: what the nodes API reports
// (used resources and ports per agent) always matches the tasks placed, and
// constraints keep holding through agents coming, going and changing.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>

#include "scheduler/scheduler.h"
#include "test_cluster.h"

namespace stele::sched {
namespace {

using namespace testing;

struct Placed {
  std::string agent, app;
  double cpus = 0;
  std::vector<int> ports;
};

class ChurnModel {
 public:
  explicit ChurnModel(unsigned seed) : rng_(seed) {}

  void step(Scheduler& s) {
    const unsigned op = rng_() % 10;
    if (op == 0) upsert_random_agent(s);
    else if (op == 1) remove_random_agent(s);
    else if (op <= 3) remove_random_task(s);
    else place_random_task(s);
  }

  void check(const Scheduler& s) const {
    std::map<std::string, double> cpus;
    std::map<std::string, std::vector<int>> ports;
    for (const auto& [id, t] : tasks_) {
      cpus[t.agent] += t.cpus;
      ports[t.agent].insert(ports[t.agent].end(), t.ports.begin(), t.ports.end());
    }
    for (int i = 0; i < kAgents; ++i) {
      const std::string a = "a" + std::to_string(i);
      EXPECT_NEAR(s.used(a).cpus, cpus[a], 1e-6) << a;
      std::sort(ports[a].begin(), ports[a].end());
      EXPECT_EQ(s.used_ports(a), ports[a]) << a;
    }
    EXPECT_EQ(s.task_count(), tasks_.size());
  }

  // /unique-<k> apps: never two instances on one agent.
  void check_unique() const {
    std::map<std::pair<std::string, std::string>, int> per_agent;
    for (const auto& [id, t] : tasks_)
      if (t.app.rfind("/unique", 0) == 0) {
        const auto key = std::make_pair(t.app, t.agent);
        EXPECT_EQ(++per_agent[key], 1) << id;
      }
  }

 private:
  static constexpr int kAgents = 90;  // above the exhaustive limit: the sampled path

  void upsert_random_agent(Scheduler& s) {
    const int i = static_cast<int>(rng_() % kAgents);
    s.upsert_agent(agent("a" + std::to_string(i), 2 + rng_() % 6, 4096,
                         {{"rack", "r" + std::to_string(rng_() % 4)}}, {{31000, 31000 + int(rng_() % 8)}}));
  }

  void remove_random_agent(Scheduler& s) {
    const std::string a = "a" + std::to_string(rng_() % kAgents);
    s.remove_agent(a);
    std::erase_if(tasks_, [&](const auto& kv) { return kv.second.agent == a; });
  }

  void remove_random_task(Scheduler& s) {
    if (tasks_.empty()) return;
    auto it = std::next(tasks_.begin(), static_cast<long>(rng_() % tasks_.size()));
    s.remove_task(it->first);
    tasks_.erase(it);
  }

  void place_random_task(Scheduler& s) {
    const bool unique = rng_() % 2 == 0;
    TaskRequest r = task((unique ? "/unique-" : "/plain-") + std::to_string(rng_() % 5), 0.5, 16);
    if (unique) r.constraints.push_back({"hostname", "UNIQUE", ""});
    r.port_count = static_cast<int>(rng_() % 3);
    const std::string id = "t" + std::to_string(next_++);
    auto p = s.place(id, r);
    if (p) tasks_[id] = {p->agent_id, r.app_id, r.res.cpus, p->ports};
  }

  std::mt19937 rng_;
  std::map<std::string, Placed> tasks_;
  int next_ = 0;
};

TEST(Churn, UsageAndConstraintsStayConsistent) {
  for (unsigned seed : {1u, 2u, 3u}) {
    Scheduler s(seed);
    ChurnModel model(seed);
    for (int i = 0; i < 4000; ++i) {
      model.step(s);
      if (i % 500 == 499) model.check(s);
    }
    model.check(s);
    model.check_unique();
    EXPECT_GT(s.task_count(), 50u);  // the run did reach a busy cluster
    EXPECT_GT(s.agent_count(), 30u);
  }
}

}  // namespace
}  // namespace stele::sched
