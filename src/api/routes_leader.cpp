// Leadership on the API (design.md "Storage and high availability"): who
// leads, and a follower's gate that sends every request it does not answer
// itself to the leader.
#include "api/api_impl.h"

namespace stele::api {

using net::HttpRequest;
using net::HttpResponse;

namespace {

LeaderView view(const ApiServer::Impl& s) {
  if (s.opts.leadership) return s.opts.leadership();
  return LeaderView{true, s.opts.leader, s.opts.server_url, ""};
}

// What a follower answers itself: liveness, versions and who leads.
bool served_by_follower(const HttpRequest& req) {
  if (req.method != "GET" && req.method != "HEAD") return false;
  return req.path == "/ping" || req.path == "/version" || req.path == "/v2/leader" || req.path == "/v2/info" ||
         req.path == "/api/v1/leader";
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
    if (v.self || served_by_follower(req)) return std::nullopt;
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
