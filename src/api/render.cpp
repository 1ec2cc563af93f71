// JSON renderings of the Cluster's records: native and Marathon shapes.
#include "api/api_impl.h"
#include "common/clock.h"

namespace stele::api {

using namespace deploy;

Json render_task(const Task& t) {
  Json health = Json::array();
  for (auto& h : t.health) health.push_back(to_json(h));
  Json j = {{"id", t.id}, {"appId", t.app_id}, {"agentId", t.agent_id}, {"host", t.host},
            {"release", t.release}, {"seq", t.seq}, {"ports", t.ports}, {"state", to_string(t.state)},
            {"healthy", t.healthy()}, {"health", health}, {"pid", t.pid}, {"reason", t.reason},
            {"message", t.message}, {"stagedAt", iso8601(t.staged_ms)},
            {"startedAt", t.started_ms ? Json(iso8601(t.started_ms)) : Json()}};
  if (t.exit_code) j["exitCode"] = *t.exit_code;
  return j;
}

namespace {
struct TaskCounts {
  int running = 0, staged = 0, healthy = 0, unhealthy = 0;
};
TaskCounts count_tasks(const Cluster& c, const std::string& app_id) {
  TaskCounts n;
  for (const Task* t : c.tasks(app_id)) {
    if (t->state == TaskState::Running) ++n.running;
    if (t->state == TaskState::Staging || t->state == TaskState::Starting) ++n.staged;
    if (t->has_health_checks && t->state == TaskState::Running) (t->healthy() ? n.healthy : n.unhealthy)++;
  }
  return n;
}
}  // namespace

Json render_deployment(const Deployment& d) { return to_json(d); }

Json render_app(const Cluster& c, const App& a) {
  const Release* rel = c.current_release(a.id);
  auto n = count_tasks(c, a.id);
  const Deployment* d = c.active_deployment(a.id);
  // Where the current release's code came from (pushed releases only).
  Json source = rel && !rel->ref.empty()
                    ? Json{{"git", "/git/" + app_name(a.id) + ".git"}, {"ref", rel->ref}, {"sha", rel->sha}}
                    : Json();
  return {{"id", a.id}, {"spec", rel ? app_spec_json(rel->spec) : Json()}, {"instances", a.instances},
          {"source", source},
          {"release", a.current_release}, {"previousRelease", a.previous_release},
          {"tasksRunning", n.running}, {"tasksStaged", n.staged}, {"tasksHealthy", n.healthy},
          {"tasksUnhealthy", n.unhealthy}, {"deployment", d ? render_deployment(*d) : Json()},
          {"waiting", a.waiting_reason.empty() ? Json() : Json(a.waiting_reason)},
          {"created", iso8601(a.created_ms)}};
}

Json render_release(const Cluster& c, const Release& r) {
  Json j = to_json(r);
  const App* a = c.app(r.app_id);
  j["current"] = a && a->current_release == r.number;
  j["created"] = iso8601(r.created_ms);
  j["finished"] = r.finished_ms ? Json(iso8601(r.finished_ms)) : Json(nullptr);
  // Config values stay out of API answers; GET .../config?reveal=1 shows them.
  Json config = Json::object();
  for (const auto& [k, v] : r.config) config[k] = "****";
  j["config"] = config;
  return j;
}

Json render_node(const Cluster& c, const Node& n) {
  Json j = to_json(n);
  auto used = c.node_used(n.id);
  j["used"] = {{"cpus", used.cpus}, {"mem", used.mem}, {"disk", used.disk}};
  j["usedPorts"] = c.node_used_ports(n.id);
  j["lastHeartbeat"] = iso8601(n.last_heartbeat_ms);
  j["registered"] = iso8601(n.registered_ms);
  return j;
}

Json marathon_task(const Cluster& c, const Task& t) {
  const Release* rel = c.release(t.app_id, t.release);
  Json hc = Json::array();
  for (auto& h : t.health) {
    Json r = to_json(h);
    r["taskId"] = t.id;
    r.erase("index");
    hc.push_back(r);
  }
  Json j = {{"id", t.id}, {"appId", t.app_id}, {"host", t.host}, {"ports", t.ports},
            {"servicePorts", Json::array()}, {"slaveId", t.agent_id}, {"agentId", t.agent_id},
            {"state", mesos_state(t.state)}, {"stagedAt", iso8601(t.staged_ms)},
            {"version", rel ? rel->version() : ""},
            {"ipAddresses", Json::array({{{"ipAddress", t.host}, {"protocol", "IPv4"}}})}};
  if (t.started_ms) j["startedAt"] = iso8601(t.started_ms);
  if (t.has_health_checks) j["healthCheckResults"] = hc;
  return j;
}

Json marathon_app(const Cluster& c, const App& a, bool embed_tasks) {
  const Release* rel = c.current_release(a.id);
  Json j = rel ? app_spec_json(rel->spec) : Json{{"id", a.id}};
  j["instances"] = a.instances;
  j["version"] = rel ? rel->version() : "";
  j["versionInfo"] = {{"lastScalingAt", j["version"]}, {"lastConfigChangeAt", j["version"]}};
  auto n = count_tasks(c, a.id);
  j["tasksRunning"] = n.running;
  j["tasksStaged"] = n.staged;
  j["tasksHealthy"] = n.healthy;
  j["tasksUnhealthy"] = n.unhealthy;
  Json deps = Json::array();
  if (const Deployment* d = c.active_deployment(a.id)) deps.push_back({{"id", d->id}});
  j["deployments"] = deps;
  if (embed_tasks) {
    Json tasks = Json::array();
    for (const Task* t : c.tasks(a.id)) tasks.push_back(marathon_task(c, *t));
    j["tasks"] = tasks;
    auto history = c.task_history(a.id);
    for (auto it = history.rbegin(); it != history.rend(); ++it) {
      const Task* t = *it;
      if (t->state == TaskState::Failed || t->state == TaskState::Lost) {
        j["lastTaskFailure"] = {{"appId", a.id}, {"host", t->host}, {"message", t->reason.empty() ? t->message : t->reason},
                                {"state", mesos_state(t->state)}, {"taskId", t->id},
                                {"timestamp", iso8601(t->updated_ms)}, {"version", j["version"]}};
        break;
      }
    }
  }
  return j;
}

Json marathon_deployment(const Deployment& d) {
  // Marathon: a new app starts, an instance change scales, anything else restarts.
  std::string action = d.kind == "scale" ? "ScaleApplication" : d.from_release == 0 ? "StartApplication" : "RestartApplication";
  Json steps = Json::array({Json::array({{{"action", action}, {"app", d.app_id}}})});
  return {{"id", d.id}, {"version", d.version()}, {"affectedApps", {d.app_id}}, {"affectedPods", Json::array()},
          {"steps", steps}, {"currentActions", Json::array({{{"action", action}, {"app", d.app_id}, {"readinessCheckResults", Json::array()}}})},
          {"currentStep", 1}, {"totalSteps", 1}};
}

std::optional<Json> marathon_event(const Json& e) {
  std::string type = e.value("type", "");
  std::string ts = e.value("time", "");
  if (type == "task_status") {
    std::string st = e.value("state", "");
    for (auto& ch : st) ch = static_cast<char>(toupper(ch));
    return Json{{"eventType", "status_update_event"}, {"timestamp", ts}, {"appId", e.value("app", "")},
                {"taskId", e.value("task", "")}, {"slaveId", e.value("agentId", "")},
                {"taskStatus", "TASK_" + st}, {"host", e.value("host", "")},
                {"ports", e.value("ports", Json::array())}, {"message", e.value("reason", "")},
                {"version", ""}};
  }
  if (type == "health_changed")
    return Json{{"eventType", "health_status_changed_event"}, {"timestamp", ts}, {"appId", e.value("app", "")},
                {"taskId", e.value("task", "")}, {"instanceId", e.value("task", "")}, {"alive", e.value("alive", false)}};
  if (type == "deployment_started" || type == "deployment_step") {
    auto d = deployment_from(e.value("deployment", Json::object()));
    return Json{{"eventType", type == "deployment_started" ? "deployment_info" : "deployment_step_success"},
                {"timestamp", ts}, {"plan", marathon_deployment(d)}, {"currentStep", marathon_deployment(d)["steps"][0]}};
  }
  if (type == "deployment_succeeded" || type == "deployment_failed") {
    auto d = deployment_from(e.value("deployment", Json::object()));
    return Json{{"eventType", type == "deployment_succeeded" ? "deployment_success" : "deployment_failed"},
                {"timestamp", ts}, {"id", d.id}, {"plan", marathon_deployment(d)}};
  }
  if (type == "app_created" || type == "release_created" || type == "app_scaled")
    return Json{{"eventType", "api_post_event"}, {"timestamp", ts}, {"clientIp", ""}, {"uri", "/v2/apps" + e.value("app", "")},
                {"appDefinition", {{"id", e.value("app", "")}}}};
  if (type == "app_deleted")
    return Json{{"eventType", "app_terminated_event"}, {"timestamp", ts}, {"appId", e.value("app", "")}};
  return std::nullopt;
}

}  // namespace stele::api
