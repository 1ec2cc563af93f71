// The Cluster's pipeline support: apps before their first push, releases
// filled in by the pipeline with a final status set once, config releases,
// retention marks and one-off tasks the deployment controller leaves alone.
#include "cluster_fixture.h"

using namespace stele;
using namespace stele::deploy;
using namespace stele::test;

namespace {

Release pushed(const std::string& app, int instances, const std::string& status = "building") {
  Release r;
  r.app_id = app;
  r.spec = web_spec(instances);
  r.spec.id = app;
  r.status = status;
  r.cause = "push";
  r.sha = std::string(40, 'a');
  r.tree = std::string(40, 'b');
  return r;
}

class PipelineClusterTest : public ClusterTest {
 protected:
  int64_t ready_release(const std::string& artifact, int instances = 2) {
    auto n = cluster_->add_release(pushed("/web", instances), "push");
    EXPECT_TRUE(n) << n.error().message;
    Release r = *cluster_->release("/web", *n);
    r.artifact = artifact;
    r.status = "ready";
    EXPECT_TRUE(cluster_->update_release(r));
    return *n;
  }
};

}  // namespace

TEST_F(PipelineClusterTest, EmptyAppWaitsForItsFirstReleaseThenSeedsInstancesFromIt) {
  add_agent("a1", "host1");
  ASSERT_TRUE(cluster_->create_empty_app("/web", "test"));
  converge();
  EXPECT_TRUE(cluster_->tasks("/web").empty());
  EXPECT_EQ(cluster_->create_empty_app("/web", "test").error().code, 409);
  EXPECT_EQ(cluster_->create_empty_app("/Bad App!", "test").error().code, 422);
  int64_t n = ready_release(std::string(64, 'c'), 3);
  ASSERT_TRUE(cluster_->deploy_release("/web", n, false, "test"));
  converge();
  EXPECT_EQ(running("/web"), 3) << "stele.json's instances seeds the first deploy";
  // Later pushes keep the scale the app has.
  ASSERT_TRUE(cluster_->scale("/web", 1, true, "test"));
  converge();
  int64_t m = ready_release(std::string(64, 'd'), 5);
  ASSERT_TRUE(cluster_->deploy_release("/web", m, false, "test"));
  converge(10);
  EXPECT_EQ(running("/web"), 1);
  // Instances start from the release's slug.
  for (const auto* node : cluster_->nodes())
    for (auto& c : cluster_->commands(node->id, 0))
      if (c.body["type"] == "launch") EXPECT_EQ(c.body["artifact"], std::string(64, 'd'));
}

TEST_F(PipelineClusterTest, PipelineStatusIsSetOnce) {
  ASSERT_TRUE(cluster_->create_empty_app("/web", "test"));
  auto n = cluster_->add_release(pushed("/web", 1), "push");
  ASSERT_TRUE(n);
  EXPECT_EQ(cluster_->deploy_release("/web", *n, false, "t").error().code, 409) << "a building release is not deployable";
  Release r = *cluster_->release("/web", *n);
  r.status = "failed";
  r.reason = "tests failed";
  ASSERT_TRUE(cluster_->update_release(r));
  r.status = "ready";
  auto again = cluster_->update_release(r);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, 409);
  EXPECT_EQ(cluster_->release("/web", *n)->status, "failed");
  open();  // survives a restart
  EXPECT_EQ(cluster_->release("/web", *n)->reason, "tests failed");
}

TEST_F(PipelineClusterTest, ConfigMakesAReleaseWithTheSameArtifactAndRollbackRestoresConfig) {
  add_agent("a1", "host1");
  ASSERT_TRUE(cluster_->create_empty_app("/web", "test"));
  std::string slug(64, 'e');
  int64_t n = ready_release(slug);
  ASSERT_TRUE(cluster_->deploy_release("/web", n, false, "t"));
  converge();
  std::map<std::string, std::optional<std::string>> set = {{"GREETING", "hi"}};
  auto res = cluster_->set_config("/web", set, "t");
  ASSERT_TRUE(res) << res.error().message;
  const Release* rel = cluster_->release("/web", res->release);
  ASSERT_NE(rel, nullptr);
  EXPECT_EQ(rel->artifact, slug);
  EXPECT_EQ(rel->cause, "config");
  EXPECT_EQ(rel->effective_spec().env.at("GREETING"), "hi");
  // Values never appear in events.
  for (auto& e : events_) EXPECT_EQ(e.dump().find("\"hi\""), std::string::npos) << e.dump();
  converge(10);
  for (const auto* node : cluster_->nodes())
    for (auto& c : cluster_->commands(node->id, 0))
      if (c.body["type"] == "launch") EXPECT_EQ(c.body["spec"]["env"]["GREETING"], "hi");
  // Rolling back deploys the old environment, and the app's config follows it.
  ASSERT_TRUE(cluster_->rollback("/web", std::nullopt, true, "t"));
  EXPECT_TRUE(cluster_->app("/web")->config.empty());
  // Unset of a key that a later push keeps: config survives pushes.
  ASSERT_TRUE(cluster_->set_config("/web", set, "t"));
  auto next = cluster_->add_release(pushed("/web", 2), "push");
  ASSERT_TRUE(next);
  EXPECT_EQ(cluster_->release("/web", *next)->config.at("GREETING"), "hi");
}

TEST_F(PipelineClusterTest, CollectedReleasesCannotBeDeployedAndRollbackSkipsThem) {
  add_agent("a1", "host1");
  ASSERT_TRUE(cluster_->create_empty_app("/web", "test"));
  int64_t a = ready_release(std::string(64, '1'));
  int64_t b = ready_release(std::string(64, '2'));
  int64_t c = ready_release(std::string(64, '3'));
  ASSERT_TRUE(cluster_->deploy_release("/web", c, true, "t"));
  ASSERT_TRUE(cluster_->mark_artifact_collected("/web", b));
  EXPECT_EQ(cluster_->deploy_release("/web", b, true, "t").error().code, 410);
  auto rb = cluster_->rollback("/web", std::nullopt, true, "t");
  ASSERT_TRUE(rb);
  EXPECT_EQ(rb->release, a);
}

TEST_F(PipelineClusterTest, StepTasksAreNotAppInstancesAndReportTheirResult) {
  add_agent("a1", "host1");
  ASSERT_TRUE(cluster_->create_empty_app("/web", "test"));
  auto n = cluster_->add_release(pushed("/web", 2), "push");
  ASSERT_TRUE(n);
  StepRequest req;
  req.app_id = "/web";
  req.release = *n;
  req.kind = "build";
  req.spec = web_spec(1, "make");
  req.step = {{"kind", "build"}, {"cmd", "make"}, {"source", std::string(64, 'f')}};
  auto id = cluster_->start_step(req, "pipeline");
  ASSERT_TRUE(id) << id.error().message;
  EXPECT_EQ(*id, "web-r1.build.1");
  auto cmds = cluster_->commands("a1", 0);
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].body["step"]["cmd"], "make");
  cluster_->tick();
  EXPECT_EQ(cluster_->commands("a1", 0).size(), 1u) << "the deployment controller must leave steps alone";
  ASSERT_TRUE(cluster_->task_status("a1", {{"taskId", *id}, {"state", "running"}}));
  events_.clear();
  ASSERT_TRUE(cluster_->task_status("a1", {{"taskId", *id}, {"state", "finished"}, {"exitCode", 0},
                                           {"artifact", std::string(64, '9')}, {"artifactSize", 1234}}));
  ASSERT_FALSE(events_.empty());
  EXPECT_EQ(events_.back()["kind"], "build");
  EXPECT_EQ(events_.back()["artifact"], std::string(64, '9'));
  EXPECT_EQ(events_.back()["artifactSize"], 1234);
  EXPECT_EQ(cluster_->task(*id), nullptr);
  EXPECT_EQ(cluster_->app("/web")->next_launch_ms, 0) << "a step's end is no crash: no backoff";
  // The next build of the app counts on.
  auto again = cluster_->start_step(req, "pipeline");
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, "web-r1.build.2");
}

TEST_F(PipelineClusterTest, PendingStepLaunchIsResentAfterRestart) {
  add_agent("a1", "host1");
  ASSERT_TRUE(cluster_->create_empty_app("/web", "test"));
  StepRequest req;
  req.app_id = "/web";
  req.release = 1;
  req.kind = "test";
  req.spec = web_spec(1, "make test");
  req.step = {{"kind", "test"}, {"cmd", "make test"}};
  req.artifact = std::string(64, 'a');
  auto id = cluster_->start_step(req, "pipeline");
  ASSERT_TRUE(id);
  open();
  auto cmds = cluster_->commands("a1", 0);
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].body["step"]["cmd"], "make test");
  EXPECT_EQ(cmds[0].body["artifact"], std::string(64, 'a'));
}

TEST_F(PipelineClusterTest, BuildGoesToThePreferredAgentWhenItFits) {
  add_agent("a1", "host1");
  add_agent("a2", "host2");
  ASSERT_TRUE(cluster_->create_empty_app("/web", "test"));
  StepRequest req;
  req.app_id = "/web";
  req.release = 1;
  req.kind = "build";
  req.spec = web_spec(1, "make");
  req.step = {{"kind", "build"}, {"cmd", "make"}};
  for (const char* agent : {"a2", "a1", "a2"}) {
    req.prefer_agent = agent;
    auto id = cluster_->start_step(req, "pipeline");
    ASSERT_TRUE(id);
    EXPECT_EQ(cluster_->task(*id)->agent_id, agent) << "the agent holding the build cache";
  }
}
