// Leadership on the API (design.md "Storage and high availability"): who
// leads, and a follower's gate that sends every request it does not answer
// itself to the leader.
#include "api/api_impl.h"
#include "artifact/sha256.h"

namespace stele::api {

using net::HttpRequest;
using net::HttpResponse;

namespace {

LeaderView view(const ApiServer::Impl& s) {
  if (s.opts.leadership) return s.opts.leadership();
  return LeaderView{true, s.opts.leader, s.opts.server_url, ""};
}

// What a follower answers itself: liveness, versions and who leads; git
// fetches from its mirrors; and reads of its own log and metric stores, which hold the whole history as
// every server does (agents ship to all; servers relay external senders'
// records to each other): log queries and streams, Graphite's render, find,
// expand and functions.
bool served_by_follower(const HttpRequest& req) {
  const std::string& p = req.path;
  if (p.rfind("/git/", 0) == 0) {  // fetches from its mirror; pushes go to the leader
    if (req.method == "POST") return p.size() > 16 && p.compare(p.size() - 16, 16, "/git-upload-pack") == 0;
    return req.method == "GET" && p.size() > 10 && p.compare(p.size() - 10, 10, "/info/refs") == 0 &&
           req.query_param("service") == "git-upload-pack";
  }
  bool graphite = p == "/render" || p == "/render/" || p == "/metrics/find" || p == "/metrics/find/" ||
                  p == "/metrics/expand" || p == "/functions" || p == "/functions/";
  if (req.method == "POST") return graphite;  // Graphite's API takes its parameters as a form too
  if (req.method != "GET" && req.method != "HEAD") return false;
  return p == "/ping" || p == "/version" || p == "/v2/leader" || p == "/v2/info" || p == "/api/v1/leader" ||
         p == "/api/v1/logs" || graphite;
}

// An artifact this follower holds (content-addressed: the same bytes as the
// leader's): served here, so a new leader lacking one can copy it from a
// follower (routes_replication.cpp).
bool held_artifact(const ApiServer::Impl& s, const HttpRequest& req) {
  constexpr std::string_view prefix = "/api/v1/artifacts/";
  if ((req.method != "GET" && req.method != "HEAD") || !s.artifacts || req.path.rfind(prefix, 0) != 0) return false;
  std::string digest = req.path.substr(prefix.size());
  return artifact::is_sha256_hex(digest) && s.artifacts->has(digest);
}

}  // namespace

std::string leader_host_port(const ApiServer::Impl& s) {
  if (!s.opts.leadership) return s.opts.leader;
  LeaderView v = s.opts.leadership();
  if (v.self) return s.opts.leader;
  std::string u = v.url;
  if (auto at = u.find("://"); at != std::string::npos) u = u.substr(at + 3);
  if (auto slash = u.find('/'); slash != std::string::npos) u.resize(slash);
  return u;
}

void add_leader_routes(net::Router& r, ApiServer::Impl& s) {
  r.add("GET", "/api/v1/leader", [&s](HttpRequest&) -> net::awaitable<HttpResponse> {
    LeaderView v = view(s);
    Json leader = v.id.empty() && !v.self ? Json(nullptr) : Json{{"id", v.id}, {"url", v.url}, {"since", v.since}};
    co_return HttpResponse::json(200, {{"leader", leader}, {"self", v.self}});
  });
  if (!s.opts.leadership) return;
  r.set_gate([&s](const HttpRequest& req) -> std::optional<HttpResponse> {
    LeaderView v = s.opts.leadership();
    if (v.self || served_by_follower(req) || held_artifact(s, req)) return std::nullopt;
    if (v.url.empty()) {
      auto a = HttpResponse::json(503, {{"message", "no leader elected yet: this server is a follower; retry shortly"}});
      a.headers.emplace_back("Retry-After", "1");
      return a;
    }
    auto a = HttpResponse::json(307, {{"message", "this server is a follower: the leader is " + v.id + " at " + v.url},
                                      {"leader", v.url}});
    a.headers.emplace_back("Location", v.url + req.target);
    a.headers.emplace_back("X-Stele-Leader", v.url);
    return a;
  });
}

}  // namespace stele::api
