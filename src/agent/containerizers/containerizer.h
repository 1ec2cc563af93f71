// Containerizer: how an executor starts and signals one task's process tree.
// "process" (containerizers/process.h) runs a command directly on the host in
// its own namespaces; a Docker containerizer implements the same contract.
// Used from the executor's single thread only.
#pragma once
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "agent/executor_io.h"
#include "agent/launch_spec.h"
#include "common/result.h"

namespace stele {

// Everything resolved by the executor before a task starts.
struct TaskLaunch {
  const LaunchSpec* spec = nullptr;
  std::vector<std::string> env;       // "K=V", the whole environment of the task
  std::string user;                   // for messages
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;          // supplementary groups of the user
  bool switch_user = true;            // false when the executor is not root
  int stdout_fd = -1, stderr_fd = -1; // write ends given to the task
  int cgroup_dir_fd = -1;             // v2: clone3(CLONE_INTO_CGROUP) target
  std::vector<int> cgroup_join_fds;   // "0" is written to each before exec
                                      // (v2: only when CLONE_INTO_CGROUP failed)
  bool namespaces = true;             // ask for pid/mount/ipc/uts namespaces
};

struct StartedTask {
  pid_t pid = -1;          // host pid of our child; its exit ends the task
  bool namespaces = false; // isolation actually in place
  UniqueFd status_fd;      // when an init sits in between: the command's wait status
  std::string warning;     // e.g. "namespaces unavailable: ..." (logged by the caller)
  std::string exec_error;  // non-empty: the command never ran; its exit (127) follows
  std::string container_id;  // docker: the engine's container id
};

struct TaskExit {
  std::optional<int> exit_code, signal;
  bool oom_killed = false;  // the containerizer knows the kernel's OOM killer ended it
};

class Containerizer {
 public:
  virtual ~Containerizer() = default;
  virtual const char* name() const = 0;
  // Starts the task and returns once its command has exec'd or failed to
  // (exec_error), so the caller can report "running" right away. An error
  // result means nothing was started.
  virtual Result<StartedTask> start(const TaskLaunch& launch) = 0;
  // Delivers `sig` to the task's whole process tree (SIGTERM: the graceful
  // request; SIGKILL: the end).
  virtual void signal(const StartedTask& task, int sig) = 0;
  // Translates the wait status of task.pid into the command's own exit.
  virtual TaskExit collect(StartedTask& task, int wait_status) = 0;
};

}  // namespace stele
