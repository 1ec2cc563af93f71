#include "deploy/model.h"

#include <algorithm>

#include "common/clock.h"

namespace stele::deploy {

namespace {
const char* const kStates[] = {"staging", "starting", "running", "killing", "finished", "failed", "killed", "lost"};

template <class T>
T get_or(const Json& j, const char* k, T def) {
  auto it = j.find(k);
  if (it == j.end() || it->is_null()) return def;
  try {
    return it->get<T>();
  } catch (...) {
    return def;
  }
}
}  // namespace

const char* to_string(TaskState s) { return kStates[static_cast<int>(s)]; }

std::optional<TaskState> task_state_from(const std::string& s) {
  for (int i = 0; i < 8; ++i)
    if (s == kStates[i]) return static_cast<TaskState>(i);
  return std::nullopt;
}

bool is_terminal(TaskState s) { return s >= TaskState::Finished; }

std::string mesos_state(TaskState s) {
  std::string n = to_string(s);
  for (auto& c : n) c = static_cast<char>(toupper(c));
  return "TASK_" + n;
}

bool Task::healthy() const {
  if (state != TaskState::Running) return false;
  if (!has_health_checks) return true;
  if (health.empty()) return false;
  for (const auto& h : health)
    if (!h.alive) return false;
  return true;
}

std::string Release::version() const { return iso8601(created_ms); }
std::string Deployment::version() const { return iso8601(started_ms); }

Json to_json(const HealthResult& h) {
  Json j = {{"index", h.index}, {"alive", h.alive}, {"consecutiveFailures", h.consecutive_failures}};
  j["firstSuccess"] = h.first_success.empty() ? Json() : Json(h.first_success);
  j["lastSuccess"] = h.last_success.empty() ? Json() : Json(h.last_success);
  j["lastFailure"] = h.last_failure.empty() ? Json() : Json(h.last_failure);
  j["lastFailureCause"] = h.last_failure_cause.empty() ? Json() : Json(h.last_failure_cause);
  return j;
}

static HealthResult health_from(const Json& j) {
  HealthResult h;
  h.index = get_or(j, "index", 0);
  h.alive = get_or(j, "alive", false);
  h.consecutive_failures = get_or(j, "consecutiveFailures", 0);
  h.first_success = get_or<std::string>(j, "firstSuccess", "");
  h.last_success = get_or<std::string>(j, "lastSuccess", "");
  h.last_failure = get_or<std::string>(j, "lastFailure", "");
  h.last_failure_cause = get_or<std::string>(j, "lastFailureCause", "");
  return h;
}

Json to_json(const Node& n) {
  Json ports = Json::array();
  for (auto& r : n.ports) ports.push_back({r.begin, r.end});
  return {{"id", n.id}, {"hostname", n.hostname}, {"address", n.address},
          {"resources", {{"cpus", n.total.cpus}, {"mem", n.total.mem}, {"disk", n.total.disk}}},
          {"ports", ports}, {"attributes", n.attributes}, {"subscriptions", n.subscriptions},
          {"containerizers", n.containerizers},
          {"dockerUnavailable", n.docker_unavailable.empty() ? Json(nullptr) : Json(n.docker_unavailable)},
          {"state", n.state}, {"registered", n.registered_ms}};
}

sched::AgentInfo scheduler_view(const Node& n) {
  sched::AgentInfo a{n.id, n.hostname, n.attributes, n.total, n.ports};
  for (const auto& c : n.containerizers) a.attributes[kContainerizerAttribute + c] = "yes";
  return a;
}

bool Node::has_containerizer(const std::string& name) const {
  return std::find(containerizers.begin(), containerizers.end(), name) != containerizers.end();
}

Node node_from(const Json& j) {
  Node n;
  n.id = get_or<std::string>(j, "id", "");
  n.hostname = get_or<std::string>(j, "hostname", "");
  n.address = get_or<std::string>(j, "address", "");
  if (j.contains("resources")) {
    const auto& r = j["resources"];
    n.total = {get_or(r, "cpus", 0.0), get_or(r, "mem", 0.0), get_or(r, "disk", 0.0)};
  }
  if (j.contains("ports") && j["ports"].is_array())
    for (auto& p : j["ports"])
      if (p.is_array() && p.size() == 2) n.ports.push_back({p[0].get<int>(), p[1].get<int>()});
  n.attributes = get_or(j, "attributes", std::map<std::string, std::string>{});
  n.subscriptions = get_or(j, "subscriptions", std::vector<std::string>{});
  n.containerizers = get_or(j, "containerizers", std::vector<std::string>{"process"});
  n.docker_unavailable = get_or<std::string>(j, "dockerUnavailable", "");
  n.state = get_or<std::string>(j, "state", "active");
  n.registered_ms = get_or<int64_t>(j, "registered", 0);
  return n;
}

Json to_json(const Task& t) {
  Json health = Json::array();
  for (auto& h : t.health) health.push_back(to_json(h));
  Json j = {{"id", t.id}, {"appId", t.app_id}, {"agentId", t.agent_id}, {"host", t.host},
            {"release", t.release}, {"seq", t.seq}, {"launch", t.launch}, {"generation", t.generation},
            {"ports", t.ports}, {"state", to_string(t.state)}, {"reason", t.reason},
            {"message", t.message}, {"pid", t.pid}, {"stagedMs", t.staged_ms},
            {"startedMs", t.started_ms}, {"updatedMs", t.updated_ms},
            {"hasHealthChecks", t.has_health_checks}, {"health", health}, {"killSent", t.kill_sent}};
  if (t.exit_code) j["exitCode"] = *t.exit_code;
  if (!t.kind.empty()) {
    j["kind"] = t.kind;
    j["launchBody"] = t.launch_body;
    if (!t.result.is_null()) j["result"] = t.result;
  }
  return j;
}

Task task_from(const Json& j) {
  Task t;
  t.id = get_or<std::string>(j, "id", "");
  t.app_id = get_or<std::string>(j, "appId", "");
  t.agent_id = get_or<std::string>(j, "agentId", "");
  t.host = get_or<std::string>(j, "host", "");
  t.release = get_or<int64_t>(j, "release", 0);
  t.seq = get_or(j, "seq", 0);
  t.launch = get_or(j, "launch", 0);
  t.generation = get_or<int64_t>(j, "generation", 0);
  t.ports = get_or(j, "ports", std::vector<int>{});
  t.state = task_state_from(get_or<std::string>(j, "state", "lost")).value_or(TaskState::Lost);
  t.reason = get_or<std::string>(j, "reason", "");
  t.message = get_or<std::string>(j, "message", "");
  t.pid = get_or(j, "pid", 0);
  if (j.contains("exitCode")) t.exit_code = get_or(j, "exitCode", 0);
  t.staged_ms = get_or<int64_t>(j, "stagedMs", 0);
  t.started_ms = get_or<int64_t>(j, "startedMs", 0);
  t.updated_ms = get_or<int64_t>(j, "updatedMs", 0);
  t.has_health_checks = get_or(j, "hasHealthChecks", false);
  if (j.contains("health"))
    for (auto& h : j["health"]) t.health.push_back(health_from(h));
  t.kill_sent = get_or(j, "killSent", false);
  t.kind = get_or<std::string>(j, "kind", "");
  if (j.contains("launchBody")) t.launch_body = j["launchBody"];
  if (j.contains("result")) t.result = j["result"];
  return t;
}

AppSpec Release::effective_spec() const {
  AppSpec s = spec;
  for (const auto& [k, v] : config) s.env[k] = v;
  return s;
}

Json to_json(const Release& r) {
  return {{"appId", r.app_id}, {"number", r.number}, {"spec", app_spec_json(r.spec)},
          {"artifact", r.artifact}, {"status", r.status}, {"cause", r.cause},
          {"created", r.created_ms}, {"finished", r.finished_ms}, {"version", r.version()},
          {"sha", r.sha}, {"tree", r.tree}, {"ref", r.ref}, {"artifactSize", r.artifact_size},
          {"reusedFrom", r.reused_from}, {"builtOn", r.built_on}, {"step", r.step}, {"reason", r.reason},
          {"durations", r.durations}, {"config", r.config}, {"artifactCollected", r.artifact_collected}, {"image", r.image}};
}

Release release_from(const Json& j) {
  Release r;
  r.app_id = get_or<std::string>(j, "appId", "");
  r.number = get_or<int64_t>(j, "number", 0);
  if (auto s = parse_app_spec(j.value("spec", Json::object()))) r.spec = *s;
  r.artifact = get_or<std::string>(j, "artifact", "");
  r.status = get_or<std::string>(j, "status", "ready");
  r.cause = get_or<std::string>(j, "cause", "");
  r.created_ms = get_or<int64_t>(j, "created", 0);
  r.finished_ms = get_or<int64_t>(j, "finished", 0);
  r.sha = get_or<std::string>(j, "sha", "");
  r.tree = get_or<std::string>(j, "tree", "");
  r.ref = get_or<std::string>(j, "ref", "");
  r.artifact_size = get_or<int64_t>(j, "artifactSize", 0);
  r.reused_from = get_or<int64_t>(j, "reusedFrom", 0);
  r.built_on = get_or<std::string>(j, "builtOn", "");
  r.step = get_or<std::string>(j, "step", "");
  r.reason = get_or<std::string>(j, "reason", "");
  r.durations = get_or(j, "durations", std::map<std::string, int64_t>{});
  r.config = get_or(j, "config", std::map<std::string, std::string>{});
  r.artifact_collected = get_or(j, "artifactCollected", false);
  r.image = get_or<std::string>(j, "image", "");
  return r;
}

Json to_json(const App& a) {
  return {{"id", a.id}, {"currentRelease", a.current_release}, {"previousRelease", a.previous_release},
          {"instances", a.instances}, {"generation", a.generation}, {"created", a.created_ms},
          {"failures", a.failures}, {"nextLaunchMs", a.next_launch_ms}, {"config", a.config},
          {"stepLaunches", a.step_launches}};
}

App app_from(const Json& j) {
  App a;
  a.id = get_or<std::string>(j, "id", "");
  a.current_release = get_or<int64_t>(j, "currentRelease", 0);
  a.previous_release = get_or<int64_t>(j, "previousRelease", 0);
  a.instances = get_or(j, "instances", 1);
  a.generation = get_or<int64_t>(j, "generation", 0);
  a.created_ms = get_or<int64_t>(j, "created", 0);
  a.failures = get_or(j, "failures", 0);
  a.next_launch_ms = get_or<int64_t>(j, "nextLaunchMs", 0);
  a.config = get_or(j, "config", std::map<std::string, std::string>{});
  a.step_launches = get_or(j, "stepLaunches", std::map<std::string, int>{});
  return a;
}

Json to_json(const Deployment& d) {
  return {{"id", d.id}, {"appId", d.app_id}, {"fromRelease", d.from_release}, {"toRelease", d.to_release},
          {"fromInstances", d.from_instances}, {"toInstances", d.to_instances},
          {"generation", d.generation}, {"kind", d.kind}, {"status", d.status}, {"step", d.step},
          {"reason", d.reason}, {"started", d.started_ms}, {"finished", d.finished_ms},
          {"version", d.version()}};
}

Deployment deployment_from(const Json& j) {
  Deployment d;
  d.id = get_or<std::string>(j, "id", "");
  d.app_id = get_or<std::string>(j, "appId", "");
  d.from_release = get_or<int64_t>(j, "fromRelease", 0);
  d.to_release = get_or<int64_t>(j, "toRelease", 0);
  d.from_instances = get_or(j, "fromInstances", 0);
  d.to_instances = get_or(j, "toInstances", 0);
  d.generation = get_or<int64_t>(j, "generation", 0);
  d.kind = get_or<std::string>(j, "kind", "deploy");
  d.status = get_or<std::string>(j, "status", "running");
  d.step = get_or<std::string>(j, "step", "");
  d.reason = get_or<std::string>(j, "reason", "");
  d.started_ms = get_or<int64_t>(j, "started", 0);
  d.finished_ms = get_or<int64_t>(j, "finished", 0);
  return d;
}

}  // namespace stele::deploy
