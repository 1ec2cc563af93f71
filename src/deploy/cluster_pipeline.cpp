// The Cluster's side of the pipeline: apps created before their first push,
// releases the pipeline fills in step by step, config releases, retention
// marks, and the one-off tasks (build, test, smoke, release, run) placed on
// agents like app instances but never managed by the deployment controller.
#include <spdlog/spdlog.h>

#include "common/names.h"
#include "deploy/cluster_state.h"

namespace stele::deploy {

namespace {
bool final_status(const std::string& s) { return s == "ready" || s == "failed"; }
}  // namespace

std::string step_task_id(const std::string& app_id, int64_t release, const std::string& kind, int launch) {
  return fmt::format("{}-r{}.{}.{}", app_name(app_id), release, kind, launch);
}

Json Cluster::State::release_event(const Release& rel, const std::string& type, const std::string& actor) const {
  Json e = event(type, rel.app_id, actor);
  e["release"] = rel.number;
  e["status"] = rel.status;
  if (!rel.step.empty()) e["step"] = rel.step;
  if (!rel.reason.empty()) e["reason"] = rel.reason;
  if (!rel.artifact.empty()) e["artifact"] = rel.artifact;
  if (!rel.sha.empty()) e["sha"] = rel.sha;
  e["cause"] = rel.cause;
  return e;
}

Result<void> Cluster::create_empty_app(const std::string& app_id, const std::string& actor, int instances) {
  if (instances < 0) return fail(Error{"instances must be >= 0", {{"/instances", {"must be >= 0"}}}, 422});
  if (auto problem = app_id_problem(app_id); !problem.empty())
    return fail(Error{"app id is not valid", {{"/id", {problem}}}, 422});
  if (s_->apps.count(app_id)) return fail(Error{"An app with id [" + app_id + "] already exists.", {}, 409});
  std::string name = app_name(app_id);
  for (auto& [id, a] : s_->apps)
    if (app_name(id) == name)
      return fail(Error{"app name '" + name + "' of " + app_id + " equals that of existing app " + id,
                        {{"/id", {"app name '" + name + "' is taken by " + id}}}, 422});
  App app;
  app.id = app_id;
  app.created_ms = s_->now();
  app.instances = instances;
  s_->apps[app_id] = app;
  State::Tx tx;
  tx.writes.push_back(State::put("apps", app_id, s_->app_doc(app)));
  tx.events.push_back(s_->event("app_created", app_id, actor));
  return s_->commit(tx);
}

Result<int64_t> Cluster::add_release(Release rel, const std::string& actor) {
  App* app = s_->find_app(rel.app_id);
  if (!app) return fail(Error{"App '" + rel.app_id + "' does not exist", {}, 404});
  auto& rels = s_->releases[rel.app_id];
  rel.number = rels.empty() ? 1 : rels.rbegin()->first + 1;
  rel.config = app->config;
  rel.created_ms = s_->now();
  if (final_status(rel.status)) rel.finished_ms = rel.created_ms;
  rels[rel.number] = rel;
  State::Tx tx;
  tx.writes.push_back(State::put("releases", State::release_key(rel.app_id, rel.number), to_json(rel)));
  tx.events.push_back(s_->release_event(rel, "release_created", actor));
  if (auto c = s_->commit(tx); !c) return fail(c.error());
  return rel.number;
}

Result<void> Cluster::update_release(const Release& rel) {
  auto it = s_->releases.find(rel.app_id);
  if (it == s_->releases.end() || !it->second.count(rel.number))
    return fail(Error{"app " + rel.app_id + " has no release " + std::to_string(rel.number), {}, 404});
  Release& cur = it->second[rel.number];
  if (final_status(cur.status))
    return fail(Error{"release " + std::to_string(rel.number) + " is already " + cur.status + "; its status is final", {}, 409});
  std::string before = cur.status;
  int64_t created = cur.created_ms;
  cur = rel;
  cur.created_ms = created;
  if (final_status(cur.status)) cur.finished_ms = s_->now();
  State::Tx tx;
  tx.writes.push_back(State::put("releases", State::release_key(rel.app_id, rel.number), to_json(cur)));
  if (cur.status != before) tx.events.push_back(s_->release_event(cur, "release_" + cur.status, ""));
  return s_->commit(tx);
}

Result<ChangeResult> Cluster::set_config(const std::string& app_id,
                                         const std::map<std::string, std::optional<std::string>>& changes,
                                         const std::string& actor) {
  App* app = s_->find_app(app_id);
  if (!app) return fail(Error{"App '" + app_id + "' does not exist", {}, 404});
  Error bad{"config is not valid", {}, 422};
  for (const auto& [k, v] : changes)
    if (k.empty() || k.find('=') != std::string::npos || k.find('\0') != std::string::npos)
      bad.details.push_back({"/" + k, {"not a valid environment variable name"}});
  if (!bad.details.empty()) return fail(bad);
  auto config = app->config;
  for (const auto& [k, v] : changes) {
    if (v) config[k] = *v;
    else config.erase(k);
  }
  State::Tx tx;
  Json e = s_->event("config_changed", app_id, actor);
  Json keys = Json::array();
  for (const auto& [k, v] : changes) keys.push_back(k);
  e["keys"] = keys;  // names only: values never go into events
  const Release* cur = current_release(app_id);
  if (!cur) {
    app->config = config;
    tx.writes.push_back(State::put("apps", app_id, s_->app_doc(*app)));
    tx.events.push_back(std::move(e));
    if (auto c = s_->commit(tx); !c) return fail(c.error());
    return ChangeResult{};
  }
  Release rel = *cur;
  auto& rels = s_->releases[app_id];
  rel.number = rels.rbegin()->first + 1;
  rel.cause = "config";
  rel.config = config;
  rel.status = "ready";
  rel.created_ms = rel.finished_ms = s_->now();
  rel.reused_from = cur->reused_from ? cur->reused_from : cur->number;
  rel.durations.clear();
  rel.step.clear();
  rel.reason.clear();
  rels[rel.number] = rel;
  app->config = config;
  e["release"] = rel.number;
  tx.events.push_back(std::move(e));
  tx.writes.push_back(State::put("releases", State::release_key(app_id, rel.number), to_json(rel)));
  tx.events.push_back(s_->release_event(rel, "release_created", actor));
  auto res = s_->start_deployment(*app, "deploy", rel.number, app->instances, app->generation, true, actor, tx);
  if (!res) return res;
  if (auto c = s_->commit(tx); !c) return fail(c.error());
  return res;
}

Result<void> Cluster::mark_artifact_collected(const std::string& app_id, int64_t n) {
  auto it = s_->releases.find(app_id);
  if (it == s_->releases.end() || !it->second.count(n))
    return fail(Error{"app " + app_id + " has no release " + std::to_string(n), {}, 404});
  Release& rel = it->second[n];
  if (rel.artifact_collected) return {};
  rel.artifact_collected = true;
  State::Tx tx;
  tx.writes.push_back(State::put("releases", State::release_key(app_id, n), to_json(rel)));
  return s_->commit(tx);
}

Result<std::string> Cluster::start_step(const StepRequest& req, const std::string& actor) {
  App* app = s_->find_app(req.app_id);
  if (!app) return fail(Error{"App '" + req.app_id + "' does not exist", {}, 404});
  int n = app->step_launches[req.kind] + 1;
  Task t;
  t.id = step_task_id(req.app_id, req.release, req.kind, n);
  sched::TaskRequest tr = task_request(req.spec);
  tr.preferred_agent = req.prefer_agent;
  auto placed = s_->scheduler.place(t.id, tr);
  if (!placed) return fail(Error{"cannot place the " + req.kind + " task: " + placed.error().message, {}, 503});
  app->step_launches[req.kind] = n;
  const Node& node = s_->nodes[placed->agent_id];
  t.app_id = req.app_id;
  t.agent_id = placed->agent_id;
  t.host = node.address;
  t.release = req.release;
  t.seq = -1;
  t.launch = n;
  t.generation = app->generation;
  t.ports = placed->ports;
  t.state = TaskState::Staging;
  t.staged_ms = t.updated_ms = s_->now();
  t.has_health_checks = req.kind == "smoke" && !req.spec.health_checks.empty();
  t.kind = req.kind;
  t.launch_body = {{"type", "launch"},
                   {"task", {{"id", t.id}, {"appId", t.app_id}, {"release", t.release}, {"seq", t.seq},
                             {"ports", t.ports}, {"host", t.host}, {"kind", t.kind}}},
                   {"spec", app_spec_json(req.spec)},
                   {"artifact", req.artifact}};
  if (!req.image.empty()) t.launch_body["image"] = req.image;
  if (!req.step.is_null()) t.launch_body["step"] = req.step;
  s_->tasks[t.id] = t;
  s_->queue_command(t.agent_id, t.id, t.launch_body);
  State::Tx tx;
  tx.writes.push_back(State::put("tasks", t.id, to_json(t)));
  tx.writes.push_back(State::put("apps", app->id, s_->app_doc(*app)));
  Json e = s_->task_event(t);
  if (!actor.empty()) e["actor"] = actor;
  tx.events.push_back(std::move(e));
  if (auto c = s_->commit(tx); !c) return fail(c.error());
  spdlog::info("{}: {} task {} placed on {}", req.app_id, req.kind, t.id, node.hostname);
  return t.id;
}

}  // namespace stele::deploy
