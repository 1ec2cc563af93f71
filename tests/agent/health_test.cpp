#include "agent/health.h"

#include <utility>

#include <pwd.h>
#include <sys/stat.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "docker/engine.h"

namespace stele::agent {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

// Plays the app: answers every request with `status` and closes.
class FakeApp {
 public:
  explicit FakeApp(asio::io_context& io) : acceptor_(io, {asio::ip::make_address("127.0.0.1"), 0}) { accept(); }
  int port() const { return acceptor_.local_endpoint().port(); }

  int status = 200;
  int requests = 0;
  std::string last_request_line;

 private:
  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket s) {
      if (ec) return;
      serve(std::make_shared<tcp::socket>(std::move(s)));
      accept();
    });
  }
  void serve(std::shared_ptr<tcp::socket> s) {
    auto buf = std::make_shared<asio::streambuf>();
    asio::async_read_until(*s, *buf, "\r\n\r\n", [this, s, buf](boost::system::error_code ec, size_t) {
      if (ec) return;
      ++requests;
      std::istream in(buf.get());
      std::getline(in, last_request_line);
      auto out = std::make_shared<std::string>("HTTP/1.1 " + std::to_string(status) + " X\r\n" +
                                               (status >= 200 ? "Content-Length: 0\r\n" : "") +
                                               "Connection: close\r\n\r\n");
      asio::async_write(*s, asio::buffer(*out), [s, out](boost::system::error_code ec, size_t) {
        s->shutdown(tcp::socket::shutdown_both, ec);
      });
    });
  }
  tcp::acceptor acceptor_;
};

int closed_port(asio::io_context& io) {
  tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();  // closed when `a` goes
}

// The live (non-zombie) processes in process group `pgid`, as "pid state cmd;" (empty: none).
std::string group_members(pid_t pgid) {
  std::string out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::ifstream f(e.path() / "stat");
    std::string line;
    if (!std::getline(f, line)) continue;
    auto open = line.find('('), close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    std::string state;
    pid_t ppid = 0, pgrp = 0;
    rest >> state >> ppid >> pgrp;
    if (pgrp == pgid && state != "Z" && state != "X")
      out += e.path().filename().string() + " " + state + " " + line.substr(open, close - open + 1) + "; ";
  }
  return out;
}

HealthCheck check(std::string protocol) {
  HealthCheck c;
  c.protocol = std::move(protocol);
  c.grace_period_seconds = 0;
  c.interval_seconds = 1;
  c.timeout_seconds = 1;
  c.max_consecutive_failures = 0;
  return c;
}

HealthCheck command(std::string cmd) {
  auto c = check("COMMAND");
  c.command = std::move(cmd);
  return c;
}

class HealthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/stele-health-XXXXXX";
    sandbox_ = mkdtemp(tmpl);
    chmod(sandbox_.c_str(), 0777);  // the command runs as nobody
  }
  void TearDown() override {
    health.reset();
    fs::remove_all(sandbox_);
  }

  HealthTarget target(std::vector<int> ports = {}) {
    HealthTarget t;
    t.task_id = "web-r1.0.0";
    t.host = "127.0.0.1";
    t.ports = std::move(ports);
    t.sandbox = sandbox_;
    t.user = "nobody";
    t.started_ms = clock.now_ms();
    return t;
  }

  TaskHealth& start(HealthTarget t, std::vector<HealthCheck> checks) {
    health = std::make_unique<TaskHealth>(
        io.get_executor(), std::move(t), std::move(checks),
        [this](const std::vector<HealthCheckResult>& r) { changes.push_back(r); },
        [this](const std::string& cause) { kills.push_back(cause); }, &clock);
    health->start();
    return *health;
  }

  HealthCheckResult result(size_t i = 0) const { return health->results().at(i); }

  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds max = 5s) {
    auto end = std::chrono::steady_clock::now() + max;
    while (!done() && std::chrono::steady_clock::now() < end) {
      io.restart();
      io.run_for(10ms);
    }
    return done();
  }
  void run_for(std::chrono::milliseconds d) {
    run_until([] { return false; }, d);
  }

  std::string sandbox_file(const std::string& name) {
    std::ifstream f(fs::path(sandbox_) / name);
    std::string s;
    std::getline(f, s);
    return s;
  }

  asio::io_context io;
  SimulatedClock clock;
  std::string sandbox_;
  std::vector<std::vector<HealthCheckResult>> changes;
  std::vector<std::string> kills;
  std::unique_ptr<TaskHealth> health;
};

TEST_F(HealthTest, NoChecksIsHealthy) {
  auto& h = start(target(), {});
  EXPECT_TRUE(h.healthy());
  EXPECT_TRUE(h.results().empty());
}

TEST_F(HealthTest, HttpHealthyOn200) {
  FakeApp app(io);
  auto c = check("HTTP");
  c.path = "/health";
  auto& h = start(target({app.port()}), {c});
  ASSERT_TRUE(run_until([&] { return h.healthy(); }));
  auto r = result();
  EXPECT_EQ(r.consecutive_failures, 0);
  EXPECT_EQ(r.first_success, iso8601(clock.now_ms()));
  EXPECT_EQ(r.last_success, r.first_success);
  EXPECT_TRUE(r.last_failure.empty());
  EXPECT_THAT(app.last_request_line, HasSubstr("GET /health HTTP/1.1"));
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_TRUE(changes[0][0].alive);
}

TEST_F(HealthTest, HttpUnhealthyOn500WithStatusInCause) {
  FakeApp app(io);
  app.status = 500;
  auto& h = start(target({app.port()}), {check("HTTP")});
  ASSERT_TRUE(run_until([&] { return result().consecutive_failures == 1; }));
  EXPECT_FALSE(h.healthy());
  EXPECT_THAT(result().last_failure_cause, HasSubstr("500"));
  EXPECT_EQ(result().last_failure, iso8601(clock.now_ms()));
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0][0].consecutive_failures, 1);
}

TEST_F(HealthTest, Http302IsHealthy) {
  FakeApp app(io);
  app.status = 302;
  auto& h = start(target({app.port()}), {check("HTTP")});
  EXPECT_TRUE(run_until([&] { return h.healthy(); }));
}

TEST_F(HealthTest, HttpConnectionRefusedIsFailure) {
  auto& h = start(target({closed_port(io)}), {check("HTTP")});
  ASSERT_TRUE(run_until([&] { return result().consecutive_failures == 1; }));
  EXPECT_FALSE(h.healthy());
  EXPECT_THAT(result().last_failure_cause, HasSubstr("refused"));
}

TEST_F(HealthTest, Http1xxIsDiscardedOnlyWhenIgnored) {
  FakeApp app(io);
  app.status = 100;
  auto ignoring = check("HTTP");
  ignoring.ignore_http1xx = true;
  start(target({app.port()}), {ignoring, check("HTTP")});
  ASSERT_TRUE(run_until([&] { return result(1).consecutive_failures == 2; }));
  EXPECT_GE(app.requests, 4);
  EXPECT_EQ(result(0).consecutive_failures, 0);
  EXPECT_TRUE(result(0).last_failure.empty());
  EXPECT_FALSE(result(0).alive);
  EXPECT_THAT(result(1).last_failure_cause, HasSubstr("100"));
}

TEST_F(HealthTest, TcpConnectsToIndexedOrFixedPort) {
  tcp::acceptor listening(io, {asio::ip::make_address("127.0.0.1"), 0});  // backlog accepts
  auto open = check("TCP");
  auto closed = check("TCP");
  closed.port = closed_port(io);
  auto missing = check("TCP");
  missing.port_index = 3;
  auto& h = start(target({listening.local_endpoint().port()}), {open, closed, missing});
  ASSERT_TRUE(run_until([&] { return result(0).alive && result(1).consecutive_failures && result(2).consecutive_failures; }));
  EXPECT_FALSE(h.healthy());
  EXPECT_THAT(result(1).last_failure_cause, HasSubstr("refused"));
  EXPECT_THAT(result(2).last_failure_cause, HasSubstr("no port at index 3"));
}

TEST_F(HealthTest, CommandExitStatusDecides) {
  start(target(), {command("exit 0"), command("echo broken; exit 1")});
  ASSERT_TRUE(run_until([&] { return result(0).alive && result(1).consecutive_failures == 1; }));
  EXPECT_EQ(result(1).last_failure_cause, "command exited with status 1: broken");
}

TEST_F(HealthTest, CommandRunsInSandboxWithEnvAsUser) {
  auto t = target();
  t.env = {{"GREETING", "hello"}};
  auto nobody = std::to_string(getpwnam("nobody")->pw_uid);
  auto c = command("test \"$(id -u)\" = " + nobody + " && test \"$GREETING\" = hello && test \"$(pwd)\" = " +
                   sandbox_ + " || { echo \"uid $(id -u) in $(pwd)\"; exit 1; }");
  start(t, {c});
  ASSERT_TRUE(run_until([&] { return result().alive || result().consecutive_failures; }));
  EXPECT_TRUE(result().alive) << result().last_failure_cause;
}

TEST_F(HealthTest, CommandRefusesRoot) {
  auto t = target();
  t.user = "root";
  start(t, {command("touch ran")});
  ASSERT_TRUE(run_until([&] { return result().consecutive_failures == 1; }));
  EXPECT_THAT(result().last_failure_cause, HasSubstr("root"));
  EXPECT_FALSE(fs::exists(fs::path(sandbox_) / "ran"));
}

TEST_F(HealthTest, CommandTimeoutKillsProcessGroup) {
  auto c = command("echo $$ > pgid; sleep 10 & wait");
  c.interval_seconds = 60;  // one probe: a second would overwrite the pgid file
  auto begin = std::chrono::steady_clock::now();
  start(target(), {c});
  ASSERT_TRUE(run_until([&] { return result().consecutive_failures == 1; }, 4s));
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 3s);
  EXPECT_EQ(result().last_failure_cause, "timed out after 1s");
  pid_t pgid = std::stoi(sandbox_file("pgid"));
  EXPECT_TRUE(run_until([&] { return group_members(pgid).empty(); }, 1s)) << group_members(pgid);
}

TEST_F(HealthTest, DestroyWhileCommandRunsKillsItAndStaysSilent) {
  auto c = command("echo $$ > pgid; sleep 10 & wait");
  c.timeout_seconds = 5;
  start(target(), {c});
  ASSERT_TRUE(run_until([&] { return !sandbox_file("pgid").empty(); }));
  pid_t pgid = std::stoi(sandbox_file("pgid"));
  health.reset();
  EXPECT_TRUE(run_until([&] { return group_members(pgid).empty(); }, 1s)) << group_members(pgid);
  run_for(200ms);
  EXPECT_TRUE(changes.empty());
  EXPECT_TRUE(kills.empty());
}

TEST_F(HealthTest, GraceIgnoresFailuresUntilItEnds) {
  auto c = check("TCP");
  c.grace_period_seconds = 300;
  c.max_consecutive_failures = 1;
  auto& h = start(target({closed_port(io)}), {c});
  run_for(2500ms);  // three failed probes, all in grace
  EXPECT_EQ(result().consecutive_failures, 0);
  EXPECT_TRUE(result().last_failure.empty());
  EXPECT_FALSE(h.healthy());
  EXPECT_TRUE(changes.empty());
  EXPECT_TRUE(kills.empty());
  clock.advance_ms(300'000);
  ASSERT_TRUE(run_until([&] { return kills.size() == 1; }, 2s));
  EXPECT_THAT(kills[0], HasSubstr("refused"));
}

TEST_F(HealthTest, GraceCountsFailuresAfterFirstSuccess) {
  FakeApp app(io);
  auto c = check("HTTP");
  c.grace_period_seconds = 300;
  auto& h = start(target({app.port()}), {c});
  ASSERT_TRUE(run_until([&] { return h.healthy(); }));
  app.status = 503;
  ASSERT_TRUE(run_until([&] { return result().consecutive_failures == 1; }));
  EXPECT_FALSE(h.healthy());
  EXPECT_THAT(result().last_failure_cause, HasSubstr("503"));
}

TEST_F(HealthTest, KillsOnceAfterMaxConsecutiveFailures) {
  FakeApp app(io);
  app.status = 500;
  auto c = check("HTTP");
  c.max_consecutive_failures = 2;
  start(target({app.port()}), {c});
  ASSERT_TRUE(run_until([&] { return !kills.empty(); }));
  EXPECT_EQ(result().consecutive_failures, 2);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes.back()[0].consecutive_failures, 2);
  EXPECT_THAT(kills[0], HasSubstr("500"));
  int requests = app.requests;
  run_for(2500ms);
  EXPECT_EQ(kills.size(), 1u);
  EXPECT_EQ(app.requests, requests);  // probing stopped
}

TEST_F(HealthTest, FlipsBackToAliveAfterRecovery) {
  FakeApp app(io);
  app.status = 500;
  auto& h = start(target({app.port()}), {check("HTTP")});
  ASSERT_TRUE(run_until([&] { return result().consecutive_failures == 1; }));
  app.status = 200;
  ASSERT_TRUE(run_until([&] { return h.healthy(); }));
  EXPECT_EQ(result().consecutive_failures, 0);
  EXPECT_FALSE(result().last_failure.empty());
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_TRUE(changes[1][0].alive);
}

// ---- COMMAND of a Docker task: inside its container -----------------------------

TEST_F(HealthTest, DockerTaskCommandGoesToTheEngineNeverTheHost) {
  auto t = target();
  t.container = "stele-web-r1.0.0";
  t.docker_socket = "/nonexistent/docker.sock";
  start(t, {command("touch ran")});
  ASSERT_TRUE(run_until([&] { return result().consecutive_failures == 1; }));
  EXPECT_EQ(result().last_failure_cause,
            "docker: exec in container stele-web-r1.0.0: cannot connect to /nonexistent/docker.sock: No such file or directory");
  EXPECT_FALSE(fs::exists(fs::path(sandbox_) / "ran"));
}

// Host processes whose command line is `cmdline` (args joined by spaces).
int processes_running(const std::string& cmdline) {
  int n = 0;
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::ifstream f(e.path() / "cmdline");
    std::string args((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::replace(args.begin(), args.end(), '\0', ' ');
    if (args == cmdline + " ") ++n;
  }
  return n;
}

// Against a real engine (scripts/docker-engine, image from
// scripts/docker-base-image); skipped, saying why, without one.
class DockerHealthTest : public HealthTest {
 protected:
  void SetUp() override {
    HealthTest::SetUp();
    auto up = engine_.available();
    if (!up) GTEST_SKIP() << "no Docker engine: " << up.error().message;
    auto has = engine_.image_exists(kImage);
    if (!has || !*has) GTEST_SKIP() << "no image " << kImage << " (scripts/docker-base-image)";
    docker::ContainerConfig c;
    c.name = container_ = "stele-health-test-" + std::to_string(::getpid());
    (void)engine_.remove(c.name, true);
    c.image = kImage;
    c.shell_cmd = "exec sleep 300";
    c.user = "65534:65534";
    c.env = {"ROLE=inside"};
    auto id = engine_.create(c);
    ASSERT_TRUE(id) << id.error().message;
    ASSERT_TRUE(engine_.start(*id));
  }
  void TearDown() override {
    health.reset();
    run_for(1500ms);  // a probe in flight ends (its 1 s timeout) before `io` goes: it posts its result there
    HealthTest::TearDown();
    if (!container_.empty()) (void)engine_.remove(container_, true);
  }
  HealthTarget in_container() {
    auto t = target();
    t.container = container_;
    t.docker_socket = engine_.options().socket_path;
    return t;
  }

  static inline const std::string kImage = "stele/busybox:latest";
  docker::Engine engine_;
  std::string container_;
};

TEST_F(DockerHealthTest, CommandRunsInsideAsTheContainersUserAndExitStatusDecides) {
  auto inside = command("grep -q sleep /proc/1/cmdline && test \"$(id -u)\" = 65534 && test \"$ROLE\" = inside");
  start(in_container(), {inside, command("echo not ready; echo more; exit 3")});
  ASSERT_TRUE(run_until([&] { return result(1).consecutive_failures == 1 && (result(0).alive || result(0).consecutive_failures); }, 10s));
  EXPECT_TRUE(result(0).alive) << result(0).last_failure_cause;
  EXPECT_EQ(result(1).last_failure_cause, "command exited with status 3: not ready");
}

TEST_F(DockerHealthTest, TimeoutReportsAndKillsTheCommand) {
  auto c = command("exec sleep 29");
  c.interval_seconds = 60;
  auto begin = std::chrono::steady_clock::now();
  start(in_container(), {c});
  ASSERT_TRUE(run_until([&] { return result().consecutive_failures == 1; }, 5s));
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 3s);
  EXPECT_EQ(result().last_failure_cause, "timed out after 1s");
  EXPECT_TRUE(run_until([] { return processes_running("sleep 29") == 0; }, 3s));
}

TEST_F(DockerHealthTest, DestroyWhileCommandRunsKillsItAndStaysSilent) {
  auto c = command("exec sleep 28");
  c.timeout_seconds = 20;
  start(in_container(), {c});
  ASSERT_TRUE(run_until([] { return processes_running("sleep 28") == 1; }, 5s));
  health.reset();
  EXPECT_TRUE(run_until([] { return processes_running("sleep 28") == 0; }, 3s));
  run_for(200ms);
  EXPECT_TRUE(changes.empty());
  EXPECT_TRUE(kills.empty());
}

}  // namespace
}  // namespace stele::agent
