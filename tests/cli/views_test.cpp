#include "cli/views.h"

#include <gtest/gtest.h>

namespace stele::cli {
namespace {

constexpr int64_t kNow = 1'700'000'000'000;

Json app(int instances, int running, int healthy) {
  return {{"id", "/shop/web"},       {"release", 3},          {"previousRelease", 2},
          {"instances", instances},  {"tasksRunning", running}, {"tasksHealthy", healthy},
          {"tasksStaged", 0},        {"tasksUnhealthy", 0},   {"deployment", nullptr},
          {"waiting", nullptr},      {"created", kNow - 192'000}};
}

TEST(AppStatus, NamesTheRunningDeploymentAndItsStep) {
  Json a = app(3, 2, 1);
  a["deployment"] = {{"id", "d7"},          {"kind", "deploy"}, {"fromRelease", 2}, {"toRelease", 3},
                     {"status", "running"}, {"step", "1/3 new healthy, 3 old"}};
  EXPECT_EQ(app_status(a), "deploy r2->r3: 1/3 new healthy, 3 old");
  a["deployment"]["kind"] = "scale";
  a["deployment"]["fromInstances"] = 3;
  a["deployment"]["toInstances"] = 5;
  a["deployment"]["fromRelease"] = 3;
  EXPECT_EQ(app_status(a), "scale 3->5: 1/3 new healthy, 3 old");
}

TEST(AppStatus, WaitingSuspendedDegradedOk) {
  Json a = app(3, 3, 3);
  EXPECT_EQ(app_status(a), "ok");
  a["tasksRunning"] = 2;
  EXPECT_EQ(app_status(a), "degraded");
  a["waiting"] = "no agent has 4 cpus free";
  EXPECT_EQ(app_status(a), "waiting: no agent has 4 cpus free");
  EXPECT_EQ(app_status(app(0, 0, 0)), "suspended");
}

TEST(AppsTable, OneRowPerApp) {
  Json apps = Json::array({app(3, 3, 3)});
  EXPECT_EQ(apps_table(apps, kNow).render(),
            "ID          RELEASE   RUNNING   HEALTHY   STATUS   AGE\n"
            "/shop/web   3         3/3       3         ok       3m12s\n");
}

TEST(AppsTable, ToleratesMissingFieldsAndNonArrays) {
  EXPECT_TRUE(apps_table(Json(), kNow).empty());
  Table t = apps_table(Json::array({Json{{"id", "/x"}, {"currentRelease", 2}}}), kNow);
  EXPECT_EQ(t.render(),
            "ID   RELEASE   RUNNING   HEALTHY   STATUS      AGE\n"
            "/x   2         /         -         suspended   -\n");
}

Json task(const std::string& state) {
  return {{"id", "shop_web-r3.0.1"}, {"appId", "/shop/web"}, {"host", "10.0.0.5"}, {"release", 3},
          {"ports", {31000, 31001}},  {"state", state},       {"healthy", true},     {"health", Json::array()},
          {"startedAt", kNow - 45'000}, {"stagedAt", kNow - 60'000}};
}

TEST(TaskHealth, FromCheckResultsElseFromTheHealthyFlag) {
  Json t = task("running");
  EXPECT_EQ(task_health(t), "-");  // no checks
  t["healthy"] = false;
  EXPECT_EQ(task_health(t), "pending");  // checks, no result yet
  t["health"] = Json::array({{{"alive", true}}, {{"alive", false}}});
  EXPECT_EQ(task_health(t), "unhealthy");
  t["health"] = Json::array({{{"alive", true}}});
  EXPECT_EQ(task_health(t), "healthy");
  EXPECT_EQ(task_health(task("staging")), "-");
}

TEST(TasksTable, ShowsUptimeOfRunningTasksAndStagingAgeOfOthers) {
  Json staging = task("staging");
  staging["id"] = "shop_web-r3.1.1";
  staging["startedAt"] = nullptr;
  staging["ports"] = Json::array();
  EXPECT_EQ(tasks_table(Json::array({task("running"), staging}), kNow).render(),
            "ID                APP         RELEASE   STATE     HEALTH   HOST       PORTS         AGE\n"
            "shop_web-r3.0.1   /shop/web   3         running   -        10.0.0.5   31000,31001   45s\n"
            "shop_web-r3.1.1   /shop/web   3         staging   -        10.0.0.5   -             1m0s\n");
}

TEST(TasksTable, AcceptsIsoTimesAndModelMillisecondFields) {
  Json t = task("running");
  t.erase("startedAt");
  t["startedMs"] = kNow - 5'000;
  Json iso = task("running");
  iso["startedAt"] = "2023-11-14T22:13:00.000Z";  // kNow is 22:13:20 UTC
  std::string out = tasks_table(Json::array({t, iso}), kNow).render();
  EXPECT_NE(out.find("31000,31001   5s\n"), std::string::npos) << out;
  EXPECT_NE(out.find("31000,31001   20s\n"), std::string::npos) << out;
}

TEST(NodesTable, UsedOverTotal) {
  Json n = {{"id", "a1"},
            {"hostname", "host1"},
            {"address", "10.0.0.5"},
            {"state", "active"},
            {"resources", {{"cpus", 4}, {"mem", 7823}, {"disk", 0}}},
            {"used", {{"cpus", 0.5}, {"mem", 256}, {"disk", 0}}},
            {"ports", {{31000, 32000}}},
            {"usedPorts", {31000, 31001}}};
  EXPECT_EQ(nodes_table(Json::array({n})).render(),
            "ID   HOSTNAME   ADDRESS    STATE    CPUS    MEM         PORTS\n"
            "a1   host1      10.0.0.5   active   0.5/4   256M/7.6G   2/1001\n");
}

TEST(ServersTable, LeaderThenFollowersWithWhatTheyHold) {
  Json leader = {{"leader", {{"id", "srv1"}, {"url", "http://10.213.7.11:7070"}, {"since", "2026-11-27T23:26:43.229Z"}}},
                 {"self", true}};
  Json rep = {{"artifacts", {"aa", "bb"}},
              {"servers",
               {{{"server", "srv2"}, {"url", "http://10.213.7.12:7070"}, {"artifacts", 2}, {"reportedAgoMs", 400},
                 {"live", true}},
                {{"server", "srv3"}, {"url", ""}, {"artifacts", 1}, {"reportedAgoMs", 12000}, {"live", false}}}}};
  EXPECT_EQ(servers_table(leader, rep).render(),
            "SERVER   ROLE                URL                       ARTIFACTS   LAST REPORT\n"
            "srv1     leader              http://10.213.7.11:7070   2           -\n"
            "srv2     follower            http://10.213.7.12:7070   2           0.4s ago\n"
            "srv3     follower (silent)   -                         1           12s ago\n");
  // No leader known (a follower before the election): only the followers the leader listed.
  EXPECT_EQ(servers_table({{"leader", nullptr}}, Json::object()).rows(), 0u);
}

TEST(NodePorts, UsedPortsAsRangesOrACount) {
  EXPECT_EQ(node_ports({{"ports", {{1, 10}, {20, 29}}}, {"usedPorts", {{1, 3}}}}), "3/20");
  EXPECT_EQ(node_ports({{"ports", {{1, 10}}}, {"usedPorts", 4}}), "4/10");
  EXPECT_EQ(node_ports(Json::object()), "0/0");
}

TEST(DeploymentsTable, StepWhileRunningReasonWhenFailed) {
  Json running = {{"id", "d7"},    {"appId", "/shop/web"}, {"kind", "deploy"},       {"fromRelease", 2},
                  {"toRelease", 3}, {"fromInstances", 3},  {"toInstances", 3},       {"status", "running"},
                  {"step", "1/3 new healthy, 3 old"}, {"reason", ""}, {"started", kNow - 12'000}};
  Json failed = running;
  failed["id"] = "d6";
  failed["status"] = "failed";
  failed["reason"] = "new instances not healthy within 600 s";
  EXPECT_EQ(deployments_table(Json::array({running, failed}), kNow).render(),
            "ID   APP         KIND     RELEASE   INSTANCES   STATUS    AGE   STEP\n"
            "d7   /shop/web   deploy   r2->r3    3           running   12s   1/3 new healthy, 3 old\n"
            "d6   /shop/web   deploy   r2->r3    3           failed    12s   new instances not healthy within 600 s\n");
}

TEST(Changes, FromToOrOneValue) {
  EXPECT_EQ(release_change({{"fromRelease", 3}, {"toRelease", 3}}), "r3");
  EXPECT_EQ(release_change({{"fromRelease", 0}, {"toRelease", 1}}), "r1");
  EXPECT_EQ(instance_change({{"fromInstances", 3}, {"toInstances", 5}}), "3->5");
  EXPECT_EQ(instance_change({{"toInstances", 5}}), "5");
}

TEST(ReleasesTable, NewestFirstWithTheCurrentMarked) {
  Json r1 = {{"number", 1}, {"status", "ready"}, {"cause", "api"}, {"artifact", ""},
             {"created", kNow - 800'000}, {"current", false}};
  Json r2 = {{"number", 2},         {"status", "ready"},
             {"cause", "push"},     {"artifact", "sha256:0123456789abcdef0123456789abcdef"},
             {"artifactSize", 2048}, {"sha", "89abcdef0123456789"},
             {"createdAt", "2023-11-14T22:13:00.000Z"}, {"current", true},
             {"durations", {{"receive", 10}, {"build", 61'000}, {"test", 1'250}, {"smoke", 12'000}}}};
  EXPECT_EQ(releases_table(Json::array({r1, r2}), 0, kNow).render(),
            "RELEASE   CURRENT   STATUS   CAUSE   SHA        ARTIFACT            BUILD   TEST   SMOKE   AGE      NOTE\n"
            "2         *         ready    push    89abcdef   0123456789ab 2.0K   1m1s    1.2s   12s     20s\n"
            "1                   ready    api     -          -                   -       -      -       13m20s\n");
}

TEST(ReleasesTable, CurrentFromTheAppAndNotesOfFailedAndReusedReleases) {
  Json failed = {{"number", 4}, {"status", "failed"}, {"step", "smoke"}, {"reason", "not healthy within 60 s"}};
  Json reused = {{"number", 3}, {"status", "ready"}, {"reusedFrom", 1}};
  Json building = {{"number", 5}, {"status", "building"}, {"step", "build"}};
  Table t = releases_table(Json::array({reused, failed, building}), 3, kNow);
  std::string out = t.render();
  EXPECT_NE(out.find("5                   building"), std::string::npos) << out;
  EXPECT_NE(out.find("   build\n"), std::string::npos) << out;
  EXPECT_NE(out.find("smoke: not healthy within 60 s\n"), std::string::npos) << out;
  EXPECT_NE(out.find("3         *         ready"), std::string::npos) << out;
  EXPECT_NE(out.find("slug of r1\n"), std::string::npos) << out;
}

TEST(ConfigTable, SortedKeysAndValuesAsSent) {
  EXPECT_EQ(config_table(Json{{"B", "2"}, {"A", "***"}, {"N", 3}}).render(), "KEY   VALUE\nA     ***\nB     2\nN     3\n");
  EXPECT_TRUE(config_table(Json::object()).empty());
  EXPECT_TRUE(config_table(Json::array()).empty());
}

TEST(AppDetails, SummarisesStateAndSpec) {
  Json a = app(3, 3, 3);
  a["spec"] = {{"cmd", "python3 -m http.server $PORT0"},
               {"cpus", 0.25},
               {"mem", 64},
               {"portDefinitions", {{{"port", 0}, {"name", "http"}}}},
               {"healthChecks", {{{"protocol", "HTTP"}, {"path", "/health"}, {"intervalSeconds", 1}}}},
               {"constraints", Json::array({Json::array({"hostname", "UNIQUE"})})}};
  std::string out = app_details(a, kNow);
  EXPECT_NE(out.find("ID:             /shop/web\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Release:        3 (previous 2)\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Instances:      3 (running 3, healthy 3, staged 0, unhealthy 0)\n"), std::string::npos);
  EXPECT_NE(out.find("Deployment:     none\n"), std::string::npos);
  EXPECT_NE(out.find("Command:        python3 -m http.server $PORT0\n"), std::string::npos);
  EXPECT_NE(out.find("Resources:      cpus 0.25, mem 64M\n"), std::string::npos);
  EXPECT_NE(out.find("Ports:          http=auto\n"), std::string::npos);
  EXPECT_NE(out.find("Health checks:  HTTP /health every 1s\n"), std::string::npos);
  EXPECT_NE(out.find("Constraints:    hostname:UNIQUE\n"), std::string::npos);
  EXPECT_NE(out.find("(3m12s ago)"), std::string::npos);
  EXPECT_EQ(out.find("Waiting"), std::string::npos);
}

}  // namespace
}  // namespace stele::cli

namespace stele::cli {
namespace {

TEST(RoutesTable, RowPerInstanceAndRoutesWithoutInstancesSaySo) {
  Json doc = {{"version", 4},
              {"routes", {{{"host", "web.localhost"}, {"path", "/"}, {"app", "/web"}, {"portIndex", 1}},
                          {{"host", "api.localhost"}, {"path", "/v1"}, {"app", "/api"}, {"portIndex", 0}}}},
              {"apps", {{"/web", {{"instances", {{{"task", "web-r2.0.1"}, {"host", "10.0.0.5"}, {"ports", {31000, 31001}},
                                                 {"healthy", true}},
                                                {{"task", "web-r2.1.1"}, {"host", "10.0.0.6"}, {"ports", {31002, 31003}},
                                                 {"healthy", false}}}}}},
                        {"/api", {{"instances", Json::array()}}}}},
              {"routers", {{{"node", "h1"}, {"address", "127.0.0.1:7080"}, {"appliedVersion", 3}}}}};
  EXPECT_EQ(routes_table(doc).render(),
            "HOST            PATH   APP    INSTANCE         ADDRESS          STATE\n"
            "web.localhost   /      /web   web-r2.0.1       10.0.0.5:31001   healthy\n"
            "web.localhost   /      /web   web-r2.1.1       10.0.0.6:31003   not ready\n"
            "api.localhost   /v1    /api   (no instances)   -                -\n");
  EXPECT_EQ(routers_summary(doc), "router 127.0.0.1:7080 on h1: table version 4 (applying; router is at 3)\n");
  doc["routers"][0]["appliedVersion"] = 4;
  EXPECT_EQ(routers_summary(doc), "router 127.0.0.1:7080 on h1: table version 4 applied\n");
  EXPECT_EQ(routers_summary(Json::object()), "No router runs (stele server --router-listen off).\n");
}

}  // namespace
}  // namespace stele::cli
