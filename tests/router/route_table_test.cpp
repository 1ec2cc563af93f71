#include "router/route_table.h"

#include <gtest/gtest.h>

#include <map>

namespace stele::router {
namespace {

const char* kTable = R"({
  "version": 7,
  "routes": [
    {"host": "Web.Localhost", "path": "/", "app": "/web", "portIndex": 0},
    {"host": "web.localhost", "path": "/api", "app": "/api", "balance": "least-conn"},
    {"host": "*.example.com", "path": "/", "app": "/wild"},
    {"host": "*", "path": "/", "app": "/default", "redirectHttps": true}
  ],
  "apps": {
    "/web": {"instances": [
      {"task": "web-r1.0.0", "host": "127.0.0.1", "ports": [31000], "healthy": true},
      {"task": "web-r1.1.0", "host": "127.0.0.1", "ports": [31001], "healthy": true},
      {"task": "web-r1.2.0", "host": "127.0.0.1", "ports": [31002], "healthy": false}]},
    "/api": {"instances": [
      {"task": "api-r1.0.0", "host": "::1", "ports": [32000], "healthy": true},
      {"task": "api-r1.1.0", "host": "127.0.0.1", "ports": [32001], "healthy": true}]}
  }
})";

RouteTable table() {
  auto t = RouteTable::from_json(Json::parse(kTable));
  EXPECT_TRUE(t) << t.error().message;
  return std::move(*t);
}

std::string app_for(const RouteTable& t, std::string_view host, std::string_view path) {
  const Route* r = t.match(host, path);
  return r ? r->app : "-";
}

TEST(RouteTable, MatchesHostCaseInsensitivelyWithoutPortThenLongestPrefix) {
  RouteTable t = table();
  EXPECT_EQ(t.version(), 7u);
  EXPECT_EQ(app_for(t, "web.localhost", "/"), "/web");
  EXPECT_EQ(app_for(t, "WEB.localhost:7080", "/api"), "/api");
  EXPECT_EQ(app_for(t, "web.localhost.", "/api/v1/x"), "/api");
  EXPECT_EQ(app_for(t, "web.localhost", "/apix"), "/web");  // prefixes match whole segments
  EXPECT_EQ(app_for(t, "web.localhost", "/api?q=1"), "/api");
}

TEST(RouteTable, WildcardsAndCatchAll) {
  RouteTable t = table();
  EXPECT_EQ(app_for(t, "a.example.com", "/"), "/wild");
  EXPECT_EQ(app_for(t, "a.b.example.com:80", "/x"), "/wild");
  EXPECT_EQ(app_for(t, "example.com", "/"), "/default");  // the wildcard needs a label
  EXPECT_EQ(app_for(t, "other", "/"), "/default");
  EXPECT_TRUE(t.match("other", "/")->redirect_https);
}

TEST(RouteTable, NoFallThroughToALessSpecificHost) {
  auto t = RouteTable::make(1, {Route{"a.localhost", "/only", "/a"}, Route{"*", "/", "/any"}}, {});
  ASSERT_TRUE(t);
  EXPECT_EQ(t->match("a.localhost", "/other"), nullptr);
  EXPECT_EQ(app_for(*t, "b.localhost", "/other"), "/any");
}

TEST(RouteTable, RoundRobinSkipsUnhealthyAndExcluded) {
  RouteTable t = table();
  const Route* r = t.match("web.localhost", "/");
  std::map<std::string, int> seen;
  for (int i = 0; i < 10; ++i) seen[t.pick(*r, {}, {})->task]++;
  EXPECT_EQ(seen["web-r1.0.0"], 5);
  EXPECT_EQ(seen["web-r1.1.0"], 5);
  EXPECT_EQ(seen.count("web-r1.2.0"), 0u);
  const Instance* first = t.pick(*r, {}, {});
  const Instance* ex[] = {first};
  const Instance* second = t.pick(*r, ex, {});
  ASSERT_NE(second, nullptr);
  EXPECT_NE(second, first);
  const Instance* both[] = {first, second};
  EXPECT_EQ(t.pick(*r, both, {}), nullptr);
}

TEST(RouteTable, LeastConnectionsPicksTheLeastLoaded) {
  RouteTable t = table();
  const Route* r = t.match("web.localhost", "/api");
  std::map<std::string, size_t> load{{"[::1]:32000", 3}, {"127.0.0.1:32001", 1}};
  auto fn = [&](std::string_view a) { return load[std::string(a)]; };
  EXPECT_EQ(t.pick(*r, {}, fn)->task, "api-r1.1.0");
  load["127.0.0.1:32001"] = 5;
  EXPECT_EQ(t.pick(*r, {}, fn)->task, "api-r1.0.0");
}

TEST(RouteTable, NoCandidatesWhenAppUnknownOrAllUnhealthy) {
  auto t = RouteTable::make(1, {Route{"h", "/", "/gone"}},
                            {{"/sick", {Instance{"t", "127.0.0.1", {1}, false, {}}}}});
  ASSERT_TRUE(t);
  EXPECT_EQ(t->pick(*t->match("h", "/"), {}, {}), nullptr);
  EXPECT_FALSE(t->has_candidates(*t->match("h", "/")));
  EXPECT_EQ(t->instances("/gone"), nullptr);
}

TEST(RouteTable, JsonRoundTrips) {
  RouteTable t = table();
  auto again = RouteTable::from_json(t.to_json());
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->to_json(), t.to_json());
  EXPECT_EQ(t.to_json()["routes"][0]["host"], "web.localhost");
  EXPECT_EQ(t.to_json()["routes"][1]["balance"], "least-conn");
}

TEST(RouteTable, BadInputNamesEveryField) {
  auto t = RouteTable::from_json(Json::parse(R"({
    "routes": [{"host": "a b", "path": "x", "app": "/a", "balance": "random"},
               {"path": "/", "app": 3}],
    "apps": {"/a": {"instances": [{"host": "", "ports": [0, 70000], "healthy": "yes"}]}}})"));
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, 422);
  std::vector<std::string> paths;
  for (auto& d : t.error().details) paths.push_back(d.path);
  for (const char* want : {"/version", "/routes/0/balance", "/routes/1/host", "/routes/1/app",
                           "/apps/~1a/instances/0/host", "/apps/~1a/instances/0/ports/0",
                           "/apps/~1a/instances/0/ports/1", "/apps/~1a/instances/0/healthy"})
    EXPECT_NE(std::find(paths.begin(), paths.end(), want), paths.end()) << want << " in " << t.error().message;
  auto dup = RouteTable::make(1, {Route{"h", "/", "/a"}, Route{"H", "/", "/b"}, Route{"a b", "x", "/c"}}, {});
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().details.size(), 3u);  // duplicate, bad host, bad path
}

TEST(RouteTable, Normalize) {
  std::string s;
  EXPECT_EQ(normalize_host("Web.Localhost:7080", s), "web.localhost");
  EXPECT_EQ(normalize_host("[::1]:80", s), "[::1]");
  EXPECT_TRUE(path_matches("/", "/anything"));
  EXPECT_TRUE(path_matches("/api/", "/api/x"));
  EXPECT_FALSE(path_matches("/api/", "/api"));
}

}  // namespace
}  // namespace stele::router
