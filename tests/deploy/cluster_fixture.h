// Shared fixture of the Cluster tests: a real SQLite store, a simulated
// clock, and agents played by the test through the agent-protocol calls.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "deploy/cluster.h"
#include "deploy/route_view.h"

using namespace stele;
using namespace stele::deploy;

namespace stele::test {

inline AppSpec web_spec(int instances = 2, std::string cmd = "serve") {
  Json j = {{"id", "/web"}, {"cmd", cmd}, {"cpus", 0.5}, {"mem", 64}, {"instances", instances}};
  auto s = parse_app_spec(j);
  EXPECT_TRUE(s) << s.error().message;
  return *s;
}

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("stele-cluster-" + std::to_string(getpid()) + "-" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    open();
  }
  void TearDown() override {
    cluster_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void open() {
    cluster_.reset();
    store_.reset();
    auto s = store::open_sqlite_store((dir_ / "state.db").string());
    ASSERT_TRUE(s);
    store_ = std::move(*s);
    ClusterOptions o;
    o.agent_timeout_ms = 10'000;
    o.deploy_timeout_ms = 60'000;
    o.routers_synced_ms = routers_synced_;
    cluster_ = std::make_unique<Cluster>(*store_, clock_, o);
    cluster_->on_event = [this](const Json& e) { events_.push_back(e); };
    ASSERT_TRUE(cluster_->load());
  }
  void add_agent(const std::string& id, const std::string& host, double cpus = 4) {
    Node n;
    n.id = id;
    n.hostname = host;
    n.address = "127.0.0.1";
    n.total = {cpus, 4096, 1000};
    n.ports = {{31000, 31099}};
    ASSERT_TRUE(cluster_->register_agent(n, Json::array()));
  }
  // Plays the agents: every pending launch becomes running (and healthy).
  void run_launches() {
    for (const auto* n : cluster_->nodes())
      for (auto& c : cluster_->commands(n->id, 0)) {
        std::string type = c.body["type"];
        std::string state = type == "launch" ? "running" : "killed";
        ASSERT_TRUE(cluster_->task_status(n->id, {{"taskId", c.task_id}, {"state", state}, {"pid", 100}}));
      }
  }
  void converge(int rounds = 5) {
    for (int i = 0; i < rounds; ++i) {
      cluster_->tick();
      run_launches();
      clock_.advance_ms(100);
    }
    cluster_->tick();
  }
  std::string upgrade_routed_app();  // cluster_test.cpp
  int running(const std::string& app) {
    int n = 0;
    for (auto* t : cluster_->tasks(app)) n += t->state == TaskState::Running;
    return n;
  }

  std::filesystem::path dir_;
  SimulatedClock clock_;
  std::function<int64_t()> routers_synced_;  // ClusterOptions::routers_synced_ms (empty: no routers)
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Cluster> cluster_;
  std::vector<Json> events_;
};

}  // namespace stele::test
