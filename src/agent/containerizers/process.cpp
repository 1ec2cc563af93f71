#include "agent/containerizers/process.h"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include <fmt/format.h>

extern char** environ;

namespace stele {

namespace {

// What a child reports through the exec-notify pipe when it cannot go on.
enum Stage : int32_t { kCgroup = 1, kMount, kInitFork, kSetsid, kStdio, kGroups, kGid, kUid, kRoot, kChdir, kExec };
struct ChildError {
  int32_t stage;
  int32_t err;
};

constexpr int kNamespacesUnavailable = 1;  // Error::code of start_once
constexpr int kForwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

// Everything the children need, built before clone. (The executor is
// single-threaded, so its clone children may still use the heap.)
struct ChildPlan {
  std::vector<std::string> argv_store;
  std::vector<char*> argv, envp;
  const TaskLaunch* launch = nullptr;
  const char* work_dir = nullptr;
  int devnull = -1, notify_w = -1, status_w = -1;
  bool under_init = false;      // the command's parent is our init, not the executor
  bool born_in_cgroup = false;  // clone3 placed the child in its cgroup already
};

// The kernel's struct clone_args (linux/sched.h clashes with glibc's sched.h).
struct CloneArgs {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
      set_tid_size, cgroup;
};
constexpr uint64_t kCloneIntoCgroup = 0x200000000ULL;

// fork() with namespace flags (a raw clone without CLONE_VM and without a new
// stack behaves like fork; glibc's thread bookkeeping is not needed by the
// child, which never creates threads).
// v2: clone3 with CLONE_INTO_CGROUP first, so the child needs no migration.
pid_t clone_task(long flags, int cgroup_dir_fd, ChildPlan& p) {
  if (cgroup_dir_fd >= 0) {
    CloneArgs ca{};
    ca.flags = uint64_t(flags) | kCloneIntoCgroup;
    ca.exit_signal = SIGCHLD;
    ca.cgroup = uint64_t(cgroup_dir_fd);
    p.born_in_cgroup = true;
    pid_t pid = static_cast<pid_t>(::syscall(SYS_clone3, &ca, sizeof ca));
    if (pid >= 0) return pid;
    p.born_in_cgroup = false;  // old kernel or not a cgroup2 dir: join by writing
  }
  return static_cast<pid_t>(::syscall(SYS_clone, flags | SIGCHLD, nullptr, nullptr, nullptr, 0));
}

[[noreturn]] void child_fail(int fd, int32_t stage, int err) {
  ChildError e{stage, err};
  ssize_t n = ::write(fd, &e, sizeof e);
  (void)n;
  _exit(127);
}

void close_fds_except(std::vector<int> keep) {
  std::sort(keep.begin(), keep.end());
  unsigned next = 3;
  for (int k : keep) {
    if (k < 0 || unsigned(k) < next) continue;
    if (unsigned(k) > next) ::close_range(next, unsigned(k) - 1, 0);
    next = unsigned(k) + 1;
  }
  ::close_range(next, ~0U, 0);
}

void reset_signals() {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; ++s)
    if (s != SIGKILL && s != SIGSTOP) ::sigaction(s, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

// The task's command; runs in the clone child (no namespaces) or in the
// init's child.
[[noreturn]] void exec_command(const ChildPlan& p) {
  const TaskLaunch& l = *p.launch;
  reset_signals();
  if (::setsid() < 0) child_fail(p.notify_w, kSetsid, errno);
  if (::dup2(p.devnull, 0) < 0 || ::dup2(l.stdout_fd, 1) < 0 || ::dup2(l.stderr_fd, 2) < 0)
    child_fail(p.notify_w, kStdio, errno);
  if (l.switch_user) {
    if (::setgroups(l.groups.size(), l.groups.data()) != 0) child_fail(p.notify_w, kGroups, errno);
    if (::setgid(l.gid) != 0) child_fail(p.notify_w, kGid, errno);
    if (::setuid(l.uid) != 0) child_fail(p.notify_w, kUid, errno);
  }
  if (::getuid() == 0 || ::geteuid() == 0) child_fail(p.notify_w, kRoot, EPERM);
  // The executor owns the task: if it dies, the task goes too (recover()
  // reports "executor gone"). Set after setuid, which clears it.
  if (!p.under_init) ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (::chdir(p.work_dir) != 0) child_fail(p.notify_w, kChdir, errno);
  close_fds_except({p.notify_w});
  environ = const_cast<char**>(p.envp.data());
  ::execvp(p.argv[0], p.argv.data());
  child_fail(p.notify_w, kExec, errno);
}

void noop_handler(int) {}

// pid 1 of the task's pid namespace.
[[noreturn]] void run_init(const ChildPlan& p) {
  ::prctl(PR_SET_NAME, "stele-init", 0, 0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);  // executor gone: the namespace ends
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
      ::mount("proc", "/proc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, nullptr) != 0)
    child_fail(p.notify_w, kMount, errno);
  // pid 1 only receives signals it has a handler for; blocked + handled
  // signals queue up for sigwaitinfo.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  struct sigaction sa {};
  sa.sa_handler = noop_handler;
  for (int s : kForwarded) sigaddset(&set, s);
  for (int s = 1; s < NSIG; ++s)
    if (sigismember(&set, s)) ::sigaction(s, &sa, nullptr);
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  const TaskLaunch& l = *p.launch;
  close_fds_except({p.devnull, p.notify_w, p.status_w, l.stdout_fd, l.stderr_fd});
  pid_t child = ::fork();
  if (child < 0) child_fail(p.notify_w, kInitFork, errno);
  if (child == 0) exec_command(p);
  close_fds_except({p.status_w});
  for (;;) {
    siginfo_t si;
    int sig = ::sigwaitinfo(&set, &si);
    if (sig < 0) continue;
    if (sig != SIGCHLD) {
      if (::kill(-child, sig) != 0) ::kill(child, sig);
      continue;
    }
    for (;;) {
      int st = 0;
      pid_t w = ::waitpid(-1, &st, WNOHANG);
      if (w <= 0) break;
      if (w == child) {
        ssize_t n = ::write(p.status_w, &st, sizeof st);
        (void)n;
        _exit(0);  // the kernel kills what is left in the namespace
      }
    }
  }
}

void build_plan(const TaskLaunch& l, ChildPlan& p) {
  const LaunchSpec& s = *l.spec;
  if (s.cmd)
    p.argv_store = {"/bin/sh", "-c", *s.cmd};
  else
    p.argv_store = s.args;
  for (auto& a : p.argv_store) p.argv.push_back(a.data());
  p.argv.push_back(nullptr);
  for (const auto& e : l.env) p.envp.push_back(const_cast<char*>(e.c_str()));
  p.envp.push_back(nullptr);
  p.work_dir = s.work_dir ? s.work_dir->c_str() : s.sandbox.c_str();
  p.launch = &l;
}

std::string describe(const ChildPlan& p, const ChildError& e) {
  const TaskLaunch& l = *p.launch;
  std::string what;
  switch (e.stage) {
    case kCgroup: what = "join cgroup"; break;
    case kMount: what = "mount /proc in the task's namespace"; break;
    case kInitFork: what = "fork in the task's namespace"; break;
    case kSetsid: what = "setsid"; break;
    case kStdio: what = "redirect stdio"; break;
    case kGroups: what = "setgroups for " + l.user; break;
    case kGid: what = fmt::format("setgid {}", l.gid); break;
    case kUid: what = fmt::format("setuid {} ({})", l.uid, l.user); break;
    case kRoot: return "refusing to exec the task as root";
    case kChdir: what = std::string("chdir ") + p.work_dir; break;
    case kExec: what = std::string("exec ") + p.argv[0]; break;
    default: what = "start task";
  }
  return errno_message(what, e.err);
}

}  // namespace

Result<StartedTask> ProcessContainerizer::start_once(const TaskLaunch& l, bool namespaces) {
  ChildPlan p;
  build_plan(l, p);
  UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  int np[2], sp[2] = {-1, -1};
  if (!devnull || ::pipe2(np, O_CLOEXEC) != 0) return fail(errno_message("pipe", errno));
  UniqueFd notify_r(np[0]), notify_w(np[1]);
  if (namespaces && ::pipe2(sp, O_CLOEXEC) != 0) return fail(errno_message("pipe", errno));
  UniqueFd status_r(sp[0]), status_w(sp[1]);
  p.devnull = devnull.get();
  p.notify_w = notify_w.get();
  p.status_w = status_w.get();

  long flags = namespaces ? CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS : 0;
  pid_t pid = clone_task(flags, l.cgroup_dir_fd, p);
  if (pid < 0) {
    int err = errno;
    return tl::unexpected(Error{errno_message("clone", err), {}, namespaces ? kNamespacesUnavailable : 0});
  }
  if (pid == 0) {
    // Tasks never inherit a real-time policy (nor could they join a v1 cpu
    // cgroup with one: no RT runtime is granted there).
    struct sched_param normal {};
    if (::sched_getscheduler(0) != SCHED_OTHER) ::sched_setscheduler(0, SCHED_OTHER, &normal);
    if (!p.born_in_cgroup)
      for (int fd : l.cgroup_join_fds)
        if (::write(fd, "0", 1) != 1) child_fail(p.notify_w, kCgroup, errno);
    if (namespaces) {
      p.under_init = true;
      run_init(p);
    }
    exec_command(p);
  }
  notify_w.reset();
  status_w.reset();
  ChildError e{0, 0};
  ssize_t n;
  do n = ::read(notify_r.get(), &e, sizeof e);
  while (n < 0 && errno == EINTR);
  StartedTask t;
  t.pid = pid;
  t.namespaces = namespaces;
  t.status_fd = std::move(status_r);
  if (n == sizeof e) {
    if (e.stage == kMount) {
      ::waitpid(pid, nullptr, 0);
      return tl::unexpected(Error{describe(p, e), {}, kNamespacesUnavailable});
    }
    t.exec_error = describe(p, e);
  }
  return t;
}

Result<StartedTask> ProcessContainerizer::start(const TaskLaunch& l) {
  if (!l.namespaces) return start_once(l, false);
  auto r = start_once(l, true);
  if (r || r.error().code != kNamespacesUnavailable) return r;
  std::string why = r.error().message;
  r = start_once(l, false);
  if (r) r->warning = "namespaces unavailable (" + why + "); task runs in the host's namespaces";
  return r;
}

void ProcessContainerizer::signal(const StartedTask& t, int sig) {
  if (t.pid <= 0) return;
  if (t.namespaces) {
    ::kill(t.pid, sig);  // the init forwards; SIGKILL ends the whole namespace
    return;
  }
  if (::kill(-t.pid, sig) != 0) ::kill(t.pid, sig);
}

TaskExit ProcessContainerizer::collect(StartedTask& t, int wait_status) {
  if (t.status_fd) {
    int st = 0;
    if (::read(t.status_fd.get(), &st, sizeof st) == sizeof st) wait_status = st;
    t.status_fd.reset();
  }
  TaskExit out;
  if (WIFEXITED(wait_status)) out.exit_code = WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) out.signal = WTERMSIG(wait_status);
  return out;
}

}  // namespace stele
