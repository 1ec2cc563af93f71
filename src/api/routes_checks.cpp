// Monitoring (issue 7): check, handler and silence definitions, check states,
// run-now, and the agents' check results. 503 while ApiOptions.monitor is null.
#include "api/api_impl.h"

namespace stele::api {

using net::HttpRequest;
using net::HttpResponse;

namespace {

HttpResponse no_monitor() {
  return HttpResponse::json(503, {{"message", "monitoring is not running on this server"}});
}

HttpResponse put_answer(const Result<monitor::MonitorService::Put>& r, const char* key) {
  if (!r) return HttpResponse::error(r.error(), 422);
  return HttpResponse::json(r->created ? 201 : 200, {{key, r->doc}});
}

HttpResponse deleted(const Result<void>& r, const char* key, const std::string& name) {
  if (!r) return HttpResponse::error(r.error(), 404);
  return HttpResponse::json(200, {{"deleted", name}, {"kind", key}});
}

// Registers GET/POST on the collection and GET/DELETE on one item, for a
// definition kind (checks, handlers, silences).
struct Kind {
  const char* path;      // "/api/v1/checks"
  const char* plural;    // "checks"
  const char* singular;  // "check"
  Json (monitor::MonitorService::*list)() const;
  std::optional<Json> (monitor::MonitorService::*one)(const std::string&) const;
  Result<monitor::MonitorService::Put> (monitor::MonitorService::*put)(const Json&, const std::string&);
  Result<void> (monitor::MonitorService::*del)(const std::string&, const std::string&);
};

void add_kind(net::Router& r, ApiServer::Impl& s, const Kind& k) {
  std::string item = std::string(k.path) + "/{name}";
  r.add("GET", k.path, sync_handler(s, [&s, k](HttpRequest&) {
    if (!s.opts.monitor) return no_monitor();
    return HttpResponse::json(200, {{k.plural, (s.opts.monitor->*k.list)()}});
  }));
  r.add("POST", k.path, sync_handler(s, [&s, k](HttpRequest& req) {
    if (!s.opts.monitor) return no_monitor();
    auto body = body_json(req);
    if (!body) return HttpResponse::error(body.error(), 400);
    return put_answer((s.opts.monitor->*k.put)(*body, s.actor(req)), k.singular);
  }));
  if (k.one)
    r.add("GET", item, sync_handler(s, [&s, k](HttpRequest& req) {
      if (!s.opts.monitor) return no_monitor();
      auto doc = (s.opts.monitor->*k.one)(req.params["name"]);
      if (!doc) return HttpResponse::json(404, {{"message", std::string(k.singular) + " '" + req.params["name"] + "' not found"}});
      return HttpResponse::json(200, {{k.singular, *doc}});
    }));
  r.add("DELETE", item, sync_handler(s, [&s, k](HttpRequest& req) {
    if (!s.opts.monitor) return no_monitor();
    return deleted((s.opts.monitor->*k.del)(req.params["name"], s.actor(req)), k.singular, req.params["name"]);
  }));
}

}  // namespace

void add_check_routes(net::Router& r, ApiServer::Impl& s) {
  using M = monitor::MonitorService;
  // Before the generic item routes: "status" is not a check name.
  r.add("GET", "/api/v1/checks/status", sync_handler(s, [&s](HttpRequest& req) {
    if (!s.opts.monitor) return no_monitor();
    std::string failing = req.query_param("failing");
    bool only_failing = !failing.empty() && failing != "0" && failing != "false";
    return HttpResponse::json(200, {{"states", s.opts.monitor->status_json(req.query_param("check"), req.query_param("entity"),
                                                                          only_failing)}});
  }));
  r.add("POST", "/api/v1/checks/{name}/run", [&s](HttpRequest& req) -> net::awaitable<HttpResponse> {
    if (auto denied = s.check_auth(req, false)) co_return *denied;
    if (!s.opts.monitor) co_return no_monitor();
    auto res = co_await s.opts.monitor->run_now(req.params["name"]);
    if (!res) co_return HttpResponse::error(res.error(), 404);
    co_return HttpResponse::json(200, *res);
  });
  add_kind(r, s, {"/api/v1/checks", "checks", "check", &M::checks_json, &M::check_json, &M::put_check, &M::delete_check});
  add_kind(r, s, {"/api/v1/handlers", "handlers", "handler", &M::handlers_json, &M::handler_json, &M::put_handler,
                  &M::delete_handler});
  add_kind(r, s, {"/api/v1/silences", "silences", "silence", &M::silences_json, nullptr, &M::put_silence,
                  &M::delete_silence});
  // The agents' results (agent/checks.h).
  r.add("POST", "/api/v1/agent/checks", agent_handler(s, [&s](HttpRequest& req) {
    if (!s.opts.monitor) return no_monitor();
    auto body = body_json(req);
    if (!body) return HttpResponse::error(body.error(), 400);
    auto n = s.opts.monitor->record_agent_results(body->value("id", ""), *body);
    if (!n) return HttpResponse::error(n.error(), 422);
    return HttpResponse::json(200, {{"recorded", *n}});
  }));
}

}  // namespace stele::api
