// Native API: /api/v1/apps, releases, tasks, nodes, deployments.
#include "api/api_impl.h"

namespace stele::api {

using net::HttpRequest;
using net::HttpResponse;

namespace {

const std::vector<std::string> kAppVerbs = {"scale", "restart", "deploy", "rollback", "releases", "tasks", "config", "run"};

HttpResponse not_found(const std::string& id) {
  return HttpResponse::json(404, {{"message", "App '" + id + "' does not exist"}});
}

Result<AppSpec> spec_from_body(const HttpRequest& req, const std::optional<std::string>& id) {
  auto j = body_json(req);
  if (!j) return fail(j.error());
  return parse_app_spec(*j, id);
}

HttpResponse get_app_path(ApiServer::Impl& s, const HttpRequest& req, const AppPath& p) {
  const auto* app = s.cluster.app(p.id);
  if (!app) return not_found(p.id);
  if (p.tail.empty()) return HttpResponse::json(200, {{"app", render_app(s.cluster, *app)}});
  if (p.tail[0] == "tasks") {
    Json tasks = Json::array();
    for (const auto* t : s.cluster.tasks(p.id)) tasks.push_back(render_task(*t));
    return HttpResponse::json(200, {{"tasks", tasks}});
  }
  if (p.tail[0] == "releases" && p.tail.size() == 1) {
    Json out = Json::array();
    for (const auto* r : s.cluster.releases(p.id)) out.push_back(render_release(s.cluster, *r));
    return HttpResponse::json(200, {{"releases", out}});
  }
  if (p.tail[0] == "releases" && p.tail.size() == 3 && p.tail[2] == "log")
    return release_log(s, req, p.id, atoll(p.tail[1].c_str()));
  if (p.tail[0] == "config" && p.tail.size() == 1) return app_config(s, req, p.id);
  if (p.tail[0] == "releases" && p.tail.size() == 2) {
    const auto* r = s.cluster.release(p.id, atoll(p.tail[1].c_str()));
    if (!r) return HttpResponse::json(404, {{"message", "app " + p.id + " has no release " + p.tail[1]}});
    return HttpResponse::json(200, {{"release", render_release(s.cluster, *r)}});
  }
  return HttpResponse::json(404, {{"message", "no such resource: " + p.tail[0]}});
}

// {"id": "/web"[, "instances": N]} and nothing that could run: an app created
// ahead of its first push.
struct EmptyApp {
  std::string id;
  int instances = 0;
};
std::optional<EmptyApp> empty_app(const HttpRequest& req) {
  auto j = parse_json(req.body);
  if (!j || !j->is_object() || !j->contains("id") || !(*j)["id"].is_string()) return std::nullopt;
  for (const char* k : {"cmd", "args", "container"})
    if (j->contains(k) && !(*j)[k].is_null()) return std::nullopt;
  for (auto& [k, v] : j->items())
    if (k != "id" && !(k == "instances" && v.is_number_integer())) return std::nullopt;
  return EmptyApp{canonical_app_id((*j)["id"].get<std::string>()), j->value("instances", 0)};
}

std::optional<int64_t> release_field(const Json& j) {
  if (j.contains("release") && j["release"].is_number_integer()) return j["release"].get<int64_t>();
  return std::nullopt;
}

HttpResponse post_app_verb(ApiServer::Impl& s, const HttpRequest& req, const AppPath& p) {
  auto body = body_json(req);
  if (!body) return HttpResponse::error(body.error(), 400);
  bool force = req.query_flag("force");
  std::string actor = s.actor(req);
  const std::string& verb = p.tail.empty() ? std::string() : p.tail[0];
  if (verb == "scale") {
    if (!body->contains("instances") || !(*body)["instances"].is_number_integer())
      return HttpResponse::error(Error{"instances must be an integer", {{"/instances", {"expected an integer"}}}, 422});
    return change_answer(s.cluster.scale(p.id, (*body)["instances"].get<int>(), force, actor));
  }
  if (verb == "restart") return change_answer(s.cluster.restart(p.id, force, actor));
  if (verb == "deploy") {
    auto n = release_field(*body);
    if (!n) return HttpResponse::error(Error{"release must be an integer", {{"/release", {"expected an integer"}}}, 422});
    return change_answer(s.cluster.deploy_release(p.id, *n, force, actor));
  }
  if (verb == "rollback") return change_answer(s.cluster.rollback(p.id, release_field(*body), force, actor));
  if (verb == "run") return post_run(s, req, p.id);
  return HttpResponse::json(404, {{"message", "no such action: " + verb}});
}

}  // namespace

void add_native_routes(net::Router& r, ApiServer::Impl& s) {
  r.add("GET", "/api/v1/apps", sync_handler(s, [&s](HttpRequest&) {
    Json apps = Json::array();
    for (const auto* a : s.cluster.apps()) apps.push_back(render_app(s.cluster, *a));
    return HttpResponse::json(200, {{"apps", apps}});
  }));
  r.add("POST", "/api/v1/apps", sync_handler(s, [&s](HttpRequest& req) {
    if (auto empty = empty_app(req)) {
      // `stele create`: an app with no release; its first push makes one.
      auto made = s.cluster.create_empty_app(empty->id, s.actor(req), empty->instances);
      if (!made) return HttpResponse::error(made.error(), 400);
      std::string host = req.header("host").empty() ? "127.0.0.1:7070" : req.header("host");
      return HttpResponse::json(201, {{"app", render_app(s.cluster, *s.cluster.app(empty->id))},
                                      {"git", "http://" + host + "/git/" + app_name(empty->id) + ".git"}});
    }
    auto spec = spec_from_body(req, std::nullopt);
    if (!spec) return HttpResponse::error(spec.error(), 422);
    auto res = s.cluster.create_app(*spec, s.actor(req));
    if (!res) return HttpResponse::error(res.error(), 400);
    return HttpResponse::json(201, {{"app", render_app(s.cluster, *s.cluster.app(spec->id))},
                                    {"deploymentId", res->deployment_id}, {"release", res->release}});
  }));
  r.add("GET", "/api/v1/apps/{*rest}", sync_handler(s, [&s](HttpRequest& req) {
    return get_app_path(s, req, split_app_path(req.param("rest"), kAppVerbs));
  }));
  r.add("PUT", "/api/v1/apps/{*rest}", sync_handler(s, [&s](HttpRequest& req) {
    std::string id = app_id_from(req.param("rest"));
    auto spec = spec_from_body(req, id);
    if (!spec) return HttpResponse::error(spec.error(), 422);
    return change_answer(s.cluster.update_app(*spec, req.query_flag("force"), s.actor(req)));
  }));
  r.add("POST", "/api/v1/apps/{*rest}", sync_handler(s, [&s](HttpRequest& req) {
    return post_app_verb(s, req, split_app_path(req.param("rest"), kAppVerbs));
  }));
  r.add("PATCH", "/api/v1/apps/{*rest}", sync_handler(s, [&s](HttpRequest& req) {
    AppPath p = split_app_path(req.param("rest"), kAppVerbs);
    if (p.tail.size() != 1 || p.tail[0] != "config")
      return HttpResponse::json(404, {{"message", "PATCH is only for /api/v1/apps/{id}/config"}});
    return patch_config(s, req, p.id);
  }));
  r.add("DELETE", "/api/v1/apps/{*rest}", sync_handler(s, [&s](HttpRequest& req) {
    std::string id = app_id_from(req.param("rest"));
    auto res = s.cluster.delete_app(id, req.query_flag("force"), s.actor(req));
    if (!res) return HttpResponse::error(res.error(), 400);
    return HttpResponse::json(200, {{"deleted", id}});
  }));
  r.add("GET", "/api/v1/tasks", sync_handler(s, [&s](HttpRequest&) {
    Json tasks = Json::array();
    for (const auto* t : s.cluster.tasks()) tasks.push_back(render_task(*t));
    return HttpResponse::json(200, {{"tasks", tasks}});
  }));
  r.add("GET", "/api/v1/nodes", sync_handler(s, [&s](HttpRequest&) {
    Json nodes = Json::array();
    for (const auto* n : s.cluster.nodes()) nodes.push_back(render_node(s.cluster, *n));
    return HttpResponse::json(200, {{"nodes", nodes}});
  }));
  r.add("GET", "/api/v1/routes", sync_handler(s, [&s](HttpRequest&) {
    Json j = s.route_table();
    j["routers"] = s.opts.routers ? s.opts.routers() : Json::array();
    for (auto& r : s.agent_routers_json()) j["routers"].push_back(std::move(r));
    return HttpResponse::json(200, j);
  }));
  r.add("GET", "/api/v1/deployments", sync_handler(s, [&s](HttpRequest& req) {
    Json out = Json::array();
    for (const auto* d : s.cluster.deployments(!req.query_flag("all"))) out.push_back(render_deployment(*d));
    return HttpResponse::json(200, {{"deployments", out}});
  }));
  r.add("DELETE", "/api/v1/deployments/{id}", sync_handler(s, [&s](HttpRequest& req) {
    return change_answer(s.cluster.cancel_deployment(req.param("id"), req.query_flag("force"), s.actor(req)));
  }));
}

}  // namespace stele::api
