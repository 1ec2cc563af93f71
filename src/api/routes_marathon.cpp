// Marathon-compatible /v2 API, so Marathon clients work unchanged.
#include "api/api_impl.h"
#include "common/clock.h"

namespace stele::api {

using net::HttpRequest;
using net::HttpResponse;

namespace {

const std::vector<std::string> kVerbs = {"versions", "tasks", "restart"};

HttpResponse unknown_app(const std::string& id) {
  return HttpResponse::json(404, {{"message", "App '" + id + "' does not exist"}});
}

HttpResponse marathon_change(ApiServer::Impl& s, const Result<deploy::ChangeResult>& r) {
  if (!r) return HttpResponse::error(r.error(), 400);
  const deploy::Deployment* d = nullptr;
  for (const auto* dep : s.cluster.deployments(false))
    if (dep->id == r->deployment_id) d = dep;
  return HttpResponse::json(200, {{"deploymentId", r->deployment_id},
                                  {"version", d ? d->version() : iso8601(0)}});
}

HttpResponse get_versions(ApiServer::Impl& s, const AppPath& p) {
  if (p.tail.size() == 1) {
    Json versions = Json::array();
    auto rels = s.cluster.releases(p.id);
    for (auto it = rels.rbegin(); it != rels.rend(); ++it) versions.push_back((*it)->version());
    return HttpResponse::json(200, {{"versions", versions}});
  }
  for (const auto* r : s.cluster.releases(p.id))
    if (r->version() == p.tail[1]) {
      Json j = app_spec_json(r->spec);
      j["version"] = r->version();
      return HttpResponse::json(200, j);
    }
  return HttpResponse::json(404, {{"message", "App '" + p.id + "' does not exist in version " + p.tail[1]}});
}

HttpResponse get_app(ApiServer::Impl& s, HttpRequest& req) {
  AppPath p = split_app_path(req.param("rest"), kVerbs);
  const auto* app = s.cluster.app(p.id);
  if (!app) return unknown_app(p.id);
  if (p.tail.empty()) return HttpResponse::json(200, {{"app", marathon_app(s.cluster, *app, true)}});
  if (p.tail[0] == "versions") return get_versions(s, p);
  if (p.tail[0] == "tasks") {
    Json tasks = Json::array();
    for (const auto* t : s.cluster.tasks(p.id)) tasks.push_back(marathon_task(s.cluster, *t));
    return HttpResponse::json(200, {{"tasks", tasks}});
  }
  return HttpResponse::json(404, {{"message", "no such resource"}});
}

HttpResponse put_app(ApiServer::Impl& s, HttpRequest& req) {
  std::string id = app_id_from(req.param("rest"));
  auto body = body_json(req);
  if (!body) return HttpResponse::error(body.error(), 400);
  bool force = req.query_flag("force");
  const auto* app = s.cluster.app(id);
  if (app && body->is_object() && body->size() == 1 && body->contains("version")) {
    // PUT {"version": V}: roll back (or forward) to the release of that version.
    std::string v = (*body)["version"].is_string() ? (*body)["version"].get<std::string>() : "";
    for (const auto* r : s.cluster.releases(id))
      if (r->version() == v) return marathon_change(s, s.cluster.deploy_release(id, r->number, force, s.actor(req)));
    return HttpResponse::json(404, {{"message", "App '" + id + "' does not exist in version " + v}});
  }
  Result<AppSpec> spec = app ? merge_app_spec(s.cluster.current_release(id)->spec, *body) : parse_app_spec(*body, id);
  if (!spec) return HttpResponse::error(spec.error(), 422);
  spec->id = id;
  if (!app) {
    auto res = s.cluster.create_app(*spec, s.actor(req));
    if (!res) return HttpResponse::error(res.error(), 400);
    auto r = marathon_change(s, res);
    r.status = 201;
    return r;
  }
  return marathon_change(s, s.cluster.update_app(*spec, force, s.actor(req)));
}

HttpResponse delete_app_tasks(ApiServer::Impl& s, HttpRequest& req, const AppPath& p) {
  if (!s.cluster.app(p.id)) return unknown_app(p.id);
  std::vector<std::string> ids;
  std::string host = req.query_param("host");
  for (const auto* t : s.cluster.tasks(p.id))
    if ((p.tail.size() < 2 || t->id == p.tail[1]) && (host.empty() || t->host == host)) ids.push_back(t->id);
  Json killed = Json::array();
  for (auto& id : ids) killed.push_back(marathon_task(s.cluster, *s.cluster.task(id)));
  auto res = s.cluster.kill_tasks(ids, req.query_flag("scale"), s.actor(req));
  if (!res) return HttpResponse::error(res.error(), 400);
  if (p.tail.size() >= 2) return HttpResponse::json(200, {{"task", killed.empty() ? Json() : killed[0]}});
  return HttpResponse::json(200, {{"tasks", killed}});
}

HttpResponse info(ApiServer::Impl& s) {
  return HttpResponse::json(200, {{"name", "stele"}, {"version", s.opts.version}, {"frameworkId", "stele"},
                                  {"leader", leader_host_port(s)},
                                  {"elected", !s.opts.leadership || s.opts.leadership().self},
                                  {"marathon_config", {{"hostname", s.opts.leader}, {"task_launch_timeout", 300000}}},
                                  {"event_subscriber", {{"type", "http_callback"}}}});
}

}  // namespace

void add_marathon_routes(net::Router& r, ApiServer::Impl& s) {
  r.add("GET", "/v2/info", sync_handler(s, [&s](HttpRequest&) { return info(s); }));
  r.add("GET", "/v2/leader", sync_handler(s, [&s](HttpRequest&) {
    std::string leader = leader_host_port(s);
    if (leader.empty()) return HttpResponse::json(404, {{"message", "There is no leader"}});
    return HttpResponse::json(200, {{"leader", leader}});
  }));
  r.add("GET", "/v2/apps", sync_handler(s, [&s](HttpRequest& req) {
    Json apps = Json::array();
    std::string filter = req.query_param("id");
    bool embed = req.query_param("embed").find("tasks") != std::string::npos;
    for (const auto* a : s.cluster.apps())
      if (filter.empty() || a->id.find(filter) != std::string::npos) apps.push_back(marathon_app(s.cluster, *a, embed));
    return HttpResponse::json(200, {{"apps", apps}});
  }));
  r.add("POST", "/v2/apps", sync_handler(s, [&s](HttpRequest& req) {
    auto body = body_json(req);
    if (!body) return HttpResponse::error(body.error(), 400);
    auto spec = parse_app_spec(*body);
    if (!spec) return HttpResponse::error(spec.error(), 422);
    auto res = s.cluster.create_app(*spec, s.actor(req));
    if (!res) return HttpResponse::error(res.error(), 400);
    auto out = HttpResponse::json(201, marathon_app(s.cluster, *s.cluster.app(spec->id), false));
    out.headers.emplace_back("Location", "/v2/apps" + spec->id);
    out.headers.emplace_back("Marathon-Deployment-Id", res->deployment_id);
    return out;
  }));
  r.add("GET", "/v2/apps/{*rest}", sync_handler(s, [&s](HttpRequest& req) { return get_app(s, req); }));
  r.add("PUT", "/v2/apps/{*rest}", sync_handler(s, [&s](HttpRequest& req) { return put_app(s, req); }));
  r.add("POST", "/v2/apps/{*rest}", sync_handler(s, [&s](HttpRequest& req) {
    AppPath p = split_app_path(req.param("rest"), kVerbs);
    if (p.tail.empty() || p.tail[0] != "restart") return HttpResponse::json(404, {{"message", "no such action"}});
    return marathon_change(s, s.cluster.restart(p.id, req.query_flag("force"), s.actor(req)));
  }));
  r.add("DELETE", "/v2/apps/{*rest}", sync_handler(s, [&s](HttpRequest& req) {
    AppPath p = split_app_path(req.param("rest"), kVerbs);
    if (!p.tail.empty() && p.tail[0] == "tasks") return delete_app_tasks(s, req, p);
    auto res = s.cluster.delete_app(p.id, req.query_flag("force"), s.actor(req));
    if (!res) return HttpResponse::error(res.error(), 400);
    return HttpResponse::json(200, {{"deploymentId", Json()}, {"version", iso8601(0)}});
  }));
  r.add("GET", "/v2/tasks", sync_handler(s, [&s](HttpRequest&) {
    Json tasks = Json::array();
    for (const auto* t : s.cluster.tasks()) tasks.push_back(marathon_task(s.cluster, *t));
    return HttpResponse::json(200, {{"tasks", tasks}});
  }));
  r.add("GET", "/v2/deployments", sync_handler(s, [&s](HttpRequest&) {
    Json out = Json::array();
    for (const auto* d : s.cluster.deployments(true)) out.push_back(marathon_deployment(*d));
    return HttpResponse::json(200, out);
  }));
  r.add("DELETE", "/v2/deployments/{id}", sync_handler(s, [&s](HttpRequest& req) {
    return marathon_change(s, s.cluster.cancel_deployment(req.param("id"), req.query_flag("force"), s.actor(req)));
  }));
}

}  // namespace stele::api
