// The agent side of the Cluster: registration, heartbeats, status updates,
// the per-agent command outbox.
#include <spdlog/spdlog.h>

#include "common/names.h"
#include "deploy/cluster_state.h"

namespace stele::deploy {

void Cluster::State::queue_command(const std::string& agent_id, const std::string& task_id, Json body) {
  outbox[agent_id].push_back(AgentCommand{++command_seq, task_id, std::move(body)});
  if (self.on_command) self.on_command(agent_id);
}

void Cluster::State::drop_commands(const std::string& agent_id, const std::string& task_id, const std::string& type) {
  auto it = outbox.find(agent_id);
  if (it == outbox.end()) return;
  auto& q = it->second;
  q.erase(std::remove_if(q.begin(), q.end(),
                         [&](const AgentCommand& c) {
                           return c.task_id == task_id && (type.empty() || c.body.value("type", "") == type);
                         }),
          q.end());
}

double Cluster::State::kill_grace(const Task& t) const {
  const Release* rel = self.release(t.app_id, t.release);
  return rel ? rel->spec.task_kill_grace_period_seconds : 3.0;
}

Json Cluster::State::kill_command(const std::string& task_id, double grace_seconds) {
  return {{"type", "kill"}, {"taskId", task_id}, {"graceSeconds", grace_seconds}};
}

void Cluster::State::send_kill(Task& t, Tx& tx) {
  if (!t.alive()) return;
  t.kill_sent = true;
  if (t.state != TaskState::Staging) t.state = TaskState::Killing;
  t.updated_ms = now();
  drop_commands(t.agent_id, t.id, "launch");
  queue_command(t.agent_id, t.id, kill_command(t.id, kill_grace(t)));
  tx.writes.push_back(put("tasks", t.id, to_json(t)));
  tx.events.push_back(task_event(t));
}

Json Cluster::State::task_event(const Task& t) const {
  Json e = event("task_status", t.app_id);
  e["task"] = t.id;
  e["state"] = to_string(t.state);
  e["release"] = t.release;
  e["agentId"] = t.agent_id;
  e["host"] = t.host;
  e["ports"] = t.ports;
  if (!t.reason.empty()) e["reason"] = t.reason;
  if (!t.message.empty()) e["message"] = t.message;
  e["healthy"] = t.healthy();
  if (!t.kind.empty()) {
    e["kind"] = t.kind;
    if (t.exit_code) e["exitCode"] = *t.exit_code;
    if (t.result.is_object())
      for (auto& [k, v] : t.result.items()) e[k] = v;
  }
  return e;
}

sched::Resources Cluster::State::task_resources(const Task& t) const {
  if (!t.kind.empty() && t.launch_body.contains("spec")) {
    const Json& s = t.launch_body["spec"];
    return {s.value("cpus", 0.0), s.value("mem", 0.0), s.value("disk", 0.0)};
  }
  const Release* rel = self.release(t.app_id, t.release);
  return rel ? sched::Resources{rel->spec.cpus, rel->spec.mem, rel->spec.disk} : sched::Resources{};
}

void Cluster::State::retire_task(Task& t, Tx& tx) {
  scheduler.remove_task(t.id);
  drop_commands(t.agent_id, t.id, "");
  App* app = find_app(t.app_id);
  // Pipeline tasks end by design; their failures are the pipeline's to report.
  bool expected = t.kill_sent || t.state == TaskState::Finished || !t.kind.empty();
  if (app && !expected) {
    // Marathon's backoff: each unexpected end delays the next launch, unless
    // the task had been up long enough to count as recovered.
    const Release* rel = self.release(t.app_id, t.release);
    if (t.started_ms && now() - t.started_ms > 10'000) app->failures = 0;
    ++app->failures;
    double delay = rel ? rel->spec.backoff_seconds : 1.0;
    for (int i = 1; i < app->failures && rel; ++i) delay *= rel->spec.backoff_factor;
    if (rel) delay = std::min(delay, rel->spec.max_launch_delay_seconds);
    app->next_launch_ms = now() + static_cast<int64_t>(delay * 1000);
    tx.writes.push_back(put("apps", app->id, app_doc(*app)));
  }
  auto& h = history[t.app_id];
  h.push_back(t);
  while (h.size() > opts.task_history) h.pop_front();
  tx.writes.push_back(del("tasks", t.id));
  tasks.erase(t.id);
}

Result<Json> Cluster::register_agent(const Node& info, const Json& reported) {
  State::Tx tx;
  Node& n = s_->nodes[info.id];
  bool was_known = !n.id.empty();
  std::string prev_state = n.state;
  n = info;
  n.state = "active";
  n.session = true;
  n.registered_ms = s_->now();
  n.last_heartbeat_ms = s_->now();
  s_->scheduler.upsert_agent(scheduler_view(n));
  tx.writes.push_back(State::put("nodes", n.id, to_json(n)));
  Json e = s_->event(was_known ? "node_reregistered" : "node_registered", "", "agent:" + n.id);
  e["node"] = to_json(n);
  tx.events.push_back(std::move(e));

  // Reconcile: tasks the agent runs that we don't (or declared lost) are killed;
  // tasks we think it runs that it doesn't know and whose launch is not pending are lost.
  Json kill = Json::array();
  std::set<std::string> present;
  for (const auto& r : reported) {
    std::string id = r.value("taskId", "");
    present.insert(id);
    auto it = s_->tasks.find(id);
    if (it == s_->tasks.end() || it->second.agent_id != n.id) {
      kill.push_back(id);
      continue;
    }
    Task& t = it->second;
    bool kill_pending = false;
    for (auto& c : s_->outbox[n.id])
      if (c.task_id == t.id && c.body.value("type", "") == "kill") kill_pending = true;
    if (t.kill_sent && !kill_pending) s_->queue_command(n.id, t.id, State::kill_command(t.id, s_->kill_grace(t)));
    if (!s_->scheduler.has_task(t.id)) s_->scheduler.add_task(t.id, t.app_id, n.id, s_->task_resources(t), t.ports);
  }
  std::vector<std::string> gone;
  for (auto& [id, t] : s_->tasks) {
    if (t.agent_id != n.id || present.count(id)) continue;
    bool pending = false;
    for (auto& c : s_->outbox[n.id])
      if (c.task_id == id && c.body.value("type", "") == "launch") pending = true;
    if (!pending) gone.push_back(id);
  }
  for (auto& id : gone) {
    Task& t = s_->tasks[id];
    t.state = TaskState::Lost;
    t.reason = "agent " + n.hostname + " re-registered without this task";
    t.updated_ms = s_->now();
    tx.events.push_back(s_->task_event(t));
    s_->retire_task(t, tx);
  }
  if (auto c = s_->commit(tx); !c) return fail(c.error());
  spdlog::info("agent {} ({}, {}) {} with {} tasks{}", n.id, n.hostname, n.address,
               was_known ? (prev_state == "lost" ? "came back" : "re-registered") : "registered",
               reported.size(), kill.empty() ? "" : fmt::format(", killing {} unknown", kill.size()));
  return Json{{"heartbeatIntervalMs", s_->opts.heartbeat_interval_ms},
              {"agentTimeoutMs", s_->opts.agent_timeout_ms},
              {"forward", s_->opts.forward_address},
              {"forwardSharedKey", s_->opts.forward_shared_key},
              {"forwardTls", s_->opts.forward_tls},
              {"kill", kill}};
}

bool Cluster::heartbeat(const std::string& agent_id) {
  auto it = s_->nodes.find(agent_id);
  if (it == s_->nodes.end() || it->second.state != "active" || !it->second.session) return false;
  it->second.last_heartbeat_ms = s_->now();
  return true;
}

std::vector<AgentCommand> Cluster::commands(const std::string& agent_id, int64_t after) const {
  std::vector<AgentCommand> out;
  auto it = s_->outbox.find(agent_id);
  if (it == s_->outbox.end()) return out;
  for (const auto& c : it->second)
    if (c.seq > after) out.push_back(c);
  return out;
}

namespace {
std::vector<HealthResult> health_from_update(const Json& u) {
  std::vector<HealthResult> out;
  if (!u.contains("health") || !u["health"].is_array()) return out;
  for (const auto& h : u["health"]) {
    HealthResult r;
    r.index = h.value("index", 0);
    r.alive = h.value("alive", false);
    r.consecutive_failures = h.value("consecutiveFailures", 0);
    r.first_success = h.value("firstSuccess", "");
    r.last_success = h.value("lastSuccess", "");
    r.last_failure = h.value("lastFailure", "");
    r.last_failure_cause = h.value("lastFailureCause", "");
    out.push_back(r);
  }
  return out;
}
}  // namespace

Result<void> Cluster::task_status(const std::string& agent_id, const Json& u) {
  if (!u.is_object()) return fail(Error{"status update must be an object", {}, 400});
  std::string id = u.value("taskId", "");
  auto st = task_state_from(u.value("state", ""));
  if (!st) return fail(Error{"unknown task state '" + u.value("state", "") + "'", {{"/state", {"unknown state"}}}, 422});
  auto it = s_->tasks.find(id);
  if (it == s_->tasks.end() || it->second.agent_id != agent_id) {
    // Not ours (or already retired): the agent must kill it if it runs.
    if (!is_terminal(*st)) s_->queue_command(agent_id, id, State::kill_command(id, 0));
    return {};
  }
  Task& t = it->second;
  if (*st != TaskState::Staging) s_->drop_commands(agent_id, id, "launch");
  auto health = health_from_update(u);
  bool was_healthy = t.healthy();
  TaskState before = t.state;
  // A kill in progress stays "killing" until the task ends.
  if (!(t.state == TaskState::Killing && !is_terminal(*st))) t.state = *st;
  t.pid = u.value("pid", t.pid);
  if (u.contains("reason") && u["reason"].is_string() && !u["reason"].get<std::string>().empty()) t.reason = u["reason"];
  if (u.contains("message") && u["message"].is_string()) t.message = u["message"];
  if (u.contains("exitCode") && u["exitCode"].is_number_integer()) t.exit_code = u["exitCode"].get<int>();
  if (t.state == TaskState::Running && !t.started_ms) t.started_ms = u.value("startedMs", s_->now());
  if (u.contains("health")) t.health = health;
  if (!t.kind.empty() && is_terminal(*st)) {
    // What a step produced (a build's slug), passed on in its final event.
    Json result = Json::object();
    for (const char* k : {"artifact", "artifactSize", "image"})
      if (u.contains(k)) result[k] = u[k];
    if (!result.empty()) t.result = result;
  }
  bool changed = t.state != before || t.healthy() != was_healthy || u.contains("health");
  if (!changed) return {};
  t.updated_ms = s_->now();
  State::Tx tx;
  if (t.state != before) {
    Json e = s_->task_event(t);
    e["actor"] = "agent:" + agent_id;  // the agent's report
    tx.events.push_back(std::move(e));
  }
  if (t.healthy() != was_healthy && t.has_health_checks) {
    Json e = s_->event("health_changed", t.app_id, "agent:" + agent_id);
    e["task"] = t.id;
    e["alive"] = t.healthy();
    e["release"] = t.release;
    tx.events.push_back(std::move(e));
  }
  if (is_terminal(t.state)) s_->retire_task(t, tx);
  else tx.writes.push_back(State::put("tasks", t.id, to_json(t)));
  return s_->commit(tx);
}

}  // namespace stele::deploy
