#include "agent/containerizers/docker.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include <fmt/format.h>

#include "agent/cgroups.h"

namespace stele {

namespace {

constexpr const char* kSandboxMount = "/mnt/mesos/sandbox";  // where Mesos' docker containerizer puts it
constexpr int kWatcherFailed = 125;                           // docker run's own "the daemon failed" code
constexpr auto kPullTimeout = std::chrono::minutes(10);

std::string split_key(const std::string& kv) { return kv.substr(0, kv.find('=')); }

// The task's environment as the container sees it: the sandbox at its
// mount point, and the image's own PATH unless the spec sets one.
std::vector<std::string> container_env(const TaskLaunch& l) {
  const LaunchSpec& s = *l.spec;
  std::vector<std::string> env;
  for (const auto& kv : l.env) {
    std::string key = split_key(kv);
    if (key == "PATH" && !s.env.count("PATH")) continue;
    if ((key == "MESOS_SANDBOX" || key == "HOME") && kv == key + "=" + s.sandbox) env.push_back(key + "=" + kSandboxMount);
    else env.push_back(kv);
  }
  return env;
}

// In the executor's child that stands for a container or a build: its
// output on the task's pipes, nothing else inherited, gone with the executor.
void become_child(const char* name, int out_fd, int err_fd) {
  ::prctl(PR_SET_NAME, name, 0, 0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);  // the executor owns the container; gone: the agent sweeps it
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0) _exit(kWatcherFailed);
  ::close_range(3, ~0U, 0);
}

// The watcher: the executor's child standing for the container (see docker.h).
[[noreturn]] void watch(const docker::EngineOptions& o, const std::string& id, int out_fd, int err_fd) {
  become_child("stele-docker", out_fd, err_fd);
  docker::Engine engine(o);
  docker::LogsOptions lo;
  lo.follow = true;
  auto logs = engine.logs(id, lo, [](docker::StreamKind k, std::string_view data) {
    (void)write_all(k == docker::StreamKind::kStdout ? 1 : 2, data);
    return true;
  });
  if (!logs) (void)write_all(2, "stele: container output lost: " + logs.error().message + "\n");
  auto code = engine.wait(id, docker::kNoDeadline);
  if (!code) {
    (void)write_all(2, "stele: " + code.error().message + "\n");
    _exit(kWatcherFailed);
  }
  _exit(*code & 0xff);
}

// The builder: the executor's child standing for a Dockerfile build (see
// docker.h). Exits 0 once the image is built and saved to the sandbox.
[[noreturn]] void build(const docker::EngineOptions& o, const docker::BuildOptions& b, const std::string& sandbox,
                        int out_fd) {
  become_child("stele-build", out_fd, out_fd);  // a step's output is one stream
  auto say = [](const std::string& line) { (void)write_all(1, line + "\n"); };
  docker::Engine engine(o);
  auto id = engine.build(b, [](std::string_view line) { (void)write_all(1, std::string(line) + "\n"); });
  if (!id) {
    say("stele: " + id.error().message);
    _exit(1);
  }
  say(fmt::format("Built image {} ({}); saving it for the artifact store", b.tag, *id));
  // Saved by tag, so `docker load` on another agent restores the tag too.
  std::string tar = sandbox + "/" + kBuiltImageTar;
  if (auto saved = engine.save(b.tag, tar, docker::kNoDeadline); !saved) {
    say("stele: " + saved.error().message);
    _exit(1);
  }
  if (auto w = write_file_atomic(sandbox + "/" + kBuiltImageId, *id); !w) {
    say("stele: " + w.error().message);
    _exit(1);
  }
  _exit(0);
}

// Removes what Docker created for the container around the task's cgroup in
// hierarchies the executor does not manage (cpuset, blkio, ...).
void remove_cgroup_dirs(const std::string& relpath) {
  if (relpath.empty()) return;
  std::error_code ec;
  for (const auto& h : std::filesystem::directory_iterator("/sys/fs/cgroup", ec))
    ::rmdir((h.path().string() + "/" + relpath).c_str());  // busy or missing: left alone
}

}  // namespace

std::string container_user(const TaskLaunch& l, std::string* warning) {
  const DockerLaunch& d = *l.spec->docker;
  std::string task_user = fmt::format("{}:{}", l.uid, l.gid);
  if (d.user.empty()) return task_user;
  if (warning)
    *warning = fmt::format("the spec's docker parameters name user '{}': the container runs as it, not as the task user {} ({})",
                           d.user, l.user, task_user);
  return d.user;
}

docker::ContainerConfig container_config(const TaskLaunch& l, const std::string& user) {
  const LaunchSpec& s = *l.spec;
  const DockerLaunch& d = *s.docker;
  docker::ContainerConfig c;
  c.name = container_name(s.task_id);
  c.image = d.image;
  if (s.cmd) c.shell_cmd = *s.cmd;  // Marathon: cmd runs with /bin/sh -c inside the image
  else c.cmd = s.args;              // args: handed to the image's entrypoint
  c.env = container_env(l);
  c.labels = d.labels;
  c.labels[kLabelApp] = s.app_id;
  c.labels[kLabelTask] = s.task_id;
  c.labels[kLabelRelease] = std::to_string(s.release);
  c.labels[kLabelAgent] = d.agent_id;
  c.user = user;
  c.working_dir = d.working_dir;
  if (s.mem > 0) c.memory_bytes = cgroup_memory_bytes(s.mem);
  c.cpu_shares = cgroup_cpu_shares(s.cpus);
  c.cpu_period_us = 100000;
  c.cpu_quota_us = cgroup_cpu_quota_us(s.cpus, c.cpu_period_us);
  c.binds = d.binds;
  c.binds.push_back(s.sandbox + ":" + kSandboxMount);
  if (!s.cgroup_parent.empty()) c.cgroup_parent = "/" + s.cgroup_parent + "/" + s.task_id;
  c.stop_timeout_s = static_cast<int>(std::ceil(s.kill_grace_seconds));
  return c;
}

Result<void> DockerContainerizer::ensure_image(const docker::Engine& engine, const DockerLaunch& d,
                                               std::string& warning) const {
  auto exists = engine.image_exists(d.image);
  if (!exists) return fail(exists.error());
  if (d.force_pull) {
    auto pulled = engine.pull(d.image, docker::deadline_in(kPullTimeout));
    if (pulled) return {};
    if (!*exists) return fail("image " + d.image + " could not be pulled: " + pulled.error().message);
    warning = "forcePullImage: " + pulled.error().message + "; running the engine's local " + d.image;
    return {};
  }
  if (!*exists)
    return fail("image " + d.image + " is not present on this agent's Docker engine (set forcePullImage to pull it)");
  return {};
}

docker::BuildOptions build_options(const LaunchSpec& s) {
  docker::BuildOptions b;
  b.context_dir = s.work_dir.value_or(s.sandbox + "/app");
  b.dockerfile = s.docker->dockerfile;
  b.tag = s.docker->image;
  if (s.mem > 0) b.memory_bytes = cgroup_memory_bytes(s.mem);
  b.cpu_shares = cgroup_cpu_shares(s.cpus);
  b.labels = {{kLabelApp, s.app_id}, {kLabelRelease, std::to_string(s.release)}};
  b.scratch_dir = s.sandbox;
  return b;
}

Result<StartedTask> DockerContainerizer::start(const TaskLaunch& l) {
  const LaunchSpec& s = *l.spec;
  if (!s.docker) return fail("a docker task needs a docker image");
  engine_options_.socket_path = s.docker->socket;
  docker::Engine engine(engine_options_);
  if (auto ok = engine.available(); !ok) return fail("Docker engine unavailable: " + ok.error().message);
  StartedTask t;
  if (!s.docker->dockerfile.empty()) {  // a build: no container of its own
    docker::BuildOptions b = build_options(s);
    pid_t pid = ::fork();
    if (pid < 0) return fail(errno_message("fork (image builder)", errno));
    if (pid == 0) build(engine_options_, b, s.sandbox, l.stdout_fd);
    t.pid = pid;
    return t;
  }
  if (auto ok = ensure_image(engine, *s.docker, t.warning); !ok) return fail(ok.error());
  std::string user_warning;
  docker::ContainerConfig config = container_config(l, container_user(l, &user_warning));
  if (!user_warning.empty()) t.warning += (t.warning.empty() ? "" : "; ") + user_warning;
  (void)engine.remove(config.name, true);  // left by an executor that died while starting this task
  auto id = engine.create(config);
  if (!id) return fail(id.error());
  if (!s.cgroup_parent.empty()) cgroup_relpath_ = s.cgroup_parent + "/" + s.task_id;
  if (auto ok = engine.start(*id); !ok) {
    remove_container(*id);
    return fail(ok.error());
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    remove_container(*id);
    return fail(errno_message("fork (container watcher)", errno));
  }
  if (pid == 0) watch(engine_options_, *id, l.stdout_fd, l.stderr_fd);
  t.pid = pid;
  t.container_id = *id;
  return t;
}

void DockerContainerizer::signal(const StartedTask& t, int sig) {
  // A build's builder ends its request, which cancels the build.
  if (t.container_id.empty()) {
    if (t.pid > 0) ::kill(t.pid, sig);
    return;
  }
  // Stopped already (409) or gone (404): the watcher reports the end.
  (void)docker::Engine(engine_options_).kill(t.container_id, sig);
}

TaskExit DockerContainerizer::collect(StartedTask& t, int wait_status) {
  TaskExit out;
  if (t.container_id.empty()) {  // a build
    if (WIFEXITED(wait_status)) out.exit_code = WEXITSTATUS(wait_status);
    else if (WIFSIGNALED(wait_status)) out.signal = WTERMSIG(wait_status);
    return out;
  }
  auto info = docker::Engine(engine_options_).inspect(t.container_id);
  if (info && !info->running) {  // the engine's account, even when the watcher failed
    out.exit_code = info->exit_code;
    out.oom_killed = info->oom_killed;
  } else if (WIFEXITED(wait_status)) {
    out.exit_code = WEXITSTATUS(wait_status);
  } else if (WIFSIGNALED(wait_status)) {
    out.signal = WTERMSIG(wait_status);
  }
  remove_container(t.container_id);  // force: one the watcher lost is killed here
  return out;
}

void DockerContainerizer::remove_container(const std::string& id) {
  (void)docker::Engine(engine_options_).remove(id, true);
  remove_cgroup_dirs(cgroup_relpath_);
}

std::vector<docker::ContainerSummary> orphan_containers(const std::vector<docker::ContainerSummary>& containers,
                                                        const std::string& agent_id,
                                                        const std::set<std::string>& known_tasks) {
  std::vector<docker::ContainerSummary> out;
  for (const auto& c : containers) {
    auto agent = c.labels.find(kLabelAgent);
    auto task = c.labels.find(kLabelTask);
    if (agent == c.labels.end() || agent->second != agent_id || agent_id.empty()) continue;
    if (task != c.labels.end() && known_tasks.count(task->second)) continue;
    out.push_back(c);
  }
  return out;
}

Result<std::vector<docker::ContainerSummary>> agent_containers(const docker::Engine& engine,
                                                               const std::string& agent_id) {
  return engine.list({std::string(kLabelAgent) + "=" + agent_id});
}

std::vector<std::string> remove_containers(const docker::Engine& engine,
                                           const std::vector<docker::ContainerSummary>& containers) {
  std::vector<std::string> removed;
  for (const auto& c : containers) {
    if (!engine.remove(c.id, true)) continue;
    auto task = c.labels.find(kLabelTask);
    removed.push_back(task == c.labels.end() ? c.id : task->second);
  }
  return removed;
}

}  // namespace stele
