// Engine against a real dockerd (scripts/docker-engine starts one). Skipped,
// with the reason, when no engine answers. Containers are named
// stele-test-<pid>-... and removed at the end; all use the host network and
// no test contacts a container address.
#include "docker/engine.h"

#include "temp_tree.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <thread>

namespace stele::docker {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kImage = "stele/busybox:latest";

class EngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto up = Engine().available();
    if (!up) {
      skip_reason_ = "no Docker engine: " + up.error().message + " (run scripts/docker-engine as root)";
      return;
    }
    auto has = Engine().image_exists(kImage);
    if (has && !*has) {
      std::string script = std::string(STELE_TEST_DIR) + "/../scripts/docker-base-image " + kImage;
      if (std::system(script.c_str()) != 0) skip_reason_ = "cannot make " + kImage + " with " + script;
    }
  }

  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
  }

  void TearDown() override {
    for (auto& n : created_) (void)engine_.remove(n, true);
    for (auto& i : images_) (void)engine_.remove_image(i, true);
  }

  std::string name(const std::string& what) {
    std::string n = "stele-test-" + std::to_string(::getpid()) + "-" + what;
    (void)engine_.remove(n, true);  // left over by an interrupted run
    created_.push_back(n);
    return n;
  }

  ContainerConfig shell(const std::string& what, const std::string& script) {
    ContainerConfig c;
    c.name = name(what);
    c.image = kImage;
    c.shell_cmd = script;
    c.labels = {{"stele.test", std::to_string(::getpid())}};
    return c;
  }

  // Creates and starts; the container's id.
  std::string run(const ContainerConfig& c) {
    auto id = engine_.create(c);
    EXPECT_TRUE(id) << id.error().message;
    if (!id) return "";
    auto s = engine_.start(*id);
    EXPECT_TRUE(s) << s.error().message;
    return *id;
  }

  int wait_exit(const std::string& id) {
    auto code = engine_.wait(id, deadline_in(60s));
    EXPECT_TRUE(code) << code.error().message;
    return code ? *code : -1;
  }

  static inline std::string skip_reason_;
  Engine engine_;
  std::vector<std::string> created_, images_;
};

TEST_F(EngineTest, RunsOnTheHostNetworkWithLabelsUserEnvAndExitCode) {
  auto c = shell("exit", "echo \"$(hostname) $(id -u):$(id -g) $GREETING\"; exit 3");
  c.env = {"GREETING=hello"};
  c.user = "65534:65534";
  c.memory_bytes = 64 << 20;
  c.labels["stele.app"] = "web";
  std::string id = run(c);
  EXPECT_EQ(wait_exit(id), 3);
  auto info = engine_.inspect(c.name);
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->id, id);
  EXPECT_EQ(info->name, c.name);
  EXPECT_EQ(info->status, "exited");
  EXPECT_FALSE(info->running);
  EXPECT_EQ(info->exit_code, 3);
  EXPECT_FALSE(info->oom_killed);
  EXPECT_EQ(info->labels.at("stele.app"), "web");
  EXPECT_EQ(info->image_id.rfind("sha256:", 0), 0u);
  EXPECT_NE(info->started_at.find("T"), std::string::npos);
  EXPECT_NE(info->finished_at.rfind("0001-", 0), 0u);

  std::string out;
  LogsOptions o;
  ASSERT_TRUE(engine_.logs(id, o, [&](StreamKind, std::string_view s) { return out.append(s), true; }));
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  EXPECT_EQ(out, std::string(host) + " 65534:65534 hello\n");  // the host's name: host network
}

TEST_F(EngineTest, LogsKeepStdoutAndStderrApart) {
  auto c = shell("logs", "echo out1; echo err1 >&2; sleep 0.2; echo out2; echo err2 >&2");
  std::string id = run(c);
  std::string out, err;
  LogsOptions o;  // follow: returns when the container stops
  auto r = engine_.logs(id, o, [&](StreamKind k, std::string_view s) {
    (k == StreamKind::kStderr ? err : out).append(s);
    return true;
  });
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(out, "out1\nout2\n");
  EXPECT_EQ(err, "err1\nerr2\n");
}

TEST_F(EngineTest, AttachSeesWhatIsWrittenFromNowOn) {
  auto c = shell("attach", "sleep 2; echo late; echo later >&2");
  auto id = engine_.create(c);
  ASSERT_TRUE(id) << id.error().message;
  std::string out, err;
  std::thread reader([&] {
    auto r = engine_.attach(*id, LogsOptions{}, [&](StreamKind k, std::string_view s) {
      (k == StreamKind::kStderr ? err : out).append(s);
      return true;
    });
    EXPECT_TRUE(r) << r.error().message;
  });
  std::this_thread::sleep_for(300ms);  // the attach request is in before the start
  ASSERT_TRUE(engine_.start(*id));
  reader.join();
  EXPECT_EQ(out, "late\n");
  EXPECT_EQ(err, "later\n");
}

TEST_F(EngineTest, KillWaitAndRemove) {
  auto c = shell("kill", "sleep 300");
  std::string id = run(c);
  auto info = engine_.inspect(id);
  ASSERT_TRUE(info);
  EXPECT_TRUE(info->running);
  EXPECT_EQ(info->status, "running");
  EXPECT_GT(info->pid, 0);
  ASSERT_TRUE(engine_.kill(id, SIGKILL));
  EXPECT_EQ(wait_exit(id), 137);
  auto again = engine_.kill(id, SIGKILL);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, 409);
  ASSERT_TRUE(engine_.remove(id, false));
  auto gone = engine_.inspect(id);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, 404);
  EXPECT_NE(gone.error().message.find("docker: inspect container " + id + ": No such container"), std::string::npos)
      << gone.error().message;
}

TEST_F(EngineTest, ExecRunsInsideTheContainerAsItsUserWithItsEnv) {
  auto c = shell("exec", "sleep 300");
  c.user = "65534:65534";
  c.env = {"GREETING=inside"};
  std::string id = run(c);
  ExecConfig e;
  e.cmd = {"/bin/sh", "-c", "echo \"$(id -u) $GREETING $EXTRA $(cat /proc/1/cmdline | tr '\\0' ' ')\"; echo oops >&2; exit 4"};
  e.env = {"EXTRA=added"};
  auto exec = engine_.exec_create(c.name, e);
  ASSERT_TRUE(exec) << exec.error().message;
  std::string out, err;
  auto started = engine_.exec_start(*exec, deadline_in(30s), [&](StreamKind k, std::string_view s) {
    (k == StreamKind::kStderr ? err : out).append(s);
    return true;
  });
  ASSERT_TRUE(started) << started.error().message;
  EXPECT_EQ(out.rfind("65534 inside added ", 0), 0u) << out;
  EXPECT_NE(out.find("sleep 300"), std::string::npos) << "pid 1 is the container's own command: " << out;
  EXPECT_EQ(err, "oops\n");
  auto info = engine_.exec_inspect(*exec);
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_FALSE(info->running);
  EXPECT_EQ(info->exit_code, 4);
  EXPECT_EQ(info->pid, 0);
  (void)id;
}

TEST_F(EngineTest, ExecPastItsDeadlineKeepsRunningUntilKilledByPid) {
  auto c = shell("exec-slow", "sleep 300");
  run(c);
  ExecConfig e;
  e.cmd = {"sleep", "30"};
  e.user = "65534";
  auto exec = engine_.exec_create(c.name, e);
  ASSERT_TRUE(exec) << exec.error().message;
  auto started = engine_.exec_start(*exec, deadline_in(500ms), [](StreamKind, std::string_view) { return true; });
  ASSERT_FALSE(started);
  EXPECT_NE(started.error().message.find("docker: start exec " + *exec + ": "), std::string::npos) << started.error().message;
  EXPECT_NE(started.error().message.find("timed out"), std::string::npos) << started.error().message;
  auto info = engine_.exec_inspect(*exec);
  ASSERT_TRUE(info) << info.error().message;
  ASSERT_TRUE(info->running);
  ASSERT_GT(info->pid, 0);
  ASSERT_EQ(::kill(info->pid, SIGKILL), 0);  // the engine's pid is in the host's namespace
  for (int i = 0; i < 100 && info && info->running; ++i) {
    std::this_thread::sleep_for(50ms);
    info = engine_.exec_inspect(*exec);
  }
  ASSERT_TRUE(info);
  EXPECT_FALSE(info->running);
  EXPECT_EQ(info->exit_code, 137);
}

TEST_F(EngineTest, ExecNeedsARunningContainerAndACommand) {
  auto c = shell("exec-stopped", "true");
  ASSERT_TRUE(engine_.create(c));
  ExecConfig e;
  e.cmd = {"true"};
  auto stopped = engine_.exec_create(c.name, e);
  ASSERT_FALSE(stopped);
  EXPECT_EQ(stopped.error().code, 409);
  EXPECT_NE(stopped.error().message.find("docker: exec in container " + c.name + ": "), std::string::npos)
      << stopped.error().message;
  auto missing = engine_.exec_create(name("exec-none"), e);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, 404);
  auto no_cmd = engine_.exec_create(c.name, ExecConfig{});
  ASSERT_FALSE(no_cmd);
  EXPECT_EQ(no_cmd.error().message, "docker: exec in container " + c.name + ": no command to run");
  auto no_exec = engine_.exec_inspect("0123456789abcdef");
  ASSERT_FALSE(no_exec);
  EXPECT_EQ(no_exec.error().code, 404);
}

TEST_F(EngineTest, StopSendsTheStopSignalFirst) {
  auto c = shell("stop", "trap 'exit 7' TERM; while true; do sleep 0.1; done");
  std::string id = run(c);
  ASSERT_TRUE(engine_.stop(id, 10));
  auto info = engine_.inspect(id);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->exit_code, 7);
  EXPECT_TRUE(engine_.stop(id, 10)) << "stopping a stopped container is fine";
}

TEST_F(EngineTest, MemoryLimitIsEnforcedAndReportedAsOom) {
  auto c = shell("oom", "dd if=/dev/zero of=/dev/null bs=96M count=1");
  c.memory_bytes = 24 << 20;
  std::string id = run(c);
  EXPECT_EQ(wait_exit(id), 137);
  auto info = engine_.inspect(id);
  ASSERT_TRUE(info);
  EXPECT_TRUE(info->oom_killed);
}

TEST_F(EngineTest, ListsByLabelOnlyThoseCarryingEveryLabel) {
  std::string run_label = "stele.test.list=" + std::to_string(::getpid());
  auto a = shell("list-a", "true");
  a.labels["stele.test.list"] = std::to_string(::getpid());
  auto b = a;
  b.name = name("list-b");
  b.labels["stele.agent"] = "agent-b";
  ASSERT_TRUE(engine_.create(a));
  ASSERT_TRUE(engine_.create(b));
  auto both = engine_.list({run_label});
  ASSERT_TRUE(both) << both.error().message;
  EXPECT_EQ(both->size(), 2u);
  auto only_b = engine_.list({run_label, "stele.agent=agent-b"});
  ASSERT_TRUE(only_b);
  ASSERT_EQ(only_b->size(), 1u);
  EXPECT_EQ((*only_b)[0].name, b.name);
  EXPECT_EQ((*only_b)[0].state, "created");
}

TEST_F(EngineTest, EventsOfLabelledContainers) {
  std::string since = std::to_string(std::time(nullptr) - 1);
  auto c = shell("events", "exit 0");
  c.labels["stele.test.events"] = std::to_string(::getpid());
  std::string id = run(c);
  wait_exit(id);
  std::string until = std::to_string(std::time(nullptr) + 1);
  std::vector<std::string> actions;
  auto r = engine_.events({"stele.test.events=" + std::to_string(::getpid())}, since, until, deadline_in(30s),
                          [&](const Json& e) {
                            EXPECT_EQ(e.value("id", ""), id);
                            actions.push_back(e.value("Action", ""));
                            return true;
                          });
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(actions, (std::vector<std::string>{"create", "start", "die"}));
}

TEST_F(EngineTest, CreateOfAMissingImageNamesBoth) {
  ContainerConfig c;
  c.name = name("noimage");
  c.image = "stele/no-such-image:r1";
  auto r = engine_.create(c);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, 404);
  EXPECT_EQ(r.error().message,
            "docker: create container " + c.name + ": No such image: stele/no-such-image:r1 (404)");
}

TEST_F(EngineTest, BuildStreamsProgressAndSaveLoadKeepsTheImageId) {
  TempDir ctx;
  write_file(ctx.path + "/Dockerfile", "FROM " + kImage + "\nCOPY hello.txt /hello.txt\nRUN cat /hello.txt; echo \"built on $(hostname)\"\n");
  write_file(ctx.path + "/hello.txt", "hello from the context " + std::to_string(::getpid()) + "\n");
  BuildOptions b;
  b.context_dir = ctx.path;
  b.tag = "stele/test-build:" + std::to_string(::getpid());
  b.memory_bytes = 256 << 20;
  b.cpu_shares = 512;
  images_.push_back(b.tag);
  std::vector<std::string> lines;
  auto id = engine_.build(b, [&](std::string_view l) { lines.emplace_back(l); });
  ASSERT_TRUE(id) << id.error().message;
  EXPECT_EQ(id->rfind("sha256:", 0), 0u);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0], "Step 1/3 : FROM " + kImage);
  std::string all;
  for (auto& l : lines) all += l + "\n";
  EXPECT_NE(all.find("hello from the context " + std::to_string(::getpid())), std::string::npos) << all;
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  EXPECT_NE(all.find("built on " + std::string(host) + "\n"), std::string::npos) << "host network\n" << all;
  auto image = engine_.inspect_image(b.tag);
  ASSERT_TRUE(image);
  EXPECT_EQ(image->id, *id);

  TempDir out;
  std::string tar = out.path + "/image.tar";
  ASSERT_TRUE(engine_.save(b.tag, tar, deadline_in(60s)));
  EXPECT_GT(fs::file_size(tar), 1024u);
  ASSERT_TRUE(engine_.remove_image(b.tag, true));
  auto exists = engine_.image_exists(b.tag);
  ASSERT_TRUE(exists);
  EXPECT_FALSE(*exists);
  auto loaded = engine_.load(tar, deadline_in(60s));
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(*loaded, *id);
  exists = engine_.image_exists(b.tag);
  ASSERT_TRUE(exists);
  EXPECT_TRUE(*exists);
}

TEST_F(EngineTest, AFailingBuildReturnsItsMessage) {
  TempDir ctx;
  write_file(ctx.path + "/Dockerfile", "FROM " + kImage + "\nRUN exit 9\n");
  BuildOptions b;
  b.context_dir = ctx.path;
  auto id = engine_.build(b, nullptr);
  ASSERT_FALSE(id);
  EXPECT_NE(id.error().message.find("returned a non-zero code: 9"), std::string::npos) << id.error().message;
}

TEST(EngineTransport, NoSocketIsReportedAsUnavailableWithTheReason) {
  EngineOptions o;
  o.socket_path = "/nonexistent/docker.sock";
  auto r = Engine(o).available();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "docker: ping: cannot connect to /nonexistent/docker.sock: No such file or directory");
}

TEST(EngineTransport, ExecOfABadNameIsRefusedBeforeAnyRequest) {
  EngineOptions o;
  o.socket_path = "/nonexistent/docker.sock";
  ExecConfig e;
  e.cmd = {"true"};
  auto r = Engine(o).exec_create("../etc", e);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, 400);
  EXPECT_EQ(r.error().message, "docker: exec in container ../etc: '../etc' is not a valid container or image name");
  auto s = Engine(o).exec_start("a b", kNoDeadline, nullptr);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, 400);
}

TEST(EngineTransport, AnEngineThatNeverAnswersTimesOut) {
  TempDir dir;
  std::string path = dir.path + "/silent.sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 4), 0);  // connections queue; nothing ever answers
  EngineOptions o;
  o.socket_path = path;
  o.timeout = 200ms;
  auto r = Engine(o).inspect("stele-x");
  ::close(fd);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "docker: inspect container stele-x: reading answer: timed out");
}

}  // namespace
}  // namespace stele::docker
