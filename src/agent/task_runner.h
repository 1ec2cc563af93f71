// TaskRunner: the agent-side owner of executors. One `stele executor` per
// task, each in <data_dir>/executors/<task_id>; executors outlive the agent
// and a new TaskRunner re-attaches to them with recover().
//
// Threading: every method must be called on the io_context's thread, and
// on_status is always invoked there -- posted, never re-entrantly from
// inside a TaskRunner method. Destroying the runner closes its connections
// but leaves the executors and their tasks running.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <utility>  // before Asio with g++ 12
#include <boost/asio/io_context.hpp>

#include "agent/executor_protocol.h"
#include "agent/launch_spec.h"

namespace stele {

struct RunnerConfig {
  std::string data_dir;          // agent data dir; sandboxes under data_dir/executors/<task_id>
  std::string stele_binary;      // path of the stele executable (/proc/self/exe)
  std::string task_user;         // used when a LaunchSpec names no user
  std::string cgroup_parent;     // "stele/<agent-id>"; overrides the spec's
  double recovery_timeout_seconds = 0;  // executors' wait for an agent (0 = unbounded); overrides the spec's
  double sandbox_retention_seconds = 3600;
  bool standby_executor = true;  // keep one executor started ahead of the next launch
};

class TaskRunner {
 public:
  TaskRunner(boost::asio::io_context& io, RunnerConfig config,
             std::function<void(const TaskStatus&)> on_status);
  ~TaskRunner();
  TaskRunner(const TaskRunner&) = delete;
  TaskRunner& operator=(const TaskRunner&) = delete;

  // Creates the sandbox and hands the spec to the standby executor (or to a
  // freshly started `stele executor`), connected through an inherited
  // socketpair; the executor writes task.json. Reports "staging" first, then
  // the executor's statuses ("starting", "running", terminal). An unsafe
  // task id, an existing sandbox or a failed spawn is reported as "failed"
  // with the reason; the launch of an id already known is ignored (logged).
  void launch(LaunchSpec spec);
  // Creates the sandbox of a task and reports "staging" ahead of launch(),
  // so the caller can fill it first (an unpacked slug in <sandbox>/app).
  // Returns the sandbox path; errors are reported as for launch() ("failed"
  // with the reason) and returned. launch() of a staged id then uses the
  // sandbox as it is; kill() of a staged task is held until its launch.
  Result<std::string> stage(const std::string& task_id);
  // Ends a staged task that will not be launched: reports `state` (terminal)
  // with the reason and message, and keeps it in status.json so an agent
  // restarted before the ack reports it too. Ignored unless staged.
  void abandon_staged(const std::string& task_id, const std::string& state, const std::string& reason,
                      const std::string& message);
  // Asks the executor to SIGTERM the task and SIGKILL it after grace_seconds.
  // Unknown or terminal tasks: no-op. Not connected: sent on re-attach.
  void kill(const std::string& task_id, double grace_seconds);
  // At agent start: re-attaches to every sandbox under data_dir/executors
  // that is not acked and returns their task ids. Each reports its current
  // status; a sandbox whose executor is gone reports its terminal
  // status.json, or -- after its cgroup's processes are killed -- "failed"
  // with reason "executor gone".
  std::vector<std::string> recover();
  // The terminal status reached the server: tells the executor (which then
  // exits), marks the sandbox acked and forgets the task. Ignored for
  // unknown or non-terminal tasks.
  void ack(const std::string& task_id);
  // Latest status of every known (not yet acked) task.
  std::vector<TaskStatus> snapshot() const;
  // Removes acked sandboxes whose task ended more than
  // sandbox_retention_seconds ago and whose records were all shipped.
  void gc_sandboxes();

  std::string sandbox_dir(const std::string& task_id) const;

 private:
  struct Task;
  struct Connection;

  Task* find(const std::string& id);
  void post_status(TaskStatus st);
  void fail_launch(const std::string& task_id, const std::string& reason, const std::string& message);
  Task* register_staged(const std::string& id, std::string dir);
  void start(Task& t, LaunchSpec spec);
  void end_without_executor(Task& t, const std::string& state, const std::string& reason,
                            const std::string& message);
  Result<int> spawn_executor(int agent_fd);
  Result<int> start_executor(const LaunchSpec& spec);
  void spawn_standby();
  void attach(Task& t, int fd);
  void on_line(const std::shared_ptr<Connection>& c, const std::string& line);
  void on_disconnect(const std::shared_ptr<Connection>& c);
  void reattach_or_gone(const std::string& task_id, int attempt);
  void executor_gone(Task& t);
  bool send(Task& t, const Json& msg);
  void reap_later(int pid, int attempt);
  void fill_credentials(LaunchSpec& spec);

  boost::asio::io_context& io_;
  RunnerConfig config_;
  std::function<void(const TaskStatus&)> on_status_;
  std::map<std::string, std::unique_ptr<Task>> tasks_;
  struct CachedCredentials {
    TaskCredentials creds;
    int64_t resolved_ms;
  };
  std::map<std::string, CachedCredentials> credentials_;  // by user name
  // One executor started ahead of need, waiting for a spec, so a launch
  // skips exec and dynamic linking; replenished after each launch.
  struct Standby {
    int pid = -1;
    int fd = -1;  // our end of its socketpair
  };
  std::optional<Standby> standby_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// The sandbox directories (task ids) under <agent data>/executors; symlinks
// are skipped. Blocking (a directory scan).
std::vector<std::string> sandbox_names(const std::string& executors_dir);

// Stops every task under an agent data dir without an agent (`stele down`):
// asks each executor over its socket to kill its task with `grace_seconds`
// (or SIGTERMs the executor by pid when its socket is gone), waits for the
// terminal statuses up to the grace plus a margin, then SIGKILLs what is
// left (executor and the task's cgroup). Executors are acked so they exit;
// their status.json stays for the next agent. Blocking; returns the number
// of tasks stopped.
int stop_all_tasks(const std::string& agent_data_dir, double grace_seconds);

}  // namespace stele
