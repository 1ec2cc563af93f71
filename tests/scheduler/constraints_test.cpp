// Marathon constraint operators: each is honoured, and a placement that would
// break it is refused with a reason naming it.
#include <gtest/gtest.h>

#include "scheduler/scheduler.h"
#include "test_cluster.h"

namespace stele::sched {
namespace {

using namespace testing;

std::string fmt_id(int rack, int n) { return "r" + std::to_string(rack) + "-" + std::to_string(n); }

// Agents r<rack>-<n>, `per_rack` per rack, attribute rack=r<rack>.
Scheduler racks(int count, int per_rack, double cpus = 8) {
  Scheduler s;
  for (int r = 0; r < count; ++r)
    for (int n = 0; n < per_rack; ++n)
      s.upsert_agent(agent(fmt_id(r, n), cpus, 8192, {{"rack", "r" + std::to_string(r)}}));
  return s;
}

std::string rack_of(const std::string& agent_id) { return agent_id.substr(0, agent_id.find('-')); }

std::map<std::string, int> per_rack(const std::vector<std::string>& agents) {
  std::vector<std::string> r;
  for (const auto& a : agents) r.push_back(rack_of(a));
  return tally(r);
}

TEST(Unique, OneInstancePerHostnameThenRefused) {
  Scheduler s;
  s.upsert_agent(agent("a1"));
  s.upsert_agent(agent("a2"));
  TaskRequest r = with(task("/web"), "hostname", "UNIQUE");
  auto agents = place_n(s, r, 2, "web");
  EXPECT_EQ(tally(agents).size(), 2u);
  auto p = s.place("web.2", r);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message,
            "constraint hostname UNIQUE not satisfiable (2 agents, 2 instances already)");
  EXPECT_TRUE(s.place("api.0", with(task("/api"), "hostname", "UNIQUE")));  // per app
}

TEST(Unique, OneInstancePerAttributeValue) {
  Scheduler s = racks(2, 3);
  TaskRequest r = with(task("/web"), "rack", "UNIQUE");
  auto agents = place_n(s, r, 2, "web");
  EXPECT_EQ(per_rack(agents), (std::map<std::string, int>{{"r0", 1}, {"r1", 1}}));
  auto p = s.place("web.2", r);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message,
            "constraint rack UNIQUE not satisfiable (2 rack values, 2 instances already)");
}

TEST(Unique, AgentsWithoutTheAttributeNeverMatch) {
  Scheduler s;
  s.upsert_agent(agent("a1"));
  auto p = s.place("web.0", with(task("/web"), "rack", "UNIQUE"));
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message, "constraint rack UNIQUE not satisfiable (no agent has attribute rack)");
}

TEST(Unique, HoldsInALargeCluster) {
  Scheduler s;
  for (int i = 0; i < 300; ++i) s.upsert_agent(agent("a" + std::to_string(i), 64));
  auto agents = place_n(s, with(task("/web", 0.1), "hostname", "UNIQUE"), 300, "web");
  EXPECT_EQ(tally(agents).size(), 300u);
  EXPECT_FALSE(s.place("web.300", with(task("/web", 0.1), "hostname", "UNIQUE")));
}

TEST(Cluster, OnlyAgentsWithTheValue) {
  Scheduler s = racks(3, 2, 2);
  TaskRequest r = with(task("/web", 1), "rack", "CLUSTER", "r1");
  auto agents = place_n(s, r, 4, "web");
  EXPECT_EQ(per_rack(agents), (std::map<std::string, int>{{"r1", 4}}));
  auto p = s.place("web.4", r);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message,
            "no agent with 1 cpus free among the 2 agents that satisfy the constraints");
}

TEST(Cluster, UnknownValueIsNamed) {
  Scheduler s = racks(2, 1);
  auto p = s.place("web.0", with(task("/web"), "rack", "CLUSTER", "r9"));
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message, "constraint rack CLUSTER r9 not satisfiable (no agent with rack r9)");
}

TEST(Cluster, WithoutValueFollowsTheFirstInstance) {
  Scheduler s = racks(4, 20);  // 80 agents: the sampled search path
  TaskRequest r = with(task("/web", 0.5), "rack", "CLUSTER");
  auto agents = place_n(s, r, 30, "web");
  EXPECT_EQ(per_rack(agents).size(), 1u);
}

TEST(Cluster, WithoutValueFollowsTheInstancesWhenTheirAgentIsReRacked) {
  Scheduler s = racks(2, 1);
  TaskRequest r = with(task("/web"), "rack", "CLUSTER");
  auto p = s.place("web.0", r);
  ASSERT_TRUE(p);
  s.upsert_agent(agent(p->agent_id, 8, 8192, {{"rack", "r7"}}));
  auto q = s.place("web.1", r);
  ASSERT_TRUE(q) << q.error().message;
  EXPECT_EQ(q->agent_id, p->agent_id);
}

TEST(GroupBy, SpreadsEvenlyAcrossValues) {
  Scheduler s = racks(3, 2);
  auto agents = place_n(s, with(task("/web"), "rack", "GROUP_BY"), 7, "web");
  auto counts = per_rack(agents);
  ASSERT_EQ(counts.size(), 3u);
  for (const auto& [rack, n] : counts) EXPECT_TRUE(n == 2 || n == 3) << rack << ": " << n;
}

TEST(GroupBy, SpreadsEvenlyInALargeCluster) {
  Scheduler s = racks(10, 20);
  auto agents = place_n(s, with(task("/web", 0.1), "rack", "GROUP_BY"), 50, "web");
  for (const auto& [rack, n] : per_rack(agents)) EXPECT_EQ(n, 5) << rack;
}

TEST(GroupBy, FullValueIsSkippedRatherThanRefused) {
  Scheduler s = racks(2, 1, 2);
  s.add_task("big.0", "/big", "r1-0", {2, 0, 0}, {});  // r1 has no room
  auto agents = place_n(s, with(task("/web", 1), "rack", "GROUP_BY"), 2, "web");
  EXPECT_EQ(per_rack(agents), (std::map<std::string, int>{{"r0", 2}}));
}

TEST(GroupBy, WithCountWaitsForEnoughValues) {
  Scheduler s = racks(3, 2);
  TaskRequest r = with(task("/web"), "rack", "GROUP_BY", "4");
  auto agents = place_n(s, r, 3, "web");
  EXPECT_EQ(per_rack(agents).size(), 3u);
  auto p = s.place("web.3", r);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message,
            "constraint rack GROUP_BY 4 not satisfiable (only 3 rack values, all already used)");
}

Scheduler kinds() {
  Scheduler s;
  s.upsert_agent(agent("gpu1", 8, 8192, {{"kind", "gpu-a100"}}));
  s.upsert_agent(agent("gpu2", 8, 8192, {{"kind", "gpu-t4"}}));
  s.upsert_agent(agent("cpu1", 8, 8192, {{"kind", "general"}}));
  s.upsert_agent(agent("plain", 8, 8192));
  return s;
}

TEST(Like, OnlyValuesThatFullyMatch) {
  Scheduler s = kinds();
  auto agents = place_n(s, with(task("/ml"), "kind", "LIKE", "gpu-.*"), 6, "ml");
  EXPECT_EQ(tally(agents), (std::map<std::string, int>{{"gpu1", 3}, {"gpu2", 3}}));
  auto partial = s.place("x.0", with(task("/x"), "kind", "LIKE", "gpu"));  // "gpu" is only a prefix
  ASSERT_FALSE(partial);
  EXPECT_EQ(partial.error().message, "constraint kind LIKE gpu not satisfiable (no agent's kind matches)");
}

TEST(Like, OnHostname) {
  Scheduler s = kinds();
  auto p = s.place("x.0", with(task("/x"), "hostname", "LIKE", "cpu\\d\\.example\\.com"));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->agent_id, "cpu1");
}

TEST(Unlike, NeverOnMatchingValuesButOnAgentsWithoutTheAttribute) {
  Scheduler s = kinds();
  auto agents = place_n(s, with(task("/web"), "kind", "UNLIKE", "gpu-.*"), 4, "web");
  EXPECT_EQ(tally(agents), (std::map<std::string, int>{{"cpu1", 2}, {"plain", 2}}));
  auto p = s.place("x.0", with(task("/x"), "hostname", "UNLIKE", ".*"));
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message, "constraint hostname UNLIKE .* not satisfiable (every agent's hostname matches)");
}

TEST(MaxPer, AtMostNPerValue) {
  Scheduler s = racks(2, 2);
  TaskRequest r = with(task("/web"), "rack", "MAX_PER", "2");
  auto agents = place_n(s, r, 4, "web");
  EXPECT_EQ(per_rack(agents), (std::map<std::string, int>{{"r0", 2}, {"r1", 2}}));
  auto p = s.place("web.4", r);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message,
            "constraint rack MAX_PER 2 not satisfiable (2 rack values, 4 instances already)");
  s.remove_task("web.0");
  EXPECT_TRUE(s.place("web.4", r));
}

TEST(Combined, ReasonNamesTheConstraintThatLeavesNoAgent) {
  Scheduler s;
  s.upsert_agent(agent("a1", 8, 8192, {{"zone", "z1"}}));
  s.upsert_agent(agent("a2", 8, 8192, {{"zone", "z1"}}));
  s.upsert_agent(agent("a3", 8, 8192, {{"zone", "z2"}}));
  TaskRequest r = with(with(task("/web"), "zone", "CLUSTER", "z1"), "hostname", "UNIQUE");
  auto agents = place_n(s, r, 2, "web");
  EXPECT_EQ(tally(agents), (std::map<std::string, int>{{"a1", 1}, {"a2", 1}}));
  auto p = s.place("web.2", r);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message,
            "constraint hostname UNIQUE not satisfiable (2 agents, 2 instances already)");
}

TEST(Constraints, AttributeChangeMovesTheAppsCounts) {
  Scheduler s = racks(2, 1);
  TaskRequest r = with(task("/web"), "rack", "UNIQUE");
  auto p = s.place("web.0", r);
  ASSERT_TRUE(p);
  const std::string other = p->agent_id == "r0-0" ? "r1-0" : "r0-0";
  s.upsert_agent(agent(p->agent_id, 8, 8192, {{"rack", "r5"}}));  // re-racked
  auto q = s.place("web.1", r);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->agent_id, other);
  EXPECT_FALSE(s.place("web.2", r));
}

TEST(Constraints, InvalidOnesAreRefusedByName) {
  Scheduler s = racks(1, 1);
  auto msg = [&](std::string field, std::string op, std::string value) {
    auto p = s.place("t.0", with(task("/t"), field, op, value));
    return p ? std::string("placed") : p.error().message;
  };
  EXPECT_EQ(msg("rack", "NEAR", ""),
            "constraint rack NEAR: unknown operator 'NEAR' (one of UNIQUE, CLUSTER, GROUP_BY, LIKE, "
            "UNLIKE, MAX_PER)");
  EXPECT_EQ(msg("rack", "LIKE", "[a-"),
            "constraint rack LIKE [a-: LIKE has an invalid regular expression");
  EXPECT_EQ(msg("rack", "UNLIKE", ""), "constraint rack UNLIKE: UNLIKE needs a regular expression value");
  EXPECT_EQ(msg("rack", "MAX_PER", "two"),
            "constraint rack MAX_PER two: MAX_PER needs a positive integer value");
  EXPECT_EQ(msg("rack", "GROUP_BY", "-1"),
            "constraint rack GROUP_BY -1: GROUP_BY needs a positive integer value");
  EXPECT_EQ(msg("", "UNIQUE", ""), "constraint ' UNIQUE' has no field");
  EXPECT_EQ(s.task_count(), 0u);
  EXPECT_EQ(msg("rack", "UNIQUE", ""), "placed");  // the app's next, valid spec is used
}

}  // namespace
}  // namespace stele::sched
