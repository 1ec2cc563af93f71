#include "net/process.h"

#include <fcntl.h>
#include <spawn.h>
#include <grp.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <optional>

#include "net/signal.h"

extern char** environ;

namespace stele::net {

namespace asio = boost::asio;
using asio::use_awaitable;
using boost::system::error_code;
using Descriptor = asio::posix::stream_descriptor;

struct Process::State {
  explicit State(asio::any_io_executor ex)
      : in(ex), out(ex), err(ex), exit_signal(ex), err_signal(ex) {}
  // Torn down with the io_context while the child still runs: collect it if
  // it is already gone, never block.
  ~State() {
    if (pid > 0 && !reaped) ::waitpid(pid, nullptr, WNOHANG);
  }

  pid_t pid = -1;
  std::string command;  // for messages
  Descriptor in, out, err;
  std::string err_text;
  bool err_eof = false;
  std::optional<int> exit_code;
  bool reaped = false;  // guards kill(): after reaping the pid may be reused
  AsyncSignal exit_signal, err_signal;
};

namespace {

// A pipe end that is CLOEXEC and not one of 0..2 (so dup2 onto 0..2 in the
// child always clears CLOEXEC on the copy).
int above_stdio(int fd) {
  if (fd > 2) return fd;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  ::close(fd);
  return moved;
}

struct Pipe {
  int r = -1, w = -1;
  ~Pipe() { close_both(); }
  bool open() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return false;
    r = above_stdio(fds[0]);
    w = above_stdio(fds[1]);
    return r >= 0 && w >= 0;
  }
  int take_r() { return std::exchange(r, -1); }
  int take_w() { return std::exchange(w, -1); }
  void close_both() {
    if (r >= 0) ::close(std::exchange(r, -1));
    if (w >= 0) ::close(std::exchange(w, -1));
  }
};

// posix_spawn attributes and file actions, released on scope exit.
struct SpawnSetup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  SpawnSetup(const Pipe& in, const Pipe& out, const Pipe& err, const std::string& cwd) {
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in.r, 0);
    posix_spawn_file_actions_adddup2(&actions, out.w, 1);
    posix_spawn_file_actions_adddup2(&actions, err.w, 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    // Sockets from other subsystems may lack CLOEXEC: the child gets none.
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
#endif
    if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);  // the server ignores SIGPIPE; children must not
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
};

// Children with other credentials (ProcessSpec::uid/gid): fork + execve,
// since posix_spawn cannot switch users. The child's steps, to name the one
// that failed.
enum class ChildStep : int { kStdio, kChdir, kGroups, kGid, kUid, kExec };

const char* step_name(ChildStep s) {
  switch (s) {
    case ChildStep::kStdio: return "setting up stdio";
    case ChildStep::kChdir: return "chdir";
    case ChildStep::kGroups: return "setgroups";
    case ChildStep::kGid: return "setresgid";
    case ChildStep::kUid: return "setresuid";
    case ChildStep::kExec: break;
  }
  return "exec";
}

// In the forked child of a multi-threaded server: async-signal-safe calls
// only. Mirrors SpawnSetup (own process group, default signals, nothing
// blocked, stdio on the pipes, no other descriptors) and then switches user.
// A failure is written as {step, errno} to `report` (CLOEXEC, so a
// successful exec closes it with nothing written).
[[noreturn]] void child_failed(int report, ChildStep step) {
  int msg[2] = {static_cast<int>(step), errno};
  ssize_t n = ::write(report, msg, sizeof msg);
  (void)n;
  _exit(127);
}

[[noreturn]] void exec_as_user(const ProcessSpec& spec, const Pipe& in, const Pipe& out, const Pipe& err, int report,
                               char** argv, char** envp, bool search) {
  auto die = [report](ChildStep step) { child_failed(report, step); };
  ::setpgid(0, 0);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
  if (::dup2(in.r, 0) < 0 || ::dup2(out.w, 1) < 0 || ::dup2(err.w, 2) < 0) die(ChildStep::kStdio);
  if (report > 3) ::syscall(SYS_close_range, 3u, unsigned(report - 1), 0u);
  ::syscall(SYS_close_range, unsigned(report + 1), ~0u, 0u);
  if (!spec.cwd.empty() && ::chdir(spec.cwd.c_str()) != 0) die(ChildStep::kChdir);
  if (::setgroups(spec.groups.size(), spec.groups.data()) != 0) die(ChildStep::kGroups);
  if (spec.gid && ::setresgid(*spec.gid, *spec.gid, *spec.gid) != 0) die(ChildStep::kGid);
  if (spec.uid && ::setresuid(*spec.uid, *spec.uid, *spec.uid) != 0) die(ChildStep::kUid);
  if (search) ::execvpe(argv[0], argv, envp);
  else ::execve(argv[0], argv, envp);
  child_failed(report, ChildStep::kExec);
}

// Forks a child running as spec.uid/gid; its pid, or why it could not start.
Result<pid_t> spawn_as_user(const ProcessSpec& spec, const Pipe& in, const Pipe& out, const Pipe& err, char** argv,
                            char** envp) {
  Pipe report;
  if (!report.open()) return fail(std::string("cannot create pipes: ") + strerror(errno));
  bool search = spec.argv[0].find('/') == std::string::npos;
  pid_t pid = ::fork();
  if (pid == 0) exec_as_user(spec, in, out, err, report.w, argv, envp, search);
  if (pid < 0) return fail(std::string("cannot fork: ") + strerror(errno));
  ::setpgid(pid, pid);  // also here, so kill(-pid) works before the child runs
  ::close(report.take_w());
  int msg[2] = {0, 0};
  ssize_t n;
  do n = ::read(report.r, msg, sizeof msg);
  while (n < 0 && errno == EINTR);
  if (n <= 0) return pid;  // exec'd: the pipe closed empty
  ::waitpid(pid, nullptr, 0);  // it is exiting right now
  std::string who = spec.uid ? "uid " + std::to_string(*spec.uid) : "gid " + std::to_string(*spec.gid);
  std::string where = spec.cwd.empty() ? "" : " in " + spec.cwd;
  return fail("cannot run " + spec.argv[0] + where + " as " + who + ": " + step_name(ChildStep(msg[0])) + ": " +
              strerror(msg[1]));
}

bool try_reap(Process::State& s) {
  int status = 0;
  pid_t r = ::waitpid(s.pid, &status, WNOHANG);
  if (r == 0) return false;
  if (r == s.pid && WIFEXITED(status)) s.exit_code = WEXITSTATUS(status);
  else if (r == s.pid && WIFSIGNALED(status)) s.exit_code = 128 + WTERMSIG(status);
  else s.exit_code = -1;  // not our child any more (reaped elsewhere)
  s.reaped = true;
  return true;
}

// Reaps the child once its pidfd turns readable (it exits); polls where
// pidfd_open is unavailable. Holds the state until then.
awaitable<void> reap(std::shared_ptr<Process::State> s, int pidfd) {
  if (pidfd >= 0) {
    Descriptor pd(co_await asio::this_coro::executor, pidfd);
    error_code ec;
    while (!try_reap(*s)) {
      co_await pd.async_wait(Descriptor::wait_read, asio::redirect_error(use_awaitable, ec));
      if (ec == asio::error::operation_aborted) co_return;
      if (ec) break;
    }
  }
  while (!s->reaped && !try_reap(*s)) co_await sleep_for(std::chrono::milliseconds(20));
  s->exit_signal.notify();
}

awaitable<void> drain_stderr(std::shared_ptr<Process::State> s) {
  char buf[8192];
  error_code ec;
  for (;;) {
    size_t n = co_await s->err.async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) break;
    s->err_text.append(buf, n);
    if (s->err_text.size() > Process::kStderrLimit)
      s->err_text.erase(0, s->err_text.size() - Process::kStderrLimit);
  }
  s->err.close(ec);
  s->err_eof = true;
  s->err_signal.notify();
}

awaitable<void> feed(std::shared_ptr<Process::State> s, std::string data) {
  error_code ec;
  if (!data.empty() && s->in.is_open())
    co_await asio::async_write(s->in, asio::buffer(data), asio::redirect_error(use_awaitable, ec));
  s->in.close(ec);
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

Environment current_environment() {
  Environment env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string_view::npos && eq > 0) env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return env;
}

std::string describe_command(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    out += a;
  }
  if (out.size() > 200) out = out.substr(0, 200) + "...";
  return out;
}

Process::Process(std::shared_ptr<State> s) : s_(std::move(s)) {}
Process::~Process() = default;

Result<std::shared_ptr<Process>> Process::spawn(asio::any_io_executor ex, const ProcessSpec& spec) {
  if (spec.argv.empty()) return fail("cannot start a process without a command");
  Pipe in, out, err;
  if (!in.open() || !out.open() || !err.open()) return fail(std::string("cannot create pipes: ") + strerror(errno));
  std::vector<std::string> argv = spec.argv;
  std::vector<std::string> envs;
  for (const auto& [k, v] : spec.env) envs.push_back(k + "=" + v);
  auto cargv = c_strings(argv);
  auto cenv = c_strings(envs);
  pid_t pid = -1;
  int rc;
  if (spec.uid || spec.gid) {
    auto forked = spawn_as_user(spec, in, out, err, cargv.data(), cenv.data());
    if (!forked) return fail(forked.error());
    pid = *forked;
    rc = 0;
  } else {
    SpawnSetup setup(in, out, err, spec.cwd);
    bool has_slash = argv[0].find('/') != std::string::npos;
    rc = has_slash ? posix_spawn(&pid, cargv[0], &setup.actions, &setup.attr, cargv.data(), cenv.data())
                   : posix_spawnp(&pid, cargv[0], &setup.actions, &setup.attr, cargv.data(), cenv.data());
  }
  if (rc != 0) {
    std::string where = spec.cwd.empty() ? "" : " in " + spec.cwd;
    return fail("cannot run " + argv[0] + where + ": " + strerror(rc));
  }
  auto s = std::make_shared<State>(ex);
  s->pid = pid;
  s->command = describe_command(spec.argv);
  s->in.assign(in.take_w());
  s->out.assign(out.take_r());
  s->err.assign(err.take_r());
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  asio::co_spawn(ex, reap(s, pidfd), asio::detached);
  asio::co_spawn(ex, drain_stderr(s), asio::detached);
  return std::shared_ptr<Process>(new Process(s));
}

pid_t Process::pid() const { return s_->pid; }

bool Process::exited() const { return s_->exit_code.has_value(); }

const std::string& Process::stderr_text() const { return s_->err_text; }

void Process::kill(int sig) {
  if (s_->pid > 0 && !s_->reaped) ::kill(-s_->pid, sig);
}

void Process::close_stdin() {
  error_code ec;
  s_->in.close(ec);
}

void Process::feed_stdin(std::string data) {
  asio::co_spawn(s_->in.get_executor(), feed(s_, std::move(data)), asio::detached);
}

awaitable<Result<void>> Process::write_stdin(std::string_view data) {
  auto s = s_;
  if (!s->in.is_open()) co_return fail("stdin of " + s->command + " is closed");
  error_code ec;
  co_await asio::async_write(s->in, asio::buffer(data.data(), data.size()), asio::redirect_error(use_awaitable, ec));
  if (ec) co_return fail("writing to " + s->command + ": " + ec.message());
  co_return Result<void>{};
}

awaitable<Result<std::string>> Process::read_stdout() {
  auto s = s_;
  if (!s->out.is_open()) co_return std::string();
  std::string buf(64 * 1024, '\0');
  error_code ec;
  size_t n = co_await s->out.async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
  if (ec == asio::error::eof) {
    s->out.close(ec);
    co_return std::string();
  }
  if (ec) co_return fail("reading the output of " + s->command + ": " + ec.message());
  buf.resize(n);
  co_return buf;
}

awaitable<int> Process::wait() {
  auto s = s_;
  while (!s->exit_code) co_await s->exit_signal.wait(std::chrono::hours(1));
  // stderr's EOF can trail the exit a little; a grandchild holding it open
  // must not hold us.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (!s->err_eof) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    co_await s->err_signal.wait(left);
  }
  co_return *s->exit_code;
}

awaitable<Result<ProcessResult>> run_process(ProcessSpec spec, std::string input, std::chrono::milliseconds timeout) {
  auto ex = co_await asio::this_coro::executor;
  auto spawned = Process::spawn(ex, spec);
  if (!spawned) co_return fail(spawned.error());
  std::shared_ptr<Process> proc = *spawned;
  proc->feed_stdin(std::move(input));
  auto timed_out = std::make_shared<bool>(false);
  auto timer = std::make_shared<asio::steady_timer>(ex, timeout);
  std::weak_ptr<Process> weak = proc;
  timer->async_wait([weak, timed_out](error_code ec) {
    if (ec) return;
    auto p = weak.lock();
    if (!p || p->exited()) return;
    *timed_out = true;
    p->kill(SIGKILL);
  });
  ProcessResult r;
  for (;;) {
    auto chunk = co_await proc->read_stdout();
    if (!chunk) {
      proc->kill(SIGKILL);
      timer->cancel();
      co_return fail(chunk.error());
    }
    if (chunk->empty()) break;
    r.out += *chunk;
  }
  r.exit_code = co_await proc->wait();
  timer->cancel();
  r.err = proc->stderr_text();
  if (*timed_out) {
    auto ms = timeout.count();
    std::string limit = ms % 1000 ? std::to_string(ms) + " ms" : std::to_string(ms / 1000) + " s";
    co_return fail(describe_command(spec.argv) + " timed out after " + limit, 504);
  }
  co_return r;
}

}  // namespace stele::net
