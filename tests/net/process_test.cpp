#include "net/process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>
#include "../common/run_awaitable.h"

namespace asio = boost::asio;
namespace fs = std::filesystem;
using stele::Result;
using stele::net::awaitable;
using stele::net::Process;
using stele::net::ProcessResult;
using stele::net::ProcessSpec;
using stele::net::run_process;
using namespace std::chrono_literals;

namespace {

using stele::test::run;

ProcessSpec sh(std::string script) {
  return ProcessSpec{{"/bin/sh", "-c", std::move(script)}, {{"PATH", "/usr/bin:/bin"}}, ""};
}

Result<ProcessResult> run_sh(std::string script, std::string input = "",
                             std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  return run(run_process(sh(std::move(script)), std::move(input), timeout));
}

bool pid_gone(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return true;
  std::string stat((std::istreambuf_iterator<char>(in)), {});
  auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z';
}

fs::path temp_dir() {
  auto d = fs::temp_directory_path() / ("process_test." + std::to_string(getpid()));
  fs::create_directories(d);
  return d;
}

TEST(RunProcess, CollectsStdoutStderrAndExitCode) {
  auto r = run_sh("echo out; echo err >&2; exit 3");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
}

TEST(RunProcess, KilledBySignalIs128PlusSignal) {
  auto r = run_sh("kill -TERM $$");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->exit_code, 128 + SIGTERM);
}

TEST(RunProcess, BigInputAndOutputDoNotDeadlock) {
  std::string input(3 * 1024 * 1024, 'x');
  for (size_t i = 0; i < input.size(); i += 1000) input[i] = static_cast<char>('a' + i % 26);
  auto r = run(run_process(ProcessSpec{{"cat"}, {}, ""}, input, 20s));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_TRUE(r->out == input) << "got " << r->out.size() << " bytes";
}

TEST(RunProcess, ChattyStderrIsDrainedAndBounded) {
  auto r = run_sh("head -c 1000000 /dev/zero >&2; echo done");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->out, "done\n");
  EXPECT_EQ(r->err.size(), Process::kStderrLimit);
}

TEST(RunProcess, EnvironmentIsExactlyTheGivenOne) {
  setenv("STELE_PROCESS_TEST_LEAK", "leaked", 1);
  ProcessSpec spec{{"/bin/sh", "-c", "echo \"$FOO|$STELE_PROCESS_TEST_LEAK|\""}, {{"FOO", "bar"}}, ""};
  auto r = run(run_process(spec, "", 10s));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->out, "bar||\n");
  unsetenv("STELE_PROCESS_TEST_LEAK");
  EXPECT_EQ(stele::net::current_environment().count("STELE_PROCESS_TEST_LEAK"), 0u);
  EXPECT_GT(stele::net::current_environment().count("PATH"), 0u);
}

TEST(RunProcess, RunsInTheGivenDirectory) {
  auto dir = temp_dir();
  ProcessSpec spec = sh("pwd");
  spec.cwd = dir.string();
  auto r = run(run_process(spec, "", 10s));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->out, fs::canonical(dir).string() + "\n");
  fs::remove_all(dir);
}

TEST(RunProcess, MissingProgramIsAnErrorNamingIt) {
  auto r = run(run_process(ProcessSpec{{"no-such-program-stele"}, {}, ""}, "", 10s));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("no-such-program-stele"), std::string::npos) << r.error().message;
  auto r2 = run(run_process(ProcessSpec{{}, {}, ""}, "", 10s));
  EXPECT_FALSE(r2);
}

TEST(RunProcess, MissingDirectoryIsAnError) {
  ProcessSpec spec = sh("true");
  spec.cwd = "/nonexistent/stele-dir";
  auto r = run(run_process(spec, "", 10s));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("/nonexistent/stele-dir"), std::string::npos) << r.error().message;
}

TEST(RunProcess, TimeoutKillsTheWholeProcessGroup) {
  auto dir = temp_dir();
  auto pidfile = (dir / "bg.pid").string();
  auto r = run_sh("sleep 30 & echo $! > " + pidfile + "; wait", "", 300ms);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("timed out after 300 ms"), std::string::npos) << r.error().message;
  std::ifstream in(pidfile);
  pid_t bg = 0;
  in >> bg;
  ASSERT_GT(bg, 0);
  for (int i = 0; i < 100 && !pid_gone(bg); ++i) std::this_thread::sleep_for(20ms);
  EXPECT_TRUE(pid_gone(bg)) << "background child " << bg << " survived the timeout";
  fs::remove_all(dir);
}

TEST(Process, StdoutArrivesBeforeTheChildExits) {
  auto body = []() -> awaitable<int> {
    auto ex = co_await asio::this_coro::executor;
    auto p = Process::spawn(ex, sh("echo first; sleep 30; echo never"));
    EXPECT_TRUE(p);
    auto first = co_await (*p)->read_stdout();
    EXPECT_TRUE(first);
    EXPECT_EQ(*first, "first\n");
    EXPECT_FALSE((*p)->exited());
    (*p)->kill(SIGKILL);
    auto rest = co_await (*p)->read_stdout();
    EXPECT_TRUE(rest && rest->empty());
    co_return co_await (*p)->wait();
  };
  EXPECT_EQ(run(body()), 128 + SIGKILL);
}

TEST(Process, IncrementalStdinAndEof) {
  auto body = []() -> awaitable<std::string> {
    auto ex = co_await asio::this_coro::executor;
    auto p = Process::spawn(ex, ProcessSpec{{"cat"}, {}, ""});
    EXPECT_TRUE(p);
    auto w = co_await (*p)->write_stdin("abc");
    EXPECT_TRUE(w);
    auto got = co_await (*p)->read_stdout();
    EXPECT_TRUE(got);
    (*p)->close_stdin();
    auto eof = co_await (*p)->read_stdout();
    EXPECT_TRUE(eof && eof->empty());
    int code = co_await (*p)->wait();
    EXPECT_EQ(code, 0);
    auto after = co_await (*p)->write_stdin("more");
    EXPECT_FALSE(after);
    co_return *got;
  };
  EXPECT_EQ(run(body()), "abc");
}

TEST(Process, WritingToAChildThatStoppedReadingIsAnError) {
  signal(SIGPIPE, SIG_IGN);  // as main() does
  auto body = []() -> awaitable<bool> {
    auto ex = co_await asio::this_coro::executor;
    auto p = Process::spawn(ex, sh("exit 0"));
    EXPECT_TRUE(p);
    co_await (*p)->wait();
    std::string big(1024 * 1024, 'x');
    auto w = co_await (*p)->write_stdin(big);
    co_return static_cast<bool>(w);
  };
  EXPECT_FALSE(run(body()));
}

TEST(Process, DroppedProcessIsStillReaped) {
  pid_t pid = 0;
  {
    asio::io_context io;
    auto p = Process::spawn(io.get_executor(), sh("sleep 0.2"));
    ASSERT_TRUE(p);
    pid = (*p)->pid();
    p->reset();  // nobody waits for it
    io.run();    // returns once the background reaper is done
  }
  errno = 0;
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

TEST(Process, ChildStartsWithDefaultSigpipe) {
  signal(SIGPIPE, SIG_IGN);
  // With SIGPIPE ignored `yes` would see EPIPE and exit 1; by default it dies of the signal.
  auto r = run_sh("(yes; echo $? >&2) | head -n 1 >/dev/null");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->err, std::to_string(128 + SIGPIPE) + "\n");
}

TEST(Process, ChildDoesNotInheritOtherDescriptors) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  int leaky = fcntl(fds[0], F_DUPFD, 100);  // no CLOEXEC, like a socket some library opened
  ASSERT_GE(leaky, 100);
  auto r = run_sh("ls /proc/self/fd");
  ::close(fds[0]);
  ::close(fds[1]);
  ::close(leaky);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->out.find("\n" + std::to_string(leaky) + "\n"), std::string::npos) << r->out;
}

}  // namespace
