// LaunchSpec, the executor's output sink and argument parsing, and the
// executor process itself driven over its socket (forked, as main() would).
#include "agent/executor.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "agent/executor_output.h"
#include "agent/executor_protocol.h"
#include "agent/launch_spec.h"
#include "fixtures/executor_fixtures.h"

namespace {
// agent_test doubles as `stele executor`: TaskRunner tests exec
// /proc/self/exe with argv[1] == "executor". Runs before gtest's main().
const bool kRanAsExecutor = [] {
  auto cmdline = stele::read_file("/proc/self/cmdline");
  if (!cmdline) return false;
  std::vector<std::string> args;
  for (size_t pos = 0; pos < cmdline->size();) {
    size_t end = cmdline->find('\0', pos);
    if (end == std::string::npos) end = cmdline->size();
    args.push_back(cmdline->substr(pos, end - pos));
    pos = end + 1;
  }
  if (args.size() < 2 || args[1] != "executor") return false;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  _exit(stele::executor_main(static_cast<int>(args.size()), argv.data()));
}();
}  // namespace

namespace stele {
namespace {

using testing::file_text;
using testing::TempDir;
using testing::wait_until;
namespace fs = std::filesystem;

LaunchSpec sample_spec() {
  LaunchSpec s;
  s.task_id = "shop_web-r3.1.2";
  s.app_id = "/shop/web";
  s.release = 3;
  s.seq = 1;
  s.cmd = "echo hi";
  s.env = {{"GREETING", "hello"}, {"PORT", "1"}, {"HOME", "/home/app"}};
  s.cpus = 0.5;
  s.mem = 64;
  s.ports = {31000, 31001};
  s.host = "10.0.0.7";
  s.user = "stele-task";
  s.kill_grace_seconds = 2.5;
  s.sandbox = "/var/lib/stele-agent/executors/shop_web-r3.1.2";
  s.cgroup_parent = "stele/agent-1";
  s.recovery_timeout_seconds = 900;
  return s;
}

TEST(LaunchSpec, JsonRoundTrip) {
  LaunchSpec s = sample_spec();
  s.work_dir = "/srv";
  Json j = s;
  EXPECT_EQ(j["task_id"], "shop_web-r3.1.2");
  EXPECT_EQ(j["cmd"], "echo hi");
  LaunchSpec back = j.get<LaunchSpec>();
  EXPECT_EQ(Json(back), j);
  EXPECT_EQ(back.work_dir, std::optional<std::string>("/srv"));
  LaunchSpec exec_form = Json{{"task_id", "t"}, {"args", {"/bin/true"}}, {"sandbox", "/x"}}.get<LaunchSpec>();
  EXPECT_FALSE(exec_form.cmd);
  EXPECT_EQ(exec_form.args, std::vector<std::string>{"/bin/true"});
  EXPECT_EQ(exec_form.kill_grace_seconds, 3.0);
}

TEST(LaunchSpec, ParseRejectsUnsafeSpecs) {
  auto bad = parse_launch_spec(Json{{"task_id", "../x"}, {"sandbox", "rel"}});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, 422);
  std::vector<std::string> paths;
  for (const auto& d : bad.error().details) paths.push_back(d.path);
  EXPECT_EQ(paths, (std::vector<std::string>{"/task_id", "/sandbox", "/cmd"}));
  EXPECT_FALSE(parse_launch_spec(Json{{"task_id", 5}}));  // wrong type: an error, not a throw
  EXPECT_TRUE(parse_launch_spec(Json(sample_spec())));
}

TEST(LaunchSpec, TaskEnvironment) {
  auto env = task_environment(sample_spec());
  EXPECT_EQ(env["PORT"], "31000");  // the platform's PORT wins over the spec's
  EXPECT_EQ(env["PORT0"], "31000");
  EXPECT_EQ(env["PORT1"], "31001");
  EXPECT_EQ(env["PORTS"], "31000,31001");
  EXPECT_EQ(env["HOST"], "10.0.0.7");
  EXPECT_EQ(env["MARATHON_APP_ID"], "/shop/web");
  EXPECT_EQ(env["STELE_APP_ID"], "/shop/web");
  EXPECT_EQ(env["MESOS_TASK_ID"], "shop_web-r3.1.2");
  EXPECT_EQ(env["STELE_TASK_ID"], "shop_web-r3.1.2");
  EXPECT_EQ(env["STELE_RELEASE"], "3");
  EXPECT_EQ(env["MESOS_SANDBOX"], "/var/lib/stele-agent/executors/shop_web-r3.1.2");
  EXPECT_EQ(env["MARATHON_APP_RESOURCE_CPUS"], "0.5");
  EXPECT_EQ(env["GREETING"], "hello");
  EXPECT_EQ(env["HOME"], "/home/app");  // the spec may set HOME...
  EXPECT_NE(env["PATH"].find("/usr/bin"), std::string::npos);
  LaunchSpec s = sample_spec();
  s.env.clear();
  s.ports.clear();
  env = task_environment(s);
  EXPECT_EQ(env["HOME"], s.sandbox);  // ...and defaults to the sandbox
  EXPECT_FALSE(env.count("PORT"));
  EXPECT_FALSE(env.count("PORTS"));
}

TEST(TaskStatusJson, RoundTripKeepsOptionalFields) {
  TaskStatus s{"t", "failed", 42, 3, std::nullopt, "exited with code 3", "", 1000, 900};
  Json j = s;
  EXPECT_EQ(j["type"], "status");
  EXPECT_EQ(j["exit_code"], 3);
  EXPECT_FALSE(j.contains("signal"));
  TaskStatus back = j.get<TaskStatus>();
  EXPECT_EQ(back.exit_code, std::optional<int>(3));
  EXPECT_FALSE(back.signal);
  EXPECT_EQ(back.started_ms, 900);
}

TEST(RotatingFileSink, RotatesAndKeepsOneOldFile) {
  TempDir d;
  std::string path = d.path() + "/stdout";
  {
    RotatingFileSink sink(path, 10);
    sink.write("0123456");
    sink.write("789abc");  // crosses 10 bytes: rotation
    EXPECT_EQ(file_text(path + ".1"), "0123456789");
    EXPECT_EQ(file_text(path), "abc");
    sink.write("defghijklmnopqrstu");  // two more rotations; only the last old file is kept
  }
  EXPECT_EQ(file_text(path + ".1"), "klmnopqrst");
  EXPECT_EQ(file_text(path), "u");
  RotatingFileSink again(path, 10);  // reopening appends
  again.write("v");
  EXPECT_EQ(file_text(path), "uv");
}

TEST(ExecutorArgs, ParsesMainArgv) {
  const char* argv[] = {"stele", "executor", "--sandbox", "/d", "--agent-fd", "3", "--no-detach"};
  auto o = parse_executor_args(7, const_cast<char**>(argv));
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(o->sandbox, "/d");
  EXPECT_EQ(o->agent_fd, 3);
  EXPECT_FALSE(o->detach);
  const char* rel[] = {"executor", "--sandbox", "d"};
  EXPECT_FALSE(parse_executor_args(3, const_cast<char**>(rel)));
  const char* unknown[] = {"--sandbox", "/d", "--bogus"};
  EXPECT_FALSE(parse_executor_args(3, const_cast<char**>(unknown)));
}

// --- the executor process, forked and driven over executor.sock ----------

class ExecutorProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    sandbox_ = dir_.path() + "/sandbox";
    fs::create_directories(sandbox_);
  }
  void TearDown() override {
    if (child_ > 0) {
      ::kill(child_, SIGKILL);
      ::waitpid(child_, nullptr, 0);
    }
    testing::cleanup_agent_dir(dir_.path(), "");
  }

  void start(const LaunchSpec& spec, ExecutorOptions o = {}) {
    ASSERT_TRUE(write_file(sandbox_ + "/task.json", Json(spec).dump()));
    o.sandbox = sandbox_;
    o.detach = false;
    child_ = ::fork();
    if (child_ == 0) _exit(executor_main(o));
  }

  LaunchSpec spec(const std::string& cmd) {
    LaunchSpec s;
    s.task_id = "exec-test";
    s.app_id = "/exec";
    s.cmd = cmd;
    s.user = testing::task_user();
    s.sandbox = sandbox_;
    s.kill_grace_seconds = 5;
    return s;
  }

  // Connects to executor.sock once it exists.
  int connect() {
    int fd = -1;
    wait_until([&] { return (fd = connect_executor_socket(sandbox_)) >= 0; }, 5);
    return fd;
  }

  // Reads status lines from fd until one has `state` (or timeout).
  std::optional<TaskStatus> read_until(int fd, const std::string& state, double seconds = 10) {
    std::string buf;
    auto end = mono_ms() + int64_t(seconds * 1000);
    while (mono_ms() < end) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char tmp[4096];
      ssize_t n = ::read(fd, tmp, sizeof tmp);
      if (n <= 0) return std::nullopt;
      buf.append(tmp, size_t(n));
      for (size_t pos; (pos = buf.find('\n')) != std::string::npos;) {
        TaskStatus st = Json::parse(buf.substr(0, pos)).get<TaskStatus>();
        buf.erase(0, pos + 1);
        if (st.state == state) return st;
      }
    }
    return std::nullopt;
  }

  int wait_exit(double seconds = 10) {
    int st = -1;
    wait_until([&] { return ::waitpid(child_, &st, WNOHANG) == child_; }, seconds);
    child_ = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }

  TempDir dir_;
  std::string sandbox_;
  pid_t child_ = -1;
};

TEST_F(ExecutorProcess, ReportsStatusesWritesOutputAndExitsOnAck) {
  start(spec("echo out; echo err >&2; exit 0"));
  int fd = connect();
  ASSERT_GE(fd, 0);
  auto st = read_until(fd, "finished");
  ASSERT_TRUE(st);
  EXPECT_EQ(st->exit_code, std::optional<int>(0));
  EXPECT_GT(st->pid, 0);
  EXPECT_EQ(file_text(sandbox_ + "/stdout"), "out\n");
  EXPECT_EQ(file_text(sandbox_ + "/stderr"), "err\n");
  auto disk = read_status_file(sandbox_);
  ASSERT_TRUE(disk);
  EXPECT_EQ(disk->state, "finished");
  std::string ack = "{\"type\":\"ack\"}\n";
  ASSERT_EQ(::write(fd, ack.data(), ack.size()), ssize_t(ack.size()));
  EXPECT_EQ(wait_exit(), 0);
  EXPECT_FALSE(fs::exists(sandbox_ + "/executor.sock"));
  ::close(fd);
}

TEST_F(ExecutorProcess, NewConnectionReplacesOldAndGetsCurrentStatus) {
  start(spec("exec sleep 30"));
  int a = connect();
  ASSERT_GE(a, 0);
  ASSERT_TRUE(read_until(a, "running"));
  int b = connect();
  ASSERT_GE(b, 0);
  auto st = read_until(b, "running");  // sent on connect
  ASSERT_TRUE(st);
  char c;
  EXPECT_EQ(::read(a, &c, 1), 0);  // the old connection was closed
  std::string kill = "{\"type\":\"kill\",\"grace_seconds\":5}\n";
  ASSERT_EQ(::write(b, kill.data(), kill.size()), ssize_t(kill.size()));
  auto killed = read_until(b, "killed");
  ASSERT_TRUE(killed);
  EXPECT_EQ(killed->signal, std::optional<int>(SIGTERM));
  EXPECT_EQ(killed->pid, st->pid);
  ::close(a);
  ::close(b);
}

TEST_F(ExecutorProcess, ExitsAfterLingerWhenNobodyAcks) {
  ExecutorOptions o;
  o.terminal_linger_seconds = 0.2;
  start(spec("exit 4"), o);
  EXPECT_EQ(wait_exit(), 0);
  auto st = read_status_file(sandbox_);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->state, "failed");
  EXPECT_EQ(st->exit_code, std::optional<int>(4));
  EXPECT_EQ(st->reason, "exited with code 4");
}

TEST_F(ExecutorProcess, WritesLimitsIntoAFakeV2Tree) {
  if (::geteuid() != 0) GTEST_SKIP() << "cgroups are set up only as root";
  TempDir cg;
  ASSERT_TRUE(write_file(cg.path() + "/cgroup.controllers", "cpu memory pids\n"));
  LaunchSpec s = spec("exit 0");
  s.cgroup_parent = "stele/agent-x";
  s.cpus = 2;
  s.mem = 100;
  ExecutorOptions o;
  o.cgroup_root = cg.path();
  o.terminal_linger_seconds = 0;
  start(s, o);
  EXPECT_EQ(wait_exit(), 0);
  std::string t = cg.path() + "/stele/agent-x/exec-test/";
  EXPECT_EQ(file_text(t + "cpu.max"), "200000 100000");
  EXPECT_EQ(file_text(t + "cpu.weight"), "79");
  EXPECT_EQ(file_text(t + "memory.max"), std::to_string(100 << 20));
  EXPECT_EQ(file_text(t + "pids.max"), "4096");
  EXPECT_EQ(file_text(t + "cgroup.procs"), "0");  // the child joined before exec
  EXPECT_EQ(file_text(cg.path() + "/stele/cgroup.subtree_control"), "+cpu +memory +pids");
}

// The host's cgroup2 mount (at /sys/fs/cgroup/unified on this hybrid host,
// without controllers): the task is cloned straight into its cgroup
// (clone3 CLONE_INTO_CGROUP), which is removed after the exit.
TEST_F(ExecutorProcess, JoinsARealCgroupV2) {
  std::string root = "/sys/fs/cgroup/unified";
  if (::geteuid() != 0 || !fs::exists(root + "/cgroup.controllers"))
    GTEST_SKIP() << "needs root and a cgroup2 mount at " << root;
  LaunchSpec s = spec("cat /proc/self/cgroup");
  s.cgroup_parent = testing::test_cgroup_parent();
  ExecutorOptions o;
  o.cgroup_root = root;
  o.terminal_linger_seconds = 0;
  start(s, o);
  EXPECT_EQ(wait_exit(), 0);
  auto st = read_status_file(sandbox_);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->state, "finished") << st->reason << " " << st->message;
  EXPECT_NE(file_text(sandbox_ + "/stdout").find("0::/" + s.cgroup_parent + "/exec-test\n"),
            std::string::npos)
      << file_text(sandbox_ + "/stdout");
  EXPECT_FALSE(fs::exists(root + "/" + s.cgroup_parent + "/exec-test"));
  ::rmdir((root + "/" + s.cgroup_parent).c_str());
  ::rmdir((root + "/stele-test").c_str());
}

TEST_F(ExecutorProcess, BrokenTaskJsonFailsWithReason) {
  ASSERT_TRUE(write_file(sandbox_ + "/task.json", "{not json"));
  ExecutorOptions o;
  o.sandbox = sandbox_;
  o.detach = false;
  o.terminal_linger_seconds = 0;
  child_ = ::fork();
  if (child_ == 0) _exit(executor_main(o));
  EXPECT_EQ(wait_exit(), 0);
  auto st = read_status_file(sandbox_);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->state, "failed");
  EXPECT_EQ(st->reason, "invalid task.json");
}

}  // namespace
}  // namespace stele
