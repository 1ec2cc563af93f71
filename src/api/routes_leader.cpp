// Leadership on the API (design.md "Storage and high availability"): who
// leads, and a follower's gate: what it does not answer itself it proxies to
// the leader (streams included), except the agent protocol, git pushes,
// artifacts and backups, which get a 307 redirect their clients follow.
#include "api/api_impl.h"
#include "artifact/sha256.h"
#include "net/http_client.h"

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

// Sent to the leader with a 307 (same target; X-Stele-Leader names it): the
// agent protocol (agents move to the leader), git pushes (git follows the
// first redirect), artifacts and backups (large bodies, read by Stele's own
// clients, which follow redirects); and HEAD requests.
bool redirected(const HttpRequest& req) {
  if (req.method == "HEAD") return true;  // (no body to relay)
  const std::string& p = req.path;
  for (std::string_view prefix : {"/api/v1/agent/", "/git/", "/api/v1/artifacts/", "/api/v1/backup", "/api/v1/replication"})
    if (p.rfind(prefix, 0) == 0) return true;
  return false;
}

net::Handler fixed(HttpResponse answer) {
  return [answer](HttpRequest&) -> net::awaitable<HttpResponse> { co_return answer; };
}

// The request, as the leader answers it. The follower checks the caller's
// token first (its own listener's rules: a request it would refuse is not
// let through because the leader sees it coming from this server).
net::awaitable<HttpResponse> proxy(ApiServer::Impl& s, std::string leader, HttpRequest& req) {
  if (auto denied = s.check_auth(req, false)) co_return *denied;
  net::Headers h;
  for (const char* k : {"authorization", "content-type", "accept", "last-event-id", "user-agent"})
    if (auto v = req.header(k); !v.empty()) h.emplace_back(k, v);
  h.emplace_back("X-Forwarded-For", req.peer);
  std::string url = leader + req.target;
  auto opened = co_await net::http_open(req.method, url, std::move(req.body), std::move(h), std::chrono::seconds(120));
  if (!opened) {
    auto a = HttpResponse::json(502, {{"message", "this server is a follower and could not reach the leader at " + leader +
                                                      ": " + opened.error().message}});
    a.headers.emplace_back("X-Stele-Leader", leader);
    co_return a;
  }
  std::shared_ptr<net::OpenResponse> answer = *opened;
  HttpResponse out;
  out.status = answer->status;
  auto header = [&answer](const char* k) {
    auto it = answer->headers.find(k);
    return it == answer->headers.end() ? std::string() : it->second;
  };
  out.content_type = header("content-type");
  for (const char* k : {"location", "retry-after", "www-authenticate", "content-disposition", "content-encoding"})
    if (auto v = header(k); !v.empty()) out.headers.emplace_back(k, v);
  out.headers.emplace_back("X-Stele-Leader", leader);
  if (header("content-length").empty()) {  // a stream (chunked until the leader ends it): relayed as it comes
    out.stream = [answer](net::StreamWriter& w) -> net::awaitable<void> {
      for (;;) {
        auto piece = co_await answer->next(std::chrono::hours(24));
        if (!piece || piece->empty()) co_return;
        if (!co_await w.write(std::move(*piece))) co_return;
      }
    };
    co_return out;
  }
  for (;;) {
    auto piece = co_await answer->next(std::chrono::seconds(120));
    if (!piece) co_return HttpResponse::json(502, {{"message", "the leader's answer broke off: " + piece.error().message}});
    if (piece->empty()) break;
    out.body += *piece;
  }
  co_return out;
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
  r.set_gate([&s](const HttpRequest& req) -> std::optional<net::Handler> {
    LeaderView v = s.opts.leadership();
    if (v.self || served_by_follower(req) || held_artifact(s, req)) return std::nullopt;
    if (v.url.empty()) {
      auto a = HttpResponse::json(503, {{"message", "no leader elected yet: this server is a follower; retry shortly"}});
      a.headers.emplace_back("Retry-After", "1");
      return fixed(std::move(a));
    }
    if (!redirected(req))
      return net::Handler([&s, leader = v.url](HttpRequest& r) { return proxy(s, leader, r); });
    auto a = HttpResponse::json(307, {{"message", "this server is a follower: the leader is " + v.id + " at " + v.url},
                                      {"leader", v.url}});
    a.headers.emplace_back("Location", v.url + req.target);
    a.headers.emplace_back("X-Stele-Leader", v.url);
    return fixed(std::move(a));
  });
}

}  // namespace stele::api
