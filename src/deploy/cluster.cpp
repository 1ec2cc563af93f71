#include "deploy/cluster.h"

#include <spdlog/spdlog.h>

#include <random>

#include "common/names.h"
#include "deploy/cluster_state.h"

namespace stele::deploy {

namespace {
std::string random_id() {
  static std::mt19937_64 rng{std::random_device{}()};
  char buf[40];
  snprintf(buf, sizeof buf, "%08llx-%04llx-%04llx-%012llx", (unsigned long long)(rng() & 0xffffffff),
           (unsigned long long)(rng() & 0xffff), (unsigned long long)(rng() & 0xffff),
           (unsigned long long)(rng() & 0xffffffffffffULL));
  return buf;
}

Error locked(const Deployment& d) {
  Error e{"App is locked by one or more deployments. Override with the option '?force=true'. "
          "View details at '/v2/deployments/<DEPLOYMENT_ID>'.", {}, 409};
  e.details.push_back({"/deployments", {d.id}});
  return e;
}
}  // namespace

sched::TaskRequest task_request(const AppSpec& spec) {
  sched::TaskRequest r;
  r.app_id = spec.id;
  r.res = {spec.cpus, spec.mem, spec.disk};
  for (const auto& p : spec.port_definitions) {
    if (spec.require_ports && p.port != 0) r.fixed_ports.push_back(p.port);
    else ++r.port_count;
  }
  r.constraints = spec.constraints;
  if (std::string c = containerizer_of(spec); c != "process")
    r.constraints.push_back({kContainerizerAttribute + c, "CLUSTER", "yes"});
  return r;
}

std::string Cluster::State::release_key(const std::string& app, int64_t n) {
  char buf[32];
  snprintf(buf, sizeof buf, "#%012lld", static_cast<long long>(n));
  return app + buf;
}

Result<void> Cluster::State::commit(Tx& tx) {
  if (tx.writes.empty() && tx.events.empty()) return {};
  std::vector<int64_t> ids;
  auto r = store.apply(tx.writes, tx.events, &ids);
  if (!r) {
    spdlog::error("state store write failed: {}", r.error().message);
    return fail("state store unavailable: " + r.error().message, 503);
  }
  for (size_t i = 0; i < tx.events.size() && i < ids.size(); ++i) {
    tx.events[i]["id"] = ids[i];
    if (self.on_event) self.on_event(tx.events[i]);
  }
  tx = Tx{};
  return {};
}

Json Cluster::State::app_doc(const App& a) const {
  Json j = to_json(a);
  Json l = Json::object();
  auto it = launches.find(a.id);
  if (it != launches.end())
    for (auto& [seq, n] : it->second) l[std::to_string(seq)] = n;
  j["launches"] = l;
  return j;
}

Json Cluster::State::event(const std::string& type, const std::string& app, const std::string& actor) const {
  Json e = {{"type", type}, {"time", iso8601(now())}};
  if (!app.empty()) e["app"] = app;
  // Who caused it: the API caller, an agent's report, or the control plane itself.
  e["actor"] = actor.empty() ? std::string("stele") : actor;
  return e;
}

App* Cluster::State::find_app(const std::string& id) {
  auto it = apps.find(id);
  return it == apps.end() ? nullptr : &it->second;
}

Deployment* Cluster::State::active_deployment(const std::string& app_id) {
  for (auto& [id, d] : deployments)
    if (d.app_id == app_id && d.status == "running") return &d;
  return nullptr;
}

void Cluster::State::finish_deployment(Deployment& d, const std::string& status, const std::string& reason, Tx& tx) {
  d.status = status;
  d.reason = reason;
  d.finished_ms = now();
  d.step = status == "succeeded" ? "done" : reason;
  tx.writes.push_back(put("deployments", d.id, to_json(d)));
  Json e = event("deployment_" + status, d.app_id);
  e["deployment"] = to_json(d);
  tx.events.push_back(std::move(e));
}

Result<ChangeResult> Cluster::State::start_deployment(App& app, const std::string& kind, int64_t to_release,
                                                      int to_instances, int64_t to_generation, bool force,
                                                      const std::string& actor, Tx& tx) {
  Deployment* running = active_deployment(app.id);
  if (running && !force) return fail(locked(*running));
  int64_t from_release = app.current_release;
  int from_instances = app.instances;
  if (running) {
    // A forced change supersedes the running deployment; its origin stays
    // the state to return to on failure.
    from_release = running->from_release;
    from_instances = running->from_instances;
    finish_deployment(*running, "canceled", "superseded by a newer deployment", tx);
  }
  Deployment d;
  d.id = random_id();
  d.app_id = app.id;
  d.kind = kind;
  d.from_release = from_release;
  d.from_instances = from_instances;
  d.to_release = to_release;
  d.to_instances = to_instances;
  d.generation = to_generation;
  d.started_ms = now();
  d.step = "starting";
  if (from_release != to_release) app.previous_release = from_release;
  app.current_release = to_release;
  app.instances = to_instances;
  app.generation = to_generation;
  app.failures = 0;
  app.next_launch_ms = 0;
  deployments[d.id] = d;
  tx.writes.push_back(put("deployments", d.id, to_json(d)));
  tx.writes.push_back(put("apps", app.id, app_doc(app)));
  Json e = event("deployment_started", app.id, actor);
  e["deployment"] = to_json(d);
  tx.events.push_back(std::move(e));
  return ChangeResult{d.id, to_release};
}

Cluster::Cluster(store::Store& store, const Clock& clock, ClusterOptions opts)
    : s_(std::make_unique<State>(store, clock, std::move(opts), *this)) {}

Cluster::~Cluster() = default;

Result<void> Cluster::load() {
  auto load_coll = [&](const char* c, auto&& fn) -> Result<void> {
    auto docs = s_->store.list(c);
    if (!docs) return fail(docs.error());
    for (auto& [k, v] : *docs) {
      if (auto j = parse_json(v)) fn(*j);
    }
    return {};
  };
  int64_t now = s_->now();
  auto r = load_coll("nodes", [&](const Json& j) {
    Node n = node_from(j);
    n.last_heartbeat_ms = now;  // every agent's clock starts at load (design.md)
    if (n.state == "active") s_->scheduler.upsert_agent(scheduler_view(n));
    s_->nodes[n.id] = n;
  });
  if (r) r = load_coll("apps", [&](const Json& j) {
    App a = app_from(j);
    Json launches = j.value("launches", Json::object());
    for (auto& [seq, n] : launches.items())
      if (n.is_number_integer()) s_->launches[a.id][atoi(seq.c_str())] = n.get<int>();
    s_->apps[a.id] = a;
  });
  if (r) r = load_coll("releases", [&](const Json& j) {
    Release rel = release_from(j);
    s_->releases[rel.app_id][rel.number] = rel;
  });
  if (r) r = load_coll("deployments", [&](const Json& j) {
    Deployment d = deployment_from(j);
    s_->deployments[d.id] = d;
  });
  if (r) r = load_coll("tasks", [&](const Json& j) {
    Task t = task_from(j);
    s_->tasks[t.id] = t;
    if (s_->scheduler.has_agent(t.agent_id))
      s_->scheduler.add_task(t.id, t.app_id, t.agent_id, s_->task_resources(t), t.ports);
  });
  if (!r) return r;
  // Commands not yet confirmed when the last server stopped are sent again:
  // launches of staging tasks and kills in progress.
  for (auto& [id, t] : s_->tasks) {
    const Release* rel = release(t.app_id, t.release);
    if (t.kill_sent)
      s_->queue_command(t.agent_id, id, State::kill_command(id, s_->kill_grace(t)));
    else if (t.state == TaskState::Staging && !t.kind.empty())
      s_->queue_command(t.agent_id, id, t.launch_body);
    else if (t.state == TaskState::Staging && rel)
      s_->queue_command(t.agent_id, id, State::launch_command(t, *rel));
  }
  spdlog::info("state loaded: {} apps, {} tasks, {} nodes", s_->apps.size(), s_->tasks.size(), s_->nodes.size());
  return {};
}

Result<ChangeResult> Cluster::create_app(const AppSpec& spec, const std::string& actor) {
  if (s_->apps.count(spec.id)) return fail(Error{"An app with id [" + spec.id + "] already exists.", {}, 409});
  std::string name = app_name(spec.id);
  for (auto& [id, a] : s_->apps)
    if (app_name(id) == name)
      return fail(Error{"app name '" + name + "' of " + spec.id + " equals that of existing app " + id, {{"/id", {"app name '" + name + "' is taken by " + id}}}, 422});
  State::Tx tx;
  App app;
  app.id = spec.id;
  app.created_ms = s_->now();
  app.instances = 0;
  Release rel;
  rel.app_id = spec.id;
  rel.number = 1;
  rel.spec = spec;
  rel.status = "ready";
  rel.cause = "api";
  rel.created_ms = rel.finished_ms = app.created_ms;
  s_->releases[spec.id][1] = rel;
  auto& stored = s_->apps[spec.id] = app;
  tx.writes.push_back(State::put("releases", State::release_key(spec.id, 1), to_json(rel)));
  Json e = s_->event("app_created", spec.id, actor);
  e["release"] = 1;
  tx.events.push_back(std::move(e));
  auto res = s_->start_deployment(stored, "deploy", 1, spec.instances, 0, false, actor, tx);
  if (!res) return res;
  if (auto c = s_->commit(tx); !c) return fail(c.error());
  return res;
}

Result<ChangeResult> Cluster::update_app(const AppSpec& spec, bool force, const std::string& actor) {
  App* app = s_->find_app(spec.id);
  if (!app) return create_app(spec, actor);
  const Release* cur = current_release(spec.id);
  if (cur && only_instances_differ(cur->spec, spec)) return scale(spec.id, spec.instances, force, actor);
  State::Tx tx;
  if (Deployment* d = s_->active_deployment(app->id); d && !force) return fail(locked(*d));
  Release rel;
  rel.app_id = spec.id;
  rel.number = s_->releases[spec.id].empty() ? 1 : s_->releases[spec.id].rbegin()->first + 1;
  rel.spec = spec;
  rel.cause = "api";
  rel.created_ms = rel.finished_ms = s_->now();
  if (cur) {
    // The artifact is not part of the API's spec: the new version runs the
    // same slug, like a config change.
    rel.artifact = cur->artifact;
    rel.artifact_size = cur->artifact_size;
    rel.sha = cur->sha;
    rel.tree = cur->tree;
    rel.ref = cur->ref;
  }
  rel.config = app->config;
  s_->releases[spec.id][rel.number] = rel;
  tx.writes.push_back(State::put("releases", State::release_key(spec.id, rel.number), to_json(rel)));
  Json e = s_->event("release_created", spec.id, actor);
  e["release"] = rel.number;
  tx.events.push_back(std::move(e));
  auto res = s_->start_deployment(*app, "deploy", rel.number, spec.instances, app->generation, force, actor, tx);
  if (!res) return res;
  if (auto c = s_->commit(tx); !c) return fail(c.error());
  return res;
}

Result<ChangeResult> Cluster::scale(const std::string& app_id, int instances, bool force, const std::string& actor) {
  App* app = s_->find_app(app_id);
  if (!app) return fail(Error{"App '" + app_id + "' does not exist", {}, 404});
  if (instances < 0) return fail(Error{"instances must be >= 0", {{"/instances", {"must be >= 0"}}}, 422});
  State::Tx tx;
  auto res = s_->start_deployment(*app, "scale", app->current_release, instances, app->generation, force, actor, tx);
  if (!res) return res;
  if (auto c = s_->commit(tx); !c) return fail(c.error());
  return res;
}

Result<ChangeResult> Cluster::restart(const std::string& app_id, bool force, const std::string& actor) {
  App* app = s_->find_app(app_id);
  if (!app) return fail(Error{"App '" + app_id + "' does not exist", {}, 404});
  State::Tx tx;
  auto res = s_->start_deployment(*app, "restart", app->current_release, app->instances, app->generation + 1, force, actor, tx);
  if (!res) return res;
  if (auto c = s_->commit(tx); !c) return fail(c.error());
  return res;
}

Result<ChangeResult> Cluster::deploy_release(const std::string& app_id, int64_t n, bool force, const std::string& actor) {
  App* app = s_->find_app(app_id);
  if (!app) return fail(Error{"App '" + app_id + "' does not exist", {}, 404});
  const Release* rel = release(app_id, n);
  if (!rel) return fail(Error{"app " + app_id + " has no release " + std::to_string(n), {}, 404});
  if (rel->status != "ready") return fail(Error{"release " + std::to_string(n) + " is " + rel->status + ", not ready", {}, 409});
  if (rel->artifact_collected)
    return fail(Error{"release " + std::to_string(n) + " can no longer be deployed: retention collected its slug", {}, 410});
  State::Tx tx;
  std::string kind = n < app->current_release ? "rollback" : "deploy";
  // `instances` of a pushed spec seeds the first deploy only (design.md "Scale").
  int instances = app->current_release != 0 ? app->instances : app->instances > 0 ? app->instances : rel->spec.instances;
  auto res = s_->start_deployment(*app, kind, n, instances, app->generation, force, actor, tx);
  if (res && app->config != rel->config) {
    // A rollback deploys the release with its own environment; the app's
    // config becomes that release's.
    app->config = rel->config;
    tx.writes.push_back(State::put("apps", app->id, s_->app_doc(*app)));
  }
  if (!res) return res;
  if (auto c = s_->commit(tx); !c) return fail(c.error());
  return res;
}

Result<ChangeResult> Cluster::rollback(const std::string& app_id, std::optional<int64_t> n, bool force, const std::string& actor) {
  App* app = s_->find_app(app_id);
  if (!app) return fail(Error{"App '" + app_id + "' does not exist", {}, 404});
  if (!n) {
    // The newest ready release older than the current one.
    for (auto it = s_->releases[app_id].rbegin(); it != s_->releases[app_id].rend(); ++it)
      if (it->first < app->current_release && it->second.status == "ready" && !it->second.artifact_collected) {
        n = it->first;
        break;
      }
    if (!n) return fail(Error{"app " + app_id + " has no earlier ready release to roll back to", {}, 409});
  }
  return deploy_release(app_id, *n, force, actor);
}

Result<ChangeResult> Cluster::delete_app(const std::string& app_id, bool force, const std::string& actor) {
  App* app = s_->find_app(app_id);
  if (!app) return fail(Error{"App '" + app_id + "' does not exist", {}, 404});
  State::Tx tx;
  if (Deployment* d = s_->active_deployment(app_id)) {
    if (!force) return fail(locked(*d));
    s_->finish_deployment(*d, "canceled", "app deleted", tx);
  }
  for (auto& [id, t] : s_->tasks)
    if (t.app_id == app_id && !t.kill_sent) s_->send_kill(t, tx);
  for (auto& [n, r] : s_->releases[app_id]) tx.writes.push_back(State::del("releases", State::release_key(app_id, n)));
  tx.writes.push_back(State::del("apps", app_id));
  tx.events.push_back(s_->event("app_deleted", app_id, actor));
  s_->releases.erase(app_id);
  s_->apps.erase(app_id);
  s_->launches.erase(app_id);
  if (auto c = s_->commit(tx); !c) return fail(c.error());
  return ChangeResult{};
}

Result<ChangeResult> Cluster::kill_tasks(const std::vector<std::string>& ids, bool scale_down, const std::string& actor) {
  State::Tx tx;
  std::map<std::string, int> per_app;
  for (const auto& id : ids) {
    auto it = s_->tasks.find(id);
    if (it == s_->tasks.end()) return fail(Error{"Task '" + id + "' does not exist", {}, 404});
  }
  for (const auto& id : ids) {
    Task& t = s_->tasks[id];
    s_->send_kill(t, tx);
    ++per_app[t.app_id];
  }
  ChangeResult out;
  for (auto& [app_id, n] : per_app) {
    App* app = s_->find_app(app_id);
    if (!scale_down || !app) continue;
    app->instances = std::max(0, app->instances - n);
    tx.writes.push_back(State::put("apps", app_id, s_->app_doc(*app)));
    Json e = s_->event("app_scaled", app_id, actor);
    e["instances"] = app->instances;
    tx.events.push_back(std::move(e));
  }
  if (auto c = s_->commit(tx); !c) return fail(c.error());
  return out;
}

Result<ChangeResult> Cluster::cancel_deployment(const std::string& dep_id, bool force, const std::string& actor) {
  auto it = s_->deployments.find(dep_id);
  if (it == s_->deployments.end() || it->second.status != "running")
    return fail(Error{"DeploymentPlan " + dep_id + " does not exist", {}, 404});
  Deployment d = it->second;
  State::Tx tx;
  s_->finish_deployment(it->second, "canceled", force ? "canceled by " + (actor.empty() ? std::string("user") : actor) : "rolled back by request", tx);
  ChangeResult out;
  if (!force) {
    App* app = s_->find_app(d.app_id);
    if (app) {
      auto res = s_->start_deployment(*app, "rollback", d.from_release, d.from_instances,
                                      d.kind == "restart" ? d.generation - 1 : app->generation, true, actor, tx);
      if (!res) return res;
      out = *res;
    }
  }
  if (auto c = s_->commit(tx); !c) return fail(c.error());
  return out;
}

// ---- queries

const App* Cluster::app(const std::string& id) const {
  auto it = s_->apps.find(id);
  return it == s_->apps.end() ? nullptr : &it->second;
}

std::vector<const App*> Cluster::apps() const {
  std::vector<const App*> out;
  for (auto& [id, a] : s_->apps) out.push_back(&a);
  return out;
}

const Release* Cluster::release(const std::string& app_id, int64_t n) const {
  auto it = s_->releases.find(app_id);
  if (it == s_->releases.end()) return nullptr;
  auto r = it->second.find(n);
  return r == it->second.end() ? nullptr : &r->second;
}

const Release* Cluster::current_release(const std::string& app_id) const {
  const App* a = app(app_id);
  return a ? release(app_id, a->current_release) : nullptr;
}

std::vector<const Release*> Cluster::releases(const std::string& app_id) const {
  std::vector<const Release*> out;
  auto it = s_->releases.find(app_id);
  if (it != s_->releases.end())
    for (auto& [n, r] : it->second) out.push_back(&r);
  return out;
}

int64_t Cluster::now_ms() const { return s_->now(); }

std::vector<const Task*> Cluster::tasks(const std::string& app_id) const {
  std::vector<const Task*> out;
  if (app_id.empty()) {
    for (auto& [id, t] : s_->tasks) out.push_back(&t);
    return out;
  }
  for_app_tasks(s_->tasks, app_id, [&](const Task& t) { out.push_back(&t); });
  return out;
}

std::vector<const Task*> Cluster::task_history(const std::string& app_id) const {
  std::vector<const Task*> out;
  auto it = s_->history.find(app_id);
  if (it != s_->history.end())
    for (auto& t : it->second) out.push_back(&t);
  return out;
}

const Task* Cluster::task(const std::string& id) const {
  auto it = s_->tasks.find(id);
  return it == s_->tasks.end() ? nullptr : &it->second;
}

std::vector<const Node*> Cluster::nodes() const {
  std::vector<const Node*> out;
  for (auto& [id, n] : s_->nodes) out.push_back(&n);
  return out;
}

const Node* Cluster::node(const std::string& id) const {
  auto it = s_->nodes.find(id);
  return it == s_->nodes.end() ? nullptr : &it->second;
}

sched::Resources Cluster::node_used(const std::string& id) const { return s_->scheduler.used(id); }
std::vector<int> Cluster::node_used_ports(const std::string& id) const { return s_->scheduler.used_ports(id); }

std::vector<const Deployment*> Cluster::deployments(bool active_only) const {
  std::vector<const Deployment*> out;
  for (auto& [id, d] : s_->deployments)
    if (!active_only || d.status == "running") out.push_back(&d);
  std::sort(out.begin(), out.end(), [](auto* a, auto* b) { return a->started_ms < b->started_ms; });
  return out;
}

const Deployment* Cluster::active_deployment(const std::string& app_id) const {
  return s_->active_deployment(app_id);
}

}  // namespace stele::deploy
