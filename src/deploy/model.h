// The control plane's records (design.md "Data model"), with JSON for the
// store. Plain values; the Cluster owns them.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/spec.h"
#include "scheduler/scheduler.h"

namespace stele::deploy {

// Mesos task states.
enum class TaskState { Staging, Starting, Running, Killing, Finished, Failed, Killed, Lost };
const char* to_string(TaskState s);
std::optional<TaskState> task_state_from(const std::string& s);
bool is_terminal(TaskState s);
// Marathon's TASK_* name.
std::string mesos_state(TaskState s);

struct Node {
  std::string id, hostname, address;
  sched::Resources total;
  std::vector<sched::PortRange> ports;
  std::map<std::string, std::string> attributes;
  std::vector<std::string> subscriptions;
  // What can run tasks there ("process", "docker"); agents that predate the
  // field have "process" only. docker_unavailable: the agent's reason.
  std::vector<std::string> containerizers{"process"};
  std::string docker_unavailable;
  bool has_containerizer(const std::string& name) const;
  std::string state = "active";  // active | lost
  int64_t registered_ms = 0;
  int64_t last_heartbeat_ms = 0;  // not persisted (design.md: heartbeats are not written)
  // Registered with this server process. Loaded nodes are not: until they
  // register again (and reconcile), their heartbeats are refused.
  bool session = false;
};

// The scheduler's picture of a node: its attributes plus one pseudo
// attribute "stele.containerizer.<name>" = "yes" per containerizer, which
// task_request() turns into a CLUSTER constraint for apps that need one.
inline constexpr const char* kContainerizerAttribute = "stele.containerizer.";
sched::AgentInfo scheduler_view(const Node& n);

struct HealthResult {
  int index = 0;
  bool alive = false;
  int consecutive_failures = 0;
  std::string first_success, last_success, last_failure, last_failure_cause;
};

struct Task {
  std::string id, app_id, agent_id, host;
  int64_t release = 0;
  int seq = 0;
  int launch = 0;
  int64_t generation = 0;   // app restart generation it was launched in
  std::vector<int> ports;
  TaskState state = TaskState::Staging;
  std::string reason, message;
  int pid = 0;
  std::optional<int> exit_code;
  int64_t staged_ms = 0, started_ms = 0, updated_ms = 0;
  bool has_health_checks = false;
  std::vector<HealthResult> health;
  bool kill_sent = false;
  // A planned stop waiting for the routers to drop it (ClusterOptions::
  // routers_synced_ms); 0 = not draining. Not persisted: a restarted server
  // drains again.
  int64_t drain_since_ms = 0;
  // "" for an app instance; "build" | "test" | "smoke" | "release" | "run"
  // for the pipeline's tasks, which the deployment controller leaves alone.
  std::string kind;
  Json launch_body;   // steps: the whole launch command (re-sent after a restart)
  Json result;        // steps: what the terminal update reported ({"artifact", "artifactSize"})

  // Counts toward capacity: running and, if the app has checks, all alive.
  bool healthy() const;
  bool alive() const { return !is_terminal(state); }
};

enum class PipelineStatus { Building, Testing, Ready, Failed };

struct Release {
  std::string app_id;
  int64_t number = 0;
  AppSpec spec;                   // the app version (full spec and env)
  std::string artifact;           // "" = none (plain cmd app); a Docker build's saved image tar
  std::string image;              // Docker build: the image id ("sha256:..."), "" for slugs
  std::string status = "ready";  // building | testing | ready | failed
  std::string cause;              // "api" | "config" | "push" | "webhook"
  int64_t created_ms = 0;
  int64_t finished_ms = 0;        // when status became final
  // Pipeline record (design.md "Release"): where the artifact came from.
  std::string sha, tree, ref;
  int64_t artifact_size = 0;
  int64_t reused_from = 0;        // release whose slug this one reuses (same git tree), 0 = built
  std::string built_on;           // agent that built it (holds the app's build cache)
  std::string step;               // the pipeline step running, or the one that failed
  std::string reason;             // why it failed
  std::map<std::string, int64_t> durations;  // step -> ms
  std::map<std::string, std::string> config;  // app config at creation; env = spec.env + config
  bool artifact_collected = false;  // retention removed its slug: no longer deployable
  // The environment the release runs with: spec env overlaid by config.
  AppSpec effective_spec() const;
  std::string version() const;    // Marathon version: ISO-8601 of created_ms
};

struct App {
  std::string id;
  int64_t current_release = 0;   // release the app runs (or is being deployed to)
  int64_t previous_release = 0;  // what a failed deployment returns to
  int instances = 1;             // scale (operational state)
  int64_t generation = 0;        // bumped by restart
  int64_t created_ms = 0;
  // Backoff for relaunching failed tasks (Marathon's backoffSeconds/Factor).
  int failures = 0;
  int64_t next_launch_ms = 0;
  std::string waiting_reason;    // why a task of this app cannot be placed now
  std::map<std::string, std::string> config;  // `stele config`: overlays releases' spec env
  std::map<std::string, int> step_launches;   // pipeline task kind -> launches so far
};

struct Deployment {
  std::string id;
  std::string app_id;
  int64_t from_release = 0, to_release = 0;
  int from_instances = 0, to_instances = 0;
  int64_t generation = 0;
  std::string kind;        // "deploy" | "scale" | "restart" | "rollback"
  std::string status = "running";  // running | succeeded | failed | canceled
  std::string step;        // human description of the current step
  std::string reason;      // why it failed
  int64_t started_ms = 0, finished_ms = 0;
  std::string version() const;
};

Json to_json(const Node&);
Json to_json(const Task&);
Json to_json(const Release&);
Json to_json(const App&);
Json to_json(const Deployment&);
Json to_json(const HealthResult&);
Node node_from(const Json&);
Task task_from(const Json&);
Release release_from(const Json&);
App app_from(const Json&);
Deployment deployment_from(const Json&);

}  // namespace stele::deploy
