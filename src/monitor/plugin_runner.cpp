// Plugin execution: spawn, bounded stdout, two-step kill at the timeout,
// result by the plugin API.
#include "monitor/plugin_runner.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <unistd.h>

#include <cctype>
#include <csignal>
#include <cstring>
#include <optional>
#include <vector>
#include <memory>

#include "net/signal.h"

namespace stele::monitor {

namespace asio = boost::asio;

const char* const kPluginPath =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/nagios/plugins:/usr/lib/monitoring-plugins";

namespace {

// stdout as read so far, shared with the reader coroutine (which may outlive
// run_plugin when a stray child keeps the pipe open).
struct Capture {
  explicit Capture(asio::any_io_executor ex) : done(std::move(ex)) {}
  std::string out;  // at most kMaxPluginOutput + 1 bytes (one more tells "truncated")
  bool eof = false;
  net::AsyncSignal done;
};

net::awaitable<void> read_stdout(std::shared_ptr<net::Process> p, std::shared_ptr<Capture> c) {
  for (;;) {
    auto chunk = co_await p->read_stdout();
    if (!chunk || chunk->empty()) break;
    size_t room = kMaxPluginOutput + 1 - std::min(c->out.size(), kMaxPluginOutput + 1);
    c->out.append(chunk->data(), std::min(room, chunk->size()));
  }
  c->eof = true;
  c->done.notify();
}

std::string duration_text(std::chrono::milliseconds d) {
  auto ms = d.count();
  return ms % 1000 ? std::to_string(ms) + " ms" : std::to_string(ms / 1000) + " s";
}

// SIGTERM to the group at the timeout, SIGKILL `grace` later if the plugin
// still runs. Cancel the timer once the plugin exited.
void arm_kill(std::shared_ptr<asio::steady_timer> timer, std::weak_ptr<net::Process> weak, std::shared_ptr<bool> timed_out,
              std::chrono::milliseconds grace) {
  timer->async_wait([timer, weak, timed_out, grace](boost::system::error_code ec) {
    auto p = weak.lock();
    if (ec || !p || p->exited()) return;
    *timed_out = true;
    p->kill(SIGTERM);
    timer->expires_after(grace);
    timer->async_wait([weak](boost::system::error_code ec2) {
      auto q = weak.lock();
      if (!ec2 && q && !q->exited()) q->kill(SIGKILL);
    });
  });
}

// Like Nagios Core: a command line with nothing the shell would interpret
// (only words of [A-Za-z0-9_./,:=+@%-] separated by blanks, no leading
// VAR=value) is exec'd directly, its first word looked up in PATH, saving
// the /bin/sh exec per run; anything else, or a program not found (so the
// user reads sh's "not found"), goes through /bin/sh -c.
std::optional<std::vector<std::string>> direct_argv(const std::string& command, const std::string& path) {
  std::vector<std::string> argv;
  std::string word;
  for (char ch : command) {
    if (ch == ' ' || ch == '\t') {
      if (!word.empty()) argv.push_back(std::move(word)), word.clear();
      continue;
    }
    if (!isalnum(static_cast<unsigned char>(ch)) && !strchr("_./,:=+@%-", ch)) return std::nullopt;
    word.push_back(ch);
  }
  if (!word.empty()) argv.push_back(std::move(word));
  if (argv.empty() || argv[0].find('=') != std::string::npos) return std::nullopt;
  if (argv[0].find('/') != std::string::npos) {
    if (access(argv[0].c_str(), X_OK) != 0) return std::nullopt;
    return argv;
  }
  for (size_t i = 0; i <= path.size();) {
    size_t j = path.find(':', i);
    if (j == std::string::npos) j = path.size();
    std::string candidate = path.substr(i, j - i) + "/" + argv[0];
    if (j > i && access(candidate.c_str(), X_OK) == 0) {
      argv[0] = candidate;
      return argv;
    }
    i = j + 1;
  }
  return std::nullopt;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.remove_suffix(1);
  return std::string(s);
}

// Nagios Core 4's stand-ins for a silent plugin.
void fill_empty_output(PluginResult& r) {
  if (!r.output.output.empty() || !r.output.long_output.empty() || !r.output.perfdata.empty()) return;
  std::string err = trim(r.err);
  if (err.empty()) {
    r.output.output = "(No output returned from plugin)";
    return;
  }
  size_t nl = err.find('\n');
  r.output.output = "(No output on stdout) stderr: " + err.substr(0, nl);
  if (nl != std::string::npos) r.output.long_output = err.substr(nl + 1);
}

PluginResult not_started(const std::string& why) {
  PluginResult r;
  r.output.output = "Plugin could not be started: " + why;
  return r;
}

}  // namespace

net::awaitable<PluginResult> run_plugin(PluginCommand cmd) {
  auto started = std::chrono::steady_clock::now();
  auto ex = co_await asio::this_coro::executor;
  net::ProcessSpec spec;
  spec.env = std::move(cmd.env);
  spec.env.try_emplace("PATH", kPluginPath);
  if (auto direct = direct_argv(cmd.command, spec.env["PATH"])) spec.argv = std::move(*direct);
  else spec.argv = {"/bin/sh", "-c", cmd.command};
  spec.cwd = std::move(cmd.cwd);
  spec.uid = cmd.uid;
  spec.gid = cmd.gid;
  spec.groups = std::move(cmd.groups);
  auto spawned = net::Process::spawn(ex, spec);
  if (!spawned) co_return not_started(spawned.error().message);
  std::shared_ptr<net::Process> proc = *spawned;
  if (cmd.input.empty()) proc->close_stdin();
  else proc->feed_stdin(std::move(cmd.input));
  auto capture = std::make_shared<Capture>(ex);
  asio::co_spawn(ex, read_stdout(proc, capture), asio::detached);
  auto timer = std::make_shared<asio::steady_timer>(ex, cmd.timeout);
  auto timed_out = std::make_shared<bool>(false);
  std::weak_ptr<net::Process> weak = proc;
  arm_kill(timer, weak, timed_out, cmd.kill_grace);

  PluginResult r;
  r.exit_code = co_await proc->wait();
  timer->cancel();
  if (!capture->eof) co_await capture->done.wait(cmd.kill_grace);
  r.duration = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  r.err = proc->stderr_text();
  r.timed_out = *timed_out;
  r.output = parse_plugin_output(capture->out);
  if (r.timed_out) {
    std::string printed = r.output.text();
    r.output = PluginOutput{};
    r.output.output = "Plugin timed out after " + duration_text(cmd.timeout);
    r.output.long_output = printed;
    r.status = CheckStatus::kUnknown;
    co_return r;
  }
  r.status = status_from_exit_code(r.exit_code);
  fill_empty_output(r);
  co_return r;
}

}  // namespace stele::monitor
