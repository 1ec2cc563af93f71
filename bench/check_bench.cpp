// Checks per second on one core with a trivial plugin, and the per-check
// overhead of Stele's plugin runner (monitor::run_plugin: /bin/sh -c, pipes,
// pidfd, timeout timer, output parsing) against running the same plugin
// directly (posix_spawn of the binary, stdout read, waitpid) -- issue 7's
// closing-note figures.
//
//   build/check_bench [--checks 2000] [--concurrency 8] [--cpu 1] [--rounds 3]
//                     [--plugin /usr/lib/nagios/plugins/check_dummy] [--args "0 ok"]
//
// The process and every plugin it starts are pinned to one core (--cpu; -1 =
// no pinning). Both modes run `concurrency` plugins at a time. Rounds
// alternate the two modes; medians are printed with the ratio.
#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <utility>  // before asio, for g++ 12
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "monitor/plugin_runner.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  int checks = 2000;
  int concurrency = 8;
  int cpu = 1;
  int rounds = 3;
  std::string plugin = "/usr/lib/nagios/plugins/check_dummy";
  std::string args = "0 ok";
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(' ', i);
    if (j == std::string::npos) j = s.size();
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// One direct run: posix_spawn, read stdout to EOF, waitpid. Returns the exit code.
int run_direct(const std::vector<std::string>& argv) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  std::vector<char*> av;
  for (const auto& a : argv) av.push_back(const_cast<char*>(a.c_str()));
  av.push_back(nullptr);
  pid_t pid = -1;
  // The environment run_plugin gives a plugin: PATH alone.
  static std::string path_env = std::string("PATH=") + stele::monitor::kPluginPath;
  char* envp[] = {path_env.data(), nullptr};
  int rc = posix_spawn(&pid, av[0], &fa, nullptr, av.data(), envp);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    return -1;
  }
  char buf[4096];
  while (read(fds[0], buf, sizeof buf) > 0) {
  }
  close(fds[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// `n` direct runs, `c` at a time (threads, each running its share serially).
double direct_round(const Args& a, const std::vector<std::string>& argv, int& bad) {
  auto t0 = Clock::now();
  std::vector<std::thread> threads;
  std::atomic<int> next{0}, fails{0};
  for (int t = 0; t < a.concurrency; ++t)
    threads.emplace_back([&] {
      while (next.fetch_add(1) < a.checks)
        if (run_direct(argv) != 0) fails.fetch_add(1);
    });
  for (auto& t : threads) t.join();
  bad = fails.load();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// `n` runs through monitor::run_plugin, `c` coroutines at a time on one io_context.
double stele_round(const Args& a, const std::string& command, int& bad) {
  boost::asio::io_context io;
  int next = 0, fails = 0;
  auto t0 = Clock::now();
  for (int w = 0; w < a.concurrency; ++w)
    boost::asio::co_spawn(io, [&]() -> stele::net::awaitable<void> {
      while (next++ < a.checks) {
        stele::monitor::PluginCommand cmd;
        cmd.command = command;
        auto r = co_await stele::monitor::run_plugin(std::move(cmd));
        if (r.status != stele::monitor::CheckStatus::kOk) ++fails;
      }
    }, boost::asio::detached);
  io.run();
  bad = fails;
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--checks") a.checks = std::stoi(v);
    else if (k == "--concurrency") a.concurrency = std::max(1, std::stoi(v));
    else if (k == "--cpu") a.cpu = std::stoi(v);
    else if (k == "--rounds") a.rounds = std::max(1, std::stoi(v));
    else if (k == "--plugin") a.plugin = v;
    else if (k == "--args") a.args = v;
    else {
      fprintf(stderr, "check_bench: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (access(a.plugin.c_str(), X_OK) != 0) {
    fprintf(stderr, "check_bench: %s is not executable (Debian's monitoring-plugins-basic; scripts/bootstrap)\n",
            a.plugin.c_str());
    return 2;
  }
  if (a.cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(a.cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) perror("sched_setaffinity");
  }
  std::vector<std::string> argv_direct{a.plugin};
  for (auto& x : split(a.args)) argv_direct.push_back(x);
  std::string command = a.plugin + " " + a.args;
  printf("check_bench: %d checks of '%s' per round, %d at a time, pinned to cpu %d, %d rounds\n", a.checks,
         command.c_str(), a.concurrency, a.cpu, a.rounds);
  std::vector<double> direct, stele;
  int failures = 0;
  for (int r = 0; r < a.rounds; ++r) {
    int bad = 0;
    double d = direct_round(a, argv_direct, bad);
    failures += bad;
    double s = stele_round(a, command, bad);
    failures += bad;
    direct.push_back(d);
    stele.push_back(s);
    printf("  round %d: direct %.0f checks/s, stele run_plugin %.0f checks/s\n", r + 1, a.checks / d, a.checks / s);
  }
  double d = median(direct), s = median(stele);
  printf("direct (posix_spawn + read + waitpid):   %8.0f checks/s  %7.1f us/check\n", a.checks / d, d / a.checks * 1e6);
  printf("stele  (run_plugin: pidfd, timer, parse): %8.0f checks/s  %7.1f us/check\n", a.checks / s, s / a.checks * 1e6);
  printf("overhead per check: %.1f us; stele/direct throughput ratio %.2f\n", (s - d) / a.checks * 1e6, d / s);
  if (failures) {
    fprintf(stderr, "check_bench: %d runs did not report OK\n", failures);
    return 1;
  }
  return 0;
}
