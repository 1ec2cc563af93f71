// Resources, spreading, packing, agent and task lifecycle, preferred agent.
#include "scheduler/scheduler.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "test_cluster.h"

namespace stele::sched {
namespace {

using namespace testing;

TEST(Scheduler, PlacementConsumesTheAgentsResources) {
  Scheduler s;
  s.upsert_agent(agent("a1", 4, 4096));
  auto p = s.place("web.0", task("/web", 1.5, 512));
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->agent_id, "a1");
  EXPECT_DOUBLE_EQ(s.used("a1").cpus, 1.5);
  EXPECT_DOUBLE_EQ(s.used("a1").mem, 512);
  EXPECT_TRUE(s.has_task("web.0"));
}

TEST(Scheduler, NoAgentsRegistered) {
  Scheduler s;
  auto p = s.place("web.0", task("/web"));
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message, "no agents registered");
}

TEST(Scheduler, RefusesWhenNoAgentHasTheCpus) {
  Scheduler s;
  s.upsert_agent(agent("a1", 4));
  s.upsert_agent(agent("a2", 4));
  ASSERT_TRUE(s.place("big.0", task("/big", 3)));
  auto p = s.place("web.0", task("/web", 2));  // a2 has 4 free: fits
  ASSERT_TRUE(p);
  auto q = s.place("web.1", task("/web", 2.5));
  ASSERT_FALSE(q);
  EXPECT_EQ(q.error().message, "no agent with 2.5 cpus free");
}

TEST(Scheduler, RefusesWhenNoAgentHasTheMemory) {
  Scheduler s;
  s.upsert_agent(agent("a1", 4, 1024));
  auto p = s.place("db.0", task("/db", 1, 2048));
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message, "no agent with 2048 MB mem free");
}

TEST(Scheduler, NamesResourcesThatAreFreeOnlyOnDifferentAgents) {
  Scheduler s;
  s.upsert_agent(agent("cpu-rich", 8, 256));
  s.upsert_agent(agent("mem-rich", 1, 8192));
  auto p = s.place("db.0", task("/db", 2, 1024));
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message, "no agent with 2 cpus + 1024 MB mem free at once");
}

TEST(Scheduler, RefusedPlacementChangesNothing) {
  Scheduler s;
  s.upsert_agent(agent("a1", 1));
  ASSERT_FALSE(s.place("web.0", task("/web", 2)));
  EXPECT_FALSE(s.has_task("web.0"));
  EXPECT_DOUBLE_EQ(s.used("a1").cpus, 0);
  EXPECT_TRUE(s.place("web.0", task("/web", 1)));
}

TEST(Scheduler, RefusesATaskIdAlreadyPlaced) {
  Scheduler s;
  s.upsert_agent(agent("a1"));
  ASSERT_TRUE(s.place("web.0", task("/web")));
  auto again = s.place("web.0", task("/web"));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().message, "task web.0 is already placed");
  EXPECT_DOUBLE_EQ(s.used("a1").cpus, 1);
}

TEST(Scheduler, RefusesInvalidRequests) {
  Scheduler s;
  s.upsert_agent(agent("a1"));
  EXPECT_FALSE(s.place("t.0", task("/web", -1)));
  TaskRequest ports = task("/web");
  ports.port_count = -2;
  EXPECT_EQ(s.place("t.1", ports).error().message, "invalid port count -2");
  TaskRequest twice = task("/web");
  twice.fixed_ports = {31000, 31000};
  EXPECT_EQ(s.place("t.2", twice).error().message, "port 31000 requested twice");
  EXPECT_EQ(s.task_count(), 0u);
}

TEST(Scheduler, RemoveTaskFreesResourcesForTheNextTask) {
  Scheduler s;
  s.upsert_agent(agent("a1", 2));
  ASSERT_TRUE(s.place("web.0", task("/web", 2)));
  ASSERT_FALSE(s.place("api.0", task("/api", 2)));
  s.remove_task("web.0");
  EXPECT_FALSE(s.has_task("web.0"));
  EXPECT_DOUBLE_EQ(s.used("a1").cpus, 0);
  EXPECT_TRUE(s.place("api.0", task("/api", 2)));
  s.remove_task("never-placed");  // no-op
  EXPECT_DOUBLE_EQ(s.used("a1").cpus, 2);
}

TEST(Scheduler, KeepsTrackOfManyTasksComingAndGoing) {
  Scheduler s;
  s.upsert_agent(agent("a1", 1e6, 1e9));
  std::set<std::string> live;
  std::mt19937 rng(7);
  for (int round = 0; round < 4; ++round) {
    for (int i = 0; i < 5000; ++i) {
      const std::string id = "t" + std::to_string(rng() % 20000);
      if (live.count(id)) {
        s.remove_task(id);
        live.erase(id);
      } else {
        ASSERT_TRUE(s.place(id, task("/web", 1, 1))) << id;
        live.insert(id);
      }
    }
    for (int i = 0; i < 20000; ++i) {
      const std::string id = "t" + std::to_string(i);
      ASSERT_EQ(s.has_task(id), live.count(id) == 1) << id;
    }
  }
  EXPECT_EQ(s.task_count(), live.size());
  EXPECT_DOUBLE_EQ(s.used("a1").cpus, static_cast<double>(live.size()));
}

TEST(Scheduler, SpreadsAnAppsInstancesAcrossAgents) {
  Scheduler s;
  for (auto id : {"a1", "a2", "a3"}) s.upsert_agent(agent(id, 8));
  auto agents = place_n(s, task("/web"), 6, "web");
  EXPECT_EQ(tally(agents), (std::map<std::string, int>{{"a1", 2}, {"a2", 2}, {"a3", 2}}));
}

TEST(Scheduler, PacksOtherAppsOntoTheMostUsedAgent) {
  Scheduler s;
  s.upsert_agent(agent("a1", 8));
  s.upsert_agent(agent("a2", 8));
  s.upsert_agent(agent("a3", 8));
  s.add_task("db.0", "/db", "a2", {4, 1024, 0}, {});
  auto p = s.place("web.0", task("/web", 1));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->agent_id, "a2");
  // The next instance of /web spreads to another agent, the fuller of the rest.
  s.add_task("cache.0", "/cache", "a3", {1, 128, 0}, {});
  auto q = s.place("web.1", task("/web", 1));
  ASSERT_TRUE(q);
  EXPECT_EQ(q->agent_id, "a3");
}

TEST(Scheduler, SpreadsInALargeClusterToo) {
  Scheduler s;
  for (int i = 0; i < 500; ++i) s.upsert_agent(agent("a" + std::to_string(i), 8));
  auto agents = place_n(s, task("/web"), 40, "web");
  EXPECT_EQ(tally(agents).size(), 40u);
}

TEST(Scheduler, FindsTheOnlyAgentWithRoomInALargeCluster) {
  Scheduler s;
  for (int i = 0; i < 2000; ++i) {
    s.upsert_agent(agent("a" + std::to_string(i), 4));
    if (i != 1234) s.add_task("full." + std::to_string(i), "/full", "a" + std::to_string(i), {4, 0, 0}, {});
  }
  auto p = s.place("web.0", task("/web", 2));
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->agent_id, "a1234");
  auto q = s.place("web.1", task("/web", 3));
  ASSERT_FALSE(q);
  EXPECT_EQ(q.error().message, "no agent with 3 cpus free");
}

TEST(Scheduler, PreferredAgentWinsWhenItFits) {
  Scheduler s;
  s.upsert_agent(agent("a1", 8));
  s.upsert_agent(agent("builder", 8));
  s.add_task("db.0", "/db", "a1", {4, 128, 0}, {});  // packing alone would pick a1
  TaskRequest r = task("/build", 2);
  r.preferred_agent = "builder";
  auto p = s.place("build.0", r);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->agent_id, "builder");
}

TEST(Scheduler, PreferredAgentIsSkippedWhenFullOrExcluded) {
  Scheduler s;
  s.upsert_agent(agent("a1", 8, 4096, {{"kind", "general"}}));
  s.upsert_agent(agent("builder", 2, 4096, {{"kind", "build"}}));
  TaskRequest big = task("/build", 4);
  big.preferred_agent = "builder";
  EXPECT_EQ(s.place("build.0", big)->agent_id, "a1");
  TaskRequest excluded = with(task("/build", 1), "kind", "UNLIKE", "build");
  excluded.preferred_agent = "builder";
  EXPECT_EQ(s.place("build.1", excluded)->agent_id, "a1");
  TaskRequest unknown = task("/build", 1);
  unknown.preferred_agent = "gone";
  EXPECT_TRUE(s.place("build.2", unknown));
}

TEST(Scheduler, RemoveAgentForgetsItsTasks) {
  Scheduler s;
  s.upsert_agent(agent("a1"));
  s.upsert_agent(agent("a2"));
  TaskRequest unique = with(task("/web"), "hostname", "UNIQUE");
  auto agents = place_n(s, unique, 2, "web");
  s.remove_agent("a1");
  EXPECT_FALSE(s.has_agent("a1"));
  EXPECT_EQ(s.agent_count(), 1u);
  const std::string gone = agents[0] == "a1" ? "web.0" : "web.1";
  EXPECT_FALSE(s.has_task(gone));
  EXPECT_EQ(s.used("a1").cpus, 0);
  s.upsert_agent(agent("a3"));  // the replacement instance may go to the new agent
  auto p = s.place("web.2", unique);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->agent_id, "a3");
  s.remove_agent("never-registered");  // no-op
}

TEST(Scheduler, UpsertAgentKeepsItsTasks) {
  Scheduler s;
  s.upsert_agent(agent("a1", 4));
  TaskRequest r = task("/web", 3);
  r.port_count = 1;
  ASSERT_TRUE(s.place("web.0", r));
  s.upsert_agent(agent("a1", 8));  // grew
  EXPECT_DOUBLE_EQ(s.used("a1").cpus, 3);
  EXPECT_EQ(s.used_ports("a1"), std::vector<int>{31000});
  auto p = s.place("web.1", r);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->ports, std::vector<int>{31001});
  s.upsert_agent(agent("a1", 4));  // shrank below use: nothing free, nothing lost
  EXPECT_DOUBLE_EQ(s.used("a1").cpus, 6);
  EXPECT_FALSE(s.place("web.2", task("/web", 0.5)));
}

TEST(Scheduler, RecoveredTasksCountLikePlacedOnes) {
  Scheduler s;
  s.upsert_agent(agent("a1", 4));
  s.upsert_agent(agent("a2", 4));
  s.add_task("web.0", "/web", "a1", {1, 128, 0}, {31000, 31001});
  EXPECT_DOUBLE_EQ(s.used("a1").cpus, 1);
  EXPECT_EQ(s.used_ports("a1"), (std::vector<int>{31000, 31001}));
  auto p = s.place("web.1", with(task("/web"), "hostname", "UNIQUE"));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->agent_id, "a2");
  s.add_task("web.9", "/web", "unknown-agent", {1, 1, 0}, {});  // ignored
  EXPECT_FALSE(s.has_task("web.9"));
}

}  // namespace
}  // namespace stele::sched
