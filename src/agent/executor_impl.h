// Internal: the executor's state machine (see executor.h for the contract).
// executor.cpp sets up the sandbox and starts the task; executor_loop.cpp
// runs the poll loop, the agent connection, kills and the terminal status.
#pragma once
#include <memory>
#include <optional>
#include <string>

#include "agent/cgroups.h"
#include "agent/containerizers/registry.h"
#include "agent/executor.h"
#include "agent/executor_io.h"
#include "agent/executor_output.h"
#include "agent/executor_protocol.h"
#include "agent/launch_spec.h"

namespace stele {

// Timestamped line in DIR/executor.log (held in memory until the log is
// opened after the launch path).
void executor_log(const char* level, const std::string& msg);

class Executor {
 public:
  explicit Executor(ExecutorOptions o);
  int run();

 private:
  // executor.cpp: setup
  void release_inherited_fds();
  void detach();
  bool await_launch();
  void after_launch(bool from_agent);
  void write_pid_file();
  void setup_signals();
  void listen_socket();
  bool load_spec();
  void start_task();
  Result<void> resolve_user(TaskLaunch& l);
  Result<void> setup_cgroup(TaskLaunch& l, std::vector<UniqueFd>& keep_open);
  void fail_before_start(const std::string& reason, const std::string& message);
  void cleanup_cgroup();

  // executor_loop.cpp: running
  void loop();
  int poll_timeout(int64_t now) const;
  void on_signals();
  void reap();
  void on_task_exit();
  void accept_agent();
  void attach_agent(UniqueFd fd);
  void read_agent();
  void handle_buffered_lines();
  void detach_agent();
  void handle_line(const std::string& line);
  void read_output(int i);
  void request_kill(double grace_seconds, const std::string& reason);
  void kill_now();
  void check_timers(int64_t now);
  void maybe_finalize(int64_t now);
  void finalize();
  void publish();
  void on_terminal();
  void send_status();

  ExecutorOptions opt_;
  LaunchSpec spec_;
  TaskStatus status_;
  ContainerizerRegistry containerizers_ = builtin_containerizers();
  std::unique_ptr<Containerizer> containerizer_;  // chosen by start_task() from the spec
  StartedTask task_;
  bool started_ = false, exited_ = false, terminal_ = false;
  int wait_status_ = 0;
  std::string exec_error_;
  CgroupFs cgroups_{"/sys/fs/cgroup", CgroupVersion::none};
  std::optional<TaskCgroup> cgroup_;

  UniqueFd listen_, agent_, sigfd_;
  std::string inbuf_;
  struct Output {
    UniqueFd fd;
    std::unique_ptr<OutputSink> sink;
  } out_[2];
  std::unique_ptr<TaskRecords> records_;  // the sinks of out_ write into it
  int64_t partial_flush_at_ = -1;         // a partial line is emitted after kPartialLineMs

  bool kill_requested_ = false, sigkill_sent_ = false, recovery_expired_ = false, acked_ = false;
  std::string kill_reason_;
  // Monotonic deadlines in ms; -1 = not armed.
  int64_t kill_at_ = -1, recovery_at_ = -1, drain_until_ = -1, exit_at_ = -1;
  bool done_ = false;
};

}  // namespace stele
