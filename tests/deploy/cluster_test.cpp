// The Cluster state machine against a real SQLite store and a simulated
// clock, with agents played by the test through the agent-protocol calls.
#include "cluster_fixture.h"

using namespace stele;
using namespace stele::deploy;
using namespace stele::test;

TEST_F(ClusterTest, NewAppRunsItsInstancesAndTheDeploymentSucceeds) {
  add_agent("a1", "host1");
  auto r = cluster_->create_app(web_spec(3), "test");
  ASSERT_TRUE(r) << r.error().message;
  converge();
  EXPECT_EQ(running("/web"), 3);
  EXPECT_EQ(cluster_->active_deployment("/web"), nullptr);
  bool succeeded = false;
  for (auto& e : events_) succeeded |= e["type"] == "deployment_succeeded";
  EXPECT_TRUE(succeeded);
  // Every event names who caused it: the caller, the agent that reported,
  // or the control plane itself.
  for (auto& e : events_) {
    std::string type = e["type"], actor = e.value("actor", "");
    if (type == "app_created" || type == "release_created" || type == "deployment_started") EXPECT_EQ(actor, "test") << type;
    else if (type == "node_registered" || (type == "task_status" && e["state"] == "running")) EXPECT_EQ(actor, "agent:a1") << type;
    else EXPECT_FALSE(actor.empty()) << type;
    if (type == "deployment_succeeded") EXPECT_EQ(actor, "stele");
  }
  // Task ids follow design.md "Names".
  std::set<std::string> ids;
  for (auto* t : cluster_->tasks("/web")) ids.insert(t->id);
  EXPECT_TRUE(ids.count("web-r1.0.1") && ids.count("web-r1.1.1") && ids.count("web-r1.2.1"));
}

TEST_F(ClusterTest, UnplaceableTaskWaitsWithAReason) {
  add_agent("a1", "host1", /*cpus=*/0.5);
  ASSERT_TRUE(cluster_->create_app(web_spec(2), "test"));
  converge();
  EXPECT_EQ(running("/web"), 1);
  ASSERT_NE(cluster_->app("/web"), nullptr);
  EXPECT_NE(cluster_->app("/web")->waiting_reason.find("cpus"), std::string::npos) << cluster_->app("/web")->waiting_reason;
}

TEST_F(ClusterTest, SecondChangeWhileDeployingIsRefusedUnlessForced) {
  add_agent("a1", "host1");
  ASSERT_TRUE(cluster_->create_app(web_spec(2), "test"));
  auto r = cluster_->update_app(web_spec(2, "serve --v2"), false, "test");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, 409);
  auto forced = cluster_->update_app(web_spec(2, "serve --v2"), true, "test");
  ASSERT_TRUE(forced) << forced.error().message;
  EXPECT_EQ(forced->release, 2);
}

TEST_F(ClusterTest, UpdateMakesANewReleaseAndReplacesEveryTask) {
  add_agent("a1", "host1");
  ASSERT_TRUE(cluster_->create_app(web_spec(2), "test"));
  converge();
  ASSERT_TRUE(cluster_->update_app(web_spec(2, "serve --v2"), false, "test"));
  converge(10);
  for (auto* t : cluster_->tasks("/web")) EXPECT_EQ(t->release, 2) << t->id;
  EXPECT_EQ(running("/web"), 2);
  EXPECT_EQ(cluster_->releases("/web").size(), 2u);
}

TEST_F(ClusterTest, InstancesOnlyChangeScalesWithoutANewRelease) {
  add_agent("a1", "host1");
  ASSERT_TRUE(cluster_->create_app(web_spec(2), "test"));
  converge();
  auto r = cluster_->update_app(web_spec(4), false, "test");
  ASSERT_TRUE(r);
  converge();
  EXPECT_EQ(running("/web"), 4);
  EXPECT_EQ(cluster_->releases("/web").size(), 1u);
}

TEST_F(ClusterTest, LostAgentsTasksAreReplacedElsewhere) {
  add_agent("a1", "host1");
  ASSERT_TRUE(cluster_->create_app(web_spec(2), "test"));
  converge();
  add_agent("a2", "host2");
  // a1 stops heartbeating; a2 keeps going.
  for (int i = 0; i < 12; ++i) {
    clock_.advance_ms(1000);
    cluster_->heartbeat("a2");
    cluster_->tick();
  }
  EXPECT_EQ(cluster_->node("a1")->state, "lost");
  converge();
  EXPECT_EQ(running("/web"), 2);
  for (auto* t : cluster_->tasks("/web")) EXPECT_EQ(t->agent_id, "a2");
  // The second launch of each slot: "<name>-r1.<seq>.2".
  EXPECT_NE(cluster_->task("web-r1.0.2"), nullptr);
}

TEST_F(ClusterTest, ReturningAgentIsToldToKillTasksThatWereReplaced) {
  add_agent("a1", "host1");
  ASSERT_TRUE(cluster_->create_app(web_spec(1), "test"));
  converge();
  std::string old_id = cluster_->tasks("/web")[0]->id;
  add_agent("a2", "host2");
  for (int i = 0; i < 12; ++i) {
    clock_.advance_ms(1000);
    cluster_->heartbeat("a2");
    cluster_->tick();
  }
  converge();
  Node n;
  n.id = "a1";
  n.hostname = "host1";
  n.total = {4, 4096, 1000};
  n.ports = {{31000, 31099}};
  auto answer = cluster_->register_agent(n, Json::array({{{"taskId", old_id}, {"state", "running"}}}));
  ASSERT_TRUE(answer);
  EXPECT_EQ((*answer)["kill"], Json::array({old_id}));
}

TEST_F(ClusterTest, DeploymentThatNeverBecomesHealthyFailsAndRevertsRelease) {
  add_agent("a1", "host1");
  ASSERT_TRUE(cluster_->create_app(web_spec(1), "test"));
  converge();
  ASSERT_TRUE(cluster_->update_app(web_spec(1, "broken"), false, "test"));
  // The new task is launched but never reports running.
  for (int i = 0; i < 70; ++i) {
    clock_.advance_ms(1000);
    cluster_->heartbeat("a1");
    cluster_->tick();
  }
  EXPECT_EQ(cluster_->app("/web")->current_release, 1);
  EXPECT_EQ(cluster_->active_deployment("/web"), nullptr);
  bool failed = false;
  for (auto& e : events_) failed |= e["type"] == "deployment_failed";
  EXPECT_TRUE(failed);
  EXPECT_EQ(running("/web"), 1);  // the old task kept running throughout
  for (auto* t : cluster_->tasks("/web"))
    if (t->state == TaskState::Running) EXPECT_EQ(t->release, 1);
}

TEST_F(ClusterTest, StateSurvivesReopen) {
  add_agent("a1", "host1");
  ASSERT_TRUE(cluster_->create_app(web_spec(2), "test"));
  converge();
  open();
  ASSERT_NE(cluster_->app("/web"), nullptr);
  EXPECT_EQ(cluster_->tasks("/web").size(), 2u);
  EXPECT_EQ(cluster_->releases("/web").size(), 1u);
  EXPECT_EQ(cluster_->node("a1")->hostname, "host1");
}

TEST_F(ClusterTest, RollbackDeploysThePreviousRelease) {
  add_agent("a1", "host1");
  ASSERT_TRUE(cluster_->create_app(web_spec(1), "test"));
  converge();
  ASSERT_TRUE(cluster_->update_app(web_spec(1, "v2"), false, "test"));
  converge(10);
  auto r = cluster_->rollback("/web", std::nullopt, false, "test");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->release, 1);
  converge(10);
  EXPECT_EQ(cluster_->tasks("/web")[0]->release, 1);
}

TEST_F(ClusterTest, AppNameCollisionIsRefused) {
  ASSERT_TRUE(cluster_->create_app(web_spec(0), "test"));
  auto same = cluster_->create_app(web_spec(0), "test");
  ASSERT_FALSE(same);
  EXPECT_EQ(same.error().code, 409);
  // "/shop/web" and "/shop.web" both have the app name "shop_web".
  auto nested = parse_app_spec(Json{{"id", "/shop/web"}, {"cmd", "x"}, {"instances", 0}});
  auto dotted = parse_app_spec(Json{{"id", "/shop.web"}, {"cmd", "x"}, {"instances", 0}});
  ASSERT_TRUE(nested && dotted);
  ASSERT_TRUE(cluster_->create_app(*nested, "test"));
  auto r = cluster_->create_app(*dotted, "test");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, 422);
  EXPECT_NE(r.error().message.find("/shop/web"), std::string::npos);
}

TEST_F(ClusterTest, RepeatedStatusUpdateIsIgnored) {
  add_agent("a1", "host1");
  ASSERT_TRUE(cluster_->create_app(web_spec(1), "test"));
  converge();
  size_t before = events_.size();
  std::string id = cluster_->tasks("/web")[0]->id;
  ASSERT_TRUE(cluster_->task_status("a1", {{"taskId", id}, {"state", "running"}, {"pid", 100}}));
  EXPECT_EQ(events_.size(), before);
}

// The task state machine as the agents drive it.
TEST_F(ClusterTest, TaskStatesFollowTheAgentsReportsAndKillingIsSticky) {
  add_agent("a1", "host1");
  ASSERT_TRUE(cluster_->create_app(web_spec(1), "test"));
  cluster_->tick();
  std::string id = cluster_->tasks("/web")[0]->id;
  EXPECT_EQ(cluster_->task(id)->state, TaskState::Staging);
  ASSERT_TRUE(cluster_->task_status("a1", {{"taskId", id}, {"state", "starting"}}));
  EXPECT_EQ(cluster_->task(id)->state, TaskState::Starting);
  ASSERT_TRUE(cluster_->task_status("a1", {{"taskId", id}, {"state", "running"}, {"pid", 42}}));
  EXPECT_EQ(cluster_->task(id)->state, TaskState::Running);
  EXPECT_EQ(cluster_->task(id)->pid, 42);
  ASSERT_TRUE(cluster_->kill_tasks({id}, /*scale=*/true, "test"));
  EXPECT_EQ(cluster_->task(id)->state, TaskState::Killing);
  // A late "running" report does not undo the kill.
  ASSERT_TRUE(cluster_->task_status("a1", {{"taskId", id}, {"state", "running"}}));
  EXPECT_EQ(cluster_->task(id)->state, TaskState::Killing);
  ASSERT_TRUE(cluster_->task_status("a1", {{"taskId", id}, {"state", "killed"}, {"exitCode", 143}}));
  EXPECT_EQ(cluster_->task(id), nullptr);  // terminal tasks leave the live set...
  auto history = cluster_->task_history("/web");
  ASSERT_EQ(history.size(), 1u);          // ...and are kept in the app's history
  EXPECT_EQ(history[0]->state, TaskState::Killed);
  EXPECT_EQ(cluster_->app("/web")->instances, 0);  // killed with scale=true
}

TEST_F(ClusterTest, UnknownStateIsRefusedAndForeignTaskIsKilled) {
  add_agent("a1", "host1");
  auto bad = cluster_->task_status("a1", {{"taskId", "x"}, {"state", "exploded"}});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, 422);
  ASSERT_TRUE(cluster_->task_status("a1", {{"taskId", "ghost-r1.0.1"}, {"state", "running"}}));
  auto cmds = cluster_->commands("a1", 0);
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].body["type"], "kill");
  EXPECT_EQ(cmds[0].task_id, "ghost-r1.0.1");
}

TEST_F(ClusterTest, FailedTaskIsReplacedAfterBackoff) {
  add_agent("a1", "host1");
  ASSERT_TRUE(cluster_->create_app(web_spec(1), "test"));
  converge();
  std::string id = cluster_->tasks("/web")[0]->id;
  ASSERT_TRUE(cluster_->task_status("a1", {{"taskId", id}, {"state", "failed"}, {"exitCode", 1}}));
  cluster_->tick();
  EXPECT_TRUE(cluster_->tasks("/web").empty()) << "relaunched before backoffSeconds (1 s)";
  clock_.advance_ms(1100);
  cluster_->heartbeat("a1");
  cluster_->tick();
  ASSERT_EQ(cluster_->tasks("/web").size(), 1u);
  EXPECT_EQ(cluster_->tasks("/web")[0]->id, "web-r1.0.2");
}

// After a server restart, commands that were never confirmed are sent again,
// and agents must register (and reconcile) before heartbeats count.
TEST_F(ClusterTest, UnconfirmedCommandsAreResentAfterRestart) {
  add_agent("a1", "host1");
  ASSERT_TRUE(cluster_->create_app(web_spec(2), "test"));
  cluster_->tick();  // launches queued, never delivered
  ASSERT_EQ(cluster_->commands("a1", 0).size(), 2u);
  open();  // the server restarts
  EXPECT_FALSE(cluster_->heartbeat("a1")) << "heartbeats before re-registration must be refused";
  auto cmds = cluster_->commands("a1", 0);
  ASSERT_EQ(cmds.size(), 2u);
  EXPECT_EQ(cmds[0].body["type"], "launch");
  add_agent("a1", "host1");  // re-registers with no tasks: the launches are still pending
  EXPECT_EQ(cluster_->tasks("/web").size(), 2u);
  converge();
  EXPECT_EQ(running("/web"), 2);
}

namespace {
AppSpec routed_spec(const std::string& cmd) {
  Json j = {{"id", "/web"}, {"cmd", cmd}, {"cpus", 0.5}, {"mem", 64}, {"instances", 1},
            {"routes", {{{"host", "web.localhost"}}}}};
  auto s = parse_app_spec(j);
  EXPECT_TRUE(s) << s.error().message;
  return *s;
}
bool kill_queued(Cluster& c, const std::string& task) {
  for (const auto* n : c.nodes())
    for (auto& cmd : c.commands(n->id, 0))
      if (cmd.task_id == task && cmd.body["type"] == "kill") return true;
  return false;
}
}  // namespace

// A routed one-instance app upgraded, 1 s of ticks (within the 5 s drain
// timeout) played; the old instance's id.
std::string ClusterTest::upgrade_routed_app() {
  open();
  add_agent("a1", "host1");
  EXPECT_TRUE(cluster_->create_app(routed_spec("serve"), "test"));
  converge();
  std::string old_id = cluster_->tasks("/web").at(0)->id;
  EXPECT_TRUE(cluster_->update_app(routed_spec("serve --v2"), false, "test"));
  converge(10);
  return old_id;
}

TEST_F(ClusterTest, RoutedInstanceLeavesTheRoutersBeforeItsKill) {
  int64_t synced = 0;
  routers_synced_ = [&synced] { return synced; };
  std::string old_id = upgrade_routed_app();
  // The new instance runs; the old one still runs, out of the routers' table, unkilled.
  const Task* old = cluster_->task(old_id);
  ASSERT_NE(old, nullptr);
  EXPECT_EQ(old->state, TaskState::Running);
  EXPECT_FALSE(kill_queued(*cluster_, old_id));
  Json table = route_table_json(*cluster_);
  for (const auto& i : table["apps"]["/web"]["instances"])
    EXPECT_EQ(i["healthy"], i["task"] != old_id) << i.dump();
  // The routers ran a table computed after the drain began: the kill goes out.
  synced = clock_.now_ms();
  cluster_->tick();
  EXPECT_TRUE(kill_queued(*cluster_, old_id));
}

TEST_F(ClusterTest, DrainEndsAtItsTimeoutWhenRoutersDoNotCatchUp) {
  routers_synced_ = [] { return int64_t(0); };
  std::string old_id = upgrade_routed_app();
  EXPECT_FALSE(kill_queued(*cluster_, old_id));
  clock_.advance_ms(5'000);
  cluster_->tick();
  EXPECT_TRUE(kill_queued(*cluster_, old_id));
}

// An app's tasks are found by its id prefix in the ordered task map: an app
// whose name extends another's ("/web-r2" beside "/web") must not leak in.
TEST_F(ClusterTest, TasksOfAnAppExcludeAppsWhoseNamesExtendIt) {
  add_agent("a1", "host1", /*cpus=*/8);
  ASSERT_TRUE(cluster_->create_app(web_spec(2), "test"));
  AppSpec other = web_spec(3);
  other.id = "/web-r2";
  ASSERT_TRUE(cluster_->create_app(other, "test"));
  converge();
  EXPECT_EQ(running("/web"), 2);
  EXPECT_EQ(running("/web-r2"), 3);
  for (auto* t : cluster_->tasks("/web")) EXPECT_EQ(t->app_id, "/web") << t->id;
  EXPECT_EQ(cluster_->tasks("/web").size(), 2u);
  EXPECT_EQ(cluster_->tasks("/web-r2").size(), 3u);
  EXPECT_EQ(cluster_->tasks().size(), 5u);
}
