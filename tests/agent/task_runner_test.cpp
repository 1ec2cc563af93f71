// TaskRunner end to end: real executors (this test binary re-exec'd as
// `stele executor`), real namespaces, the task user and the host's cgroups.
#include "agent/task_runner.h"
#include "agent/executor_output.h"
#include "logs/spool.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "fixtures/executor_fixtures.h"

namespace stele {
namespace {

using testing::executor_pid;
using testing::file_text;
using testing::process_alive;
using testing::TempDir;
using testing::wait_until;
namespace fs = std::filesystem;

class TaskRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.data_dir = dir_.path() + "/agent";
    config_.stele_binary = testing::self_exe();
    config_.task_user = testing::task_user();
    config_.cgroup_parent = testing::test_cgroup_parent();
    config_.recovery_timeout_seconds = 0;
    make_runner();
  }
  void TearDown() override {
    runner_.reset();
    testing::cleanup_agent_dir(config_.data_dir, config_.cgroup_parent);
  }

  void make_runner() {
    runner_ = std::make_unique<TaskRunner>(io_, config_, [this](const TaskStatus& s) {
      statuses_.push_back(s);
      if (on_status_) on_status_(s);
    });
  }

  LaunchSpec spec(const std::string& id, const std::string& cmd) {
    LaunchSpec s;
    s.task_id = id;
    s.app_id = "/test/app";
    s.release = 1;
    s.cmd = cmd;
    s.cpus = 0.5;
    s.mem = 64;
    s.kill_grace_seconds = 3;
    s.host = "127.0.0.1";
    return s;
  }

  // Runs the io_context until pred() holds or `seconds` pass.
  bool run_until(const std::function<bool()>& pred, double seconds = 10) {
    auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (!pred() && std::chrono::steady_clock::now() < end) {
      io_.restart();
      auto t = std::chrono::steady_clock::now();
      // Blocks in epoll while there is work; without work it returns at once.
      if (io_.run_for(std::chrono::milliseconds(5)) == 0 &&
          std::chrono::steady_clock::now() - t < std::chrono::milliseconds(1))
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return pred();
  }

  std::optional<TaskStatus> last(const std::string& id) const {
    for (auto it = statuses_.rbegin(); it != statuses_.rend(); ++it)
      if (it->task_id == id) return *it;
    return std::nullopt;
  }
  bool reached(const std::string& id, const std::string& state) const {
    return std::any_of(statuses_.begin(), statuses_.end(),
                       [&](const TaskStatus& s) { return s.task_id == id && s.state == state; });
  }
  std::vector<std::string> states(const std::string& id) const {
    std::vector<std::string> out;
    for (const auto& s : statuses_)
      if (s.task_id == id) out.push_back(s.state);
    return out;
  }
  // Launches and runs until the task's status is terminal.
  TaskStatus run_to_end(LaunchSpec s, double seconds = 10) {
    std::string id = s.task_id;
    runner_->launch(std::move(s));
    run_until([&] { auto l = last(id); return l && is_terminal_state(l->state); }, seconds);
    auto l = last(id);
    return l ? *l : TaskStatus{};
  }
  std::string sandbox(const std::string& id) const { return config_.data_dir + "/executors/" + id; }

  TempDir dir_;
  RunnerConfig config_;
  boost::asio::io_context io_;
  std::vector<TaskStatus> statuses_;
  std::function<void(const TaskStatus&)> on_status_;
  std::unique_ptr<TaskRunner> runner_;
};

TEST_F(TaskRunnerTest, RunsAsTaskUserWithPlatformEnvironment) {
  LaunchSpec s = spec("env-r1.0.1",
                      "id -u; echo \"P0=$PORT0 PS=$PORTS H=$HOST T=$MESOS_TASK_ID P=$PORT "
                      "R=$STELE_RELEASE HOME=$HOME\"");
  s.ports = {31005, 31006};
  s.host = "10.9.8.7";
  auto st = run_to_end(s);
  EXPECT_EQ(st.state, "finished") << st.reason << " " << st.message;
  EXPECT_EQ(st.exit_code, std::optional<int>(0));
  auto sts = states("env-r1.0.1");
  ASSERT_GE(sts.size(), 3u);
  EXPECT_EQ(sts.front(), "staging");
  EXPECT_NE(std::find(sts.begin(), sts.end(), "running"), sts.end());
  std::string out = file_text(sandbox("env-r1.0.1") + "/stdout");
  int uid = std::atoi(out.c_str());
  EXPECT_NE(uid, 0) << out;
  EXPECT_EQ(uid, int(::getpwnam(config_.task_user.c_str())->pw_uid));
  EXPECT_NE(out.find("P0=31005 PS=31005,31006 H=10.9.8.7 T=env-r1.0.1 P=31005 R=1 HOME=" +
                     sandbox("env-r1.0.1")),
            std::string::npos)
      << out;
}

TEST_F(TaskRunnerTest, ExitCodesMapToStates) {
  EXPECT_EQ(run_to_end(spec("ok-r1.0.1", "exit 0")).state, "finished");
  auto three = run_to_end(spec("three-r1.0.1", "exit 3"));
  EXPECT_EQ(three.state, "failed");
  EXPECT_EQ(three.exit_code, std::optional<int>(3));
  EXPECT_EQ(three.reason, "exited with code 3");
  auto notfound = run_to_end(spec("nf-r1.0.1", "no-such-command-stele"));
  EXPECT_EQ(notfound.state, "failed");
  EXPECT_EQ(notfound.exit_code, std::optional<int>(127));

  LaunchSpec exec_form = spec("args-r1.0.1", "");
  exec_form.cmd.reset();
  exec_form.args = {"printf", "%s-%s", "a b", "c"};  // no shell: arguments kept whole
  EXPECT_EQ(run_to_end(exec_form).state, "finished");
  EXPECT_EQ(file_text(sandbox("args-r1.0.1") + "/stdout"), "a b-c");

  LaunchSpec missing = spec("missing-r1.0.1", "");
  missing.cmd.reset();
  missing.args = {"/nonexistent/binary"};
  auto m = run_to_end(missing);
  EXPECT_EQ(m.state, "failed");
  EXPECT_EQ(m.exit_code, std::optional<int>(127));
  EXPECT_NE(m.message.find("exec /nonexistent/binary: No such file"), std::string::npos) << m.message;
  EXPECT_FALSE(reached("missing-r1.0.1", "running"));
}

TEST_F(TaskRunnerTest, RefusesToRunAsRoot) {
  LaunchSpec s = spec("root-r1.0.1", "touch /tmp/stele-should-not-exist");
  s.user = "root";
  auto st = run_to_end(s);
  EXPECT_EQ(st.state, "failed");
  EXPECT_NE(st.message.find("refusing to run the task as root"), std::string::npos) << st.message;
  EXPECT_FALSE(reached("root-r1.0.1", "running"));
  EXPECT_FALSE(fs::exists("/tmp/stele-should-not-exist"));
}

TEST_F(TaskRunnerTest, KillHonoursSigterm) {
  runner_->launch(spec("term-r1.0.1", "sleep 100"));
  ASSERT_TRUE(run_until([&] { return reached("term-r1.0.1", "running"); }));
  auto t0 = mono_ms();
  runner_->kill("term-r1.0.1", 10);
  ASSERT_TRUE(run_until([&] { return reached("term-r1.0.1", "killed"); }));
  EXPECT_LT(mono_ms() - t0, 5000);  // well inside the grace: SIGTERM did it
  EXPECT_EQ(last("term-r1.0.1")->signal, std::optional<int>(SIGTERM));
  EXPECT_EQ(last("term-r1.0.1")->reason, "killed on request");
}

TEST_F(TaskRunnerTest, KillEscalatesToSigkillAfterGrace) {
  runner_->launch(spec("trap-r1.0.1", "trap '' TERM; echo trapped; sleep 100"));
  ASSERT_TRUE(run_until([&] { return reached("trap-r1.0.1", "running"); }));
  // "running" means exec'd; the shell ignores TERM only once the trap ran.
  ASSERT_TRUE(wait_until([&] { return file_text(sandbox("trap-r1.0.1") + "/stdout") == "trapped\n"; }, 5));
  int pid = last("trap-r1.0.1")->pid;
  auto t0 = mono_ms();
  runner_->kill("trap-r1.0.1", 0.5);
  ASSERT_TRUE(run_until([&] { return reached("trap-r1.0.1", "killed"); }));
  EXPECT_GE(mono_ms() - t0, 500);  // SIGTERM was ignored for the whole grace
  EXPECT_EQ(last("trap-r1.0.1")->signal, std::optional<int>(SIGKILL));
  EXPECT_FALSE(process_alive(pid));
}

TEST_F(TaskRunnerTest, TaskGetsOwnNamespacesAndCgroups) {
  if (::geteuid() != 0) GTEST_SKIP() << "namespaces and cgroups need root";
  runner_->launch(spec("ns-r1.0.1", "echo $$; cat /proc/self/cgroup; ls /proc | grep -c '^[0-9]'; exec sleep 100"));
  ASSERT_TRUE(run_until([&] { return reached("ns-r1.0.1", "running"); }));
  CgroupFs cgroups = CgroupFs::detect();
  TaskCgroup cg = cgroups.locate(config_.cgroup_parent + "/ns-r1.0.1");
  if (cgroups.version() == CgroupVersion::v1) {
    ASSERT_TRUE(wait_until([&] { return !cgroups.procs(cg).empty(); }, 5));
    EXPECT_EQ(file_text(cg.cpu_dir + "/cpu.shares"), "512\n");
    EXPECT_EQ(file_text(cg.cpu_dir + "/cpu.cfs_quota_us"), "50000\n");
    EXPECT_EQ(file_text(cg.memory_dir + "/memory.limit_in_bytes"), std::to_string(64 << 20) + "\n");
    EXPECT_EQ(file_text(cg.pids_dir + "/pids.max"), "4096\n");
  }
  std::string out_path = sandbox("ns-r1.0.1") + "/stdout";
  ASSERT_TRUE(wait_until([&] {
    std::string text = file_text(out_path);
    return std::count(text.begin(), text.end(), '\n') >= 3;
  }, 5));
  std::string out = file_text(out_path);
  EXPECT_EQ(out.substr(0, 2), "2\n") << out;  // pid 1 is the executor's init, the shell is 2
  EXPECT_NE(out.find(config_.cgroup_parent + "/ns-r1.0.1"), std::string::npos) << out;
  runner_->kill("ns-r1.0.1", 1);
  ASSERT_TRUE(run_until([&] { return reached("ns-r1.0.1", "killed"); }));
  for (const auto& d : cg.dirs) EXPECT_FALSE(fs::exists(d)) << d;  // removed after the exit
}

TEST_F(TaskRunnerTest, KillRightAfterLaunchIsHonoured) {
  runner_->launch(spec("early-r1.0.1", "exec sleep 100"));
  runner_->kill("early-r1.0.1", 5);  // before the executor has said anything
  ASSERT_TRUE(run_until([&] { return reached("early-r1.0.1", "killed"); }));
  EXPECT_EQ(last("early-r1.0.1")->signal, std::optional<int>(SIGTERM));
}

TEST_F(TaskRunnerTest, LargeSpecReachesTheTask) {
  LaunchSpec s = spec("big-r1.0.1", "echo ${#BIG0} ${#BIG1} ${#BIG2}");
  for (int i = 0; i < 3; ++i) s.env["BIG" + std::to_string(i)] = std::string(100000, 'x');
  EXPECT_EQ(run_to_end(s).state, "finished");  // a 300 kB launch message: past the socket buffer
  EXPECT_EQ(file_text(sandbox("big-r1.0.1") + "/stdout"), "100000 100000 100000\n");
}

TEST_F(TaskRunnerTest, ExecutorSurvivesRunnerAndIsRecovered) {
  runner_->launch(spec("keep-r1.0.1", "exec sleep 100"));
  ASSERT_TRUE(run_until([&] { return reached("keep-r1.0.1", "running"); }));
  int task_pid = last("keep-r1.0.1")->pid;
  pid_t exec_pid = executor_pid(sandbox("keep-r1.0.1"));
  runner_.reset();  // the agent goes away
  io_.restart();
  io_.run_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(process_alive(exec_pid));
  EXPECT_TRUE(process_alive(task_pid));

  statuses_.clear();
  make_runner();
  EXPECT_EQ(runner_->recover(), std::vector<std::string>{"keep-r1.0.1"});
  ASSERT_TRUE(run_until([&] { return reached("keep-r1.0.1", "running"); }));
  EXPECT_EQ(last("keep-r1.0.1")->pid, task_pid);
  ASSERT_EQ(runner_->snapshot().size(), 1u);
  EXPECT_EQ(runner_->snapshot()[0].pid, task_pid);

  runner_->kill("keep-r1.0.1", 2);
  ASSERT_TRUE(run_until([&] { return reached("keep-r1.0.1", "killed"); }));
  runner_->ack("keep-r1.0.1");
  EXPECT_TRUE(run_until([&] { return !process_alive(exec_pid); }, 5));  // acked: the executor exits
  EXPECT_TRUE(runner_->snapshot().empty());
  statuses_.clear();
  make_runner();
  EXPECT_TRUE(runner_->recover().empty());  // acked sandboxes are not re-attached
}

TEST_F(TaskRunnerTest, RecoveryTimeoutKillsTheTask) {
  config_.recovery_timeout_seconds = 0.5;
  make_runner();
  runner_->launch(spec("orphan-r1.0.1", "trap '' TERM; sleep 100"));
  ASSERT_TRUE(run_until([&] { return reached("orphan-r1.0.1", "running"); }));
  int task_pid = last("orphan-r1.0.1")->pid;
  pid_t exec_pid = executor_pid(sandbox("orphan-r1.0.1"));
  runner_.reset();
  // 0.5 s without an agent, then SIGTERM (ignored) and SIGKILL after 3 s.
  ASSERT_TRUE(wait_until([&] { return !process_alive(exec_pid); }, 10));
  EXPECT_FALSE(process_alive(task_pid));
  auto st = read_status_file(sandbox("orphan-r1.0.1"));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->state, "killed");
  EXPECT_EQ(st->reason, "recovery timeout: no agent for 0.5s");
}

TEST_F(TaskRunnerTest, StopAllTasksStopsEveryTask) {
  runner_->launch(spec("a-r1.0.1", "exec sleep 100"));
  runner_->launch(spec("b-r1.0.1", "trap '' TERM; sleep 100"));
  runner_->launch(spec("c-r1.0.1", "exit 0"));
  ASSERT_TRUE(run_until([&] {
    return reached("a-r1.0.1", "running") && reached("b-r1.0.1", "running") && reached("c-r1.0.1", "finished");
  }));
  std::vector<int> pids = {last("a-r1.0.1")->pid, last("b-r1.0.1")->pid};
  runner_.reset();
  EXPECT_EQ(stop_all_tasks(config_.data_dir, 0.3), 2);  // c had already finished
  for (int p : pids) EXPECT_FALSE(process_alive(p));
  for (const char* id : {"a-r1.0.1", "b-r1.0.1"}) {
    auto st = read_status_file(config_.data_dir + "/executors/" + id);
    ASSERT_TRUE(st);
    EXPECT_EQ(st->state, "killed") << id;
  }
  EXPECT_EQ(stop_all_tasks(config_.data_dir, 0.3), 0);  // nothing left
}

TEST_F(TaskRunnerTest, VanishedExecutorReportsGoneAndKillsTask) {
  runner_->launch(spec("gone-r1.0.1", "exec sleep 100"));
  ASSERT_TRUE(run_until([&] { return reached("gone-r1.0.1", "running"); }));
  int task_pid = last("gone-r1.0.1")->pid;
  ::kill(executor_pid(sandbox("gone-r1.0.1")), SIGKILL);
  ASSERT_TRUE(run_until([&] { return reached("gone-r1.0.1", "failed"); }));
  EXPECT_EQ(last("gone-r1.0.1")->reason, "executor gone");
  if (::geteuid() == 0 && CgroupFs::detect().version() != CgroupVersion::none) {
    EXPECT_TRUE(wait_until([&] { return !process_alive(task_pid); }, 5));  // killed via its cgroup
  }
}

TEST_F(TaskRunnerTest, AckedSandboxesAreCollectedAfterRetention) {
  config_.sandbox_retention_seconds = 0;
  make_runner();
  EXPECT_EQ(run_to_end(spec("gc-r1.0.1", "exit 0")).state, "finished");
  EXPECT_EQ(run_to_end(spec("keep-r1.0.1", "exit 0")).state, "finished");
  runner_->gc_sandboxes();
  EXPECT_TRUE(fs::exists(sandbox("gc-r1.0.1")));  // not acked yet
  runner_->ack("gc-r1.0.1");
  runner_->gc_sandboxes();
  EXPECT_TRUE(fs::exists(sandbox("gc-r1.0.1")));  // its records were not shipped (no shipper here)
  // What the agent's shipper does once every record is acked.
  logs::SpoolReader(sandbox("gc-r1.0.1"), TaskRecords::kPrefix).remove_all();
  runner_->gc_sandboxes();
  EXPECT_FALSE(fs::exists(sandbox("gc-r1.0.1")));
  EXPECT_TRUE(fs::exists(sandbox("keep-r1.0.1")));
}

TEST_F(TaskRunnerTest, UnsafeIdsFailAndDuplicatesAreIgnored) {
  runner_->launch(spec("../evil", "true"));
  runner_->launch(spec("dup-r1.0.1", "exec sleep 100"));
  runner_->launch(spec("dup-r1.0.1", "exec sleep 100"));
  ASSERT_TRUE(run_until([&] { return reached("../evil", "failed") && reached("dup-r1.0.1", "running"); }));
  EXPECT_EQ(last("../evil")->reason, "invalid task id");
  EXPECT_FALSE(fs::exists(config_.data_dir + "/evil"));
  EXPECT_FALSE(reached("dup-r1.0.1", "failed"));  // the running task's status is untouched
  EXPECT_EQ(runner_->snapshot().size(), 1u);
  runner_->kill("dup-r1.0.1", 0);
  runner_->kill("unknown-task", 0);  // no-op
  EXPECT_TRUE(run_until([&] { return reached("dup-r1.0.1", "killed"); }));
}

TEST_F(TaskRunnerTest, OomKillIsReported) {
  CgroupFs cgroups = CgroupFs::detect();
  if (::geteuid() != 0 || cgroups.version() == CgroupVersion::none)
    GTEST_SKIP() << "needs root and a cgroup filesystem";
  auto probe = cgroups.create(config_.cgroup_parent + "/probe", {1, 32, 0});
  if (!probe || probe->memory_dir.empty())
    GTEST_SKIP() << "memory controller not writable: " << (probe ? "absent" : probe.error().message);
  (void)cgroups.remove(*probe);
  LaunchSpec s = spec("oom-r1.0.1", "head -c 200m /dev/zero | tail");
  s.mem = 32;
  auto st = run_to_end(s, 30);
  EXPECT_EQ(st.state, "failed");
  EXPECT_EQ(st.reason, "memory limit exceeded (32 MB)") << st.message;
}

}  // namespace
}  // namespace stele
