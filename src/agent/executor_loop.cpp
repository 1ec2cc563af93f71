// The executor's poll loop: agent connection, signals, task output, kill
// deadlines, the recovery timer and the terminal status.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

#include "agent/executor_impl.h"

namespace stele {

namespace {
constexpr int64_t kDrainMs = 2000;           // output still arriving after the task's exit
constexpr size_t kMaxLine = 64 * 1024;       // agent -> executor message limit
constexpr int64_t kPartialLineMs = 1000;     // a line without its newline waits this long

std::string signal_name(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal";
}

std::string describe_exit(const TaskExit& e) {
  if (e.signal) return fmt::format("terminated by signal {} ({})", *e.signal, signal_name(*e.signal));
  return fmt::format("exited with code {}", e.exit_code.value_or(-1));
}
}  // namespace

void Executor::loop() {
  while (!done_) {
    int64_t now = mono_ms();
    check_timers(now);
    maybe_finalize(now);
    if (terminal_ && acked_) break;
    if (done_) break;
    // Fixed slots: signals, listener, agent, stdout, stderr.
    pollfd fds[5] = {{sigfd_.get(), POLLIN, 0}, {listen_.get(), POLLIN, 0},
                     {agent_.get(), POLLIN, 0}, {out_[0].fd.get(), POLLIN, 0},
                     {out_[1].fd.get(), POLLIN, 0}};
    int n = ::poll(fds, 5, poll_timeout(now));
    if (n < 0 && errno != EINTR) {
      executor_log("error", errno_message("poll", errno));
      return;
    }
    if (n <= 0) continue;
    if (fds[0].revents) on_signals();
    if (fds[1].revents) accept_agent();
    if (fds[2].revents && agent_) read_agent();
    for (int i = 0; i < 2; ++i)
      if (fds[3 + i].revents && out_[i].fd) read_output(i);
  }
}

int Executor::poll_timeout(int64_t now) const {
  int64_t next = -1;
  for (int64_t d : {kill_at_, recovery_at_, exited_ && !terminal_ ? drain_until_ : -1, exit_at_, partial_flush_at_})
    if (d >= 0 && (next < 0 || d < next)) next = d;
  if (next < 0) return -1;
  return static_cast<int>(std::max<int64_t>(0, next - now));
}

void Executor::on_signals() {
  signalfd_siginfo si;
  while (::read(sigfd_.get(), &si, sizeof si) == sizeof si) {
    int sig = static_cast<int>(si.ssi_signo);
    if (sig == SIGCHLD) {
      reap();
    } else if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT) {
      request_kill(spec_.kill_grace_seconds, "executor received " + signal_name(sig));
    }
  }
}

void Executor::reap() {
  for (;;) {
    int st = 0;
    pid_t w = ::waitpid(-1, &st, WNOHANG);
    if (w <= 0) return;
    if (started_ && w == task_.pid && !exited_) {
      wait_status_ = st;
      on_task_exit();
    }
  }
}

void Executor::on_task_exit() {
  exited_ = true;
  kill_at_ = -1;
  drain_until_ = mono_ms() + kDrainMs;
  // The command is over; whatever it left behind in its cgroup goes too, so
  // the pipes reach EOF (an init's exit already ends its namespace).
  if (cgroup_)
    for (pid_t p : cgroups_.procs(*cgroup_)) ::kill(p, SIGKILL);
}

void Executor::accept_agent() {
  UniqueFd fd(::accept4(listen_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  if (fd) attach_agent(std::move(fd));
}

// A new agent connection replaces the old one, after the old one's pending
// messages are handled (a kill sent just before the switch is not lost).
void Executor::attach_agent(UniqueFd fd) {
  if (agent_) {
    read_agent();
    agent_.reset();
  }
  ::fcntl(fd.get(), F_SETFL, O_NONBLOCK);
  ::fcntl(fd.get(), F_SETFD, FD_CLOEXEC);  // the inherited --agent-fd has none
  agent_ = std::move(fd);
  inbuf_.clear();
  recovery_at_ = -1;
  exit_at_ = -1;
  send_status();
}

// Handles every complete line received, then the end of the connection if
// it came with them (an ack is typically followed by the agent's close).
void Executor::read_agent() {
  char buf[4096];
  bool closed = false;
  for (;;) {
    ssize_t n = ::read(agent_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) {
      closed = true;
      break;
    }
    inbuf_.append(buf, static_cast<size_t>(n));
  }
  handle_buffered_lines();
  if (agent_ && !closed && inbuf_.size() > kMaxLine) {
    executor_log("warn", "agent message too long; closing the connection");
    closed = true;
  }
  if (agent_ && closed) detach_agent();
}

void Executor::handle_buffered_lines() {
  size_t pos;
  while (agent_ && (pos = inbuf_.find('\n')) != std::string::npos) {
    std::string line = inbuf_.substr(0, pos);
    inbuf_.erase(0, pos + 1);
    handle_line(line);
  }
}

void Executor::detach_agent() {
  agent_.reset();
  inbuf_.clear();
  int64_t now = mono_ms();
  if (terminal_) {
    exit_at_ = now + int64_t(opt_.terminal_linger_seconds * 1000);
  } else if (spec_.recovery_timeout_seconds > 0) {
    recovery_at_ = now + int64_t(spec_.recovery_timeout_seconds * 1000);
  }
}

void Executor::handle_line(const std::string& line) {
  if (line.empty()) return;
  auto j = parse_json(line);
  if (!j || !j->is_object()) {
    executor_log("warn", "bad message from agent; closing the connection");
    return detach_agent();
  }
  std::string type = j->value("type", "");
  if (type == "kill") {
    double grace = spec_.kill_grace_seconds;
    if (j->contains("grace_seconds") && (*j)["grace_seconds"].is_number())
      grace = (*j)["grace_seconds"].get<double>();
    request_kill(grace, "killed on request");
  } else if (type == "ack") {
    if (terminal_) acked_ = true;
    else executor_log("warn", "ack before a terminal status; ignored");
  } else {
    executor_log("warn", "unknown message type '" + type + "'; ignored");
  }
}

void Executor::read_output(int i) {
  char buf[65536];
  for (int rounds = 0; rounds < 16; ++rounds) {
    ssize_t n = ::read(out_[i].fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
      out_[i].fd.reset();
      return;
    }
    if (out_[i].sink) out_[i].sink->write(std::string_view(buf, static_cast<size_t>(n)));
    if (records_ && partial_flush_at_ < 0 && records_->has_partial()) partial_flush_at_ = mono_ms() + kPartialLineMs;
  }
}

void Executor::request_kill(double grace, const std::string& reason) {
  if (!started_ || exited_ || terminal_) return;
  int64_t deadline = mono_ms() + int64_t(std::max(0.0, grace) * 1000);
  if (!kill_requested_) {
    kill_requested_ = true;
    kill_reason_ = reason;
    executor_log("info", fmt::format("{}: SIGTERM, SIGKILL after {}s", reason, grace));
    containerizer_->signal(task_, SIGTERM);
  }
  if (kill_at_ < 0 || deadline < kill_at_) kill_at_ = deadline;
  if (grace <= 0) kill_now();
}

void Executor::kill_now() {
  kill_at_ = -1;
  if (exited_ || sigkill_sent_) return;
  sigkill_sent_ = true;
  executor_log("info", "grace period over: SIGKILL");
  containerizer_->signal(task_, SIGKILL);
  if (cgroup_)
    for (pid_t p : cgroups_.procs(*cgroup_)) ::kill(p, SIGKILL);
}

void Executor::check_timers(int64_t now) {
  if (kill_at_ >= 0 && now >= kill_at_) kill_now();
  if (recovery_at_ >= 0 && now >= recovery_at_) {
    recovery_at_ = -1;
    recovery_expired_ = true;
    request_kill(spec_.kill_grace_seconds,
                 fmt::format("recovery timeout: no agent for {}s", spec_.recovery_timeout_seconds));
    if (terminal_) done_ = true;
  }
  if (exit_at_ >= 0 && now >= exit_at_ && terminal_ && !agent_) done_ = true;
  if (partial_flush_at_ >= 0 && now >= partial_flush_at_) {
    partial_flush_at_ = -1;
    if (records_) records_->flush_partials();
  }
}

void Executor::maybe_finalize(int64_t now) {
  if (!exited_ || terminal_) return;
  if ((out_[0].fd || out_[1].fd) && now < drain_until_) return;
  finalize();
}

void Executor::finalize() {
  for (int i = 0; i < 2; ++i)
    if (out_[i].fd) read_output(i);
  for (auto& o : out_) o.fd.reset();
  if (records_) records_->finish();  // the shipper may finish this task's records
  partial_flush_at_ = -1;
  TaskExit e = containerizer_->collect(task_, wait_status_);
  int64_t ooms = 0;
  if (cgroup_) {
    cgroups_.kill_all(*cgroup_);
    ooms = cgroups_.oom_kills(*cgroup_);
    if (auto r = cgroups_.remove(*cgroup_); !r) executor_log("warn", r.error().message);
    cgroup_.reset();
  }
  status_.exit_code = e.exit_code;
  status_.signal = e.signal;
  std::string how = describe_exit(e);
  if (ooms > 0 || e.oom_killed) {
    status_.state = "failed";
    status_.reason = fmt::format("memory limit exceeded ({} MB)", spec_.mem);
    status_.message = how + "; out of memory: the kernel's OOM killer ended the task";
  } else if (kill_requested_) {
    status_.state = "killed";
    status_.reason = kill_reason_;
    status_.message = how;
  } else {
    status_.state = e.exit_code == 0 ? "finished" : "failed";
    status_.reason = how;
    status_.message = exec_error_;
  }
  terminal_ = true;
  executor_log("info", fmt::format("task {} {}: {}{}{}", spec_.task_id, status_.state, status_.reason,
                                   status_.message.empty() ? "" : "; ", status_.message));
  publish();
  on_terminal();
}

// With no agent to ack it, a terminal executor lingers briefly (an agent may
// be restarting) and then exits: status.json keeps the status for recover().
void Executor::on_terminal() {
  recovery_at_ = -1;
  if (!agent_)
    exit_at_ = mono_ms() + (recovery_expired_ ? 0 : int64_t(opt_.terminal_linger_seconds * 1000));
}

// Every transition: status.json first (a reader without a connection sees it
// even if we die next), then the agent.
void Executor::publish() {
  status_.time_ms = wall_ms();
  if (auto r = write_status_file(".", status_); !r) executor_log("warn", r.error().message);
  send_status();
}

void Executor::send_status() {
  if (!agent_) return;
  if (status_.time_ms == 0) status_.time_ms = wall_ms();
  std::string line = Json(status_).dump() + "\n";
  ssize_t n = ::send(agent_.get(), line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n != static_cast<ssize_t>(line.size())) {
    executor_log("warn", errno_message("send status to agent", errno));
    detach_agent();
  }
}

}  // namespace stele
