// JSON mapping of the Engine API calls and the errors they become.
#include "docker/api_types.h"

#include <gtest/gtest.h>

namespace stele::docker {
namespace {

TEST(CreateBody, HostNetworkLimitsAndShellCommand) {
  ContainerConfig c;
  c.name = "stele-web-r3";
  c.image = "stele/web:r3";
  c.shell_cmd = "exec ./web --port $PORT0";
  c.env = {"PORT0=31001"};
  c.labels = {{"stele.app", "web"}, {"stele.task", "web.1"}};
  c.user = "999:999";
  c.working_dir = "/app";
  c.memory_bytes = 64 << 20;
  c.cpu_shares = 512;
  c.cpu_quota_us = 50000;
  c.cpu_period_us = 100000;
  c.binds = {"/srv/data:/data:ro"};
  c.stop_signal = "SIGTERM";
  c.stop_timeout_s = 10;
  Json b = create_body(c);
  EXPECT_EQ(b["Image"], "stele/web:r3");
  EXPECT_EQ(b["Entrypoint"], Json({"/bin/sh", "-c"}));
  EXPECT_EQ(b["Cmd"], Json({"exec ./web --port $PORT0"}));
  EXPECT_EQ(b["Env"], Json({"PORT0=31001"}));
  EXPECT_EQ(b["Labels"]["stele.task"], "web.1");
  EXPECT_EQ(b["User"], "999:999");
  EXPECT_EQ(b["WorkingDir"], "/app");
  EXPECT_EQ(b["StopSignal"], "SIGTERM");
  EXPECT_EQ(b["StopTimeout"], 10);
  EXPECT_EQ(b["Tty"], false);
  const Json& h = b["HostConfig"];
  EXPECT_EQ(h["NetworkMode"], "host");
  EXPECT_EQ(h["Memory"], 64 << 20);
  EXPECT_EQ(h["MemorySwap"], 64 << 20);
  EXPECT_EQ(h["CpuShares"], 512);
  EXPECT_EQ(h["CpuQuota"], 50000);
  EXPECT_EQ(h["CpuPeriod"], 100000);
  EXPECT_EQ(h["Binds"], Json({"/srv/data:/data:ro"}));
  EXPECT_FALSE(h.contains("RestartPolicy"));
}

TEST(CreateBody, ExecFormKeepsTheImageDefaultsItDoesNotSet) {
  ContainerConfig c;
  c.image = "stele/busybox:latest";
  c.cmd = {"sleep", "5"};
  Json b = create_body(c);
  EXPECT_EQ(b["Cmd"], Json({"sleep", "5"}));
  EXPECT_FALSE(b.contains("Entrypoint"));
  EXPECT_FALSE(b.contains("User"));
  EXPECT_FALSE(b.contains("Env"));
  EXPECT_FALSE(b["HostConfig"].contains("Memory"));
  c.entrypoint = std::vector<std::string>{};
  EXPECT_EQ(create_body(c)["Entrypoint"], Json::array());  // an empty entrypoint clears the image's
}

TEST(ContainerInfo, ParsesStateAndLabels) {
  auto j = parse_json(R"({"Id":"abc","Name":"/stele-web","Image":"sha256:img",
    "State":{"Status":"exited","Running":false,"Pid":0,"ExitCode":137,"OOMKilled":true,"Error":"",
             "StartedAt":"2026-11-27T17:00:00.1Z","FinishedAt":"2026-11-27T17:00:01.2Z"},
    "Config":{"Labels":{"stele.app":"web"}}})");
  ASSERT_TRUE(j);
  auto c = parse_container_info(*j);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->id, "abc");
  EXPECT_EQ(c->name, "stele-web");
  EXPECT_EQ(c->image_id, "sha256:img");
  EXPECT_EQ(c->status, "exited");
  EXPECT_EQ(c->exit_code, 137);
  EXPECT_TRUE(c->oom_killed);
  EXPECT_EQ(c->finished_at, "2026-11-27T17:00:01.2Z");
  EXPECT_EQ(c->labels.at("stele.app"), "web");
  EXPECT_FALSE(parse_container_info(Json::array()));
}

TEST(ContainerList, ParsesRowsAndSkipsJunk) {
  auto j = parse_json(R"([{"Id":"a","Names":["/stele-a"],"ImageID":"sha256:i","State":"running",
    "Labels":{"stele.agent":"a1"}}, 5, {"Id":"b","Names":null,"Labels":null}])");
  auto l = parse_container_list(*j);
  ASSERT_TRUE(l);
  ASSERT_EQ(l->size(), 2u);
  EXPECT_EQ((*l)[0].name, "stele-a");
  EXPECT_EQ((*l)[0].labels.at("stele.agent"), "a1");
  EXPECT_EQ((*l)[1].id, "b");
  EXPECT_FALSE(parse_container_list(Json::object()));
}

TEST(LabelFilters, AsTheEngineWantsThem) {
  EXPECT_EQ(label_filters({"stele.agent=a1", "stele.app"}), R"({"label":["stele.agent=a1","stele.app"]})");
  EXPECT_EQ(label_filters({}, "container"), R"({"type":["container"]})");
}

TEST(ApiError, NamesWhatFailedTheEnginesMessageAndTheStatus) {
  auto e = api_error("create container stele-web-r3.0.1", 404, "{\"message\":\"No such image: stele/web:r3\"}\n");
  EXPECT_EQ(e.message, "docker: create container stele-web-r3.0.1: No such image: stele/web:r3 (404)");
  EXPECT_EQ(e.code, 404);
  EXPECT_EQ(api_error("ping", 500, "page not found\n").message, "docker: ping: page not found (500)");
  EXPECT_EQ(api_error("kill container x", 409, "").message, "docker: kill container x: HTTP 409 (409)");
  EXPECT_EQ(api_error("x", 400, "{\"other\":1}").message, "docker: x: HTTP 400 (400)");
}

TEST(CheckRef, RefusesWhatCouldEscapeTheRequestTarget) {
  EXPECT_TRUE(check_ref("start", "stele-web-r3.0.1"));
  EXPECT_TRUE(check_ref("inspect", "stele/busybox:latest"));
  EXPECT_TRUE(check_ref("inspect", "sha256:0123abcdef"));
  for (const std::string& bad : std::vector<std::string>{"", "a b", "x?force=1", "../../info", "a#b", "a%2F", std::string(600, 'a')}) {
    auto r = check_ref("start container", bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, 400);
  }
}

}  // namespace
}  // namespace stele::docker
