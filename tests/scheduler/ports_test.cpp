// Ports: dynamic, fixed (requirePorts), exhaustion, reuse.
#include <gtest/gtest.h>

#include "scheduler/scheduler.h"
#include "test_cluster.h"

namespace stele::sched {
namespace {

using namespace testing;

TaskRequest with_ports(int n, std::vector<int> fixed = {}) {
  TaskRequest r = task("/web", 0.1, 16);
  r.port_count = n;
  r.fixed_ports = std::move(fixed);
  return r;
}

TEST(Ports, DynamicPortsAreDistinctAndLowestFirst) {
  Scheduler s;
  s.upsert_agent(agent("a1", 4, 4096, {}, {{31000, 31009}}));
  auto p = s.place("web.0", with_ports(2));
  auto q = s.place("web.1", with_ports(3));
  ASSERT_TRUE(p && q);
  EXPECT_EQ(p->ports, (std::vector<int>{31000, 31001}));
  EXPECT_EQ(q->ports, (std::vector<int>{31002, 31003, 31004}));
  EXPECT_EQ(s.used_ports("a1"), (std::vector<int>{31000, 31001, 31002, 31003, 31004}));
}

TEST(Ports, DynamicPortsSpanSeveralRanges) {
  Scheduler s;
  s.upsert_agent(agent("a1", 4, 4096, {}, {{9000, 9001}, {31000, 31001}}));
  auto p = s.place("web.0", with_ports(3));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->ports, (std::vector<int>{9000, 9001, 31000}));
}

TEST(Ports, FreedPortsAreHandedOutAgain) {
  Scheduler s;
  s.upsert_agent(agent("a1", 4, 4096, {}, {{31000, 31003}}));
  ASSERT_TRUE(s.place("web.0", with_ports(2)));
  ASSERT_TRUE(s.place("web.1", with_ports(2)));
  s.remove_task("web.0");
  auto p = s.place("web.2", with_ports(1));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->ports, std::vector<int>{31000});
}

TEST(Ports, RefusesWhenNoAgentHasEnoughFreePorts) {
  Scheduler s;
  s.upsert_agent(agent("a1", 4, 4096, {}, {{31000, 31003}}));
  s.upsert_agent(agent("a2", 4, 4096, {}, {{31000, 31001}}));
  ASSERT_TRUE(s.place("web.0", with_ports(2)));
  auto p = s.place("web.1", with_ports(3));
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message, "no agent with 3 free ports");
}

TEST(Ports, FixedPortsAreGivenExactlyInRequestOrder) {
  Scheduler s;
  s.upsert_agent(agent("a1", 4, 4096, {}, {{31000, 31009}}));
  auto p = s.place("web.0", with_ports(1, {31005, 31002}));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->ports, (std::vector<int>{31005, 31002, 31000}));
  auto q = s.place("web.1", with_ports(2));
  ASSERT_TRUE(q);
  EXPECT_EQ(q->ports, (std::vector<int>{31001, 31003}));  // skips the fixed ones
}

TEST(Ports, FixedPortInUseSendsTheTaskElsewhere) {
  Scheduler s;
  s.upsert_agent(agent("a1"));
  s.upsert_agent(agent("a2"));
  auto p = s.place("web.0", with_ports(0, {31004}));
  auto q = s.place("api.0", with_ports(0, {31004}));
  ASSERT_TRUE(p && q);
  EXPECT_NE(p->agent_id, q->agent_id);
  auto r = s.place("db.0", with_ports(0, {31004}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "no agent with port 31004 free");
}

TEST(Ports, FixedPortsOutsideTheAgentsRangesAreNeverFree) {
  Scheduler s;
  s.upsert_agent(agent("a1", 4, 4096, {}, {{31000, 31009}}));
  auto p = s.place("web.0", with_ports(0, {8080, 8081}));
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message, "no agent with ports 8080, 8081 free");
}

TEST(Ports, WholePortSpaceIsAllocatedLowestFirst) {
  Scheduler s;
  s.upsert_agent(agent("a1", 1e6, 1e9, {}, {{1, 65535}}));
  std::vector<int> all;
  for (int i = 0; i < 655; ++i) {
    auto p = s.place("t." + std::to_string(i), with_ports(100));
    ASSERT_TRUE(p) << p.error().message;
    all.insert(all.end(), p->ports.begin(), p->ports.end());
  }
  ASSERT_EQ(all.size(), 65500u);
  for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], static_cast<int>(i) + 1);
  EXPECT_FALSE(s.place("t.last", with_ports(36)));
  EXPECT_TRUE(s.place("t.fits", with_ports(35)));
}

}  // namespace
}  // namespace stele::sched
