// Helpers shared by the scheduler tests: small agents and requests.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "scheduler/scheduler.h"

namespace stele::sched::testing {

inline AgentInfo agent(const std::string& id, double cpus = 4, double mem = 4096,
                       std::map<std::string, std::string> attributes = {},
                       std::vector<PortRange> ports = {{31000, 31009}}) {
  AgentInfo a;
  a.id = id;
  a.hostname = id + ".example.com";
  a.attributes = std::move(attributes);
  a.total = {cpus, mem, 10000};
  a.ports = std::move(ports);
  return a;
}

inline TaskRequest task(const std::string& app, double cpus = 1, double mem = 128) {
  TaskRequest r;
  r.app_id = app;
  r.res = {cpus, mem, 0};
  return r;
}

inline TaskRequest with(TaskRequest r, std::string field, std::string op, std::string value = "") {
  r.constraints.push_back({std::move(field), std::move(op), std::move(value)});
  return r;
}

// Places `n` tasks "<prefix>.<i>" and returns the chosen agent ids (fails the
// calling test on a refused placement).
inline std::vector<std::string> place_n(Scheduler& s, const TaskRequest& r, int n,
                                        const std::string& prefix) {
  std::vector<std::string> agents;
  for (int i = 0; i < n; ++i) {
    auto p = s.place(prefix + "." + std::to_string(i), r);
    if (!p) {
      ADD_FAILURE() << "placement " << i << " refused: " << p.error().message;
      break;
    }
    agents.push_back(p->agent_id);
  }
  return agents;
}

inline std::map<std::string, int> tally(const std::vector<std::string>& xs) {
  std::map<std::string, int> out;
  for (const auto& x : xs) ++out[x];
  return out;
}

}  // namespace stele::sched::testing
