// Cluster: the control plane's state machine — apps, releases, deployments,
// tasks and nodes — persisted through a Store and placed by the Scheduler.
// It does no network I/O: the API layer feeds it requests and agent
// messages and carries its agent commands and events out.
//
// Thread-safety: none. One thread (the server's io_context) owns it.
// Every mutating call persists before it returns success, so a change that
// was answered 2xx survives a crash.
#pragma once
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "deploy/model.h"
#include "deploy/upgrade.h"
#include "scheduler/scheduler.h"
#include "store/store.h"

namespace stele::deploy {

struct ClusterOptions {
  int64_t agent_timeout_ms = 30'000;
  int64_t deploy_timeout_ms = 600'000;
  int64_t heartbeat_interval_ms = 5'000;
  std::string forward_address;   // where agents ship logs/metrics (forward protocol); "" = nowhere
  std::string forward_shared_key;  // the forward input's shared key, told to registered agents
  bool forward_tls = false;        // the forward input speaks TLS: agents are told ("forwardTls")
  size_t task_history = 20;      // terminal tasks kept per app for the API
  // Drain before a planned stop (rolling upgrades, scale-down) of a routed
  // app's instance: it first leaves the routers' table (route_view.h) and is
  // sent its kill once every router runs a table computed after that --
  // routers_synced_ms() answers when that table was computed (wall ms on
  // the cluster's clock) -- or after drain_timeout_ms. Empty: no routers, no
  // drain.
  std::function<int64_t()> routers_synced_ms;
  int64_t drain_timeout_ms = 5'000;
};

// A command for one agent. Kept until the agent's status reports show it took
// effect, and re-sent on every (re)connect of the agent's command stream.
struct AgentCommand {
  int64_t seq = 0;
  std::string task_id;
  Json body;  // {"type": "launch", "task": {...}, "spec": {...}} | {"type": "kill", "taskId", "graceSeconds"}
};

// The outcome of an app change: the deployment started (if any).
struct ChangeResult {
  std::string deployment_id;  // empty when nothing needed to change
  int64_t release = 0;
};

// A one-off pipeline task (design.md: build, test, smoke, release, run).
struct StepRequest {
  std::string app_id;
  int64_t release = 0;
  std::string kind;            // build | test | smoke | release | run
  AppSpec spec;                // resources, env and user; a smoke run also uses its ports and health checks
  Json step;                   // {"kind", "cmd", "timeoutSeconds", ...} sent to the agent; null for smoke
  std::string artifact;        // slug digest the agent unpacks ("" for builds), or a saved image's
  std::string image;           // with `artifact` a saved image: its id, loaded unless the engine has it
  std::string prefer_agent;    // soft placement preference (the app's build cache)
};

class Cluster {
 public:
  Cluster(store::Store& store, const Clock& clock, ClusterOptions opts);
  ~Cluster();

  // Loads state from the store; every known agent's clock starts now.
  Result<void> load();

  // ---- apps (errors carry HTTP-ish codes: 404, 409, 422, 503)
  Result<ChangeResult> create_app(const AppSpec& spec, const std::string& actor);
  // Full spec change: a new release and a rolling deployment; a change of
  // `instances` alone only scales the current release.
  Result<ChangeResult> update_app(const AppSpec& spec, bool force, const std::string& actor);
  Result<ChangeResult> scale(const std::string& app_id, int instances, bool force, const std::string& actor);
  Result<ChangeResult> restart(const std::string& app_id, bool force, const std::string& actor);
  // Deploys an earlier ready release (rollback when it is older).
  Result<ChangeResult> deploy_release(const std::string& app_id, int64_t release, bool force, const std::string& actor);
  Result<ChangeResult> rollback(const std::string& app_id, std::optional<int64_t> release, bool force, const std::string& actor);
  Result<ChangeResult> delete_app(const std::string& app_id, bool force, const std::string& actor);
  // Kills tasks; with `scale` the app's instances shrink by their number.
  Result<ChangeResult> kill_tasks(const std::vector<std::string>& task_ids, bool scale, const std::string& actor);
  // Marathon DELETE /v2/deployments/{id}: without force, rolls back to the
  // state before it; with force, just stops tracking it.
  Result<ChangeResult> cancel_deployment(const std::string& deployment_id, bool force, const std::string& actor);

  // ---- pipeline support
  // An app with no release yet (`stele create`): its first push makes one.
  // `instances` > 0 overrides the first release's spec as the initial scale.
  Result<void> create_empty_app(const std::string& app_id, const std::string& actor, int instances = 0);
  // Adds a release numbered after the app's last, carrying the app's config.
  // Returns its number. Its status should be "building" (pipeline) or "ready".
  Result<int64_t> add_release(Release rel, const std::string& actor);
  // Updates the pipeline record of a release whose status is not final yet
  // (409 once it is ready or failed). Emits release_<status> when it changes.
  Result<void> update_release(const Release& rel);
  // PATCH config: {"K": "V" | null}. A new ready release with the current
  // release's artifact and the new config, rolled out (superseding a running
  // deployment, as pipeline releases do). An app with no release keeps the
  // config for its first one (release 0 in the result).
  Result<ChangeResult> set_config(const std::string& app_id,
                                  const std::map<std::string, std::optional<std::string>>& changes,
                                  const std::string& actor);
  // Retention took the release's slug: it can no longer be deployed.
  Result<void> mark_artifact_collected(const std::string& app_id, int64_t release);
  // Places and launches a pipeline task; returns its id. 503 when no agent fits.
  Result<std::string> start_step(const StepRequest& req, const std::string& actor);

  // The cluster's clock (ms), for callers whose times it compares.
  int64_t now_ms() const;

  // ---- queries (pointers valid until the next mutating call)
  const App* app(const std::string& id) const;
  std::vector<const App*> apps() const;
  const Release* release(const std::string& app_id, int64_t n) const;
  const Release* current_release(const std::string& app_id) const;
  std::vector<const Release*> releases(const std::string& app_id) const;
  std::vector<const Task*> tasks(const std::string& app_id = "") const;  // live tasks
  std::vector<const Task*> task_history(const std::string& app_id) const;  // recent terminal tasks
  const Task* task(const std::string& id) const;
  std::vector<const Node*> nodes() const;
  const Node* node(const std::string& id) const;
  sched::Resources node_used(const std::string& id) const;
  std::vector<int> node_used_ports(const std::string& id) const;
  std::vector<const Deployment*> deployments(bool active_only = true) const;
  const Deployment* active_deployment(const std::string& app_id) const;

  // ---- agent protocol
  // Registration with the agent's surviving tasks ([{taskId, state, ...}]).
  // Answer: {"heartbeatIntervalMs", "agentTimeoutMs", "forward", "kill": [task ids]}.
  Result<Json> register_agent(const Node& info, const Json& tasks);
  // false when the agent is unknown or lost (it must re-register).
  bool heartbeat(const std::string& agent_id);
  // One status update; idempotent (a repeated update changes nothing).
  Result<void> task_status(const std::string& agent_id, const Json& update);
  std::vector<AgentCommand> commands(const std::string& agent_id, int64_t after_seq) const;

  // Runs the reconciliation: lost agents, placements, deployments.
  void tick();

  // Hooks for the API layer (set before load()).
  std::function<void(const Json& event)> on_event;               // after it is stored, with its id
  std::function<void(const std::string& agent_id)> on_command;   // new command queued

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// A spec -> the scheduler's request for one of its tasks.
sched::TaskRequest task_request(const AppSpec& spec);

}  // namespace stele::deploy
