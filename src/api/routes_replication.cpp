// Replication of artifacts and git repositories between servers (design.md
// "Storage and high availability"): every follower copies each artifact the
// leader holds by digest (verified on the way in) and each app's repository
// by `git fetch`, and reports what it holds; the leader's pipeline marks a
// release ready only once every live follower holds its artifact. So a new
// leader, after losing the old one, deploys, rolls back and takes pushes.
//
//   GET  /api/v1/replication          (leader) {"artifacts": [digest], "repos": [{"app", "refs"}],
//                                              "forwards": [host:port, the leader's first],
//                                              "servers": [{"server", "url", "forward", "artifacts",
//                                                           "reportedAgoMs", "live"}]}
//   POST /api/v1/replication/report   (leader) {"server", "url", "forward", "artifacts": [digest]}
//
// Logs and metrics are not copied here: agents ship them to every server's
// forward input ("forwards"), and each server relays what external senders
// give it to the others (main.cpp; logs/shipper.h).
#include <array>
#include <set>

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

std::vector<std::string> forward_peers(const ApiServer::Impl& s) {
  std::vector<std::string> out;
  int64_t now = s.cluster.now_ms();
  for (const auto& [id, r] : s.replicas)
    if (!r.forward.empty() && r.forward != s.opts.forward_advertise && now - r.reported_ms <= s.opts.forward_forget_ms)
      out.push_back(r.forward);
  return out;
}

void update_relay_peers(ApiServer::Impl& s, std::vector<std::string> peers) {
  std::erase(peers, s.opts.forward_advertise);
  if (!s.opts.relay_peers || peers == s.relay_peers_set) return;
  s.relay_peers_set = peers;
  s.opts.relay_peers(peers);
}

void add_replication_routes(net::Router& r, ApiServer::Impl& s) {
  r.add("GET", "/api/v1/replication", agent_handler(s, [&s](const HttpRequest&) {
    Json artifacts = Json::array(), repos = Json::array();
    if (s.artifacts)
      for (const auto& d : s.artifacts->list()) artifacts.push_back(d);
    if (s.git && s.repos_verified)
      for (const auto* a : s.cluster.apps()) {
        if (s.repos_behind.count(a->id)) continue;  // being caught up from a follower: not to be copied yet
        std::string sig = s.git->refs_signature(a->id);
        if (!sig.empty()) repos.push_back({{"app", a->id}, {"refs", sig}});
      }
    Json servers = Json::array();
    int64_t now = s.cluster.now_ms();
    Json forwards = Json::array();
    if (!s.opts.forward_advertise.empty()) forwards.push_back(s.opts.forward_advertise);
    for (const auto& f : forward_peers(s)) forwards.push_back(f);
    for (const auto& [id, rep] : s.replicas)
      servers.push_back({{"server", id}, {"url", rep.url}, {"forward", rep.forward}, {"artifacts", rep.artifacts.size()},
                         {"reportedAgoMs", now - rep.reported_ms},
                         {"live", now - rep.reported_ms <= s.opts.replica_timeout_ms}});
    return HttpResponse::json(200, {{"artifacts", artifacts}, {"repos", repos}, {"forwards", forwards},
                                    {"servers", servers}});
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
    rep.url = j.contains("url") && j["url"].is_string() ? j["url"].get<std::string>() : "";
    rep.forward = j.contains("forward") && j["forward"].is_string() ? j["forward"].get<std::string>() : "";
    rep.artifacts.clear();
    for (const auto& d : j["artifacts"])
      if (d.is_string()) rep.artifacts.insert(d.get<std::string>());
    rep.reported_ms = s.cluster.now_ms();
    update_relay_peers(s, forward_peers(s));
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
  std::vector<std::string> peers;  // every server's forward input but this one's
  for (const auto& f : j->value("forwards", Json::array()))
    if (f.is_string() && !f.get<std::string>().empty()) peers.push_back(f.get<std::string>());
  update_relay_peers(s, std::move(peers));
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
  std::string body = Json{{"server", s.opts.server_id}, {"url", s.opts.advertise_url},
                          {"forward", s.opts.forward_advertise}, {"artifacts", std::move(held)}}.dump();
  (void)co_await net::http_request("POST", leader + "/api/v1/replication/report", std::move(body), server_headers(s),
                                   std::chrono::seconds(10));
}

// The leader's repair: what it lacks because it was down while a push
// landed and became leader before copying it. A release's artifact is copied
// from a live follower that reported holding it; an app's repository that
// lacks the commit of its latest pushed release is fast-forwarded from the
// live followers (branches only move forward).
net::awaitable<void> repair_once(ApiServer::Impl& s) {
  std::set<std::string> wanted;
  for (const auto* a : s.cluster.apps())
    for (const auto* r : s.cluster.releases(a->id))
      if (!r->artifact.empty() && !s.artifacts->has(r->artifact)) wanted.insert(r->artifact);
  int64_t now = s.cluster.now_ms();
  std::vector<std::string> urls;  // live followers'
  for (const auto& [id, rep] : s.replicas)
    if (!rep.url.empty() && now - rep.reported_ms <= s.opts.replica_timeout_ms) urls.push_back(rep.url);
  std::vector<std::array<std::string, 2>> copies;  // digest, follower URL
  for (const auto& d : wanted)
    for (const auto& [id, rep] : s.replicas)
      if (!rep.url.empty() && now - rep.reported_ms <= s.opts.replica_timeout_ms && rep.artifacts.count(d)) {
        copies.push_back({d, rep.url});
        break;
      }
  for (size_t i = 0; i < copies.size(); ++i) {  // s.replicas may change while copying
    std::string digest = copies[i][0], from = copies[i][1];
    auto ok = co_await copy_artifact(s, from, digest);
    if (!ok)
      spdlog::warn("replication: artifact {} from follower {}: {}", digest, from, ok.error().message);
    else
      spdlog::info("replication: this leader lacked artifact {}; copied it from {}", digest.substr(0, 12), from);
  }
  std::vector<std::array<std::string, 2>> heads;  // app, sha of its latest pushed release
  for (const auto* a : s.cluster.apps()) {
    auto rels = s.cluster.releases(a->id);
    for (auto it = rels.rbegin(); it != rels.rend(); ++it)
      if (!(*it)->sha.empty()) {
        heads.push_back({a->id, (*it)->sha});
        break;
      }
  }
  std::string auth = s.opts.token.empty() ? "" : "Bearer " + s.opts.token;
  std::set<std::string> behind;
  for (size_t i = 0; i < heads.size(); ++i) {
    std::string app = heads[i][0], sha = heads[i][1];
    if (s.repos_held[app] == sha) continue;  // checked before: a git process per app only when it changes
    bool has = false;
    if (!s.git->refs_signature(app).empty()) {
      auto tree = co_await s.git->tree_of(app, sha);
      has = tree.has_value();
    }
    for (size_t u = 0; u < urls.size() && !has; ++u) {
      std::string url = urls[u] + "/git/" + app_name(app) + ".git";
      auto ok = co_await s.git->mirror(app, url, auth, true);
      if (!ok) {
        spdlog::warn("replication: catching up the repository of {} from {}: {}", app, url, ok.error().message);
        continue;
      }
      auto tree = co_await s.git->tree_of(app, sha);
      has = tree.has_value();
      if (has) spdlog::info("replication: this leader's repository of {} lacked {}; fetched it from {}", app, sha.substr(0, 12), urls[u]);
    }
    if (has) s.repos_held[app] = sha;
    else behind.insert(app);
  }
  if (!behind.empty() && behind != s.repos_behind)
    for (const auto& app : behind)
      spdlog::warn("replication: the repository of {} lacks the commit of its latest release and no live follower "
                   "has it; followers keep their copies until it does", app);
  s.repos_behind = std::move(behind);
  s.repos_verified = true;
}

}  // namespace

net::awaitable<void> replicate_loop(ApiServer::Impl& s) {
  std::map<std::string, std::string> repos;  // app -> the leader's refs signature last mirrored
  while (!s.stopped && s.opts.leadership) {
    LeaderView v = s.opts.leadership();
    if (v.self)
      co_await repair_once(s);  // leading: the others copy from this server; it fills its own gaps
    else if (!v.url.empty())
      co_await replicate_once(s, v.url, repos);
    co_await net::sleep_for(s.opts.replicate_interval);
  }
}

}  // namespace stele::api
