// `stele executor`: one process per task. It owns the task's process tree,
// cgroups and output pipes, reports statuses to the connected agent
// (protocol: executor_protocol.h) and outlives agent restarts.
//
// Started by TaskRunner as `stele executor --agent-fd 3` -- usually ahead of
// need, so exec and dynamic linking are off the launch path -- it detaches
// (setsid + fork, so init adopts it; fds 0-2 on /dev/null) and waits on the
// inherited socket for {"type":"launch","spec":LaunchSpec} (EOF: it exits).
// `stele executor --sandbox DIR` reads DIR/task.json instead.
//
// On the launch path it touches only what the task needs (sandbox owner,
// cgroups, pipes): "running" goes to the agent right after the exec, and
// DIR/task.json, status.json, executor.pid, executor.sock (mode 0600),
// executor.log, stdout and stderr are written after it -- file creation on
// this host's ext4 costs 0.1-0.4 ms each. It exits once the terminal status
// is acked -- or, with no agent connected, once the recovery timeout has
// killed the task, or a terminal status has lingered unacked for
// `terminal_linger_seconds` (status.json keeps it for the next agent).
// Single-threaded: poll() over a signalfd, the socket and the task's pipes.
#pragma once
#include <string>

#include "common/result.h"

namespace stele {

struct ExecutorOptions {
  std::string sandbox;                          // --sandbox DIR: read DIR/task.json
  int agent_fd = -1;                            // --agent-fd N: connected socket from the launcher;
                                                // without --sandbox the spec arrives on it
  bool detach = true;                           // --no-detach: stay in the caller's session, no fork
  std::string cgroup_root = "/sys/fs/cgroup";   // --cgroup-root PATH
  bool namespaces = true;                       // --no-namespaces
  double terminal_linger_seconds = 10;          // --terminal-linger S
};

// Parses argv as main() received it: "stele executor --sandbox DIR ...";
// a leading program name and the "executor" verb are skipped.
Result<ExecutorOptions> parse_executor_args(int argc, char** argv);

// The whole executor; returns the process exit code (0 after an acked or
// persisted terminal status or when the launcher went away before naming a
// task, 1 when the sandbox is unusable, 2 on bad args).
int executor_main(const ExecutorOptions& options);
int executor_main(int argc, char** argv);

}  // namespace stele
