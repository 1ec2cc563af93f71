// Running real plugin command lines through /bin/sh: exit codes, output and
// perfdata, stderr stand-ins, the output cap, timeouts that kill the whole
// process group, switching to another uid, and Debian's check_dummy when
// monitoring-plugins is installed.
#include "monitor/plugin_runner.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "../common/run_awaitable.h"

using namespace stele::monitor;
using namespace std::chrono_literals;
using stele::test::run;

namespace {

PluginResult sh(std::string command, std::chrono::milliseconds timeout = 20s) {
  PluginCommand c;
  c.command = std::move(command);
  c.timeout = timeout;
  return run(run_plugin(std::move(c)));
}

// Gone, or a zombie waiting for its (new) parent.
bool pid_gone(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return true;
  std::string stat((std::istreambuf_iterator<char>(in)), {});
  auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z';
}

bool gone_within(pid_t pid, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pid_gone(pid)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

}  // namespace

TEST(PluginRunner, ExitCodesMapToStatuses) {
  EXPECT_EQ(sh("echo fine; exit 0").status, CheckStatus::kOk);
  EXPECT_EQ(sh("echo meh; exit 1").status, CheckStatus::kWarning);
  EXPECT_EQ(sh("echo bad; exit 2").status, CheckStatus::kCritical);
  auto unknown = sh("echo huh; exit 3");
  EXPECT_EQ(unknown.status, CheckStatus::kUnknown);
  EXPECT_EQ(unknown.exit_code, 3);
  EXPECT_EQ(unknown.output.output, "huh");
  auto signalled = sh("kill -TERM $$");
  EXPECT_EQ(signalled.exit_code, 128 + SIGTERM);
  EXPECT_EQ(signalled.status, CheckStatus::kUnknown);
}

TEST(PluginRunner, CommandNotFoundIsUnknownWithStderrAsOutput) {
  auto r = sh("no_such_plugin_stele -H x");
  EXPECT_EQ(r.exit_code, 127);
  EXPECT_EQ(r.status, CheckStatus::kUnknown);
  EXPECT_EQ(r.output.output.rfind("(No output on stdout) stderr: ", 0), 0u) << r.output.output;
  EXPECT_NE(r.output.output.find("not found"), std::string::npos) << r.output.output;
  EXPECT_NE(r.err.find("no_such_plugin_stele"), std::string::npos);
}

TEST(PluginRunner, SilentPlugin) {
  auto r = sh("exit 0");
  EXPECT_EQ(r.output.output, "(No output returned from plugin)");
}

TEST(PluginRunner, OutputLongTextAndPerfdata) {
  auto r = sh("printf 'DISK WARNING - free space: / 300 MB|/=2643MB;5948;6345;0;6610\\n/boot 68 MB\\n' ; "
              "echo noise >&2; exit 1");
  EXPECT_EQ(r.status, CheckStatus::kWarning);
  EXPECT_EQ(r.output.output, "DISK WARNING - free space: / 300 MB");
  EXPECT_EQ(r.output.long_output, "/boot 68 MB");
  ASSERT_EQ(r.output.perfdata.size(), 1u);
  EXPECT_EQ(r.output.perfdata[0].label, "/");
  EXPECT_EQ(r.err, "noise\n") << "stderr is kept apart from the plugin output";
  EXPECT_FALSE(r.timed_out);
}

TEST(PluginRunner, OutputPastTheCapIsReadAndDropped) {
  auto r = sh("echo 'OK|a=1'; head -c 1000000 /dev/zero | tr '\\0' x; echo; echo 'more|b=2'");
  EXPECT_EQ(r.status, CheckStatus::kOk);
  EXPECT_TRUE(r.output.truncated);
  EXPECT_EQ(r.output.output, "OK");
  EXPECT_EQ(r.output.perfdata.size(), 1u);
}

TEST(PluginRunner, EnvironmentAndPathDefault) {
  PluginCommand c;
  c.command = "echo \"$GREETING $PATH\"";
  c.env = {{"GREETING", "hi"}};
  auto r = run(run_plugin(c));
  EXPECT_EQ(r.output.output.rfind("hi /usr/local/sbin:", 0), 0u) << r.output.output;
  EXPECT_NE(r.output.output.find("/usr/lib/nagios/plugins"), std::string::npos);
}

TEST(PluginRunner, HangingPluginIsKilledAtItsTimeout) {
  auto started = std::chrono::steady_clock::now();
  auto r = sh("echo starting; sleep 30", 1s);
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.status, CheckStatus::kUnknown);
  EXPECT_EQ(r.output.output, "Plugin timed out after 1 s");
  EXPECT_EQ(r.output.long_output, "starting");
  EXPECT_LT(took, 4s) << "killed at the timeout, not when sleep ends";
  EXPECT_GE(took, 900ms);
}

TEST(PluginRunner, TimeoutKillsTheWholeProcessGroup) {
  // The background sleep's pid comes out first; then both sleep.
  PluginCommand c;
  c.command = "sleep 30 & echo $!; sleep 30";
  c.timeout = 1s;
  auto started = std::chrono::steady_clock::now();
  auto r = run(run_plugin(c));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 4s);
  EXPECT_TRUE(r.timed_out);
  pid_t background = static_cast<pid_t>(std::stol(r.output.long_output));
  ASSERT_GT(background, 1);
  EXPECT_TRUE(gone_within(background, 3s)) << "background child " << background << " survived the timeout";
}

TEST(PluginRunner, TermIgnoringPluginGetsKillAfterGrace) {
  PluginCommand c;
  c.command = "trap '' TERM; echo stubborn; while :; do sleep 0.05; done";
  c.timeout = 500ms;
  c.kill_grace = 300ms;
  auto started = std::chrono::steady_clock::now();
  auto r = run(run_plugin(c));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + SIGKILL);
  EXPECT_EQ(r.output.output, "Plugin timed out after 500 ms");
}

TEST(PluginRunner, RunsAsAnotherUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "switching to uid 65534 (nobody) needs root; running as uid " << ::geteuid();
  PluginCommand c;
  c.command = "echo \"$(id -u) $(id -g) $(id -G)\"";
  c.uid = 65534;
  c.gid = 65534;
  c.cwd = "/";
  auto r = run(run_plugin(c));
  EXPECT_EQ(r.status, CheckStatus::kOk) << r.output.text() << r.err;
  EXPECT_EQ(r.output.output, "65534 65534 65534") << "uid, gid and no supplementary groups of root's";
}

TEST(PluginRunner, UserSwitchFailureIsUnknown) {
  PluginCommand c;
  c.command = "echo should-not-run";
  c.uid = 65534;
  c.cwd = "/nonexistent-stele-dir";
  auto r = run(run_plugin(c));
  EXPECT_EQ(r.status, CheckStatus::kUnknown);
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_NE(r.output.output.find("Plugin could not be started: cannot run /usr/bin/echo in /nonexistent-stele-dir as uid 65534: chdir"),
            std::string::npos)
      << r.output.output;
}

// A plain command line is exec'd without a shell (its argv straight from the
// words, the program found in the plugin PATH); shell syntax still works.
TEST(PluginRunner, PlainCommandsSkipTheShell) {
  PluginCommand c;
  c.command = "sh  -c  'echo $0'";  // quotes: through /bin/sh, whose $0 is "sh"
  EXPECT_EQ(run(run_plugin(c)).output.output, "sh");
  c.command = "cat /proc/self/cmdline";  // no shell: cat's own argv
  auto r = run(run_plugin(c));
  EXPECT_EQ(r.output.output, std::string("/usr/bin/cat\0/proc/self/cmdline\0", 32)) << r.output.output;
  c.command = "FOO=1 env";  // an assignment is shell syntax
  EXPECT_NE(run(run_plugin(c)).output.long_output.find("FOO=1"), std::string::npos);
}

TEST(PluginRunner, DebianCheckDummy) {
  const char* dummy = "/usr/lib/nagios/plugins/check_dummy";
  if (!std::filesystem::exists(dummy)) GTEST_SKIP() << dummy << " not installed (Debian monitoring-plugins-basic)";
  auto r = sh(std::string(dummy) + " 2 'disk on fire'");
  EXPECT_EQ(r.status, CheckStatus::kCritical);
  EXPECT_EQ(r.output.output, "CRITICAL: disk on fire");
}
