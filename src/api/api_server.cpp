#include "api/api_server.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "api/api_impl.h"
#include "api/routes_artifacts.h"
#include "api/routes_git.h"
#include "api/routes_ui.h"
#include "deploy/route_view.h"

namespace stele::api {

namespace asio = boost::asio;

// GET /api/v1/backup (routes_backup.cpp).
void add_backup_routes(net::Router& r, ApiServer::Impl& s);

net::AsyncSignal& ApiServer::Impl::agent_signal(const std::string& id) {
  auto& p = agent_signals[id];
  if (!p) p = std::make_shared<net::AsyncSignal>(io.get_executor());
  return *p;
}

void ApiServer::Impl::kick() {
  if (tick_pending || stopped) return;
  tick_pending = true;
  asio::post(io, [this] {
    tick_pending = false;
    if (!stopped) cluster.tick();
  });
}

namespace {
net::HttpResponse unauthorized(const std::string& message) {
  auto r = net::HttpResponse::json(401, {{"message", message}});
  r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"stele\"");
  return r;
}
}  // namespace

std::optional<net::HttpResponse> ApiServer::Impl::check_auth(const net::HttpRequest& req, bool always) const {
  return check_auth(req, required_role(req), always);
}

std::optional<net::HttpResponse> ApiServer::Impl::check_auth(const net::HttpRequest& req, Role need, bool always) const {
  std::string secret = bearer_secret(req);
  if (secret.empty()) {
    bool mutating = req.method != "GET" && req.method != "HEAD";
    if (!opts.require_token || (!mutating && !always)) return std::nullopt;  // local admin
    return unauthorized("a valid token is required (Authorization: Bearer <token>); stele up writes it to <data-dir>/token");
  }
  auto who = authenticate(secret);
  if (!who || who->join) return unauthorized("unknown or revoked token");
  if (!role_allows(who->role, need))
    return net::HttpResponse::json(403, {{"message", std::string("this call needs the ") + role_name(need) + " role; token '" +
                                                         who->name + "' has the " + role_name(who->role) + " role"}});
  return std::nullopt;
}

std::optional<net::HttpResponse> ApiServer::Impl::check_agent_auth(const net::HttpRequest& req, bool users) const {
  std::string secret = bearer_secret(req);
  if (secret.empty()) {
    if (users) return check_auth(req, required_role(req), false);  // as any client call
    if (!opts.require_token) return std::nullopt;
    return unauthorized("an agent join token is required (stele agent --join-token; the server keeps it in <data-dir>/join-token)");
  }
  auto who = authenticate(secret);
  if (who && (who->join || who->role == Role::admin)) return std::nullopt;
  if (who && users) return check_auth(req, required_role(req), false);
  return unauthorized("agent join token rejected");
}

std::string ApiServer::Impl::actor(const net::HttpRequest& req) const {
  if (std::string secret = bearer_secret(req); !secret.empty())
    if (auto who = authenticate(secret); who && !who->join) return "token:" + who->name;
  std::string ua = req.header("user-agent");
  return "api:" + req.peer + (ua.empty() ? "" : " (" + ua.substr(0, 40) + ")");
}

std::vector<Json> ApiServer::Impl::events_after(int64_t since, const std::string& type, const std::string& app, size_t limit) {
  std::vector<Json> out;
  auto match = [&](const Json& e) {
    if (!type.empty() && e.value("type", "") != type) return false;
    if (!app.empty() && e.value("app", "") != app) return false;
    return true;
  };
  if (!recent.empty() && recent.front().value("id", int64_t(0)) <= since + 1) {
    for (const auto& e : recent)
      if (e.value("id", int64_t(0)) > since && match(e) && out.size() < limit) out.push_back(e);
    return out;
  }
  while (out.size() < limit) {
    auto batch = store.events_since(since, 1000);
    if (!batch || batch->empty()) break;
    for (auto& e : *batch) {
      since = e.value("id", since);
      if (match(e) && out.size() < limit) out.push_back(std::move(e));
    }
  }
  return out;
}

ApiServer::ApiServer(asio::io_context& io, deploy::Cluster& cluster, store::Store& store, ApiOptions opts)
    : impl_(std::make_unique<Impl>(io, cluster, store, std::move(opts))) {
  Impl& s = *impl_;
  cluster.on_event = [&s](const Json& e) {
    s.publish(e);
    // The pipeline reacts outside the Cluster call that produced the event.
    if (s.pipeline) asio::post(s.io, [&s, e] {
      if (s.pipeline) s.pipeline->on_event(e);
    });
  };
  cluster.on_command = [&s](const std::string& agent) { s.agent_signal(agent).notify(); };
  router_.add("GET", "/ping", [](net::HttpRequest&) -> net::awaitable<net::HttpResponse> {
    co_return net::HttpResponse::text(200, "pong\n");
  });
  add_leader_routes(router_, s);
  add_replication_routes(router_, s);
  add_agent_routes(router_, s);
  add_event_routes(router_, s);
  add_log_routes(router_, s);
  add_metrics_routes(router_, s);
  add_check_routes(router_, s);
  add_token_routes(router_, s);
  add_native_routes(router_, s);
  add_marathon_routes(router_, s);
  if (!s.opts.artifacts_dir.empty()) {
    s.artifacts = std::make_unique<artifact::ArtifactStore>(s.opts.artifacts_dir);
    add_artifact_routes(router_, s, *s.artifacts);
    if (!s.opts.git_dir.empty()) {
      pipeline::HookEnv hook{s.opts.server_url, s.opts.token, s.opts.stele_binary, s.opts.tls_ca};
      s.git = std::make_unique<pipeline::GitRepos>(s.opts.git_dir, hook);
      pipeline::PipelineOptions po = s.opts.pipeline;
      po.data_dir = s.opts.pipeline_dir;
      po.logs = s.opts.logs;
      po.missing_replicas = [&s](const std::string& digest) { return missing_replicas(s, digest); };
      s.pipeline = std::make_unique<pipeline::Pipeline>(s.io, s.cluster, *s.git, *s.artifacts, po);
    }
  }
  add_pipeline_routes(router_, s);
  if (s.git) add_git_routes(router_, s);
  add_backup_routes(router_, s);
  add_ui_routes(router_);
}

ApiServer::~ApiServer() = default;

void ApiServer::Impl::publish(const Json& e) {
  recent.push_back(e);
  while (recent.size() > 2000) recent.pop_front();
  events_signal.notify();
}

void ApiServer::publish_event(const Json& e) { impl_->publish(e); }

void ApiServer::notify_agent(const std::string& id) { impl_->agent_signal(id).notify(); }

void ApiServer::kick() { impl_->kick(); }

Json ApiServer::Impl::route_table() {
  Json doc = deploy::route_table_json(cluster);
  if (routes_version == 0 || doc != routes_doc) {
    routes_doc = std::move(doc);
    ++routes_version;
    routes_computed_ms[routes_version] = cluster.now_ms();
    while (routes_computed_ms.size() > 64) routes_computed_ms.erase(routes_computed_ms.begin());
    for (const auto& [id, r] : agent_routers) agent_signal(id).notify();  // their streams send it
  }
  Json j = routes_doc;
  j["version"] = routes_version;
  return j;
}

Json ApiServer::route_table() { return impl_->route_table(); }

int64_t ApiServer::route_table_computed_ms(uint64_t version) const {
  auto it = impl_->routes_computed_ms.find(version);
  return it == impl_->routes_computed_ms.end() ? 0 : it->second;
}

Json ApiServer::Impl::agent_routers_json() const {
  Json out = Json::array();
  for (const auto& [id, r] : agent_routers) {
    const auto* n = cluster.node(id);
    if (!n || n->state != "active" || !n->session) continue;
    out.push_back({{"node", n->hostname}, {"address", r.address}, {"appliedVersion", r.applied}});
  }
  return out;
}

std::vector<uint64_t> ApiServer::agent_router_versions() const {
  std::vector<uint64_t> out;
  for (const auto& r : impl_->agent_routers_json()) out.push_back(r["appliedVersion"].get<uint64_t>());
  return out;
}

void ApiServer::start() {
  Impl& s = *impl_;
  if (s.pipeline) s.pipeline->recover();
  asio::co_spawn(s.io, [&s]() -> net::awaitable<void> {
    while (!s.stopped) {
      s.cluster.tick();
      co_await net::sleep_for(s.opts.tick_interval);
    }
  }, asio::detached);
}

void ApiServer::start_replication() {
  Impl& s = *impl_;
  if (!s.artifacts || !s.git) return;
  asio::co_spawn(s.io, replicate_loop(s), asio::detached);
}

void ApiServer::stop() {
  impl_->stopped = true;
  impl_->events_signal.notify();
  for (auto& [id, sig] : impl_->agent_signals) sig->notify();
}

}  // namespace stele::api
