// Scheduler: chooses an agent and ports for each task (design.md "Layout":
// src/scheduler is pure — no I/O, no threads, no clocks).
//
// It keeps its own picture of the cluster: registered agents with their
// resources, port ranges and attributes, and the tasks placed on them (either
// chosen here by place() or recorded by add_task() during recovery).
//
// Placement policy (Marathon's constraint semantics):
//  * Constraints name the field "hostname" or an agent attribute. An agent
//    without the attribute satisfies only UNLIKE on that field.
//      UNIQUE        at most one task of the app per field value
//      CLUSTER v     only agents whose field == v; with no value, all tasks of
//                    the app share the value of those already placed
//      GROUP_BY [n]  spread evenly: the task goes to the value with the fewest
//                    tasks of the app among values where it fits; with n, once
//                    the field has fewer than n values, only unused values
//      LIKE re       the field value fully matches re (ECMAScript syntax)
//      UNLIKE re     the field value does not fully match re
//      MAX_PER n     at most n tasks of the app per field value
//  * Among agents that fit and satisfy the constraints: fewest tasks of the
//    same app first (spread an app), then the most used agent (bin-packing).
//  * preferred_agent, when it fits and satisfies the constraints, wins.
//
// Large clusters are not scanned per placement: candidates are sampled from
// the narrowest index the constraints allow (a value's agents for CLUSTER,
// matching values for LIKE, least-loaded values for GROUP_BY) and the best of a
// few feasible ones is taken. A sampled search that finds nothing continues
// into an exhaustive one, so place() fails only when no agent is feasible.
// Clusters of up to kExhaustiveSearchLimit candidates are always searched
// exhaustively, so the choice there is exactly the policy above.
//
// Not thread-safe: one owner (the leader's scheduling strand) calls it.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/spec.h"

namespace stele::sched {

struct Resources {
  double cpus = 0, mem = 0, disk = 0;  // mem and disk in MB
};

struct PortRange {
  int begin = 0, end = 0;  // inclusive
};

struct AgentInfo {
  std::string id, hostname;
  std::map<std::string, std::string> attributes;
  Resources total;
  std::vector<PortRange> ports;
};

struct TaskRequest {
  std::string app_id;
  Resources res;
  int port_count = 0;             // dynamic ports, chosen from the agent's free ports
  std::vector<int> fixed_ports;   // requirePorts: exactly these, all must be free
  std::vector<stele::Constraint> constraints;
  std::string preferred_agent;    // soft preference, may be empty
};

struct Placement {
  std::string agent_id;
  std::vector<int> ports;  // fixed_ports in request order, then the dynamic ones ascending
};

class Scheduler {
 public:
  // Candidate sets at most this large are searched exhaustively.
  static constexpr int kExhaustiveSearchLimit = 64;

  // `seed` drives candidate sampling; the same calls with the same seed give
  // the same placements.
  explicit Scheduler(uint64_t seed = 0x5ce1e5ced);
  ~Scheduler();
  Scheduler(Scheduler&&) noexcept;
  Scheduler& operator=(Scheduler&&) noexcept;

  // Adds an agent or updates it in place. Its tasks stay placed; if the new
  // totals are below what they use, the agent just has nothing free.
  void upsert_agent(const AgentInfo&);
  // Forgets the agent and every task on it. Unknown id = no-op.
  void remove_agent(const std::string& id);
  bool has_agent(const std::string& id) const;

  // Records a task that already runs (recovery / reconciliation): consumes
  // resources and ports, counts for the app's constraints. A task id already
  // known is replaced. Unknown agent = no-op (upsert agents first).
  void add_task(const std::string& task_id, const std::string& app_id, const std::string& agent_id,
                const Resources&, const std::vector<int>& ports);
  // Frees the task's resources and ports. Unknown id = no-op.
  void remove_task(const std::string& task_id);
  bool has_task(const std::string& task_id) const;

  // Chooses an agent and ports for one task and records it under task_id.
  // Fails with a reason a user sees on the waiting task ("no agent with 2 cpus
  // free", "constraint hostname UNIQUE not satisfiable (2 agents, 2 instances
  // already)"), for an invalid constraint or request, or when task_id is
  // already placed. A failure changes nothing.
  stele::Result<Placement> place(const std::string& task_id, const TaskRequest&);

  // What the agent's tasks use; zero / empty for an unknown agent.
  Resources used(const std::string& agent_id) const;
  std::vector<int> used_ports(const std::string& agent_id) const;  // ascending

  size_t agent_count() const;
  size_t task_count() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace stele::sched
