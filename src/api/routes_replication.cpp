// Replication of artifacts and git repositories between servers (design.md
// "Storage and high availability"): every follower copies each artifact the
// leader holds by digest (verified on the way in) and each app's repository
// by `git fetch`, and reports what it holds; the leader's pipeline marks a
// release ready only once every live follower holds its artifact. So a new
// leader, after losing the old one, deploys, rolls back and takes pushes.
//
//   GET  /api/v1/replication          (leader) {"artifacts": [digest], "repos": [{"app", "refs"}],
//                                              "servers": [{"server", "url", "artifacts", "reportedAgoMs", "live"}]}
//   POST /api/v1/replication/report   (leader) {"server", "url", "artifacts": [digest]}
#include <utility>  // before Asio with g++ 12
#include <boost/asio/co_spawn.hpp>
#include <spdlog/spdlog.h>

#include "api/api_impl.h"
#include "net/http_client.h"
#include "net/offload.h"

namespace stele::api {

using net::HttpRequest;
using net::HttpResponse;

std::vector<std::string> missing_replicas(ApiServer::Impl& s, const std::string& digest) {
  std::vector<std::string> out;
  int64_t now = s.cluster.now_ms();
  for (const auto& [id, r] : s.replicas)
    if (now - r.reported_ms <= s.opts.replica_timeout_ms && !r.artifacts.count(digest)) out.push_back(id);
  return out;
}

void add_replication_routes(net::Router& r, ApiServer::Impl& s) {
  r.add("GET", "/api/v1/replication", agent_handler(s, [&s](const HttpRequest&) {
    Json artifacts = Json::array(), repos = Json::array();
    if (s.artifacts)
      for (const auto& d : s.artifacts->list()) artifacts.push_back(d);
    if (s.git)
      for (const auto* a : s.cluster.apps()) {
        std::string sig = s.git->refs_signature(a->id);
        if (!sig.empty()) repos.push_back({{"app", a->id}, {"refs", sig}});
      }
    Json servers = Json::array();
    int64_t now = s.cluster.now_ms();
    for (const auto& [id, rep] : s.replicas)
      servers.push_back({{"server", id}, {"url", rep.url}, {"artifacts", rep.artifacts.size()},
                         {"reportedAgoMs", now - rep.reported_ms},
                         {"live", now - rep.reported_ms <= s.opts.replica_timeout_ms}});
    return HttpResponse::json(200, {{"artifacts", artifacts}, {"repos", repos}, {"servers", servers}});
  }, false, true));
  r.add("POST", "/api/v1/replication/report", agent_handler(s, [&s](const HttpRequest& req) {
    auto body = body_json(req);
    if (!body) return HttpResponse::error(body.error());
    const Json& j = *body;
    if (!j.is_object() || !j.contains("server") || !j["server"].is_string() || j["server"].get<std::string>().empty())
      return HttpResponse::json(422, {{"message", "server: expected this server's name"}});
    if (!j.contains("artifacts") || !j["artifacts"].is_array())
      return HttpResponse::json(422, {{"message", "artifacts: expected an array of sha256 digests"}});
    auto& rep = s.replicas[j["server"].get<std::string>()];
    rep.url = j.value("url", std::string());
    rep.artifacts.clear();
    for (const auto& d : j["artifacts"])
      if (d.is_string()) rep.artifacts.insert(d.get<std::string>());
    rep.reported_ms = s.cluster.now_ms();
    return HttpResponse::json(200, {{"artifacts", rep.artifacts.size()}});
  }, false, true));
}

namespace {

net::Headers server_headers(const ApiServer::Impl& s) {
  net::Headers h;
  if (!s.opts.token.empty()) h.emplace_back("Authorization", "Bearer " + s.opts.token);
  return h;
}

// One artifact from the leader into this server's store.
net::awaitable<Result<void>> copy_artifact(ApiServer::Impl& s, std::string leader, std::string digest) {
  auto r = co_await net::http_request("GET", leader + "/api/v1/artifacts/" + digest, "", server_headers(s),
                                      std::chrono::minutes(5));
  if (!r) co_return fail(r.error());
  if (r->status != 200) co_return fail("HTTP " + std::to_string(r->status) + ": " + r->body.substr(0, 200));
  auto* store = s.artifacts.get();
  auto put = [store, digest, body = std::move(r->body)]() -> Result<void> {
    auto w = store->begin(digest);
    if (!w) return fail(w.error());
    if (auto ok = w->write(body); !ok) return ok;
    if (auto done = w->commit(); !done) return fail(done.error());
    return {};
  };
  co_return co_await net::offload(net::worker_pool(), std::move(put));
}

// One pass: artifacts and repositories the leader has and this server
// lacks, then the report of what this server holds.
net::awaitable<void> replicate_once(ApiServer::Impl& s, std::string leader, std::map<std::string, std::string>& repos) {
  auto r = co_await net::http_request("GET", leader + "/api/v1/replication", "", server_headers(s), std::chrono::seconds(10));
  if (r && (r->status == 401 || r->status == 403)) {
    spdlog::warn("replication: the leader {} refused this server's token (HTTP {}): every server needs the same "
                 "--token", leader, r->status);
    co_return;
  }
  if (!r || r->status != 200) {
    spdlog::debug("replication: {}: {}", leader, r ? "HTTP " + std::to_string(r->status) : r.error().message);
    co_return;
  }
  auto j = r->json();
  if (!j || !j->is_object()) co_return;
  for (const auto& d : j->value("artifacts", Json::array())) {
    if (!d.is_string() || s.artifacts->has(d.get<std::string>())) continue;
    std::string digest = d.get<std::string>();
    if (auto ok = co_await copy_artifact(s, leader, digest); !ok)
      spdlog::warn("replication: artifact {} from {}: {}", digest, leader, ok.error().message);
    else
      spdlog::info("replication: copied artifact {}", digest.substr(0, 12));
  }
  for (const auto& repo : j->value("repos", Json::array())) {
    std::string app = repo.value("app", ""), refs = repo.value("refs", "");
    if (app.empty() || repos[app] == refs) continue;
    std::string url = leader + "/git/" + app_name(app) + ".git";
    std::string auth = s.opts.token.empty() ? "" : "Bearer " + s.opts.token;
    if (auto ok = co_await s.git->mirror(app, url, auth); !ok) {
      spdlog::warn("replication: git fetch of {}: {}", url, ok.error().message);
      continue;
    }
    repos[app] = refs;
    spdlog::info("replication: fetched the repository of {}", app);
  }
  Json held = Json::array();
  for (const auto& d : s.artifacts->list()) held.push_back(d);
  std::string body = Json{{"server", s.opts.server_id}, {"url", s.opts.advertise_url}, {"artifacts", std::move(held)}}.dump();
  (void)co_await net::http_request("POST", leader + "/api/v1/replication/report", std::move(body), server_headers(s),
                                   std::chrono::seconds(10));
}

}  // namespace

net::awaitable<void> replicate_loop(ApiServer::Impl& s) {
  std::map<std::string, std::string> repos;  // app -> the leader's refs signature last mirrored
  while (!s.stopped && s.opts.leadership) {
    LeaderView v = s.opts.leadership();
    if (v.self) co_return;  // this server leads now: the others copy from it
    if (!v.url.empty()) co_await replicate_once(s, v.url, repos);
    co_await net::sleep_for(s.opts.replicate_interval);
  }
}

}  // namespace stele::api
