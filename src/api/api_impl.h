// Private to src/api: shared state of the handlers and rendering helpers.
#pragma once
#include "api/api_server.h"
#include "artifact/artifact_store.h"
#include "common/names.h"
#include "net/sse.h"

namespace stele::api {

struct ApiServer::Impl {
  boost::asio::io_context& io;
  deploy::Cluster& cluster;
  store::Store& store;
  ApiOptions opts;
  net::AsyncSignal events_signal;
  std::map<std::string, std::shared_ptr<net::AsyncSignal>> agent_signals;
  std::deque<Json> recent;   // newest events, for fast stream catch-up
  std::unique_ptr<artifact::ArtifactStore> artifacts;
  std::unique_ptr<pipeline::GitRepos> git;
  std::unique_ptr<pipeline::Pipeline> pipeline;
  bool tick_pending = false;
  Json routes_doc;             // last route table content (without version)
  // Images of releases retention collected, for the agents' engines
  // (routes_agent.cpp); recomputed at most once a second.
  std::string collected_images;
  int64_t collected_images_at_ms = 0;
  uint64_t routes_version = 0;
  std::map<uint64_t, int64_t> routes_computed_ms;  // version -> when its content was first computed (last 64)
  Json route_table();
  // Routers on agents (`stele agent --router`): agent id -> its router.
  // Not persisted: an agent tells at every registration, acks by heartbeat.
  struct AgentRouter {
    std::string address;
    uint64_t applied = 0;  // table version it routes by
  };
  std::map<std::string, AgentRouter> agent_routers;
  // The routers of connected agents: {"node", "address", "appliedVersion"}.
  Json agent_routers_json() const;
  bool stopped = false;
  void publish(const Json& e);  // a stored event: recent + wake the streams

  Impl(boost::asio::io_context& i, deploy::Cluster& c, store::Store& s, ApiOptions o)
      : io(i), cluster(c), store(s), opts(std::move(o)), events_signal(i.get_executor()) {}

  net::AsyncSignal& agent_signal(const std::string& id);
  void kick();
  // Auth: nullopt when allowed, else the 401 answer.
  std::optional<net::HttpResponse> check_auth(const net::HttpRequest& req, bool always) const;
  std::string actor(const net::HttpRequest& req) const;
  // Events with id > since matching filters, oldest first.
  std::vector<Json> events_after(int64_t since, const std::string& type, const std::string& app, size_t limit);
};

// Renderers (render.cpp).
Json render_task(const deploy::Task& t);
Json render_app(const deploy::Cluster& c, const deploy::App& a);
Json render_release(const deploy::Cluster& c, const deploy::Release& r);
Json render_node(const deploy::Cluster& c, const deploy::Node& n);
Json render_deployment(const deploy::Deployment& d);
// Marathon shapes.
Json marathon_app(const deploy::Cluster& c, const deploy::App& a, bool embed_tasks);
Json marathon_task(const deploy::Cluster& c, const deploy::Task& t);
Json marathon_deployment(const deploy::Deployment& d);
// A native event as Marathon's event (nullopt for types Marathon lacks).
std::optional<Json> marathon_event(const Json& e);

// Route registration (one file per family).
void add_native_routes(net::Router& r, ApiServer::Impl& s);
void add_marathon_routes(net::Router& r, ApiServer::Impl& s);
void add_agent_routes(net::Router& r, ApiServer::Impl& s);
void add_event_routes(net::Router& r, ApiServer::Impl& s);
void add_pipeline_routes(net::Router& r, ApiServer::Impl& s);
// GET /api/v1/logs (routes_logs.cpp; 503 while ApiOptions.logs is null).
void add_log_routes(net::Router& r, ApiServer::Impl& s);
// Graphite's API and Prometheus /metrics (routes_metrics.cpp).
void add_metrics_routes(net::Router& r, ApiServer::Impl& s);
// Checks, handlers, silences, states and agents' results (routes_checks.cpp).
void add_check_routes(net::Router& r, ApiServer::Impl& s);
// Pipeline handlers the app routes dispatch to (routes_pipeline.cpp).
net::HttpResponse release_log(ApiServer::Impl& s, const net::HttpRequest& req, const std::string& app_id, int64_t n);
net::HttpResponse app_config(ApiServer::Impl& s, const net::HttpRequest& req, const std::string& app_id);
net::HttpResponse patch_config(ApiServer::Impl& s, const net::HttpRequest& req, const std::string& app_id);
net::HttpResponse post_run(ApiServer::Impl& s, const net::HttpRequest& req, const std::string& app_id);

// Helpers shared by handlers.
net::HttpResponse change_answer(const Result<deploy::ChangeResult>& r, int ok_status = 200);
// App id from a URL rest ("shop/web/tasks" with suffix "tasks" -> "/shop/web").
std::string app_id_from(const std::string& rest);
// Splits "shop/web/versions/2026..." into id and known trailing verb parts.
struct AppPath {
  std::string id;
  std::vector<std::string> tail;  // e.g. {"versions", "V"} or {"tasks"}
};
AppPath split_app_path(const std::string& rest, const std::vector<std::string>& verbs);
// SSE producer over the one event stream, mapping each event with `map`
// (nullopt = skip).
net::HttpResponse event_stream(ApiServer::Impl& s, const net::HttpRequest& req,
                               std::function<std::optional<Json>(const Json&)> map, bool named_events);

}  // namespace stele::api

namespace stele::api {
// Wraps a synchronous handler body: auth check first (mutating calls, or all
// when `always_auth`), then the body; a successful non-GET call runs the
// cluster's tick soon unless `kicks` is false (a call that changes nothing
// the tick acts on, like a heartbeat: the periodic tick covers it). The
// Router keeps the std::function alive, so capturing references is safe.
template <class Fn>
net::Handler sync_handler(ApiServer::Impl& s, Fn fn, bool always_auth = false, bool kicks = true) {
  return [&s, fn, always_auth, kicks](net::HttpRequest& req) -> net::awaitable<net::HttpResponse> {
    if (auto denied = s.check_auth(req, always_auth)) co_return *denied;
    net::HttpResponse r = fn(req);
    if (kicks && r.status < 400 && req.method != "GET") s.kick();
    co_return r;
  };
}

// Parses the request body as JSON or answers 400.
Result<Json> body_json(const net::HttpRequest& req);
}  // namespace stele::api
