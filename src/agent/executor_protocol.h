// The executor <-> agent protocol: newline-delimited JSON over the unix
// socket <sandbox>/executor.sock (or the socketpair inherited at launch).
//
// executor -> agent, on connect and on every transition:
//   {"type":"status","task_id","state","pid","started_ms","exit_code"?,
//    "signal"?,"reason","message","time_ms"}
//   state: "starting" | "running" | "finished" | "failed" | "killed"
//   pid: host pid of the task's root process (the namespace init when the
//   task has its own pid namespace; nsenter -t works on it).
//   (TaskRunner adds "staging" before the executor exists and reports
//    "failed" with reason "executor gone" for a vanished executor).
// agent -> executor:
//   {"type":"launch","spec":LaunchSpec} first line, to an executor started
//                                       with --agent-fd and no --sandbox
//   {"type":"kill","grace_seconds":N}   SIGTERM now, SIGKILL after N seconds
//   {"type":"ack"}                      terminal status delivered; executor exits
// At most one agent connection: a new one replaces the old.
//
// The sandbox also holds, for readers without a connection:
//   task.json (LaunchSpec), status.json (last status, replaced atomically on
//   every transition: before the terminal status is sent, just after
//   "running" is -- off the launch path),
//   executor.pid, executor.log, stdout, stderr (+ .1 after rotation), and
//   "acked" (written by TaskRunner once the terminal status was delivered).
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "common/json.h"
#include "common/result.h"

namespace stele {

struct TaskStatus {
  std::string task_id, state;
  int pid = 0;
  std::optional<int> exit_code, signal;
  std::string reason, message;
  int64_t time_ms = 0;
  int64_t started_ms = 0;
};

void to_json(Json& j, const TaskStatus& s);    // adds "type":"status"
void from_json(const Json& j, TaskStatus& s);  // lenient: missing fields default

// finished, failed, killed, lost.
bool is_terminal_state(const std::string& state);

namespace sandbox_files {
inline constexpr const char* kTask = "task.json";
inline constexpr const char* kStatus = "status.json";
inline constexpr const char* kPid = "executor.pid";
inline constexpr const char* kSocket = "executor.sock";
inline constexpr const char* kLog = "executor.log";
inline constexpr const char* kAcked = "acked";
inline constexpr const char* kStdout = "stdout";
inline constexpr const char* kStderr = "stderr";
}  // namespace sandbox_files

// <dir>/status.json, or an error when absent or unparsable.
Result<TaskStatus> read_status_file(const std::string& dir);
Result<void> write_status_file(const std::string& dir, const TaskStatus& s);

// Connects a non-blocking unix stream socket to <dir>/executor.sock (never
// waits: a missing socket, a dead executor or a full backlog fail at once).
// Paths longer than sun_path are reached through
// /proc/self/fd/<dirfd>/executor.sock. Returns the fd (O_CLOEXEC) or -1 with
// errno set.
int connect_executor_socket(const std::string& dir);

}  // namespace stele
