// Reconciliation: lost agents, replacement and placement of tasks, and the
// progress of deployments. Runs on every tick and after every change.
#include <spdlog/spdlog.h>

#include "common/names.h"
#include "deploy/cluster_state.h"

namespace stele::deploy {

void Cluster::State::check_agents(Tx& tx) {
  for (auto& [id, n] : nodes) {
    if (n.state != "active" || now() - n.last_heartbeat_ms <= opts.agent_timeout_ms) continue;
    n.state = "lost";
    spdlog::warn("agent {} ({}) lost: no heartbeat for {} ms", id, n.hostname, opts.agent_timeout_ms);
    tx.writes.push_back(put("nodes", id, to_json(n)));
    Json e = event("node_lost", "");
    e["node"] = to_json(n);
    tx.events.push_back(std::move(e));
    std::vector<std::string> lost;
    for (auto& [tid, t] : tasks)
      if (t.agent_id == id) lost.push_back(tid);
    for (auto& tid : lost) {
      Task& t = tasks[tid];
      bool killing = t.kill_sent;
      t.state = killing ? TaskState::Killed : TaskState::Lost;
      t.reason = "agent " + n.hostname + " lost";
      t.updated_ms = now();
      tx.events.push_back(task_event(t));
      retire_task(t, tx);
    }
    scheduler.remove_agent(id);
    outbox.erase(id);
  }
}

Json Cluster::State::launch_command(const Task& t, const Release& rel) {
  Json c = {{"type", "launch"},
            {"task", {{"id", t.id}, {"appId", t.app_id}, {"release", t.release}, {"seq", t.seq},
                      {"ports", t.ports}, {"host", t.host}}},
            {"spec", app_spec_json(rel.effective_spec())},
            {"artifact", rel.artifact}};
  if (!rel.image.empty()) c["image"] = rel.image;  // the artifact is the saved image (agent_launch.cpp)
  return c;
}

// A DOCKER app with no agent offering docker waits for that, said plainly
// (with the agents' own reasons) rather than as a failed constraint.
std::string Cluster::State::unplaceable_reason(const AppSpec& spec, const std::string& scheduler_reason) const {
  if (containerizer_of(spec) != "docker") return scheduler_reason;
  std::string reasons;
  for (const auto& [id, n] : nodes) {
    if (n.state != "active") continue;
    if (n.has_containerizer("docker")) return scheduler_reason;
    reasons += (reasons.empty() ? "" : "; ") + n.hostname + ": " +
               (n.docker_unavailable.empty() ? "no docker containerizer" : n.docker_unavailable);
  }
  return "no agent has a Docker engine" + (reasons.empty() ? std::string() : " (" + reasons + ")");
}

void Cluster::State::launch_task(App& app, const Release& rel, int seq, Tx& tx) {
  int n = ++launches[app.id][seq];
  Task t;
  t.id = task_id(app.id, rel.number, seq, n);
  auto placed = scheduler.place(t.id, task_request(rel.spec));
  if (!placed) {
    --launches[app.id][seq];
    std::string why = unplaceable_reason(rel.spec, placed.error().message);
    if (app.waiting_reason != why) {
      app.waiting_reason = why;
      Json e = event("task_waiting", app.id);
      e["reason"] = app.waiting_reason;
      e["release"] = rel.number;
      tx.events.push_back(std::move(e));
      spdlog::info("{}: cannot place slot {}: {}", app.id, seq, app.waiting_reason);
    }
    return;
  }
  app.waiting_reason.clear();
  const Node& node = nodes[placed->agent_id];
  t.app_id = app.id;
  t.agent_id = placed->agent_id;
  t.host = node.address;
  t.release = rel.number;
  t.seq = seq;
  t.launch = n;
  t.generation = app.generation;
  t.ports = placed->ports;
  t.state = TaskState::Staging;
  t.staged_ms = t.updated_ms = now();
  t.has_health_checks = !rel.spec.health_checks.empty();
  tasks[t.id] = t;
  queue_command(t.agent_id, t.id, launch_command(t, rel));
  tx.writes.push_back(put("tasks", t.id, to_json(t)));
  tx.writes.push_back(put("apps", app.id, app_doc(app)));
  tx.events.push_back(task_event(t));
}

// Whether a planned stop of `t` may be sent now: at once for apps without
// routes or without routers; else once the routers run a table computed
// after the drain began (the task is out of it), or after the drain timeout.
bool Cluster::State::drained(Task& t, const Release& rel) {
  if (!opts.routers_synced_ms || rel.spec.routes.empty() || t.state != TaskState::Running) return true;
  int64_t n = now();
  if (t.drain_since_ms == 0) {
    t.drain_since_ms = n;
    return false;
  }
  return opts.routers_synced_ms() > t.drain_since_ms || n - t.drain_since_ms >= opts.drain_timeout_ms;
}

void Cluster::State::reconcile_app(App& app, Tx& tx) {
  const Release* rel = self.release(app.id, app.current_release);
  if (!rel) return;
  UpgradeInput in;
  in.target = app.instances;
  in.minimum_health_capacity = rel->spec.upgrade_strategy.minimum_health_capacity;
  in.maximum_over_capacity = rel->spec.upgrade_strategy.maximum_over_capacity;
  for_app_tasks(tasks, app.id, [&](Task& t) {
    if (!t.kind.empty()) return;
    in.tasks.push_back(PlanTask{t.id, t.seq, t.release == app.current_release && t.generation == app.generation,
                                t.healthy(), t.kill_sent});
  });
  UpgradePlan plan = plan_upgrade(in);
  for (const auto& id : plan.kill) {
    Task& t = tasks[id];
    if (drained(t, *rel)) send_kill(t, tx);
  }
  if (now() >= app.next_launch_ms)
    for (int seq : plan.start_slots) launch_task(app, *rel, seq, tx);

  Deployment* d = active_deployment(app.id);
  if (!d) return;
  int healthy_new = 0, old = 0;
  for (const auto& pt : in.tasks) {
    if (pt.is_new && pt.healthy && !pt.killing) ++healthy_new;
    if (!pt.is_new) ++old;
  }
  std::string step = fmt::format("{}/{} new healthy, {} old", healthy_new, app.instances, old);
  if (!app.waiting_reason.empty()) step += " (waiting: " + app.waiting_reason + ")";
  if (plan.done) {
    finish_deployment(*d, "succeeded", "", tx);
    return;
  }
  if (now() - d->started_ms > opts.deploy_timeout_ms) {
    std::string reason = fmt::format("new instances not healthy within {} s ({})", opts.deploy_timeout_ms / 1000, step);
    Deployment failed = *d;
    finish_deployment(*d, "failed", reason, tx);
    if (failed.kind != "scale" || failed.from_release != failed.to_release) {
      // Back to where the app was before this deployment.
      // A new app has nothing to return to: it keeps its release at scale 0.
      if (failed.from_release != 0) app.current_release = failed.from_release;
      app.instances = failed.from_release != 0 ? failed.from_instances : 0;
      if (failed.kind == "restart") app.generation = failed.generation - 1;
      app.failures = 0;
      app.next_launch_ms = 0;
      tx.writes.push_back(put("apps", app.id, app_doc(app)));
      Json e = event("app_reverted", app.id);
      e["release"] = app.current_release;
      e["reason"] = reason;
      tx.events.push_back(std::move(e));
    }
    return;
  }
  if (step != d->step) {
    d->step = step;
    tx.writes.push_back(put("deployments", d->id, to_json(*d)));
    Json e = event("deployment_step", app.id);
    e["deployment"] = to_json(*d);
    tx.events.push_back(std::move(e));
  }
}

void Cluster::tick() {
  State::Tx tx;
  s_->check_agents(tx);
  for (auto& [id, app] : s_->apps) s_->reconcile_app(app, tx);
  // Kills of tasks whose app is gone.
  for (auto& [id, t] : s_->tasks)
    if (!s_->apps.count(t.app_id) && !t.kill_sent) s_->send_kill(t, tx);
  (void)s_->commit(tx);
}

}  // namespace stele::deploy
