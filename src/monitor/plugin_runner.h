// Runs one Nagios plugin command line: `/bin/sh -c <command>` through
// net::Process, as a given user, with a timeout, and reads its result by the
// plugin API (plugin_output.h).
//
// - stdout is the plugin output: the first kMaxPluginOutput bytes are kept
//   and parsed, the rest is read and dropped (the plugin never blocks on a
//   full pipe).
// - stderr is not mixed into the output (Nagios Core's rule: the plugin API
//   is stdout). When stdout is empty, the output becomes "(No output on
//   stdout) stderr: <first stderr line>" with the rest of stderr as long
//   text, as Nagios Core 4 does, so `sh: 1: check_foo: not found` (exit 127,
//   UNKNOWN) is what the user reads. stderr is always in PluginResult::err.
// - Past `timeout` the plugin's process group gets SIGTERM, and SIGKILL
//   `kill_grace` later if it is still running; the result is UNKNOWN with
//   output "Plugin timed out after N s" (Nagios' wording), whatever it
//   printed or exited with.
// - A command that cannot be started (no /bin/sh, setresuid refused) is
//   UNKNOWN with the reason as output; run_plugin never fails.
// - After the plugin exits, output still held open by a background child
//   that left the process group is waited for at most kill_grace; then the
//   result is what was read by then.
//
// Runs on the calling coroutine's executor; like net::Process, everything
// stays on that io_context thread. Spawning forks (fork+exec when switching
// users): the caller decides where that runs.
#pragma once
#include <utility>  // before asio, for g++ 12

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "net/http.h"
#include "net/process.h"
#include "monitor/plugin_output.h"

namespace stele::monitor {

struct PluginCommand {
  std::string command;  // shell command line
  net::Environment env;  // the whole environment; PATH defaults to a standard one when absent
  std::string cwd;       // "" = the server's
  // Credentials (net::ProcessSpec): unset = the caller's own. The agent
  // passes the task user's, so plugins never run as root.
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  std::vector<gid_t> groups;
  std::chrono::milliseconds timeout{10'000};
  std::chrono::milliseconds kill_grace{1'000};
  std::string input;  // written to stdin, then EOF (pipe handlers get the event JSON)
};

struct PluginResult {
  CheckStatus status = CheckStatus::kUnknown;
  int exit_code = -1;  // 128 + signal when killed; -1 when it never started
  bool timed_out = false;
  PluginOutput output;
  std::string err;  // stderr, the last net::Process::kStderrLimit bytes
  std::chrono::milliseconds duration{0};
};

net::awaitable<PluginResult> run_plugin(PluginCommand cmd);

// The standard PATH given to plugins whose environment has none; includes
// /usr/lib/nagios/plugins (Debian's monitoring-plugins) and
// /usr/lib/monitoring-plugins.
extern const char* const kPluginPath;

}  // namespace stele::monitor
