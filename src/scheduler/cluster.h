// Cluster: the scheduler's picture of agents, apps and tasks, with the
// indexes placement needs (agents by attribute value, tasks per app per agent
// and per app per attribute value). Internal to src/scheduler.
//
// Agents, apps and tasks live in slot arrays and are referred to by Index;
// strings (attribute names and values) are interned to dense ids so the hot
// path compares integers.
#pragma once
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "scheduler/constraints.h"
#include "scheduler/port_set.h"
#include "scheduler/scheduler.h"
#include "scheduler/task_index.h"

namespace stele::sched::detail {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

// Interns strings to dense ids 0, 1, 2...; ids are never reused.
class StringPool {
 public:
  Index intern(std::string_view s);
  Index find(std::string_view s) const;  // kNone if never interned
  const std::string& name(Index id) const { return names_[id]; }
  size_t size() const { return names_.size(); }

 private:
  StringMap<Index> ids_;
  std::vector<std::string> names_;
};

// An agent's value of each field (by field id; kNone = attribute absent).
// The first few live inline: feasibility checks read them for every probe.
class FieldValues {
 public:
  static constexpr Index kInline = 4;
  Index size() const { return size_; }
  Index get(Index field) const {
    if (field < kInline) return field < size_ ? inline_[field] : kNone;
    return field < size_ ? more_[field - kInline] : kNone;
  }
  void reset(Index size);  // all kNone
  void set(Index field, Index value);

 private:
  Index inline_[kInline] = {kNone, kNone, kNone, kNone};
  Index size_ = 0;
  std::vector<Index> more_;
};

// Fields read by every feasibility check (free, the inline values, the free
// port count) share the first cache line.
struct alignas(64) Agent {
  Resources free;  // total - used; negative when overcommitted
  FieldValues values;
  PortSet ports;
  Resources used;
  std::vector<Index> tasks;
  Index live_pos = kNone;     // position in Cluster::live_agents()
  bool live = false;
  AgentInfo info;

  Index value(Index field) const { return values.get(field); }
};

// Per-app counts live on the app (not the agent): one app's placements come
// in bursts, so its maps stay in cache.
struct App {
  std::string id;
  int tasks = 0;
  std::unordered_map<Index, int> agent_tasks;     // agent -> tasks there (> 0)
  std::unordered_map<uint64_t, int> value_tasks;  // value_key(field, value) -> tasks (> 0)
  std::vector<int> values_used;                   // by field: values with tasks > 0
  // The last constraints seen for this app, compiled (or why they are invalid).
  std::vector<Constraint> constraints;
  std::optional<Result<CompiledConstraints>> compiled;

  int tasks_on(Index field, Index value) const;
  int tasks_at(Index agent) const;
  int values_used_of(Index field) const {
    return field < values_used.size() ? values_used[field] : 0;
  }
};

struct Task {
  std::string id;
  Index agent = kNone, app = kNone;
  Resources res;
  std::vector<int> ports;
  Index agent_pos = 0;  // position in Agent::tasks
};

inline constexpr Index kHostnameField = 0;

class Cluster {
 public:
  Cluster();

  Index find_agent(std::string_view id) const;
  void upsert_agent(const AgentInfo& info);
  void remove_agent(Index a);

  Index intern_app(std::string_view id);
  Index find_task(std::string_view id) const;
  // Reserves `id` for a task about to be recorded (one hash lookup for both
  // the duplicate check and the insert); kNone if the id is already known.
  Index claim_task(const std::string& id);
  // Gives back a claimed id that was never recorded.
  void unclaim_task(Index t);
  // Records claimed task `t`; its ports are already taken on the agent's PortSet.
  void record_task(Index t, Index app, Index agent, const Resources& res, std::vector<int> ports);
  void remove_task(Index t);

  Agent& agent(Index a) { return agents_[a]; }
  const Agent& agent(Index a) const { return agents_[a]; }
  App& app(Index a) { return apps_[a]; }
  const App& app(Index a) const { return apps_[a]; }
  const Task& task(Index t) const { return tasks_[t]; }
  size_t task_count() const { return task_ids_.size(); }

  const std::vector<Index>& live_agents() const { return live_agents_; }
  // Live agents whose `field` is `value`; empty if none.
  const std::vector<Index>& agents_with(Index field, Index value) const;
  // Distinct values of `field` among live agents.
  const std::vector<Index>& values_of(Index field) const;

  StringPool fields, values;

 private:
  Index new_agent_slot(const std::string& id);
  void index_agent(Index a);
  void unindex_agent(Index a);
  void count_values(const Agent& ag, Index app, int delta);
  void count_agent_values(const Agent& ag, int delta);
  void count_task(Index agent, Index app, int delta);
  std::string_view task_id(Index t) const { return tasks_[t].id; }

  std::vector<Agent> agents_;
  std::vector<Index> free_agent_slots_;
  StringMap<Index> agent_ids_;
  std::vector<Index> live_agents_;
  std::unordered_map<uint64_t, std::vector<Index>> agents_by_value_;
  std::vector<std::vector<Index>> values_by_field_;

  std::vector<App> apps_;
  StringMap<Index> app_ids_;

  std::deque<Task> tasks_;  // a deque: grows without moving a million records at once
  std::vector<Index> free_task_slots_;
  TaskIndex task_ids_;
};

}  // namespace stele::sched::detail
