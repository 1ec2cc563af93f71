// docker_launch_bench: the docker task launch: the agent receives the
// launch (TaskRunner::launch()) of a docker task -> the executor reports
// `running`, against `docker run -d --network host --rm IMAGE sleep 30` (the
// CLI, until it exits 0) of the same image, interleaved in the same run. Also
// timed, to show where the time goes: Engine API create+start with what
// `docker run` sends, DockerContainerizer::start() called in this process, and
// the Engine calls of that start() one by one with the same container config.
// Needs root and a Docker engine (scripts/docker-engine) with the image
// (scripts/docker-base-image); otherwise it says so and exits 0. Removes its
// containers (by id), temp dirs, cgroups and processes. Details: bench/README.md.
//
//   build/docker_launch_bench [--launches 20] [--stele build/stele] [--image stele/busybox:latest]
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agent/cgroups.h"
#include "agent/containerizers/docker.h"
#include "agent/executor_io.h"
#include "agent/task_runner.h"
#include "launch_support.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using namespace stele::bench;
using stele::TaskStatus;

constexpr const char* kSocket = "/var/run/docker.sock";  // the agent's default, and the CLI's

struct Options {
  int launches = 20;
  std::string stele;  // default: `stele` next to this binary
  std::string image = "stele/busybox:latest";
};

Options parse_options(int argc, char** argv) {
  Options o;
  o.stele = stele_next_to(argv[0]);
  bool ok = argc % 2 == 1;
  for (int i = 1; ok && i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--launches") o.launches = std::atoi(argv[i + 1]);
    else if (flag == "--stele") o.stele = argv[i + 1];
    else if (flag == "--image") o.image = argv[i + 1];
    else ok = false;
  }
  if (ok && o.launches >= 1) return o;
  std::fprintf(stderr, "usage: %s [--launches N] [--stele PATH] [--image REF]\n", argv[0]);
  std::exit(2);
}

// Steps of DockerContainerizer::start(), replayed; in its order.
const char* const kSteps[] = {"ping", "image inspect", "remove stale name", "create", "start"};

struct Bench {
  boost::asio::io_context io;
  Options opt;
  std::string dir, tag;  // temp dir; "<pid>", in task ids and cgroup paths
  stele::RunnerConfig config;
  std::unique_ptr<stele::TaskRunner> runner;
  stele::TaskCredentials user;
  std::vector<double> stele_ms, cli_ms, api_ms, direct_ms;
  std::map<std::string, std::vector<double>> step_ms;
  std::string failure;  // set: the run stops
  // The TaskRunner launch in flight (one at a time).
  std::string id;
  Clock::time_point t0;
  double running_ms = -1;
  std::optional<TaskStatus> end;
};

void on_status(Bench& b, const TaskStatus& s) {
  if (s.task_id != b.id) return;
  if (s.state == "running" && b.running_ms < 0) b.running_ms = ms_since(b.t0);
  if (stele::is_terminal_state(s.state)) b.end = s;
}

// A docker task as Agent::Impl::launch_spec() fills it for a DOCKER app
// with network HOST and cmd `sleep 30`.
stele::LaunchSpec docker_spec(const Bench& b, const std::string& id) {
  stele::LaunchSpec s;
  s.task_id = id;
  s.app_id = "/bench/docker";
  s.release = 1;
  s.cmd = "sleep 30";
  s.cpus = 0.5;
  s.mem = 64;
  s.kill_grace_seconds = 0;
  s.containerizer = "docker";
  s.docker.emplace();
  s.docker->image = b.opt.image;
  s.docker->agent_id = "docker-bench-" + b.tag;
  s.docker->socket = kSocket;
  return s;
}

std::string task_id(const Bench& b, const char* mode, int i) {
  return "dbench" + b.tag + mode + "-r1.0." + std::to_string(i);  // the pid: runs side by side never collide
}

// (a) TaskRunner::launch() -> running; then killed (grace 0) and acked.
void launch_stele(Bench& b, int i) {
  b.id = task_id(b, "t", i);
  b.running_ms = -1;
  b.end.reset();
  b.t0 = Clock::now();
  b.runner->launch(docker_spec(b, b.id));
  pump(b.io, [&] { return b.running_ms >= 0 || b.end.has_value(); }, 60);
  if (b.running_ms >= 0) b.runner->kill(b.id, 0);
  pump(b.io, [&] { return b.end.has_value(); }, 60);
  if (b.running_ms < 0 || !b.end || b.end->state != "killed") {
    b.failure = b.id + ": " + (b.end ? b.end->state + " " + b.end->reason + " " + b.end->message : "no end in 60 s");
    return;
  }
  b.runner->ack(b.id);
  b.stele_ms.push_back(b.running_ms);
}

// Runs `args` (PATH lookup), stdout collected; false unless it exited 0.
bool run_cli(const std::vector<std::string>& args, std::string& out) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return false;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(p[1]);
  char buf[4096];
  for (ssize_t n; rc == 0 && (n = ::read(p[0], buf, sizeof buf)) != 0;)
    if (n > 0) out.append(buf, size_t(n));
    else if (errno != EINTR) break;
  ::close(p[0]);
  int status = -1;
  if (rc == 0) ::waitpid(pid, &status, 0);
  while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back()))) out.pop_back();
  return rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// (b) `docker run -d` until it exits 0; then `docker rm -f <the id it printed>`.
void launch_cli(Bench& b) {
  std::string id, ignored;
  auto t0 = Clock::now();
  bool ok = run_cli({"docker", "run", "-d", "--network", "host", "--rm", b.opt.image, "sleep", "30"}, id);
  double ms = ms_since(t0);
  if (!id.empty()) (void)run_cli({"docker", "rm", "-f", id}, ignored);
  if (!ok) b.failure = "docker run failed (output: " + id + ")";
  else b.cli_ms.push_back(ms);
}

// (c) Engine API: what `docker run -d` sends (create, start), minus the CLI.
void launch_api(Bench& b) {
  stele::docker::Engine engine;
  stele::docker::ContainerConfig c;
  c.image = b.opt.image;
  c.cmd = {"sleep", "30"};
  auto t0 = Clock::now();
  auto id = engine.create(c);
  stele::Result<void> started = id ? engine.start(*id) : stele::fail(id.error());
  double ms = ms_since(t0);
  if (id) (void)engine.remove(*id, true);
  if (!started) b.failure = "Engine API: " + started.error().message;
  else b.api_ms.push_back(ms);
}

// The TaskLaunch the executor hands its containerizer, for `spec`.
stele::TaskLaunch task_launch(const Bench& b, const stele::LaunchSpec& spec, int null_fd) {
  stele::TaskLaunch l;
  l.spec = &spec;
  for (const auto& [k, v] : stele::task_environment(spec)) l.env.push_back(k + "=" + v);
  l.user = b.user.user;
  l.uid = b.user.uid;
  l.gid = b.user.gid;
  l.stdout_fd = l.stderr_fd = null_fd;
  return l;
}

// A spec with its sandbox made, and its cgroup as the executor makes it.
stele::LaunchSpec prepared_spec(const Bench& b, const std::string& id, const char* parent) {
  stele::LaunchSpec spec = docker_spec(b, id);
  spec.sandbox = b.dir + "/sandboxes/" + id;
  fs::create_directories(spec.sandbox);
  spec.cgroup_parent = "stele-bench/" + b.tag + "-" + parent;
  (void)stele::CgroupFs::detect().create(spec.cgroup_parent + "/" + id, {spec.cpus, spec.mem, 4096});
  return spec;
}

// (d) DockerContainerizer::start() in this process: no TaskRunner, no executor.
void launch_direct(Bench& b, int i) {
  stele::LaunchSpec spec = prepared_spec(b, task_id(b, "d", i), "direct");
  stele::UniqueFd null_fd(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  stele::DockerContainerizer dc;
  auto t0 = Clock::now();
  auto started = dc.start(task_launch(b, spec, null_fd.get()));
  double ms = ms_since(t0);
  if (!started) {
    b.failure = "DockerContainerizer::start: " + started.error().message;
    return;
  }
  dc.signal(*started, SIGKILL);
  int status = 0;
  ::waitpid(started->pid, &status, 0);  // the watcher: the container stopped
  (void)dc.collect(*started, status);   // removes the container
  b.direct_ms.push_back(ms);
}

// (e) The Engine calls of DockerContainerizer::start(), one by one, each on a
// fresh Engine as there, with the config it sends.
void replay_steps(Bench& b, int i) {
  stele::LaunchSpec spec = prepared_spec(b, task_id(b, "s", i), "steps");
  stele::docker::ContainerConfig config =
      stele::container_config(task_launch(b, spec, -1), std::to_string(b.user.uid) + ":" + std::to_string(b.user.gid));
  stele::docker::Engine engine;
  std::string id;
  std::vector<std::function<bool()>> calls = {
      [&] { return bool(engine.available()); },
      [&] { return bool(engine.image_exists(spec.docker->image)); },
      [&] { (void)engine.remove(config.name, true); return true; },
      [&] { auto r = engine.create(config); if (r) id = *r; return bool(r); },
      [&] { return bool(engine.start(id)); },
  };
  for (size_t s = 0; s < calls.size() && b.failure.empty(); ++s) {
    auto t0 = Clock::now();
    if (!calls[s]()) b.failure = std::string("replayed start(): ") + kSteps[s] + " failed";
    b.step_ms[kSteps[s]].push_back(ms_since(t0));
  }
  if (!id.empty()) (void)engine.remove(id, true);
}

// Stele's containers of this run still there (a failed run), by the
// stele.agent label they carry; the peers' are removed by id right away.
void remove_containers(const Bench& b) {
  stele::docker::Engine engine;
  if (auto mine = stele::agent_containers(engine, "docker-bench-" + b.tag))
    (void)stele::remove_containers(engine, *mine);
}

// Removes stele-bench/<tag>-* in every hierarchy (Docker makes the parent in
// the ones the executor does not manage), deepest first, after SIGKILLing
// what is left in them.
void remove_cgroups(const Bench& b) {
  std::error_code ec;
  std::vector<fs::path> roots = {"/sys/fs/cgroup"};
  for (const auto& h : fs::directory_iterator("/sys/fs/cgroup", ec))
    if (h.is_directory() && !h.is_symlink()) roots.push_back(h.path());
  for (const auto& root : roots) {
    std::vector<fs::path> dirs;
    for (const char* mode : {"-docker", "-direct", "-steps"}) {
      fs::path top = root / "stele-bench" / (b.tag + mode);
      if (!fs::is_directory(top, ec)) continue;
      dirs.push_back(top);
      for (fs::recursive_directory_iterator it(top, ec), end; !ec && it != end; it.increment(ec))
        if (it->is_directory(ec)) dirs.push_back(it->path());
    }
    std::sort(dirs.begin(), dirs.end(), [](const fs::path& x, const fs::path& y) { return x.native().size() > y.native().size(); });
    for (const auto& d : dirs) {
      for (int attempt = 0; attempt < 50 && ::rmdir(d.c_str()) != 0 && errno == EBUSY; ++attempt) {
        std::istringstream procs(stele::read_file((d / "cgroup.procs").string()).value_or(""));
        for (pid_t p; procs >> p;) ::kill(p, SIGKILL);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    ::rmdir((root / "stele-bench").c_str());  // when empty
  }
}

void cleanup(Bench& b) {
  b.runner.reset();  // closes the standby's socket: it exits
  stop_children();
  remove_containers(b);
  remove_cgroups(b);
  std::error_code ec;
  fs::remove_all(b.dir, ec);
}

// Round i: every mode once, the order rotating so none always follows another.
bool run(Bench& b) {
  std::vector<std::function<void(int)>> modes = {
      [&](int i) { launch_stele(b, i); }, [&](int) { launch_cli(b); }, [&](int) { launch_api(b); },
      [&](int i) { launch_direct(b, i); }, [&](int i) { replay_steps(b, i); }};
  pump(b.io, [] { return false; }, 0.2);  // the standby starts
  for (int i = 0; i < b.opt.launches; ++i) {
    for (size_t k = 0; k < modes.size() && b.failure.empty(); ++k) {
      modes[(i + k) % modes.size()](i);
      pump(b.io, [] { return false; }, 0.1);  // the standby is replaced; the engine settles
    }
    if (!b.failure.empty()) return false;
  }
  return true;
}

void report(const Bench& b) {
  print_stats("stele: launch() -> running", b.stele_ms, 40, 1);
  print_stats("docker run -d --network host --rm (CLI)", b.cli_ms, 40, 1);
  print_stats("Engine API create+start (docker run's)", b.api_ms, 40, 1);
  print_stats("DockerContainerizer::start() in-process", b.direct_ms, 40, 1);
  std::printf("  start()'s Engine calls replayed, medians:");
  double sum = 0;
  for (const char* s : kSteps) {
    double m = median(b.step_ms.at(s));
    sum += m;
    std::printf(" %s %.1f,", s, m);
  }
  std::printf(" sum %.1f ms\n", sum);
  std::printf("load average during the run: %s", stele::read_file("/proc/loadavg").value_or("?\n").c_str());
  double stele = median(b.stele_ms), cli = median(b.cli_ms);
  std::printf("target <= 1.1x docker run (issue): stele %.1f ms / docker run %.1f ms = %.2fx %s; "
              "stele - Engine create+start = %.1f ms\n",
              stele, cli, stele / cli, stele / cli <= 1.1 ? "met" : "MISSED", stele - median(b.api_ms));
}

// Why this machine cannot run the bench, or "".
std::string skip_reason(const Options& o) {
  if (::geteuid() != 0) return "needs root (task cgroups, the executor, the Docker socket)";
  stele::docker::Engine engine;
  if (auto ok = engine.available(); !ok)
    return "no Docker engine answers on " + std::string(kSocket) + " (" + ok.error().message + "); start one with scripts/docker-engine";
  auto image = engine.image_exists(o.image);
  if (!image || !*image) return "image " + o.image + " is missing; make it with scripts/docker-base-image";
  std::string out;
  if (!run_cli({"docker", "version", "--format", "{{.Client.Version}}"}, out)) return "no working docker CLI on PATH";
  return "";
}

std::string engine_version() {
  auto v = stele::docker::Engine().version();
  return v && v->contains("Version") && (*v)["Version"].is_string() ? (*v)["Version"].get<std::string>() : "?";
}

}  // namespace

int main(int argc, char** argv) {
  Bench b;
  b.opt = parse_options(argc, argv);
  if (std::string why = skip_reason(b.opt); !why.empty()) {
    std::printf("docker_launch_bench: skipped: %s\n", why.c_str());
    return 0;
  }
  if (::access(b.opt.stele.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "docker_launch_bench: %s is not executable; build it or pass --stele PATH\n", b.opt.stele.c_str());
    return 1;
  }
  auto user = stele::resolve_task_user("");
  if (!user) {
    std::fprintf(stderr, "docker_launch_bench: %s\n", user.error().message.c_str());
    return 1;
  }
  b.user = *user;
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);  // detached executors stay ours to clean up
  char tmpl[] = "/tmp/stele-docker-bench-XXXXXX";
  if (!::mkdtemp(tmpl)) {
    std::perror("docker_launch_bench: mkdtemp");
    return 1;
  }
  b.dir = tmpl;
  ::chmod(b.dir.c_str(), 0755);  // the task user reaches its sandbox
  b.tag = std::to_string(::getpid());
  b.config.data_dir = b.dir + "/agent";
  b.config.stele_binary = b.opt.stele;
  b.config.task_user = b.user.user;
  b.config.cgroup_parent = "stele-bench/" + b.tag + "-docker";
  b.config.standby_executor = true;  // the agent's default
  b.runner = std::make_unique<stele::TaskRunner>(b.io, b.config, [&b](const TaskStatus& s) { on_status(b, s); });
  std::string cli_version;
  (void)run_cli({"docker", "version", "--format", "{{.Client.Version}}"}, cli_version);
  std::printf("docker task launch -> running, `sleep 30` in %s (host network), %d launches per mode, interleaved, "
              "100 ms apart; engine %s, docker CLI %s; task user %s; %s\n",
              b.opt.image.c_str(), b.opt.launches, engine_version().c_str(), cli_version.c_str(), b.user.user.c_str(),
              b.opt.stele.c_str());
  bool ok = run(b);
  cleanup(b);
  if (!ok) {
    std::fprintf(stderr, "docker_launch_bench: %s\n", b.failure.c_str());
    return 1;
  }
  report(b);
  return 0;
}
