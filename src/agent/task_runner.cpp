#include "agent/task_runner.h"

#include "agent/executor_output.h"
#include "logs/spool.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "agent/cgroups.h"
#include "agent/executor_io.h"
#include "common/log.h"

extern char** environ;

namespace stele {

namespace asio = boost::asio;
using asio::local::stream_protocol;
namespace fs = std::filesystem;

namespace {

// A file the agent (not the task, which may write into its sandbox) created.
bool trusted_file(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == ::geteuid();
}

Result<TaskStatus> read_trusted_status(const std::string& dir) {
  if (!trusted_file(dir + "/" + sandbox_files::kStatus)) return fail("no trusted status.json");
  return read_status_file(dir);
}

// Kills whatever is left in the task's cgroups (the executor that owned them
// is gone) and removes them.
void kill_task_cgroup(const std::string& dir, const std::string& task_id) {
  auto text = read_file(dir + "/" + sandbox_files::kTask);
  auto j = text ? parse_json(*text) : Result<Json>(fail("no task.json"));
  if (!j || !j->is_object()) return;
  std::string parent = j->value("cgroup_parent", std::string());
  if (parent.empty()) return;
  CgroupFs cgroups = CgroupFs::detect();
  TaskCgroup cg = cgroups.locate(parent + "/" + task_id);
  cgroups.kill_all(cg);
  (void)cgroups.remove(cg);
}

}  // namespace

std::vector<std::string> sandbox_names(const std::string& executors_dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(executors_dir, ec))
    if (e.is_directory(ec) && !e.is_symlink(ec)) out.push_back(e.path().filename().string());
  return out;
}

struct TaskRunner::Connection {
  Connection(asio::io_context& io, int fd, std::string id)
      : socket(io, stream_protocol(), fd), task_id(std::move(id)) {}
  stream_protocol::socket socket;
  std::string task_id;
};

struct TaskRunner::Task {
  std::string id, dir;
  TaskStatus last;
  std::string reported_state;  // state last given to on_status ("" = none yet)
  std::shared_ptr<Connection> conn;
  std::optional<double> pending_kill;
  bool staged = false;  // sandbox created, no executor yet
};

TaskRunner::TaskRunner(asio::io_context& io, RunnerConfig config,
                       std::function<void(const TaskStatus&)> on_status)
    : io_(io), config_(std::move(config)), on_status_(std::move(on_status)) {
  std::error_code ec;
  fs::create_directories(config_.data_dir + "/executors", ec);
  if (ec) spdlog::error("task runner: cannot create {}/executors: {}", config_.data_dir, ec.message());
  ::chmod((config_.data_dir + "/executors").c_str(), 0755);
  LaunchSpec warm;
  warm.user = config_.task_user;
  fill_credentials(warm);  // the first launch need not pay for NSS either
  spawn_standby();
}

// Resolves the task user here, cached for a minute, so executors skip NSS.
// Failures are left to the executor, which reports them as the task's status.
void TaskRunner::fill_credentials(LaunchSpec& spec) {
  constexpr int64_t kTtlMs = 60'000;
  int64_t now = mono_ms();
  auto it = credentials_.find(spec.user);
  if (it == credentials_.end() || now - it->second.resolved_ms > kTtlMs) {
    auto c = resolve_task_user(spec.user);
    if (!c) return;
    it = credentials_.insert_or_assign(spec.user, CachedCredentials{*c, now}).first;
  }
  const TaskCredentials& c = it->second.creds;
  spec.user = c.user;
  spec.uid = c.uid;
  spec.gid = c.gid;
  spec.groups = c.groups;
}

TaskRunner::~TaskRunner() {
  *alive_ = false;
  if (standby_) ::close(standby_->fd);  // EOF: the standby exits
  for (auto& [id, t] : tasks_)
    if (t->conn) t->conn->socket.close();
}

std::string TaskRunner::sandbox_dir(const std::string& task_id) const {
  return config_.data_dir + "/executors/" + task_id;
}

TaskRunner::Task* TaskRunner::find(const std::string& id) {
  auto it = tasks_.find(id);
  return it == tasks_.end() ? nullptr : it->second.get();
}

void TaskRunner::post_status(TaskStatus st) {
  asio::post(io_, [this, alive = alive_, st = std::move(st)] {
    if (*alive) on_status_(st);
  });
}

void TaskRunner::fail_launch(const std::string& task_id, const std::string& reason,
                             const std::string& message) {
  spdlog::error("launch {}: {}: {}", task_id, reason, message);
  TaskStatus st;
  st.task_id = task_id;
  st.state = "failed";
  st.reason = reason;
  st.message = message;
  st.time_ms = wall_ms();
  post_status(st);
}

void TaskRunner::launch(LaunchSpec spec) {
  const std::string id = spec.task_id;
  Task* t = find(id);
  if (t && t->staged) return start(*t, std::move(spec));
  if (t) {
    // A "failed" for this id would be taken as the running task's status.
    spdlog::error("launch {}: task is already known; duplicate launch ignored", id);
    return;
  }
  if (stage(id)) start(*find(id), std::move(spec));
}

Result<std::string> TaskRunner::stage(const std::string& id) {
  if (!is_safe_task_id(id)) {
    fail_launch(id, "invalid task id", "not usable as a file name");
    return fail("invalid task id");
  }
  if (find(id)) {
    spdlog::error("stage {}: task is already known; ignored", id);
    return fail("task " + id + " is already known");
  }
  std::string dir = sandbox_dir(id);
  if (::mkdir(dir.c_str(), 0750) != 0) {
    std::string msg = errno_message("mkdir " + dir, errno);
    fail_launch(id, "sandbox unavailable", msg);
    return fail(msg);
  }
  register_staged(id, dir);
  return dir;
}

TaskRunner::Task* TaskRunner::register_staged(const std::string& id, std::string dir) {
  auto t = std::make_unique<Task>();
  t->id = id;
  t->dir = std::move(dir);
  t->staged = true;
  t->last.task_id = id;
  t->last.state = "staging";
  t->last.time_ms = wall_ms();
  t->reported_state = "staging";
  post_status(t->last);
  Task* raw = t.get();
  tasks_[id] = std::move(t);
  return raw;
}

void TaskRunner::abandon_staged(const std::string& task_id, const std::string& state,
                                const std::string& reason, const std::string& message) {
  Task* t = find(task_id);
  if (!t || !t->staged) return;
  t->staged = false;
  end_without_executor(*t, state, reason, message);
}

// A task that never got an executor ends here; status.json keeps the
// outcome for recover() should the agent restart before the ack.
void TaskRunner::end_without_executor(Task& t, const std::string& state, const std::string& reason,
                                      const std::string& message) {
  if (state == "failed") spdlog::error("launch {}: {}: {}", t.id, reason, message);
  t.pending_kill.reset();
  t.last.state = state;
  t.last.reason = reason;
  t.last.message = message;
  t.last.time_ms = wall_ms();
  t.reported_state = state;
  (void)write_status_file(t.dir, t.last);
  post_status(t.last);
}

void TaskRunner::start(Task& t, LaunchSpec spec) {
  t.staged = false;
  spec.sandbox = t.dir;
  if (spec.user.empty()) spec.user = config_.task_user;
  fill_credentials(spec);
  spec.cgroup_parent = config_.cgroup_parent;
  spec.recovery_timeout_seconds = config_.recovery_timeout_seconds;
  auto fd = start_executor(spec);
  if (!fd) return end_without_executor(t, "failed", "executor launch failed", fd.error().message);
  attach(t, *fd);
  // The next standby starts a little later: its exec and dynamic linking
  // would otherwise compete for the CPU with the task just launched (and
  // posix_spawn blocks this thread until its exec).
  auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(50));
  timer->async_wait([this, alive = alive_, timer](boost::system::error_code) {
    if (*alive && !standby_) spawn_standby();
  });
}

// An executor connected and given the spec (it writes task.json itself,
// after the launch path): the standby if there is one, else a fresh one.
Result<int> TaskRunner::start_executor(const LaunchSpec& spec) {
  std::string line = Json{{"type", "launch"}, {"spec", spec}}.dump() + "\n";
  // Blocking: a spec larger than the socket buffer (a huge env) waits for
  // the executor to read; a dead one fails at once (EPIPE).
  auto hand_over = [&](int fd) {
    for (size_t off = 0; off < line.size();) {
      ssize_t n = ::send(fd, line.data() + off, line.size() - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      off += size_t(n);
    }
    return true;
  };
  if (standby_) {
    Standby s = *standby_;
    standby_.reset();
    if (hand_over(s.fd)) return s.fd;
    spdlog::warn("standby executor {} unusable: {}", s.pid, errno_message("send", errno));
    ::close(s.fd);
  }
  int sp[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0)
    return fail(errno_message("socketpair", errno));
  auto pid = spawn_executor(sp[1]);
  ::close(sp[1]);
  if (pid) reap_later(*pid, 0);
  if (!pid || !hand_over(sp[0])) {
    ::close(sp[0]);
    return fail(pid ? errno_message("send", errno) : pid.error().message);
  }
  return sp[0];
}

void TaskRunner::spawn_standby() {
  if (config_.stele_binary.empty() || !config_.standby_executor) return;
  int sp[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) return;
  auto pid = spawn_executor(sp[1]);
  ::close(sp[1]);
  if (!pid) {
    spdlog::warn("task runner: no standby executor: {}", pid.error().message);
    ::close(sp[0]);
    return;
  }
  reap_later(*pid, 0);  // it detaches at once
  standby_ = Standby{*pid, sp[0]};
}

// posix_spawn (vfork-like: cheap even from a large agent) of
// `stele executor --agent-fd 3`, in its own session with default signal
// dispositions. The executor detaches with one more fork, so the process
// spawned here exits at once (reap_later); it then waits for its spec.
Result<int> TaskRunner::spawn_executor(int agent_fd) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_adddup2(&fa, agent_fd, 3);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::string bin = config_.stele_binary;
  std::vector<std::string> args = {bin, "executor", "--agent-fd", "3"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, bin.c_str(), &fa, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return fail(errno_message("spawn " + bin, rc));
  return pid;
}

void TaskRunner::reap_later(int pid, int attempt) {
  int r = ::waitpid(pid, nullptr, WNOHANG);
  if (r != 0 || attempt > 12) return;  // reaped, not our child, or given up (~8 s)
  auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(1 << attempt));
  timer->async_wait([this, alive = alive_, timer, pid, attempt](boost::system::error_code) {
    if (*alive) reap_later(pid, attempt + 1);
    else ::waitpid(pid, nullptr, WNOHANG);
  });
}

void TaskRunner::attach(Task& t, int fd) {
  auto c = std::make_shared<Connection>(io_, fd, t.id);
  t.conn = c;
  if (t.pending_kill) {
    send(t, {{"type", "kill"}, {"grace_seconds", *t.pending_kill}});
    t.pending_kill.reset();
  }
  asio::co_spawn(
      io_,
      [this, c, alive = alive_]() -> asio::awaitable<void> {
        asio::streambuf buf(64 * 1024);
        for (;;) {
          boost::system::error_code ec;
          size_t n = co_await asio::async_read_until(c->socket, buf, '\n',
                                                     asio::redirect_error(asio::use_awaitable, ec));
          if (!*alive) co_return;
          if (ec) {
            on_disconnect(c);
            co_return;
          }
          std::string line(asio::buffers_begin(buf.data()), asio::buffers_begin(buf.data()) + n - 1);
          buf.consume(n);
          on_line(c, line);
        }
      },
      asio::detached);
}

void TaskRunner::on_line(const std::shared_ptr<Connection>& c, const std::string& line) {
  Task* t = find(c->task_id);
  if (!t || t->conn != c) return;
  auto j = parse_json(line);
  if (!j || !j->is_object() || j->value("type", "") != "status") {
    spdlog::warn("executor {}: bad message; ignored", c->task_id);
    return;
  }
  TaskStatus st = j->get<TaskStatus>();
  st.task_id = t->id;
  t->last = st;
  if (st.state == t->reported_state) return;
  t->reported_state = st.state;
  on_status_(st);  // last: the callback may ack() and erase t
}

void TaskRunner::on_disconnect(const std::shared_ptr<Connection>& c) {
  Task* t = find(c->task_id);
  if (!t || t->conn != c) return;
  t->conn.reset();
  reattach_or_gone(t->id, 0);
}

// No connection: another client took the socket (stop_all_tasks), the
// executor died, or -- for about a millisecond after "running" -- it has not
// yet bound executor.sock (that waits until the task runs). Reconnect with
// backoff for about a second, then declare the executor gone.
void TaskRunner::reattach_or_gone(const std::string& task_id, int attempt) {
  Task* t = find(task_id);
  if (!t || t->conn) return;
  int fd = connect_executor_socket(t->dir);
  if (fd >= 0) return attach(*t, fd);
  if (attempt >= 7) return executor_gone(*t);
  auto delay = std::chrono::milliseconds(std::min(10 << attempt, 400));  // 10 ms .. 1.07 s in all
  auto timer = std::make_shared<asio::steady_timer>(io_, delay);
  timer->async_wait([this, alive = alive_, timer, task_id, attempt](boost::system::error_code) {
    if (*alive) reattach_or_gone(task_id, attempt + 1);
  });
}

// No executor behind the sandbox: its last terminal status stands; otherwise
// the task's leftovers are killed and it is reported failed.
void TaskRunner::executor_gone(Task& t) {
  auto st = read_trusted_status(t.dir);
  if (st && is_terminal_state(st->state)) {
    t.last = *st;
  } else {
    kill_task_cgroup(t.dir, t.id);
    t.last.task_id = t.id;
    t.last.state = "failed";
    t.last.reason = "executor gone";
    t.last.message = "the executor exited without a terminal status; the task's processes were killed";
    t.last.exit_code.reset();
    t.last.signal.reset();
    t.last.time_ms = wall_ms();
    (void)write_status_file(t.dir, t.last);
  }
  spdlog::warn("executor of {} is gone; task {}", t.id, t.last.state);
  t.reported_state = t.last.state;
  post_status(t.last);
}

bool TaskRunner::send(Task& t, const Json& msg) {
  if (!t.conn) return false;
  std::string line = msg.dump() + "\n";
  // Tiny messages on a local socket: a non-blocking send completes or the
  // executor is stuck; no write queue needed.
  ssize_t n = ::send(t.conn->socket.native_handle(), line.data(), line.size(),
                     MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n == static_cast<ssize_t>(line.size())) return true;
  spdlog::warn("executor {}: {}", t.id, errno_message("send", errno));
  return false;
}

void TaskRunner::kill(const std::string& task_id, double grace_seconds) {
  Task* t = find(task_id);
  if (!t || is_terminal_state(t->last.state)) return;
  if (!send(*t, {{"type", "kill"}, {"grace_seconds", grace_seconds}})) t->pending_kill = grace_seconds;
}

void TaskRunner::ack(const std::string& task_id) {
  Task* t = find(task_id);
  if (!t) return;
  if (!is_terminal_state(t->last.state)) {
    spdlog::warn("ack of {} in state {} ignored", task_id, t->last.state);
    return;
  }
  send(*t, {{"type", "ack"}});
  // Atomic replace: a file the task may have planted under that name loses.
  if (auto r = write_file_atomic(t->dir + "/" + sandbox_files::kAcked, std::to_string(wall_ms())); !r)
    spdlog::warn("ack {}: {}", task_id, r.error().message);
  if (t->conn) t->conn->socket.close();
  tasks_.erase(task_id);
}

std::vector<TaskStatus> TaskRunner::snapshot() const {
  std::vector<TaskStatus> out;
  for (const auto& [id, t] : tasks_) out.push_back(t->last);
  return out;
}

std::vector<std::string> TaskRunner::recover() {
  std::vector<std::string> ids;
  for (const auto& name : sandbox_names(config_.data_dir + "/executors")) {
    std::string dir = sandbox_dir(name);
    if (find(name) || trusted_file(dir + "/" + sandbox_files::kAcked)) continue;
    auto t = std::make_unique<Task>();
    t->id = name;
    t->dir = dir;
    auto st = read_trusted_status(dir);
    if (st) t->last = *st;
    else t->last.state = "starting";  // the executor died before its first status
    t->last.task_id = name;
    Task& ref = *t;
    tasks_[name] = std::move(t);
    ids.push_back(name);
    int fd = connect_executor_socket(dir);
    if (fd >= 0)
      attach(ref, fd);  // the executor answers with its current status
    else
      reattach_or_gone(name, 1);
  }
  if (!ids.empty()) spdlog::info("task runner: recovered {} task(s)", ids.size());
  return ids;
}

void TaskRunner::gc_sandboxes() {
  int64_t now = wall_ms();
  int64_t keep_ms = int64_t(config_.sandbox_retention_seconds * 1000);
  for (const auto& name : sandbox_names(config_.data_dir + "/executors")) {
    std::string dir = sandbox_dir(name);
    std::string marker = dir + "/" + sandbox_files::kAcked;
    if (find(name) || !trusted_file(marker)) continue;
    auto st = read_trusted_status(dir);
    int64_t ended = st ? st->time_ms : 0;
    struct stat ms;
    if (!st && ::stat(marker.c_str(), &ms) == 0) ended = int64_t(ms.st_mtime) * 1000;
    if (now - ended < keep_ms) continue;
    // Records not shipped yet (the server was away): the sandbox stays until they are.
    if (logs::SpoolReader(dir, TaskRecords::kPrefix).exists()) continue;
    std::error_code ec;
    fs::remove_all(dir, ec);  // removes symlinks, never follows them
    if (ec) spdlog::warn("gc sandbox {}: {}", dir, ec.message());
  }
}

}  // namespace stele
