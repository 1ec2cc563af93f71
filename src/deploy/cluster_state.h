// Private to src/deploy: the Cluster's state and its persistence helpers,
// shared by cluster.cpp (app changes), cluster_agents.cpp (agent protocol)
// and cluster_tick.cpp (reconciliation).
#pragma once
#include <algorithm>
#include <deque>
#include <map>
#include <set>

#include "common/names.h"
#include "deploy/cluster.h"

namespace stele::deploy {

// Calls f on each live task of one app. Every task id starts with "<app
// name>-r" (names.h task_id, and the pipeline's step ids), so this walks one
// range of the id-ordered map instead of every task; apps whose names extend
// that prefix are filtered out by app_id.
template <class Tasks, class F>
void for_app_tasks(Tasks& tasks, const std::string& app_id, F&& f) {
  std::string prefix = app_name(app_id) + "-r";
  for (auto it = tasks.lower_bound(prefix); it != tasks.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it)
    if (it->second.app_id == app_id) f(it->second);
}


// "<app name>-r<release>.<kind>.<launch>": the id of a pipeline task.
std::string step_task_id(const std::string& app_id, int64_t release, const std::string& kind, int launch);

struct Cluster::State {
  store::Store& store;
  const Clock& clock;
  ClusterOptions opts;
  Cluster& self;
  sched::Scheduler scheduler;

  std::map<std::string, App> apps;
  std::map<std::string, std::map<int64_t, Release>> releases;  // app -> n -> release
  std::map<std::string, Task> tasks;                            // live tasks by id
  std::map<std::string, std::deque<Task>> history;              // app -> recent terminal tasks
  std::map<std::string, Node> nodes;
  std::map<std::string, Deployment> deployments;                // by id (active and recent)
  std::map<std::string, std::deque<AgentCommand>> outbox;       // agent -> commands
  std::map<std::string, std::map<int, int>> launches;           // app -> seq -> launches so far
  int64_t command_seq = 0;

  State(store::Store& st, const Clock& c, ClusterOptions o, Cluster& s)
      : store(st), clock(c), opts(std::move(o)), self(s) {}

  int64_t now() const { return clock.now_ms(); }

  // A batch of writes and events committed together.
  struct Tx {
    std::vector<store::Write> writes;
    std::vector<Json> events;
  };
  Result<void> commit(Tx& tx);

  static store::Write put(const std::string& coll, const std::string& key, const Json& j) {
    return {coll, key, j.dump()};
  }
  static store::Write del(const std::string& coll, const std::string& key) { return {coll, key, std::nullopt}; }
  static std::string release_key(const std::string& app, int64_t n);

  // The app record with its per-slot launch counters.
  Json app_doc(const App& a) const;
  Json event(const std::string& type, const std::string& app, const std::string& actor = "") const;
  Deployment* active_deployment(const std::string& app_id);
  App* find_app(const std::string& id);
  // Starts a deployment of (release, instances, generation) for the app,
  // cancelling a running one when forced. Adds writes/events to tx.
  Result<ChangeResult> start_deployment(App& app, const std::string& kind, int64_t to_release, int to_instances,
                                        int64_t to_generation, bool force, const std::string& actor, Tx& tx);
  void finish_deployment(Deployment& d, const std::string& status, const std::string& reason, Tx& tx);
  // Queues a kill for a live task, with its release's kill grace period.
  void send_kill(Task& t, Tx& tx);
  bool drained(Task& t, const Release& rel);
  // taskKillGracePeriodSeconds of the task's own release (3 s if it is gone).
  double kill_grace(const Task& t) const;
  static Json kill_command(const std::string& task_id, double grace_seconds);
  void queue_command(const std::string& agent_id, const std::string& task_id, Json body);
  void drop_commands(const std::string& agent_id, const std::string& task_id, const std::string& type);
  // A task reached a terminal state: history, scheduler, backoff.
  void retire_task(Task& t, Tx& tx);
  Json task_event(const Task& t) const;
  Json release_event(const Release& rel, const std::string& type, const std::string& actor) const;
  // Cpus/mem/disk a task holds: its release's spec, or a step's own spec.
  sched::Resources task_resources(const Task& t) const;
  void reconcile_app(App& app, Tx& tx);
  static Json launch_command(const Task& t, const Release& rel);
  void launch_task(App& app, const Release& rel, int seq, Tx& tx);
  std::string unplaceable_reason(const AppSpec& spec, const std::string& scheduler_reason) const;
  void check_agents(Tx& tx);
};

}  // namespace stele::deploy
