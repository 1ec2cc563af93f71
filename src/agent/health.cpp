#include "agent/health.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>
#include <spdlog/spdlog.h>

#include "docker/engine.h"
#include "net/http_client.h"
#include "net/offload.h"
#include "net/signal.h"

namespace stele::agent {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using boost::system::error_code;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

struct Outcome {
  enum Kind { kHealthy, kUnhealthy, kIgnored } kind = kUnhealthy;
  std::string cause;
};
Outcome healthy_outcome() { return {Outcome::kHealthy, {}}; }
Outcome failure(std::string cause) { return {Outcome::kUnhealthy, std::move(cause)}; }

// Aborts the probe in flight (closes its socket, kills its process group).
using Canceller = std::function<void()>;

milliseconds timeout_of(const HealthCheck& c) { return seconds(std::max(1, c.timeout_seconds)); }
std::string timed_out(const HealthCheck& c) {
  return "timed out after " + std::to_string(std::max(1, c.timeout_seconds)) + "s";
}
std::string probe_host(const HealthTarget& t) { return t.host.empty() ? "127.0.0.1" : t.host; }

Result<int> probe_port(const HealthCheck& c, const HealthTarget& t) {
  if (c.port) return *c.port;
  if (c.port_index >= 0 && static_cast<size_t>(c.port_index) < t.ports.size()) return t.ports[c.port_index];
  return fail("task has no port at index " + std::to_string(c.port_index));
}

// ---- HTTP --------------------------------------------------------------------

std::string http_url(const std::string& host, int port, std::string path) {
  if (path.empty() || path[0] != '/') path.insert(0, "/");
  bool v6 = host.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port) + path;
}

Outcome classify_http(const HealthCheck& c, int status, const std::string& url) {
  if (status >= 200 && status < 400) return healthy_outcome();
  if (status >= 100 && status < 200 && c.ignore_http1xx) return {Outcome::kIgnored, {}};
  return failure("HTTP " + std::to_string(status) + " from GET " + url);
}

// Not cancellable: net::http_request has no cancel hook (Boost 1.74 has no
// per-operation cancellation); it ends by its own timeout.
awaitable<Outcome> probe_http(const HealthCheck& c, const HealthTarget& t) {
  auto port = probe_port(c, t);
  if (!port) co_return failure(port.error().message);
  auto url = http_url(probe_host(t), *port, c.path);
  auto r = co_await net::http_request("GET", url, "", {}, timeout_of(c));
  if (!r) co_return failure(r.error().message);
  co_return classify_http(c, r->status, url);
}

// ---- TCP ---------------------------------------------------------------------

awaitable<Result<tcp::endpoint>> resolve(const std::string& host, int port) {
  error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (!ec) co_return tcp::endpoint(addr, static_cast<uint16_t>(port));
  tcp::resolver r(co_await asio::this_coro::executor);
  auto eps = co_await r.async_resolve(host, std::to_string(port), asio::redirect_error(use_awaitable, ec));
  if (ec || eps.empty()) co_return fail("cannot resolve " + host + ": " + ec.message());
  co_return eps.begin()->endpoint();
}

struct TcpAttempt {
  explicit TcpAttempt(asio::any_io_executor ex) : sock(std::move(ex)) {}
  tcp::socket sock;
  bool timed_out = false;
};

awaitable<Outcome> probe_tcp(const HealthCheck& c, const HealthTarget& t, Canceller& cancel) {
  auto port = probe_port(c, t);
  if (!port) co_return failure(port.error().message);
  auto ep = co_await resolve(probe_host(t), *port);
  if (!ep) co_return failure(ep.error().message);
  auto ex = co_await asio::this_coro::executor;
  auto a = std::make_shared<TcpAttempt>(ex);
  asio::steady_timer deadline(ex, timeout_of(c));
  deadline.async_wait([a](error_code ec) {
    if (ec) return;
    a->timed_out = true;
    a->sock.close(ec);
  });
  cancel = [a] { error_code ec; a->sock.close(ec); };
  error_code ec;
  co_await a->sock.async_connect(*ep, asio::redirect_error(use_awaitable, ec));
  cancel = nullptr;
  deadline.cancel();
  if (a->timed_out) co_return failure(timed_out(c));
  if (ec) co_return failure("cannot connect to " + probe_host(t) + ":" + std::to_string(*port) + ": " + ec.message());
  co_return healthy_outcome();
}

// ---- COMMAND -----------------------------------------------------------------

// Everything the child needs, prepared before fork(): the child may only make
// async-signal-safe calls.
struct ExecPlan {
  std::vector<std::string> args, env;
  std::vector<char*> argv, envp;
  std::string dir;
  bool switch_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;

  void seal() {
    for (auto& a : args) argv.push_back(a.data());
    for (auto& e : env) envp.push_back(e.data());
    argv.push_back(nullptr);
    envp.push_back(nullptr);
  }
};

// A non-root agent cannot switch users; its commands run as itself (not root).
Result<void> plan_user(const std::string& user, ExecPlan& p) {
  if (geteuid() != 0) return {};
  if (user.empty()) return fail("no user to run the command as (health checks never run as root)");
  struct passwd pw {};
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found)
    return fail("unknown user '" + user + "'");
  if (pw.pw_uid == 0) return fail("refusing to run the health check command as root ('" + user + "')");
  p.switch_user = true;
  p.uid = pw.pw_uid;
  p.gid = pw.pw_gid;
  int n = 64;
  p.groups.resize(n);
  if (getgrouplist(user.c_str(), p.gid, p.groups.data(), &n) < 0) {
    p.groups.resize(n);
    if (getgrouplist(user.c_str(), p.gid, p.groups.data(), &n) < 0) n = 0;
  }
  p.groups.resize(n);
  return {};
}

Result<ExecPlan> plan_command(const HealthCheck& c, const HealthTarget& t) {
  ExecPlan p;
  p.args = {"/bin/sh", "-c", c.command};
  for (const auto& [k, v] : t.env) p.env.push_back(k + "=" + v);
  if (!t.env.count("PATH")) p.env.push_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  p.dir = t.sandbox;
  if (auto u = plan_user(t.user, p); !u) return fail(u.error());
  return p;
}

[[noreturn]] void child_fail(const char* msg) {
  ssize_t r = write(2, msg, strlen(msg));
  (void)r;
  _exit(126);
}

// In the forked child: own process group, output to the pipe, sandbox, user, exec.
[[noreturn]] void exec_child(const ExecPlan& p, int out) {
  setpgid(0, 0);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGPIPE, &dfl, nullptr);
  int in = open("/dev/null", O_RDONLY);
  if (in < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0) _exit(126);
#ifdef SYS_close_range
  syscall(SYS_close_range, 3u, ~0u, 0u);  // the agent's sockets are not the command's business
#endif
  if (!p.dir.empty() && chdir(p.dir.c_str()) != 0) child_fail("health check: cannot enter the sandbox\n");
  if (p.switch_user &&
      (setgroups(p.groups.size(), p.groups.data()) != 0 || setgid(p.gid) != 0 || setuid(p.uid) != 0))
    child_fail("health check: cannot switch to the task user\n");
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // after setuid, which clears it
  execve(p.argv[0], p.argv.data(), p.envp.data());
  child_fail("health check: cannot run /bin/sh\n");
}

struct Child {
  pid_t pid;
  int out;  // read end of the command's stdout+stderr
};

Result<Child> spawn(ExecPlan& p) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return fail(std::string("pipe: ") + strerror(errno));
  p.seal();
  pid_t pid = fork();
  if (pid == 0) exec_child(p, fds[1]);
  close(fds[1]);
  if (pid < 0) {
    close(fds[0]);
    return fail(std::string("fork: ") + strerror(errno));
  }
  setpgid(pid, pid);  // also here, so kill(-pid) works before the child runs
  return Child{pid, fds[0]};
}

// One running command. `reaped` guards every kill: once the pid is reaped it
// (and its group id) may belong to someone else.
struct CommandRun {
  CommandRun(asio::any_io_executor ex, Child c) : out(ex, c.out), drained(ex), pid(c.pid) {}
  ~CommandRun() { kill_group(); }  // the probe was torn down mid-run (io_context destroyed)
  asio::posix::stream_descriptor out;
  std::string output;  // first kOutputLimit bytes
  bool eof = false;
  net::AsyncSignal drained;
  pid_t pid;
  bool reaped = false, timed_out = false;

  static constexpr size_t kOutputLimit = 4096;
  void kill_group() {
    if (!reaped) ::kill(-pid, SIGKILL);
  }
};

// Keeps the pipe drained so a chatty command never blocks on a full pipe.
awaitable<void> read_output(std::shared_ptr<CommandRun> r) {
  char buf[1024];
  error_code ec;
  for (;;) {
    size_t n = co_await r->out.async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
    if (ec) break;
    n = std::min(n, CommandRun::kOutputLimit - r->output.size());
    r->output.append(buf, n);
  }
  r->eof = true;
  r->drained.notify();
}

// True once the process has exited (not reaped), or is no longer our child.
bool has_exited(pid_t pid) {
  siginfo_t si{};
  if (waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) return true;
  return si.si_pid != 0;
}

// Waits for exit without blocking the thread: a pidfd turns readable at exit;
// polling is the fallback for kernels without pidfd_open.
awaitable<void> wait_exit(pid_t pid) {
  auto ex = co_await asio::this_coro::executor;
  int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd >= 0) {
    asio::posix::stream_descriptor pd(ex, fd);
    error_code ec;
    while (!ec && !has_exited(pid))
      co_await pd.async_wait(asio::posix::stream_descriptor::wait_read, asio::redirect_error(use_awaitable, ec));
  }
  while (!has_exited(pid)) co_await net::sleep_for(milliseconds(20));
}

// Kills what is left of the group (background jobs), then reaps the leader.
int reap(CommandRun& r) {
  ::kill(-r.pid, SIGKILL);
  int status = 0;
  if (waitpid(r.pid, &status, 0) != r.pid) status = -1;
  r.reaped = true;
  return status;
}

std::string first_line(const std::string& s) {
  auto line = s.substr(0, std::min(s.find('\n'), size_t{200}));
  while (!line.empty() && isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
  return line;
}

// A command that ended: `why` and the first line of its output.
Outcome command_failure(const std::string& why, const std::string& output) {
  auto line = first_line(output);
  return failure(line.empty() ? why : why + ": " + line);
}

Outcome exit_outcome(int code, const std::string& output) {
  if (code == 0) return healthy_outcome();
  return command_failure("command exited with status " + std::to_string(code), output);
}

Outcome command_outcome(const HealthCheck& c, const CommandRun& r, int status) {
  if (r.timed_out) return failure(timed_out(c));
  if (status >= 0 && WIFEXITED(status)) return exit_outcome(WEXITSTATUS(status), r.output);
  return command_failure(status < 0 ? "command ended with an unknown status"
                                    : "command killed by signal " + std::to_string(WTERMSIG(status)),
                         r.output);
}

awaitable<Outcome> probe_command(const HealthCheck& c, const HealthTarget& t, Canceller& cancel) {
  auto plan = plan_command(c, t);
  if (!plan) co_return failure(plan.error().message);
  auto child = spawn(*plan);
  if (!child) co_return failure(child.error().message);
  auto ex = co_await asio::this_coro::executor;
  auto run = std::make_shared<CommandRun>(ex, *child);
  asio::co_spawn(ex, read_output(run), asio::detached);
  asio::steady_timer deadline(ex, timeout_of(c));
  deadline.async_wait([run](error_code ec) {
    if (ec || run->reaped) return;
    run->timed_out = true;
    run->kill_group();
  });
  cancel = [run] { run->kill_group(); };
  co_await wait_exit(run->pid);
  cancel = nullptr;
  deadline.cancel();
  int status = reap(*run);
  if (!run->eof) co_await run->drained.wait(milliseconds(200));  // output still in the pipe
  error_code ec;
  run->out.close(ec);
  co_return command_outcome(c, *run, status);
}

// ---- COMMAND in a Docker container -------------------------------------------

// Blocking Engine calls of in-container checks. Their own pool: a check may
// block a thread for its whole timeoutSeconds, which must delay neither
// launches (the agent's workers) nor the server's disk work (net::worker_pool).
asio::thread_pool& exec_pool() {
  static asio::thread_pool pool(4);
  return pool;
}

// One check run inside a container, shared by the probe (io thread: it only
// sets `cancelled` and calls stop_later()) and the workers that run it.
struct ContainerExec : std::enable_shared_from_this<ContainerExec> {
  ContainerExec(const HealthCheck& c, const HealthTarget& t) : check(c), container(t.container) {
    if (!t.docker_socket.empty()) engine.socket_path = t.docker_socket;
  }
  const HealthCheck check;
  const std::string container;
  docker::EngineOptions engine;
  std::atomic<bool> cancelled{false};
  std::mutex mu;
  std::string id;  // GUARDED_BY(mu): the exec, once created

  // On a worker: the outcome within the check's timeout.
  Outcome run() {
    auto deadline = docker::deadline_in(timeout_of(check));
    Outcome o = attempt(deadline);
    if (std::chrono::steady_clock::now() < deadline) return o;
    stop_later();  // not stop(): the outcome is due now
    return failure(timed_out(check));
  }

  // On a worker: kills the command if it still runs, by its pid in the
  // host's pid namespace (the agent is root there).
  void stop() {
    std::string exec;
    {
      std::lock_guard lock(mu);
      exec = id;
    }
    if (exec.empty()) return;
    auto info = until(docker::deadline_in(seconds(2))).exec_inspect(exec);
    if (info && info->running && info->pid > 0) ::kill(info->pid, SIGKILL);
  }
  void stop_later() { asio::post(exec_pool(), [self = shared_from_this()] { self->stop(); }); }

 private:
  // An Engine whose every call ends by `deadline`.
  docker::Engine until(docker::Deadline deadline) const {
    auto o = engine;
    auto left = std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    o.timeout = std::max(milliseconds(1), left);
    return docker::Engine(o);
  }

  Outcome attempt(docker::Deadline deadline) {
    docker::ExecConfig e;
    e.cmd = {"/bin/sh", "-c", check.command};
    auto created = until(deadline).exec_create(container, e);
    if (!created) return failure(created.error().message);
    {
      std::lock_guard lock(mu);
      id = *created;
    }
    if (cancelled) return failure("cancelled");
    std::string output;
    auto sink = [&](docker::StreamKind, std::string_view data) {
      output.append(data.substr(0, CommandRun::kOutputLimit - std::min(CommandRun::kOutputLimit, output.size())));
      return !cancelled;  // past the limit, keep draining: a blocked writer never exits
    };
    if (auto r = until(deadline).exec_start(*created, deadline, sink); !r) return failure(r.error().message);
    auto info = until(deadline).exec_inspect(*created);
    while (info && info->running && !cancelled && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(50));  // output closed before the exit: rare
      info = until(deadline).exec_inspect(*created);
    }
    if (!info) return failure(info.error().message);
    if (info->exit_code < 0) return command_failure("command ended with an unknown status", output);
    return exit_outcome(info->exit_code, output);
  }
};

awaitable<Outcome> probe_in_container(const HealthCheck& c, const HealthTarget& t, Canceller& cancel) {
  auto run = std::make_shared<ContainerExec>(c, t);
  auto job = [run] { return run->run(); };
  cancel = [run] {
    run->cancelled = true;
    run->stop_later();
  };
  Outcome o = co_await net::offload(exec_pool(), job);
  cancel = nullptr;
  co_return o;
}

void log_loop_end(const std::string& task_id, std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    spdlog::error("task {}: health check loop ended: {}", task_id, x.what());
  }
}

}  // namespace

// ---- TaskHealth --------------------------------------------------------------

struct TaskHealth::Shared {
  asio::any_io_executor ex;
  HealthTarget target;
  std::vector<HealthCheck> checks;
  ChangeFn on_change;
  KillFn on_kill;
  SystemClock system_clock;
  const Clock* clock = nullptr;
  std::vector<HealthCheckResult> results;
  std::vector<std::unique_ptr<asio::steady_timer>> timers;  // interval waits, one per check
  std::vector<Canceller> cancel;                            // probe in flight, one per check
  bool started = false, stopped = false;

  static awaitable<void> run(std::shared_ptr<Shared> s, size_t i);
  awaitable<Outcome> probe(size_t i);
  void record(size_t i, const Outcome& o);
  void on_success(HealthCheckResult& r, const std::string& now);
  void on_failure(size_t i, const Outcome& o, const std::string& now);
  bool in_grace(size_t i) const;
  void notify_change();
  void fire_kill(size_t i);
  void halt();
};

awaitable<void> TaskHealth::Shared::run(std::shared_ptr<Shared> s, size_t i) {
  auto& timer = *s->timers[i];
  const auto interval = seconds(std::max(1, s->checks[i].interval_seconds));
  // Until the first success, inside the grace period (where failures are
  // ignored anyway), probe every 250 ms: a task counts as healthy as soon as
  // it answers, not up to an interval later. Then Marathon's interval.
  const auto eager = std::min<std::chrono::steady_clock::duration>(interval, std::chrono::milliseconds(250));
  while (!s->stopped) {
    bool waiting_first = s->results[i].first_success.empty() && s->in_grace(i);
    auto next = std::chrono::steady_clock::now() + (waiting_first ? eager : interval);  // start to start
    Outcome o = co_await s->probe(i);
    if (s->stopped) break;
    s->record(i, o);  // callbacks may destroy the TaskHealth: `s` keeps us alive
    if (s->stopped) break;
    timer.expires_at(next);
    error_code ec;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
  }
}

awaitable<Outcome> TaskHealth::Shared::probe(size_t i) {
  const auto& c = checks[i];
  if (c.protocol == "HTTP") co_return co_await probe_http(c, target);
  if (c.protocol == "TCP" || c.protocol == "HTTPS") co_return co_await probe_tcp(c, target, cancel[i]);
  if (c.protocol == "COMMAND" && !target.container.empty())
    co_return co_await probe_in_container(c, target, cancel[i]);
  if (c.protocol == "COMMAND") co_return co_await probe_command(c, target, cancel[i]);
  co_return failure("unsupported health check protocol '" + c.protocol + "'");
}

void TaskHealth::Shared::record(size_t i, const Outcome& o) {
  if (o.kind == Outcome::kIgnored) return;
  auto now = iso8601(clock->now_ms());
  if (o.kind == Outcome::kHealthy) return on_success(results[i], now);
  on_failure(i, o, now);
}

void TaskHealth::Shared::on_success(HealthCheckResult& r, const std::string& now) {
  bool was_alive = r.alive;
  r.alive = true;
  r.consecutive_failures = 0;
  r.last_success = now;
  if (r.first_success.empty()) r.first_success = now;
  if (!was_alive) notify_change();
}

void TaskHealth::Shared::on_failure(size_t i, const Outcome& o, const std::string& now) {
  auto& r = results[i];
  if (r.first_success.empty() && in_grace(i)) {
    spdlog::debug("task {}: health check {} failed in its grace period: {}", target.task_id, i, o.cause);
    return;
  }
  r.alive = false;
  ++r.consecutive_failures;
  r.last_failure = now;
  r.last_failure_cause = o.cause;
  int max = checks[i].max_consecutive_failures;
  if (max > 0 && r.consecutive_failures >= max) return fire_kill(i);
  notify_change();
}

bool TaskHealth::Shared::in_grace(size_t i) const {
  return clock->now_ms() < target.started_ms + int64_t{checks[i].grace_period_seconds} * 1000;
}

void TaskHealth::Shared::notify_change() {
  if (auto f = on_change) f(results);  // a copy: f may destroy the TaskHealth, which clears on_change
}

void TaskHealth::Shared::fire_kill(size_t i) {
  auto change = on_change;
  auto kill = on_kill;
  auto cause = results[i].last_failure_cause;
  spdlog::warn("task {}: health check {} failed {} times in a row, killing: {}", target.task_id, i,
               results[i].consecutive_failures, cause);
  halt();
  if (change) change(results);
  if (kill) kill(cause);
}

void TaskHealth::Shared::halt() {
  if (stopped) return;
  stopped = true;
  for (auto& t : timers) t->cancel();
  for (auto& c : cancel)
    if (auto f = std::exchange(c, nullptr)) f();
  on_change = nullptr;
  on_kill = nullptr;
}

TaskHealth::TaskHealth(asio::any_io_executor ex, HealthTarget target, std::vector<HealthCheck> checks,
                       ChangeFn on_change, KillFn on_kill, const Clock* clock)
    : s_(std::make_shared<Shared>()) {
  s_->ex = ex;
  s_->target = std::move(target);
  s_->checks = std::move(checks);
  s_->on_change = std::move(on_change);
  s_->on_kill = std::move(on_kill);
  s_->clock = clock ? clock : &s_->system_clock;
  for (size_t i = 0; i < s_->checks.size(); ++i) {
    s_->results.emplace_back().index = static_cast<int>(i);
    s_->timers.push_back(std::make_unique<asio::steady_timer>(ex));
  }
  s_->cancel.resize(s_->checks.size());
}

TaskHealth::~TaskHealth() { stop(); }

void TaskHealth::start() {
  if (s_->started || s_->stopped) return;
  s_->started = true;
  for (size_t i = 0; i < s_->checks.size(); ++i) {
    if (s_->checks[i].protocol == "HTTPS")
      spdlog::warn("task {}: HTTPS health check {} is probed as a TCP connect (no TLS client in the agent)",
                   s_->target.task_id, i);
    asio::co_spawn(s_->ex, Shared::run(s_, i),
                   [id = s_->target.task_id](std::exception_ptr e) { log_loop_end(id, e); });
  }
}

void TaskHealth::stop() { s_->halt(); }

std::vector<HealthCheckResult> TaskHealth::results() const { return s_->results; }

bool TaskHealth::healthy() const {
  return std::all_of(s_->results.begin(), s_->results.end(), [](const auto& r) { return r.alive; });
}

}  // namespace stele::agent
