// MonitorService on a real SQLite store and a simulated clock: keepalive
// states by heartbeat age, what each agent is told to run (subscriptions,
// round robin), agents' results becoming states, events, perfdata points,
// ttl expiry, silences (muting, expire_on_resolve), a pipe handler's input,
// reserved names, and states surviving a restart.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <boost/asio/io_context.hpp>

#include "monitor/service.h"

using namespace stele;
using namespace stele::monitor;
namespace fs = std::filesystem;

namespace {

struct Fixture : ::testing::Test {
  fs::path dir;
  boost::asio::io_context io;
  SimulatedClock clock;
  std::unique_ptr<store::Store> store;
  Inventory inv;
  std::vector<Json> events;
  std::vector<MetricPoint> points;
  std::vector<std::string> notified;
  std::unique_ptr<MonitorService> svc;

  void SetUp() override {
    dir = fs::temp_directory_path() / ("stele-monitor-" + std::to_string(getpid()) + "-" +
                                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
    store = std::move(*store::open_sqlite_store((dir / "state.db").string()));
    inv.agents = {agent("a1", "node1", {"base", "web"}), agent("a2", "node2", {"web"}), agent("a3", "node3", {"db"})};
    make();
  }
  void TearDown() override {
    svc.reset();
    fs::remove_all(dir);
  }
  AgentEntity agent(std::string id, std::string entity, std::vector<std::string> subs) {
    AgentEntity a;
    a.id = std::move(id);
    a.entity = std::move(entity);
    a.subscriptions = std::move(subs);
    a.last_heartbeat_ms = clock.now_ms();
    a.connected = true;
    return a;
  }
  void make() {
    MonitorOptions o;
    o.agent_timeout_ms = 10'000;
    o.probe_interval_ms = 0;
    o.inventory = [this] { return inv; };
    o.on_event = [this](const Json& e) { events.push_back(e); };
    o.write_points = [this](std::vector<MetricPoint> p) { points.insert(points.end(), p.begin(), p.end()); };
    o.agent_changed = [this](const std::string& id) { notified.push_back(id); };
    svc = std::make_unique<MonitorService>(io, *store, clock, o);
    ASSERT_TRUE(svc->load());
  }
  void put_check(Json j) {
    auto r = svc->put_check(j, "test");
    ASSERT_TRUE(r) << r.error().message;
  }
  void result(const std::string& agent, const std::string& check, int status, std::string output,
              Json perfdata = Json::array()) {
    Json body{{"id", agent},
              {"results", Json::array({{{"name", check}, {"status", status}, {"output", output},
                                        {"executed", clock.now_ms() / 1000}, {"perfdata", perfdata}}})}};
    auto r = svc->record_agent_results(agent, body);
    ASSERT_TRUE(r) << r.error().message;
  }
  int status(const std::string& entity, const std::string& check) {
    Json s = svc->status_json(check, entity, false);
    return s.empty() ? -1 : s[0]["check"]["status"].get<int>();
  }
  std::vector<std::string> changes(const std::string& check) {
    std::vector<std::string> out;
    for (const auto& e : events)
      if (e.value("type", "") == "check_state" && e.value("check", "") == check) out.push_back(e.value("change", ""));
    return out;
  }
};

}  // namespace

TEST_F(Fixture, KeepaliveFollowsHeartbeatAge) {
  svc->evaluate_for_test();
  EXPECT_EQ(status("node1", "keepalive"), 0);
  inv.agents[0].last_heartbeat_ms = clock.now_ms();
  clock.advance_ms(4'999);
  svc->evaluate_for_test();
  EXPECT_EQ(status("node1", "keepalive"), 0);
  clock.advance_ms(1);  // half the agent timeout
  svc->evaluate_for_test();
  EXPECT_EQ(status("node1", "keepalive"), 1);
  clock.advance_ms(5'000);  // the agent timeout
  svc->evaluate_for_test();
  EXPECT_EQ(status("node1", "keepalive"), 2);
  EXPECT_NE(svc->status_json("keepalive", "node1", false)[0]["check"]["output"].get<std::string>().find("no heartbeat for 10 s"),
            std::string::npos);
  // Every status change is an event with a store id.
  std::vector<int> statuses;
  for (const auto& e : events)
    if (e.value("check", "") == "keepalive" && e.value("entity", "") == "node1") {
      statuses.push_back(e["status"].get<int>());
      EXPECT_GT(e["id"].get<int64_t>(), 0);
    }
  EXPECT_EQ(statuses, (std::vector<int>{0, 1, 2}));
  inv.agents[0].last_heartbeat_ms = clock.now_ms();
  svc->evaluate_for_test();
  EXPECT_EQ(status("node1", "keepalive"), 0);
  EXPECT_EQ(changes("keepalive").back(), "resolution");
}

TEST_F(Fixture, AgentsGetTheirSubscribedChecksAndRoundRobinSlots) {
  put_check({{"name", "load"}, {"command", "check_load -w 5 -c 10"}, {"subscriptions", {"base"}}});
  put_check({{"name", "web"}, {"command", "check_http -H 127.0.0.1"}, {"subscriptions", {"web"}}, {"round_robin", true}});
  put_check({{"name", "all"}, {"command", "true"}, {"subscriptions", {"*"}}});
  put_check({{"name", "px"}, {"command", "check_tcp -H {{host}} -p {{port0}}"}, {"proxy", "/app"}});
  auto names = [](const Json& doc) {
    std::vector<std::string> out;
    for (const auto& c : doc["checks"]) out.push_back(c["name"]);
    return out;
  };
  Json a1 = svc->agent_checks("a1"), a2 = svc->agent_checks("a2"), a3 = svc->agent_checks("a3");
  EXPECT_EQ(names(a1), (std::vector<std::string>{"all", "load", "web"}));
  EXPECT_EQ(names(a2), (std::vector<std::string>{"all", "web"}));
  EXPECT_EQ(names(a3), (std::vector<std::string>{"all"}));
  EXPECT_EQ(a1["entity"], "node1");
  EXPECT_EQ(a1["checks"][2]["roundRobin"], (Json{{"index", 0}, {"of", 2}}));
  EXPECT_EQ(a2["checks"][1]["roundRobin"], (Json{{"index", 1}, {"of", 2}}));
  // A definition change wakes every agent's command stream.
  uint64_t v = svc->checks_version();
  notified.clear();
  put_check({{"name", "all"}, {"command", "false"}, {"subscriptions", {"*"}}});
  EXPECT_GT(svc->checks_version(), v);
  EXPECT_EQ(notified.size(), 3u);
  // Built-in names are refused, naming the field.
  auto bad = svc->put_check({{"name", "keepalive"}, {"command", "true"}, {"subscriptions", {"*"}}}, "t");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, 422);
  EXPECT_EQ(bad.error().details.at(0).path, "/name");
  EXPECT_EQ(svc->delete_check("nosuch", "t").error().code, 404);
}

TEST_F(Fixture, ResultsBecomeStatesEventsAndPoints) {
  put_check({{"name", "disk"}, {"command", "check_disk"}, {"subscriptions", {"base"}}});
  Json perf = Json::array({{{"label", "/"}, {"value", 2048}, {"uom", "MB"}}});
  result("a1", "disk", 0, "DISK OK", perf);
  result("a1", "gone", 2, "not a check");  // unknown checks are ignored
  EXPECT_EQ(status("node1", "disk"), 0);
  EXPECT_EQ(status("node1", "gone"), -1);
  ASSERT_EQ(points.size(), 1u);
  EXPECT_EQ(points[0].path, "stele.check.node1.disk._");
  EXPECT_DOUBLE_EQ(points[0].value, 2048.0 * 1024 * 1024);
  result("a1", "disk", 2, "DISK CRITICAL");
  result("a1", "disk", 2, "DISK CRITICAL");  // a repeat is no new event
  result("a1", "disk", 0, "DISK OK");
  EXPECT_EQ(changes("disk"), (std::vector<std::string>{"none", "incident", "resolution"}));
  Json failing = svc->status_json("", "", true);
  EXPECT_TRUE(failing.empty());
  auto unknown = svc->record_agent_results("nobody", Json{{"results", Json::array()}});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, 404);
}

TEST_F(Fixture, TtlExpiryIsAFailure) {
  put_check({{"name", "beat"}, {"command", "true"}, {"interval", 10}, {"ttl", 30}, {"subscriptions", {"base"}}});
  result("a1", "beat", 0, "ok");
  clock.advance_ms(29'000);
  svc->evaluate_for_test();
  EXPECT_EQ(status("node1", "beat"), 0);
  clock.advance_ms(1'001);
  svc->evaluate_for_test();
  EXPECT_EQ(status("node1", "beat"), 1);
  EXPECT_NE(svc->status_json("beat", "node1", false)[0]["check"]["output"].get<std::string>().find("Last check execution was"),
            std::string::npos);
  EXPECT_EQ(changes("beat").back(), "incident");
}

TEST_F(Fixture, SilencesMuteHandlersAndExpireOnResolve) {
  std::string out = (dir / "handled").string();
  ASSERT_TRUE(svc->put_handler({{"name", "log"}, {"type", "pipe"}, {"command", "cat >> " + out + "; echo >> " + out}}, "t"));
  put_check({{"name", "svc"}, {"command", "check_tcp"}, {"subscriptions", {"web"}}, {"handlers", {"log"}}});
  ASSERT_TRUE(svc->put_silence({{"subscription", "entity:node2"}, {"check", "svc"}, {"expire_on_resolve", true}}, "t"));
  result("a2", "svc", 2, "down on node2");  // silenced
  result("a1", "svc", 2, "down on node1");  // handled
  io.run_for(std::chrono::seconds(3));
  std::ifstream in(out);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(text.find("down on node1"), std::string::npos);
  EXPECT_EQ(text.find("down on node2"), std::string::npos) << text;
  auto handled = parse_json(text.substr(0, text.find('\n')));
  ASSERT_TRUE(handled);
  EXPECT_EQ((*handled)["action"], "create");
  EXPECT_EQ((*handled)["entity"]["name"], "node1");
  EXPECT_TRUE(svc->status_json("svc", "node2", false)[0]["silenced"].get<bool>());
  EXPECT_EQ(svc->silences_json().size(), 1u);
  result("a2", "svc", 0, "up again");  // the resolution lifts the silence
  EXPECT_EQ(svc->silences_json().size(), 0u);
}

TEST_F(Fixture, StatesAndDefinitionsSurviveARestart) {
  put_check({{"name", "disk"}, {"command", "check_disk"}, {"subscriptions", {"base"}}});
  ASSERT_TRUE(svc->put_silence({{"check", "disk"}, {"expire", 3600}, {"reason", "resize"}}, "t"));
  result("a1", "disk", 2, "DISK CRITICAL");
  svc.reset();
  events.clear();
  make();
  EXPECT_EQ(svc->checks_json().size(), 1u);
  ASSERT_EQ(svc->silences_json().size(), 1u);
  EXPECT_EQ(svc->silences_json()[0]["reason"], "resize");
  EXPECT_EQ(status("node1", "disk"), 2);
  // The open incident is not announced again; its resolution is one.
  result("a1", "disk", 0, "DISK OK");
  EXPECT_EQ(changes("disk"), (std::vector<std::string>{"resolution"}));
  // Silences expire.
  clock.advance_ms(3'601'000);
  svc->evaluate_for_test();
  EXPECT_EQ(svc->silences_json().size(), 0u);
}
