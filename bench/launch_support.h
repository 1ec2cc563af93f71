// What the launch benchmarks (launch_bench, docker_launch_bench) share:
// timing, pumping an io_context, statistics, and ending the executors they
// leave as this process's children. Header-only: each *_bench.cpp is its
// own executable.
#pragma once
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <utility>  // before asio, for g++ 12
#include <boost/asio/io_context.hpp>

#include "agent/executor_io.h"

namespace stele::bench {

using Clock = std::chrono::steady_clock;

// The `stele` binary next to this one (the executor the runners start).
inline std::string stele_next_to(const char* argv0) {
  std::error_code ec;
  std::filesystem::path self =
      std::strchr(argv0, '/') ? std::filesystem::path(argv0) : std::filesystem::read_symlink("/proc/self/exe", ec);
  return (self.parent_path() / "stele").string();
}

inline double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Runs the io_context until pred() holds or `seconds` pass.
inline void pump(boost::asio::io_context& io, const std::function<bool()>& pred, double seconds) {
  auto end = Clock::now() + std::chrono::duration<double>(seconds);
  while (!pred() && Clock::now() < end) {
    io.restart();
    auto t = Clock::now();
    // Blocks in epoll while there is work; without work it returns at once.
    if (io.run_for(std::chrono::milliseconds(5)) == 0 && Clock::now() - t < std::chrono::milliseconds(1))
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// "  <what> median .. ms   min-max ..-..  p90 ..", `width` wide labels, `digits` decimals.
inline void print_stats(const char* what, std::vector<double> v, int width = 30, int digits = 2) {
  std::sort(v.begin(), v.end());
  double p90 = v[size_t(std::ceil(0.9 * double(v.size()))) - 1];
  std::printf("  %-*s median %7.*f ms   min-max %6.*f-%-7.*f  p90 %7.*f\n", width, what, digits, median(v), digits,
              v.front(), digits, v.back(), digits, p90);
}

// Children of this process (executors are re-parented here), zombies too if asked.
inline std::vector<pid_t> children(bool with_zombies) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    pid_t pid = std::atoi(e.path().filename().c_str());
    auto stat = pid > 0 ? stele::read_file(e.path().string() + "/stat") : std::nullopt;
    auto close = stat ? stat->rfind(')') : std::string::npos;
    char state = 0;
    int ppid = 0;
    if (close == std::string::npos || std::sscanf(stat->c_str() + close + 1, " %c %d", &state, &ppid) != 2) continue;
    if (ppid == ::getpid() && (with_zombies || state != 'Z')) out.push_back(pid);
  }
  return out;
}

// Lets the executors exit by themselves (acked, or the standby's socket
// closed), then SIGKILLs by pid whatever is left, and reaps all.
inline void stop_children() {
  auto end = Clock::now() + std::chrono::seconds(2);
  while (!children(false).empty() && Clock::now() < end) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  for (int sweep = 0; sweep < 5; ++sweep) {
    auto pids = children(true);
    if (pids.empty()) break;
    for (pid_t p : pids) ::kill(p, SIGKILL);
    for (pid_t p : pids) ::waitpid(p, nullptr, 0);
  }
}

}  // namespace stele::bench
