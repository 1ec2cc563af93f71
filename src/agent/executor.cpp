#include "agent/executor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "agent/executor_impl.h"
#include "common/clock.h"
#include "common/names.h"

namespace stele {

namespace {
// Log lines wait in memory until DIR/executor.log is opened after the launch
// path (or, if that never happens, go to stderr at exit). Function-local:
// executor_main may run before other translation units' statics exist.
struct ExecutorLog {
  int fd = -1;
  std::string pending;
};
ExecutorLog& log_state() {
  static ExecutorLog state;
  return state;
}

void open_executor_log() {
  UniqueFd fd(::open(sandbox_files::kLog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640));
  if (!fd) return;
  log_state().fd = fd.release();
  write_all(log_state().fd, log_state().pending);
  log_state().pending.clear();
}

void flush_pending_log() {
  if (log_state().fd < 0) write_all(2, log_state().pending);
  log_state().pending.clear();
}
}  // namespace

void executor_log(const char* level, const std::string& msg) {
  std::string line = fmt::format("{} {} {}\n", iso8601(wall_ms()), level, msg);
  if (log_state().fd < 0) log_state().pending += line;
  else write_all(log_state().fd, line);
}

Result<ExecutorOptions> parse_executor_args(int argc, char** argv) {
  ExecutorOptions o;
  int i = 0;
  if (i < argc && argv[i][0] != '-' && std::string(argv[i]) != "executor") ++i;  // program name
  if (i < argc && std::string(argv[i]) == "executor") ++i;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--no-detach") {
      o.detach = false;
    } else if (a == "--no-namespaces") {
      o.namespaces = false;
    } else if (a == "--sandbox" || a == "--agent-fd" || a == "--cgroup-root" ||
               a == "--terminal-linger") {
      if (i + 1 >= argc) return fail("executor: " + a + " needs a value");
      std::string v = argv[++i];
      if (a == "--sandbox") o.sandbox = v;
      if (a == "--agent-fd") o.agent_fd = std::atoi(v.c_str());
      if (a == "--cgroup-root") o.cgroup_root = v;
      if (a == "--terminal-linger") o.terminal_linger_seconds = std::atof(v.c_str());
    } else {
      return fail("executor: unknown argument " + a);
    }
  }
  if (o.sandbox.empty() && o.agent_fd < 0) return fail("executor: --sandbox DIR or --agent-fd N is required");
  if (!o.sandbox.empty() && o.sandbox.front() != '/')
    return fail("executor: --sandbox needs an absolute path");
  return o;
}

int executor_main(int argc, char** argv) {
  auto o = parse_executor_args(argc, argv);
  if (!o) {
    fmt::print(stderr, "{}\n", o.error().message);
    return 2;
  }
  return executor_main(*o);
}

int executor_main(const ExecutorOptions& options) {
  int rc = Executor(options).run();
  flush_pending_log();
  return rc;
}

Executor::Executor(ExecutorOptions o) : opt_(std::move(o)) { status_.state = "starting"; }

int Executor::run() {
  release_inherited_fds();
  bool from_agent = opt_.sandbox.empty();
  if (opt_.detach) detach();
  if (from_agent && !await_launch()) return 0;
  auto slash = opt_.sandbox.find_last_of('/');
  status_.task_id = opt_.sandbox.substr(slash == std::string::npos ? 0 : slash + 1);
  if (::chdir(opt_.sandbox.c_str()) != 0) {
    executor_log("error", errno_message("sandbox " + opt_.sandbox, errno));
    return 1;
  }
  setup_signals();  // before any child exists: SIGCHLD must reach the signalfd
  std::string early_input = std::move(inbuf_);
  if (opt_.agent_fd >= 0) attach_agent(UniqueFd(opt_.agent_fd));
  if (from_agent) status_.task_id = spec_.task_id;
  if (from_agent || load_spec()) start_task();
  after_launch(from_agent);
  inbuf_ = std::move(early_input) + inbuf_;
  handle_buffered_lines();
  loop();
  ::unlink(sandbox_files::kSocket);
  ::unlink(sandbox_files::kPid);
  executor_log("info", acked_ ? "terminal status acked; exiting" : "exiting");
  return 0;
}

// Nothing of the launcher's stays open here: an agent's listening socket
// would keep its port bound across agent restarts, and its stdout/stderr
// pipes would never see EOF. The agent socket becomes fd 3.
void Executor::release_inherited_fds() {
  if (opt_.agent_fd >= 0 && opt_.agent_fd != 3 && ::dup2(opt_.agent_fd, 3) == 3) opt_.agent_fd = 3;
  ::close_range(opt_.agent_fd >= 0 ? unsigned(opt_.agent_fd) + 1 : 3, ~0U, 0);
  int null = ::open("/dev/null", O_RDWR);
  for (int fd = 0; null >= 0 && fd <= 2; ++fd)
    if (fd != null) ::dup2(null, fd);
  if (null > 2) ::close(null);
}

// Leaves the launcher's session and process tree: init adopts us, so the
// agent never has to reap an executor and a dying agent takes none along.
void Executor::detach() {
  ::setsid();
  pid_t p = ::fork();
  if (p < 0) executor_log("warn", errno_message("fork (detach)", errno));
  if (p > 0) _exit(0);
}

// Waits for {"type":"launch","spec":{...}} on the agent socket. False on EOF
// or a bad spec (the launcher went away or broke): nothing to report to.
bool Executor::await_launch() {
  std::string line;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(opt_.agent_fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    line.append(buf, size_t(n));
    if (line.find('\n') != std::string::npos || line.size() > (1u << 20)) break;
  }
  auto eol = line.find('\n');
  if (eol != std::string::npos) {
    inbuf_ = line.substr(eol + 1);  // e.g. a kill sent right after the launch
    line.resize(eol);
  }
  auto j = parse_json(line);
  if (!j || !j->is_object() || j->value("type", "") != "launch" || !j->contains("spec")) return false;
  auto spec = parse_launch_spec((*j)["spec"]);
  if (!spec) return false;
  spec_ = std::move(*spec);
  opt_.sandbox = spec_.sandbox;
  return true;
}

// What re-attaching readers need, written once the task runs.
void Executor::after_launch(bool from_agent) {
  open_executor_log();
  if (from_agent)  // carries the environment (secrets too): root-only
    if (auto r = write_file_atomic(sandbox_files::kTask, Json(spec_).dump(), 0600); !r)
      executor_log("warn", r.error().message);
  if (!terminal_ && !exited_)
    if (auto r = write_status_file(".", status_); !r) executor_log("warn", r.error().message);
  RecordFields rf;
  rf.app = spec_.app_id;
  rf.task = spec_.task_id;
  rf.node = spec_.node;
  rf.step = spec_.step;
  rf.release = spec_.release;
  rf.tag_base = "stele." + app_name(spec_.app_id);
  if (!spec_.step.empty()) rf.fixed_tag = rf.tag_base + ".pipeline";
  records_ = std::make_unique<TaskRecords>(spec_.sandbox, std::move(rf));
  for (int i = 0; i < 2; ++i)
    if (out_[i].fd)
      out_[i].sink = std::make_unique<RecordSink>(
          std::make_unique<RotatingFileSink>(i == 0 ? sandbox_files::kStdout : sandbox_files::kStderr), *records_, i);
  listen_socket();
  write_pid_file();
  if (!agent_ && !terminal_ && spec_.recovery_timeout_seconds > 0)
    recovery_at_ = mono_ms() + int64_t(spec_.recovery_timeout_seconds * 1000);
}

void Executor::write_pid_file() {
  if (auto r = write_file_atomic(sandbox_files::kPid, std::to_string(::getpid()) + "\n"); !r)
    executor_log("warn", r.error().message);
}

void Executor::setup_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT}) sigaddset(&set, s);
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  sigfd_.reset(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  ::signal(SIGPIPE, SIG_IGN);
}

void Executor::listen_socket() {
  ::unlink(sandbox_files::kSocket);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, sandbox_files::kSocket);  // relative: cwd is the sandbox
  mode_t old = ::umask(0077);
  bool ok = fd && ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
            ::listen(fd.get(), 4) == 0;
  int err = errno;
  ::umask(old);
  if (!ok) {
    executor_log("error", errno_message("listen on executor.sock (no re-attach possible)", err));
    return;
  }
  listen_ = std::move(fd);
}

bool Executor::load_spec() {
  auto text = read_file(sandbox_files::kTask);
  if (!text) {
    fail_before_start("invalid task.json", errno_message("read task.json", errno));
    return false;
  }
  auto j = parse_json(*text);
  auto spec = j ? parse_launch_spec(*j) : Result<LaunchSpec>(fail(j.error()));
  if (!spec) {
    std::string msg = spec.error().message;
    for (const auto& d : spec.error().details) msg += "; " + d.path + ": " + d.errors.front();
    fail_before_start("invalid task.json", msg);
    return false;
  }
  spec_ = std::move(*spec);
  status_.task_id = spec_.task_id;
  return true;
}

Result<void> Executor::resolve_user(TaskLaunch& l) {
  if (spec_.uid && spec_.gid) {  // resolved (and cached) by the agent
    l.user = spec_.user;
    l.uid = *spec_.uid;
    l.gid = *spec_.gid;
    l.groups.assign(spec_.groups.begin(), spec_.groups.end());
    if (l.uid == 0) return fail("refusing to run the task as root (user '" + l.user + "')");
  } else {
    auto c = resolve_task_user(spec_.user);
    if (!c) return fail(c.error());
    l.user = c->user;
    l.uid = c->uid;
    l.gid = c->gid;
    l.groups.assign(c->groups.begin(), c->groups.end());
  }
  l.switch_user = ::geteuid() == 0;
  if (!l.switch_user) {
    executor_log("warn", "executor is not root: the task runs as the executor's user");
    if (::getuid() == 0) return fail("refusing to run the task as root");
  }
  return {};
}

Result<void> Executor::setup_cgroup(TaskLaunch& l, std::vector<UniqueFd>& keep_open) {
  if (spec_.cgroup_parent.empty()) return {};
  if (::geteuid() != 0) {
    executor_log("warn", "executor is not root: no cgroup limits");
    return {};
  }
  cgroups_ = CgroupFs::detect(opt_.cgroup_root);
  if (cgroups_.version() == CgroupVersion::none) {
    executor_log("warn", "no cgroup filesystem at " + opt_.cgroup_root + ": no limits");
    return {};
  }
  CgroupLimits limits{spec_.cpus, spec_.mem, 4096};
  auto cg = cgroups_.create(spec_.cgroup_parent + "/" + spec_.task_id, limits);
  if (!cg) return fail(cg.error());
  cgroup_ = *cg;
  auto fds = cgroups_.open_join_files(*cgroup_);
  if (!fds) return fail(fds.error());
  auto dir = cgroups_.open_dir(*cgroup_);
  if (!dir) return fail(dir.error());
  for (auto& fd : *fds) l.cgroup_join_fds.push_back(fd.get());
  l.cgroup_dir_fd = dir->get();
  fds->push_back(std::move(*dir));
  keep_open = std::move(*fds);
  return {};
}

void Executor::start_task() {
  TaskLaunch l;
  l.spec = &spec_;
  l.namespaces = opt_.namespaces && ::geteuid() == 0;
  if (auto r = resolve_user(l); !r) return fail_before_start("task user refused", r.error().message);
  if (l.switch_user) {
    // Root owns the sandbox; the task's group may add files, and the sticky
    // bit keeps it from replacing the executor's own (status.json, socket...).
    if (::chown(".", 0, l.gid) != 0 || ::chmod(".", 01770) != 0)
      executor_log("warn", errno_message("chown sandbox", errno));
  }
  std::vector<UniqueFd> cgroup_fds;
  if (auto r = setup_cgroup(l, cgroup_fds); !r) return fail_before_start("cgroup setup failed", r.error().message);
  UniqueFd write_ends[2];
  for (int i = 0; i < 2; ++i) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return fail_before_start("start failed", errno_message("pipe", errno));
    ::fcntl(p[0], F_SETFL, O_NONBLOCK);
    out_[i].fd.reset(p[0]);
    write_ends[i].reset(p[1]);
  }
  l.stdout_fd = write_ends[0].get();
  l.stderr_fd = write_ends[1].get();
  for (const auto& [k, v] : task_environment(spec_)) l.env.push_back(k + "=" + v);
  auto factory = containerizers_.find(spec_.containerizer);
  if (factory == containerizers_.end())
    return fail_before_start("start failed", "this executor has no containerizer '" + spec_.containerizer + "'");
  containerizer_ = factory->second();
  auto started = containerizer_->start(l);
  for (auto& w : write_ends) w.reset();
  if (!started) return fail_before_start("start failed", started.error().message);
  task_ = std::move(*started);
  started_ = true;
  status_.pid = task_.pid;
  if (!task_.warning.empty()) executor_log("warn", task_.warning);
  if (!task_.exec_error.empty()) {
    exec_error_ = task_.exec_error;
    executor_log("error", exec_error_);
    return;  // its exit (127) follows
  }
  status_.state = "running";
  status_.started_ms = wall_ms();
  status_.time_ms = status_.started_ms;
  send_status();  // status.json follows in after_launch()
  if (!task_.container_id.empty())
    executor_log("info", fmt::format("task {} running as container {} (watcher pid {})", spec_.task_id,
                                     task_.container_id.substr(0, 12), task_.pid));
  else
    executor_log("info", fmt::format("task {} running as {} (pid {}, {})", spec_.task_id, l.user, task_.pid,
                                     task_.namespaces ? "own namespaces" : "host namespaces"));
}

void Executor::fail_before_start(const std::string& reason, const std::string& message) {
  executor_log("error", reason + ": " + message);
  cleanup_cgroup();
  for (auto& o : out_) o.fd.reset();
  status_.state = "failed";
  status_.reason = reason;
  status_.message = message;
  terminal_ = true;
  publish();
  on_terminal();
}

void Executor::cleanup_cgroup() {
  if (!cgroup_) return;
  cgroups_.kill_all(*cgroup_);
  if (auto r = cgroups_.remove(*cgroup_); !r) executor_log("warn", r.error().message);
  cgroup_.reset();
}

}  // namespace stele
