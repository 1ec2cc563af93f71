// RouteTable: one versioned snapshot of where the router sends requests --
// routes {host, path prefix, app, port index} and, per app, its instances
// with their health. The server builds it from apps' `routes` and task
// health and pushes it to every router as JSON:
//
//   {"version": 7,
//    "routes": [{"host": "web.localhost", "path": "/", "app": "/shop/web",
//                "portIndex": 0, "balance": "round-robin"|"least-conn",
//                "redirectHttps": false}],
//    "apps": {"/shop/web": {"instances": [{"task": "shop_web-r3.0.1",
//              "host": "127.0.0.1", "ports": [31002], "healthy": true}]}}}
//
// Matching (match()): the Host is lower-cased and its port and a trailing
// dot dropped. The most specific host group that exists wins: the exact host,
// else the longest wildcard "*.example.com" (which matches any name ending
// in ".example.com", one label deep or more, but not "example.com" itself),
// else the catch-all "*". Within that group the longest path prefix wins;
// prefixes match whole segments ("/api" matches "/api", "/api/x" and
// "/api?q", not "/apix"), on the raw (not percent-decoded) path. A host
// group whose prefixes all miss is "no route": there is no fall-through to
// a less specific host, as in nginx's server_name/location.
//
// Picking (pick()): only healthy instances that have the route's port index
// are candidates. Round-robin keeps a cursor per route; least-connections
// asks the caller for each candidate's in-flight count and breaks ties
// round-robin. A new table starts new cursors.
//
// A table is immutable after make()/from_json() except for the round-robin
// cursors, which pick() advances: use one table from one thread (the proxy's
// io thread), or give each thread its own copy.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/json.h"
#include "common/result.h"

namespace stele::router {

enum class Balance : uint8_t { kRoundRobin, kLeastConn };

struct Instance {
  std::string task;                 // task id, for the access log and drain accounting
  std::string host;                 // address the router connects to (IP or name)
  std::vector<uint16_t> ports;
  bool healthy = false;
  std::vector<std::string> addrs;   // "host:port" per port ([v6]:port), filled by make()
};

struct Route {
  std::string host;                 // "web.localhost", "*.example.com" or "*"; lower case
  std::string path = "/";           // prefix, starts with '/'
  std::string app;                  // app id, "/shop/web"
  size_t port_index = 0;
  Balance balance = Balance::kRoundRobin;
  bool redirect_https = false;      // plain-HTTP requests get a 301 to https://
};

class RouteTable {
 public:
  using Apps = std::map<std::string, std::vector<Instance>, std::less<>>;
  // In-flight requests to "host:port", for least-connections.
  using LoadFn = std::function<size_t(std::string_view addr)>;

  RouteTable() = default;  // version 0, routes nothing

  // Validates and indexes. Error code 422 with one FieldError per bad field
  // ("/routes/1/path"); a route naming an app absent from `apps` is fine
  // (that app has no instances: 503).
  static Result<RouteTable> make(uint64_t version, std::vector<Route> routes, Apps apps);
  static Result<RouteTable> from_json(const Json& j);
  Json to_json() const;

  uint64_t version() const { return version_; }
  const std::vector<Route>& routes() const { return routes_; }
  const Apps& apps() const { return apps_; }

  // The route for a request, or nullptr. `host` is the raw Host header value.
  const Route* match(std::string_view host, std::string_view path) const;
  // A healthy instance of the route's app, skipping those in `exclude`
  // (already tried); nullptr when none is left. `load` is used only for
  // least-connections and may be empty otherwise.
  const Instance* pick(const Route& r, std::span<const Instance* const> exclude, const LoadFn& load) const;
  // Instances of an app, or nullptr when the table does not know it.
  const std::vector<Instance>* instances(std::string_view app) const;
  // Whether the app has at least one instance pick() could choose for r.
  bool has_candidates(const Route& r) const;

 private:
  struct HostGroup {
    std::vector<size_t> routes;  // indexes into routes_, longest prefix first
  };
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  const HostGroup* host_group(std::string_view host) const;

  uint64_t version_ = 0;
  std::vector<Route> routes_;
  Apps apps_;
  std::unordered_map<std::string, HostGroup, StringHash, std::equal_to<>> exact_;
  std::vector<const std::vector<Instance>*> route_apps_;  // per route; nullptr: app unknown
  std::vector<std::pair<std::string, HostGroup>> wildcard_;  // ".example.com", longest first
  HostGroup any_;
  // Round-robin cursors, one per route (mutable state of an otherwise
  // immutable table; see the thread note above).
  std::unique_ptr<size_t[]> cursors_;
};

// Lower-cases a Host value and drops its port and a trailing dot:
// "Web.Localhost:7080" -> "web.localhost", "[::1]:80" -> "[::1]". `scratch`
// holds the result.
std::string_view normalize_host(std::string_view raw, std::string& scratch);
// Whether prefix `prefix` matches `path` on segment boundaries (see above).
bool path_matches(std::string_view prefix, std::string_view path);

}  // namespace stele::router
