// stop_all_tasks(): `stele down` working from an agent's data dir alone.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "agent/cgroups.h"
#include "agent/executor_io.h"
#include "agent/task_runner.h"
#include "common/log.h"

namespace stele {

namespace {

struct StopTarget {
  std::string id, dir;
  UniqueFd conn;        // executor socket, while we wait on it
  std::string inbuf;
  pid_t executor = -1;  // fallback when the socket is gone
  bool done = false;
};

bool line_is_terminal(const std::string& line) {
  auto j = parse_json(line);
  return j && j->is_object() && is_terminal_state(j->value("state", std::string()));
}

bool status_file_terminal(const std::string& dir) {
  auto st = read_status_file(dir);
  return st && is_terminal_state(st->state);
}

// The executor's pid from executor.pid, if that process still is the
// executor of this sandbox (pids get reused): its cwd is the sandbox.
pid_t live_executor_pid(const std::string& dir) {
  auto text = read_file(dir + "/" + sandbox_files::kPid);
  pid_t pid = text ? std::atoi(text->c_str()) : 0;
  if (pid <= 0) return -1;
  std::error_code ec;
  auto cwd = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/cwd", ec);
  if (ec || std::filesystem::weakly_canonical(dir, ec) != cwd) return -1;
  return pid;
}

// An executor binds its socket just after its task started: give a fresh
// one up to a second before falling back to its pid or cgroup.
int connect_with_patience(const std::string& dir) {
  int fd = -1;
  int64_t until = mono_ms() + 1000;
  while ((fd = connect_executor_socket(dir)) < 0 && mono_ms() < until) {
    if (live_executor_pid(dir) > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return fd;
}

void send_line(int fd, const Json& msg) {
  std::string line = msg.dump() + "\n";
  (void)::send(fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

// Reads what the executor sent; done once a terminal status arrives (then
// the ack lets the executor exit) or the connection ends.
void poll_connection(StopTarget& t) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(t.conn.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) {
      t.conn.reset();
      t.done = status_file_terminal(t.dir);
      if (!t.done) t.executor = live_executor_pid(t.dir);
      return;
    }
    t.inbuf.append(buf, static_cast<size_t>(n));
  }
  for (size_t pos; (pos = t.inbuf.find('\n')) != std::string::npos;) {
    std::string line = t.inbuf.substr(0, pos);
    t.inbuf.erase(0, pos + 1);
    if (line_is_terminal(line)) {
      send_line(t.conn.get(), {{"type", "ack"}});
      t.conn.reset();
      t.done = true;
      return;
    }
  }
}

// SIGKILLs the executor (if known) and the task's cgroup; true when any
// process was signalled.
bool kill_leftovers(const StopTarget& t) {
  bool any = t.executor > 0 && ::kill(t.executor, SIGKILL) == 0;
  auto text = read_file(t.dir + "/" + sandbox_files::kTask);
  auto j = text ? parse_json(*text) : Result<Json>(fail("no task.json"));
  std::string parent = j && j->is_object() ? j->value("cgroup_parent", std::string()) : "";
  if (parent.empty()) return any;
  CgroupFs cgroups = CgroupFs::detect();
  TaskCgroup cg = cgroups.locate(parent + "/" + t.id);
  any = cgroups.kill_all(cg) > 0 || any;
  (void)cgroups.remove(cg);
  return any;
}

std::vector<StopTarget> start_stopping(const std::string& executors, double grace, int& orphans) {
  std::vector<StopTarget> targets;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(executors, ec)) {
    if (!e.is_directory(ec) || e.is_symlink(ec)) continue;
    StopTarget t;
    t.id = e.path().filename().string();
    t.dir = e.path().string();
    if (status_file_terminal(t.dir)) continue;
    t.conn.reset(connect_with_patience(t.dir));
    if (t.conn) {
      send_line(t.conn.get(), {{"type", "kill"}, {"grace_seconds", grace}});
    } else if ((t.executor = live_executor_pid(t.dir)) > 0) {
      ::kill(t.executor, SIGTERM);  // the executor kills its task with the spec's grace
    } else {
      // No executor: nothing will report; the next agent's recover() says "executor gone".
      if (kill_leftovers(t)) ++orphans;
      continue;
    }
    targets.push_back(std::move(t));
  }
  return targets;
}

}  // namespace

int stop_all_tasks(const std::string& agent_data_dir, double grace_seconds) {
  int stopped = 0;
  auto targets = start_stopping(agent_data_dir + "/executors", grace_seconds, stopped);
  int64_t deadline = mono_ms() + int64_t(grace_seconds * 1000) + 5000;
  for (;;) {
    std::vector<pollfd> fds;
    bool pending = false;
    for (auto& t : targets) {
      if (t.done) continue;
      pending = true;
      if (!t.conn) t.done = status_file_terminal(t.dir);
      if (t.conn) fds.push_back({t.conn.get(), POLLIN, 0});
    }
    if (!pending || mono_ms() >= deadline) break;
    ::poll(fds.data(), fds.size(), 20);
    for (auto& t : targets)
      if (!t.done && t.conn) poll_connection(t);
  }
  for (auto& t : targets) {
    if (!t.done) {
      spdlog::warn("stop {}: no terminal status in time; SIGKILL", t.id);
      if (t.executor <= 0) t.executor = live_executor_pid(t.dir);
      kill_leftovers(t);
    }
    ++stopped;
  }
  return stopped;
}

}  // namespace stele
