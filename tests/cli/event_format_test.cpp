#include "cli/event_format.h"

#include <gtest/gtest.h>

namespace stele::cli {
namespace {

Json task_event(const std::string& task, const std::string& state) {
  return {{"id", 41},          {"type", "task_status"}, {"time", "2026-01-02T03:04:05.678Z"},
          {"app", "/shop/web"}, {"task", task},          {"state", state},
          {"release", 2},       {"host", "host1"},       {"ports", {31000}},
          {"healthy", false}};
}

Json deployment_event(const std::string& type, const std::string& id, const std::string& step = "",
                      const std::string& reason = "") {
  return {{"id", 40},
          {"type", type},
          {"time", "2026-01-02T03:04:05.000Z"},
          {"app", "/shop/web"},
          {"deployment",
           {{"id", id},          {"appId", "/shop/web"}, {"kind", "deploy"}, {"fromRelease", 1},
            {"toRelease", 2},    {"fromInstances", 3},  {"toInstances", 3},  {"step", step},
            {"reason", reason}}}};
}

TEST(DescribeEvent, TaskStatus) {
  EXPECT_EQ(describe_event(task_event("web-r2.0.1", "running")), "task web-r2.0.1 running on host1 ports 31000");
  Json failed = task_event("web-r2.0.1", "failed");
  failed["reason"] = "exited";
  failed["message"] = "exit code 1";
  failed["ports"] = Json::array();
  EXPECT_EQ(describe_event(failed), "task web-r2.0.1 failed on host1 (exited: exit code 1)");
}

TEST(DescribeEvent, Deployments) {
  EXPECT_EQ(describe_event(deployment_event("deployment_started", "d7")), "deployment d7 started (deploy r1->r2)");
  EXPECT_EQ(describe_event(deployment_event("deployment_step", "d7", "1/3 new healthy, 3 old")),
            "deployment d7: 1/3 new healthy, 3 old");
  EXPECT_EQ(describe_event(deployment_event("deployment_failed", "d7", "", "not healthy within 600 s")),
            "deployment d7 failed: not healthy within 600 s");
  EXPECT_EQ(describe_event(deployment_event("deployment_canceled", "d7")), "deployment d7 canceled");
  Json scale = deployment_event("deployment_succeeded", "d8");
  scale["deployment"]["kind"] = "scale";
  scale["deployment"]["toInstances"] = 5;
  EXPECT_EQ(describe_event(scale), "deployment d8 succeeded (scale 3->5 instances)");
}

TEST(DescribeEvent, AppAndNodeEvents) {
  EXPECT_EQ(describe_event({{"type", "app_created"}, {"release", 1}, {"actor", "api"}}),
            "app created (release 1) [by api]");
  EXPECT_EQ(describe_event({{"type", "release_created"}, {"release", 4}}), "release 4 created");
  EXPECT_EQ(describe_event({{"type", "release_ready"}, {"release", 5}, {"status", "ready"}, {"cause", "push"},
                            {"sha", "0123456789abcdef0123456789abcdef01234567"}}),
            "release 5 ready (push 01234567)");
  EXPECT_EQ(describe_event({{"type", "release_failed"}, {"release", 6}, {"status", "failed"}, {"cause", "push"},
                            {"step", "test"}, {"reason", "exited with status 1"}}),
            "release 6 failed (push): test failed: exited with status 1");
  EXPECT_EQ(describe_event({{"type", "config_changed"}, {"keys", {"A", "B"}}, {"release", 7}}),
            "config changed: A, B (release 7)");
  EXPECT_EQ(describe_event({{"type", "app_scaled"}, {"instances", 5}}), "scaled to 5 instances");
  EXPECT_EQ(describe_event({{"type", "app_reverted"}, {"release", 2}, {"reason", "not healthy"}}),
            "reverted to release 2: not healthy");
  EXPECT_EQ(describe_event({{"type", "task_waiting"}, {"reason", "no agent has 4 cpus"}}),
            "waiting: no agent has 4 cpus");
  EXPECT_EQ(describe_event({{"type", "health_changed"}, {"task", "web-r2.0.1"}, {"alive", true}}),
            "task web-r2.0.1 healthy");
  EXPECT_EQ(describe_event({{"type", "node_lost"}, {"node", {{"hostname", "host1"}, {"address", "10.0.0.5"}}}}),
            "node host1 (10.0.0.5) lost");
  EXPECT_EQ(describe_event({{"type", "node_registered"}, {"node", {{"hostname", "host2"}}}}),
            "node host2 registered");
}

TEST(DescribeEvent, UnknownTypesShowTheirOwnFields) {
  EXPECT_EQ(describe_event({{"id", 9}, {"type", "check_state"}, {"time", "t"}, {"check", "disk"}, {"status", 2}}),
            R"({"check":"disk","status":2})");
}

TEST(FormatEventLine, TimeTypeAppDescription) {
  EXPECT_EQ(format_event_line(task_event("web-r2.0.1", "running")),
            "2026-01-02T03:04:05.678Z  task_status           /shop/web  task web-r2.0.1 running on host1 ports 31000");
  EXPECT_EQ(format_event_line({{"type", "node_lost"}, {"time", "T"}, {"node", {{"hostname", "h"}}}}),
            "T  node_lost             -  node h lost");
}

TEST(DeploymentWatch, PrintsStepsAndTasksUntilSuccess) {
  DeploymentWatch w("/shop/web", "d7");
  EXPECT_FALSE(w.on_event(task_event("old-task", "killed")).relevant);  // before our deployment: stale
  auto s = w.on_event(deployment_event("deployment_started", "d7"));
  EXPECT_TRUE(s.relevant);
  EXPECT_EQ(s.line, "");
  EXPECT_EQ(w.on_event(task_event("web-r2.0.1", "running")).line, "  task web-r2.0.1 running on host1 ports 31000");
  EXPECT_EQ(w.on_event(deployment_event("deployment_step", "d7", "1/3 new healthy, 3 old")).line,
            "  deployment step: 1/3 new healthy, 3 old");
  EXPECT_FALSE(w.done());
  w.on_event(deployment_event("deployment_succeeded", "d7"));
  EXPECT_TRUE(w.done());
  EXPECT_EQ(w.outcome(), DeploymentWatch::Outcome::Succeeded);
  EXPECT_EQ(w.summary(), "Deployment d7 succeeded: /shop/web runs release 2 with 3 instances");
}

TEST(DeploymentWatch, IgnoresOtherDeploymentsAndApps) {
  DeploymentWatch w("/shop/web", "d7");
  w.on_event(deployment_event("deployment_started", "d7"));
  EXPECT_FALSE(w.on_event(deployment_event("deployment_failed", "d6", "", "x")).relevant);
  Json other = task_event("db-r1.0.1", "running");
  other["app"] = "/db";
  EXPECT_FALSE(w.on_event(other).relevant);
  EXPECT_FALSE(w.done());
}

TEST(DeploymentWatch, FailureCarriesTheReason) {
  DeploymentWatch w("/shop/web", "d7");
  w.on_event(deployment_event("deployment_started", "d7"));
  w.on_event(deployment_event("deployment_failed", "d7", "", "new instances not healthy within 600 s"));
  EXPECT_EQ(w.outcome(), DeploymentWatch::Outcome::Failed);
  EXPECT_EQ(w.summary(), "deployment d7 failed: new instances not healthy within 600 s");
  // Nothing after the end changes the outcome.
  EXPECT_FALSE(w.on_event(deployment_event("deployment_succeeded", "d7")).relevant);
  EXPECT_EQ(w.outcome(), DeploymentWatch::Outcome::Failed);
}

TEST(DeploymentWatch, CanceledAndDeletedEndTheWatch) {
  DeploymentWatch c("/shop/web", "d7");
  c.on_event(deployment_event("deployment_step", "d7", "0/3 new healthy, 3 old"));
  c.on_event(deployment_event("deployment_canceled", "d7", "", "superseded by d8"));
  EXPECT_EQ(c.outcome(), DeploymentWatch::Outcome::Canceled);
  EXPECT_EQ(c.summary(), "deployment d7 was canceled: superseded by d8");

  DeploymentWatch d("/shop/web", "d7");
  d.on_event(deployment_event("deployment_started", "d7"));
  d.on_event({{"type", "app_deleted"}, {"app", "/shop/web"}});
  EXPECT_EQ(d.outcome(), DeploymentWatch::Outcome::Failed);
  EXPECT_EQ(d.summary(), "deployment d7 failed: the app was deleted");
}

TEST(DeploymentWatch, ShowsRevertsAndWaiting) {
  DeploymentWatch w("/shop/web", "d7");
  w.on_event(deployment_event("deployment_started", "d7"));
  EXPECT_EQ(w.on_event({{"type", "task_waiting"}, {"app", "/shop/web"}, {"reason", "no ports"}}).line,
            "  waiting: no ports");
  EXPECT_EQ(w.on_event({{"type", "app_reverted"}, {"app", "/shop/web"}, {"release", 1}, {"reason", "timeout"}}).line,
            "  reverted to release 1: timeout");
}

}  // namespace
}  // namespace stele::cli
