// The "process" containerizer: runs the task's command on the host.
//
// As root, the child is cloned into new pid/mount/ipc/uts namespaces (falling
// back to none, with a warning, when the kernel refuses). In a new pid
// namespace the first process is pid 1, which ignores signals it has no
// handler for, so a tiny init runs there: it mounts a private /proc, forks
// the command, forwards SIGTERM/SIGINT/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 to the
// command's process group, reaps orphans, and hands the command's wait status
// to the executor through a pipe. SIGKILL of the init ends the namespace.
//
// The command joins the cgroups, starts its own session, gets /dev/null on
// stdin and the pipes on stdout/stderr, drops to the task user (setgroups,
// setgid, setuid; it never execs with uid or euid 0), chdirs to work_dir and
// execs /bin/sh -c cmd or args (PATH looked up in the task's environment).
#pragma once
#include "agent/containerizers/containerizer.h"

namespace stele {

class ProcessContainerizer final : public Containerizer {
 public:
  const char* name() const override { return "process"; }
  Result<StartedTask> start(const TaskLaunch& launch) override;
  void signal(const StartedTask& task, int sig) override;
  TaskExit collect(StartedTask& task, int wait_status) override;

 private:
  Result<StartedTask> start_once(const TaskLaunch& launch, bool namespaces);
};

}  // namespace stele
