// launch_bench: design.md "Benchmarks", task launch: the agent receives the
// launch (TaskRunner::launch()) -> the executor reports `running`, plain cmd
// `exit 0`, with the real TaskRunner and `stele executor` (namespaces,
// cgroups, task user). Runners WITH and WITHOUT the standby executor take
// turns; posix_spawn + waitpid of /bin/true is timed in the same run. Needs
// root. Removes its temp dirs, cgroups and processes. Details: bench/README.md.
//
//   taskset -c 0 build/launch_bench [--launches 40] [--stele build/stele]
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/stat.h>
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
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "agent/cgroups.h"
#include "agent/executor_io.h"
#include "agent/task_runner.h"
#include "launch_support.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using namespace stele::bench;
using stele::TaskStatus;

struct Options {
  int launches = 40;
  std::string stele;  // default: `stele` next to this binary
};

Options parse_options(int argc, char** argv) {
  Options o;
  o.stele = stele_next_to(argv[0]);
  bool ok = argc % 2 == 1;
  for (int i = 1; ok && i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--launches") o.launches = std::atoi(argv[i + 1]);
    else if (flag == "--stele") o.stele = argv[i + 1];
    else ok = false;
  }
  if (ok && o.launches >= 1) return o;
  std::fprintf(stderr, "usage: %s [--launches N] [--stele PATH]\n", argv[0]);
  std::exit(2);
}

// One TaskRunner in its own data dir and cgroup parent, and its samples.
struct Mode {
  std::string name;
  stele::RunnerConfig config;
  std::unique_ptr<stele::TaskRunner> runner;
  std::vector<double> ms;
};

struct Bench {
  boost::asio::io_context io;
  std::string dir;
  std::vector<Mode> modes;  // [0] with the standby executor, [1] without
  std::vector<double> spawn_ms;
  // The launch in flight (one at a time).
  std::string id;
  Clock::time_point t0;
  double running_ms = -1;  // launch() -> its "running" reached on_status
  std::optional<TaskStatus> end;
};

void on_status(Bench& b, const TaskStatus& s) {
  if (s.task_id != b.id) return;
  if (s.state == "running" && b.running_ms < 0) b.running_ms = ms_since(b.t0);
  if (stele::is_terminal_state(s.state)) b.end = s;
}

void add_mode(Bench& b, const std::string& name, bool standby, const std::string& stele) {
  Mode& m = b.modes.emplace_back();
  m.name = name;
  m.config.data_dir = b.dir + "/" + name;
  m.config.stele_binary = stele;
  m.config.task_user = ::getpwnam("stele-task") ? "stele-task" : "nobody";
  m.config.cgroup_parent = "stele-bench/" + std::to_string(::getpid()) + "-" + name;
  m.config.standby_executor = standby;
  m.runner = std::make_unique<stele::TaskRunner>(b.io, m.config, [&b](const TaskStatus& s) { on_status(b, s); });
}

stele::LaunchSpec plain_spec(const std::string& id) {
  stele::LaunchSpec s;
  s.task_id = id;
  s.app_id = "/bench/app";
  s.release = 1;
  s.cmd = "exit 0";
  s.cpus = 0.5;
  s.mem = 64;
  return s;
}

// One launch to its end; the task must have run and finished.
bool launch_one(Bench& b, Mode& m, const std::string& id) {
  b.id = id;
  b.running_ms = -1;
  b.end.reset();
  b.t0 = Clock::now();
  m.runner->launch(plain_spec(id));
  pump(b.io, [&] { return b.end.has_value(); }, 10);
  if (b.running_ms < 0 || !b.end || b.end->state != "finished") {
    std::fprintf(stderr, "launch_bench: %s: %s %s %s\n", id.c_str(), b.end ? b.end->state.c_str() : "no end in 10 s",
                 b.end ? b.end->reason.c_str() : "", b.end ? b.end->message.c_str() : "");
    return false;
  }
  m.runner->ack(id);
  m.ms.push_back(b.running_ms);
  return true;
}

double spawn_true_ms() {
  char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
  pid_t pid = -1;
  auto t0 = Clock::now();
  if (::posix_spawn(&pid, argv[0], nullptr, nullptr, argv, environ) != 0) return -1;
  ::waitpid(pid, nullptr, 0);
  return ms_since(t0);
}

// SIGKILLs what is left in the task cgroups and removes them and their parent.
void remove_cgroups(const std::string& parent) {
  stele::CgroupFs cgroups = stele::CgroupFs::detect();
  if (cgroups.version() == stele::CgroupVersion::none) return;
  std::vector<std::string> tasks;
  std::error_code ec;
  for (const auto& dir : cgroups.locate(parent).dirs)
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.is_directory()) tasks.push_back(e.path().filename().string());
  for (const auto& t : tasks) {
    cgroups.kill_all(cgroups.locate(parent + "/" + t));
    (void)cgroups.remove(cgroups.locate(parent + "/" + t));
  }
  for (const auto& dir : cgroups.locate(parent).dirs) {
    ::rmdir(dir.c_str());
    ::rmdir(fs::path(dir).parent_path().c_str());  // "stele-bench", when empty
  }
}

void cleanup(Bench& b) {
  for (Mode& m : b.modes) m.runner.reset();  // closes the standby's socket: it exits
  stop_children();
  for (Mode& m : b.modes) remove_cgroups(m.config.cgroup_parent);
  std::error_code ec;
  fs::remove_all(b.dir, ec);
}

bool run(Bench& b, int launches) {
  pump(b.io, [] { return false; }, 0.2);  // the standby starts
  for (int i = 0; i < launches; ++i) {
    for (Mode& m : b.modes) {
      if (!launch_one(b, m, m.name + "-r1.0." + std::to_string(i))) return false;
      pump(b.io, [] { return false; }, 0.1);
    }
    b.spawn_ms.push_back(spawn_true_ms());
  }
  return true;
}

void report(const Bench& b) {
  print_stats("standby executor", b.modes[0].ms);
  print_stats("executor exec'd fresh", b.modes[1].ms);
  print_stats("fork+exec /bin/true (anchor)", b.spawn_ms);
  std::printf("load average during the run: %s", stele::read_file("/proc/loadavg").value_or("?\n").c_str());
  double standby = median(b.modes[0].ms), fresh = median(b.modes[1].ms), spawn = median(b.spawn_ms);
  std::printf("target <= 5 ms (design.md): standby %.2f ms %s, fresh %.2f ms %s; "
              "vs fork+exec %.2f ms in this run: standby %.1fx, fresh %.1fx\n",
              standby, standby <= 5 ? "met" : "MISSED", fresh, fresh <= 5 ? "met" : "MISSED", spawn,
              standby / spawn, fresh / spawn);
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse_options(argc, argv);
  if (::geteuid() != 0) {
    std::printf("launch_bench: skipped: needs root (task cgroups, namespaces, running tasks as the task user)\n");
    return 0;
  }
  if (::access(o.stele.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "launch_bench: %s is not executable; build it or pass --stele PATH\n", o.stele.c_str());
    return 1;
  }
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);  // detached executors stay ours to clean up
  Bench b;
  char tmpl[] = "/tmp/stele-launch-bench-XXXXXX";
  if (!::mkdtemp(tmpl)) {
    std::perror("launch_bench: mkdtemp");
    return 1;
  }
  b.dir = tmpl;
  ::chmod(b.dir.c_str(), 0755);  // the task user reaches its sandbox
  add_mode(b, "standby", true, o.stele);
  add_mode(b, "fresh", false, o.stele);
  auto cg = stele::CgroupFs::detect().version();
  std::printf("launch() -> running, plain cmd `exit 0`, %d launches per mode, 100 ms apart; task user %s; cgroups %s; %s\n",
              o.launches, b.modes[0].config.task_user.c_str(), cg == stele::CgroupVersion::none ? "none" : "yes",
              o.stele.c_str());
  bool ok = run(b, o.launches);
  cleanup(b);
  if (ok) report(b);
  return ok ? 0 : 1;
}
