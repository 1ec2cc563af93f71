// Private to src/api: shared state of the handlers and rendering helpers.
#pragma once
#include <map>
#include <set>
#include "api/api_server.h"
#include "artifact/artifact_store.h"
#include "common/names.h"
#include "net/sse.h"

namespace stele::api {

// API token roles, each allowing what the ones below it allow (docs/api.md
// "Tokens"): viewer reads (GET/HEAD), deployer also changes apps, releases,
// deployments, config, tasks, checks and pushes; admin also manages tokens
// and downloads backups. Pure; unit-tested in tests/api/tokens_test.cpp.
enum class Role { viewer = 1, deployer = 2, admin = 3 };
std::optional<Role> parse_role(std::string_view name);
const char* role_name(Role r);
// True when a token of role `have` may make a call that needs `need`.
bool role_allows(Role have, Role need);
// What a plain call needs: viewer for GET/HEAD, deployer for the rest.
Role required_role(const net::HttpRequest& req);
// "" when `name` is a valid token name ([a-z0-9][a-z0-9._-]{0,62}), else why not.
std::string token_name_error(std::string_view name);
// The secret of "Authorization: Bearer <secret>" ("" when none).
std::string bearer_secret(const net::HttpRequest& req);

// Who a presented secret is.
struct Principal {
  std::string name;        // token name; "bootstrap" for the data-dir token
  Role role = Role::viewer;
  bool join = false;       // the agents' join token (no role of its own)
};

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
  // Leader: what each follower reported holding (routes_replication.cpp).
  struct Replica {
    std::set<std::string> artifacts;
    std::string url;  // its API as it advertises it
    std::string forward;  // its forward input as it advertises it
    int64_t reported_ms = 0;
  };
  std::map<std::string, Replica> replicas;
  std::vector<std::string> relay_peers_set;  // what opts.relay_peers got last
  // The leader's repair pass (routes_replication.cpp): apps whose repository
  // lacks the commit of their latest pushed release. Until a first pass ran,
  // and for these apps, followers are not told to mirror (a forced mirror of
  // a repository missing a push would erase it from the followers too).
  bool repos_verified = false;
  std::set<std::string> repos_behind;
  std::map<std::string, std::string> repos_held;  // app -> latest release's commit, found in its repository
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
  // Auth: nullopt when allowed, else the 401/403 answer. A presented bearer
  // token is always checked (unknown: 401, role below `need`: 403); without
  // one the call is allowed unless require_token and (mutating or `always`).
  // The first form needs required_role(req).
  std::optional<net::HttpResponse> check_auth(const net::HttpRequest& req, bool always) const;
  std::optional<net::HttpResponse> check_auth(const net::HttpRequest& req, Role need, bool always) const;
  // The agent protocol: the join token or an admin token; with `users` a
  // user token with required_role(req) too (artifacts, which agents and
  // clients share). A wrong token: 401 "agent join token rejected".
  std::optional<net::HttpResponse> check_agent_auth(const net::HttpRequest& req, bool users = false) const;
  // "token:<name>" for a call with a valid token, else "api:<peer> (<ua>)".
  std::string actor(const net::HttpRequest& req) const;
  // The principal a secret names; nullopt when unknown or revoked. Compares
  // sha256 digests in constant time.
  std::optional<Principal> authenticate(const std::string& secret) const;
  // The `tokens` collection, cached (routes_tokens.cpp). Refreshed after
  // this server's changes and at most every few seconds otherwise (another
  // server on the same etcd store may have revoked one).
  struct StoredToken {
    std::string name, sha256;
    Role role = Role::viewer;
    Json doc;  // {name, role, sha256, created, createdBy}
  };
  mutable std::vector<StoredToken> tokens_cache;
  mutable int64_t tokens_loaded_ms = -1;  // steady ms; -1 = never
  const std::vector<StoredToken>& tokens() const;
  void invalidate_tokens() { tokens_loaded_ms = -1; }
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
// GET /api/v1/leader, and a follower's gate (routes_leader.cpp).
void add_leader_routes(net::Router& r, ApiServer::Impl& s);
// /api/v1/replication[/report] on the leader; the follower's copy loop.
void add_replication_routes(net::Router& r, ApiServer::Impl& s);
net::awaitable<void> replicate_loop(ApiServer::Impl& s);
// The followers' forward inputs (reported within forward_forget_ms), and on
// the leader, the relay of external senders' records pointed at them.
std::vector<std::string> forward_peers(const ApiServer::Impl& s);
void update_relay_peers(ApiServer::Impl& s, std::vector<std::string> peers);
// Live followers (reported within replica_timeout_ms) that lack `digest`.
std::vector<std::string> missing_replicas(ApiServer::Impl& s, const std::string& digest);
// The leader's "host:port" as /v2/leader and /v2/info name it ("" = none).
std::string leader_host_port(const ApiServer::Impl& s);
void add_event_routes(net::Router& r, ApiServer::Impl& s);
void add_pipeline_routes(net::Router& r, ApiServer::Impl& s);
// GET /api/v1/logs (routes_logs.cpp; 503 while ApiOptions.logs is null).
void add_log_routes(net::Router& r, ApiServer::Impl& s);
// Graphite's API and Prometheus /metrics (routes_metrics.cpp).
void add_metrics_routes(net::Router& r, ApiServer::Impl& s);
// Checks, handlers, silences, states and agents' results (routes_checks.cpp).
void add_check_routes(net::Router& r, ApiServer::Impl& s);
// API tokens: /api/v1/tokens (routes_tokens.cpp).
void add_token_routes(net::Router& r, ApiServer::Impl& s);
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

// sync_handler for the agent protocol: check_agent_auth (`users`: user
// tokens too) instead of check_auth.
template <class Fn>
net::Handler agent_handler(ApiServer::Impl& s, Fn fn, bool kicks = true, bool users = false) {
  return [&s, fn, kicks, users](net::HttpRequest& req) -> net::awaitable<net::HttpResponse> {
    if (auto denied = s.check_agent_auth(req, users)) co_return *denied;
    net::HttpResponse r = fn(req);
    if (kicks && r.status < 400 && req.method != "GET") s.kick();
    co_return r;
  };
}

// Parses the request body as JSON or answers 400.
Result<Json> body_json(const net::HttpRequest& req);
}  // namespace stele::api
