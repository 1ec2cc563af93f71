// The docker containerizer's pure parts: the container a task becomes, the
// user it runs as, which containers an agent may sweep, and the docker part
// of a LaunchSpec surviving task.json.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/containerizers/docker.h"
#include "agent/containerizers/registry.h"
#include "agent/steps.h"
#include "docker/api_types.h"

namespace stele {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

LaunchSpec docker_spec() {
  LaunchSpec s;
  s.task_id = "dock_web-r3.1.2";
  s.app_id = "/dock/web";
  s.release = 3;
  s.seq = 1;
  s.cmd = "exec httpd -f -p 127.0.0.1:$PORT0";
  s.cpus = 0.5;
  s.mem = 64;
  s.ports = {32500};
  s.sandbox = "/var/lib/stele-agent/executors/dock_web-r3.1.2";
  s.cgroup_parent = "stele/agent-a";
  s.kill_grace_seconds = 2.5;
  s.containerizer = "docker";
  DockerLaunch d;
  d.image = "stele/busybox:latest";
  d.agent_id = "agent-a";
  d.binds = {"/srv/data:/data:ro"};
  d.labels = {{"team", "web"}};
  s.docker = d;
  return s;
}

TaskLaunch launch_of(const LaunchSpec& s) {
  TaskLaunch l;
  l.spec = &s;
  l.user = "stele-task";
  l.uid = 999;
  l.gid = 995;
  for (const auto& [k, v] : task_environment(s)) l.env.push_back(k + "=" + v);
  return l;
}

TEST(DockerBuild, TheBuildTaskBecomesAnEngineBuildOfTheAppDir) {
  LaunchSpec s = docker_spec();
  s.docker->image = "stele/web:r3";
  s.docker->dockerfile = "docker/Dockerfile";
  s.work_dir = s.sandbox + "/app";
  docker::BuildOptions b = build_options(s);
  EXPECT_EQ(b.context_dir, s.sandbox + "/app");
  EXPECT_EQ(b.dockerfile, "docker/Dockerfile");
  EXPECT_EQ(b.tag, "stele/web:r3");
  EXPECT_EQ(b.memory_bytes, 64 * 1024 * 1024);
  EXPECT_EQ(b.cpu_shares, 512);
  EXPECT_EQ(b.labels.at("stele.app"), "/dock/web");
  EXPECT_EQ(b.labels.at("stele.release"), "3");
  EXPECT_EQ(b.scratch_dir, s.sandbox);  // the context tar never lands in a shared /tmp
  // The build survives task.json like the rest of the docker part.
  LaunchSpec back = Json(s).get<LaunchSpec>();
  EXPECT_EQ(back.docker->dockerfile, "docker/Dockerfile");
}

TEST(DockerBuild, StepsNameTheirDockerfileAndTagOrAreRefused) {
  Json cmd = {{"step", {{"kind", "build"}, {"cmd", "docker build -f Dockerfile ."}, {"source", "abc"},
                        {"dockerfile", "Dockerfile"}, {"tag", "stele/web:r3"}}}};
  auto ok = agent::parse_step(cmd);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_TRUE((*ok)->is_docker_build());
  EXPECT_EQ((*ok)->tag, "stele/web:r3");
  cmd["step"].erase("tag");
  auto no_tag = agent::parse_step(cmd);
  ASSERT_FALSE(no_tag);
  EXPECT_EQ(no_tag.error().details.at(0).path, "/step/tag");
  cmd["step"]["tag"] = "stele/web:r3";
  cmd["step"]["kind"] = "test";
  auto test_step = agent::parse_step(cmd);
  ASSERT_FALSE(test_step);
  EXPECT_EQ(test_step.error().details.at(0).path, "/step/dockerfile");
}

TEST(DockerContainerConfig, CarriesTheTaskAsMarathonRunsIt) {
  LaunchSpec s = docker_spec();
  TaskLaunch l = launch_of(s);
  docker::ContainerConfig c = container_config(l, container_user(l, nullptr));
  EXPECT_EQ(c.name, "stele-dock_web-r3.1.2");
  EXPECT_EQ(c.image, "stele/busybox:latest");
  EXPECT_EQ(c.shell_cmd, s.cmd);  // /bin/sh -c inside the image
  EXPECT_EQ(c.user, "999:995");
  EXPECT_EQ(c.memory_bytes, 64 * 1024 * 1024);
  EXPECT_EQ(c.cpu_shares, 512);
  EXPECT_EQ(c.cpu_quota_us, 50000);
  EXPECT_EQ(c.stop_timeout_s, 3);
  EXPECT_EQ(c.cgroup_parent, "/stele/agent-a/dock_web-r3.1.2");
  EXPECT_EQ(c.labels.at("stele.app"), "/dock/web");
  EXPECT_EQ(c.labels.at("stele.task"), "dock_web-r3.1.2");
  EXPECT_EQ(c.labels.at("stele.release"), "3");
  EXPECT_EQ(c.labels.at("stele.agent"), "agent-a");
  EXPECT_EQ(c.labels.at("team"), "web");
  EXPECT_THAT(c.binds, Contains("/srv/data:/data:ro"));
  EXPECT_THAT(c.binds, Contains(s.sandbox + ":/mnt/mesos/sandbox"));
  EXPECT_THAT(c.env, Contains("PORT0=32500"));
  EXPECT_THAT(c.env, Contains("MESOS_SANDBOX=/mnt/mesos/sandbox"));
  EXPECT_THAT(c.env, Contains("STELE_RELEASE=3"));
  // The image's PATH stays unless the spec sets one.
  for (const auto& e : c.env) EXPECT_NE(e.rfind("PATH=", 0), 0u) << e;
  Json body = docker::create_body(c);
  EXPECT_EQ(body["HostConfig"]["NetworkMode"], "host");
  EXPECT_FALSE(body["HostConfig"].contains("RestartPolicy"));
  EXPECT_EQ(body["HostConfig"]["CgroupParent"], "/stele/agent-a/dock_web-r3.1.2");
}

TEST(DockerContainerConfig, ArgsGoToTheImageEntrypoint) {
  LaunchSpec s = docker_spec();
  s.cmd.reset();
  s.args = {"-f", "-p", "8080"};
  TaskLaunch l = launch_of(s);
  docker::ContainerConfig c = container_config(l, "1:1");
  EXPECT_TRUE(c.shell_cmd.empty());
  EXPECT_EQ(c.cmd, s.args);
  EXPECT_FALSE(c.entrypoint.has_value());
}

TEST(DockerContainerUser, SpecUserWinsWithAWarning) {
  LaunchSpec s = docker_spec();
  TaskLaunch l = launch_of(s);
  std::string warning;
  EXPECT_EQ(container_user(l, &warning), "999:995");
  EXPECT_TRUE(warning.empty());
  s.docker->user = "www-data";
  EXPECT_EQ(container_user(l, &warning), "www-data");
  EXPECT_THAT(warning, HasSubstr("www-data"));
  EXPECT_THAT(warning, HasSubstr("stele-task"));
}

docker::ContainerSummary summary(const std::string& id, const std::string& agent, const std::string& task) {
  docker::ContainerSummary c;
  c.id = id;
  if (!agent.empty()) c.labels["stele.agent"] = agent;
  if (!task.empty()) c.labels["stele.task"] = task;
  return c;
}

TEST(DockerOrphans, OnlyThisAgentsContainersOfUnknownTasks) {
  std::vector<docker::ContainerSummary> all = {summary("a", "agent-a", "t1"), summary("b", "agent-a", "t2"),
                                               summary("c", "agent-b", "t3"), summary("d", "", "t4"),
                                               summary("e", "agent-a", "")};
  auto orphans = orphan_containers(all, "agent-a", {"t1"});
  std::vector<std::string> ids;
  for (const auto& o : orphans) ids.push_back(o.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"b", "e"}));
  EXPECT_TRUE(orphan_containers(all, "", {}).empty());
}

TEST(DockerLaunchSpec, RoundTripsThroughTaskJson) {
  LaunchSpec s = docker_spec();
  auto back = parse_launch_spec(Json(s));
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(back->containerizer, "docker");
  ASSERT_TRUE(back->docker.has_value());
  EXPECT_EQ(*back->docker, *s.docker);
  s.cmd.reset();  // a docker task may keep the image's CMD
  EXPECT_TRUE(parse_launch_spec(Json(s)).has_value());
  s.docker.reset();
  auto bad = parse_launch_spec(Json(s));
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().details.at(0).path, "/docker/image");
}

TEST(ContainerizerRegistry, NamesProcessAndDocker) {
  auto r = builtin_containerizers();
  ASSERT_TRUE(r.count("process"));
  ASSERT_TRUE(r.count("docker"));
  EXPECT_STREQ(r.at("docker")()->name(), "docker");
  EXPECT_STREQ(r.at("process")()->name(), "process");
  EXPECT_THAT(r, Not(Contains(::testing::Key("mesos"))));
}

}  // namespace
}  // namespace stele
