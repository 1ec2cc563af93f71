// Child processes on Boost.Asio: spawn with argv, a complete environment and
// a working directory; stdin, stdout and stderr on pipes; exit observed
// through a pidfd, so nothing ever blocks the io thread (no waitpid(0), no
// SIGCHLD handler that would steal other subsystems' children).
//
// A Process and everything it starts belong to one io_context thread; it is
// not safe for concurrent use. Each child is the leader of its own process
// group, so kill() reaches what it started too (git http-backend ->
// receive-pack -> hooks).
//
// The process writing to a child's stdin must ignore SIGPIPE (main() does):
// a child that exits without reading all of its input turns the write into
// EPIPE, reported as an error, instead of killing the server. Children start
// with every signal at its default disposition and nothing blocked.
#pragma once
#include <sys/types.h>

#include <utility>  // before asio, for g++ 12

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <csignal>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "net/http.h"

namespace stele::net {

using Environment = std::map<std::string, std::string>;

// The calling process's environment (to start a child's from).
Environment current_environment();

struct ProcessSpec {
  // argv[0]: a path, or a bare name looked up in the *server's* PATH.
  std::vector<std::string> argv;
  Environment env;   // the child's whole environment (nothing is inherited)
  std::string cwd;   // "" = the server's working directory
  // Credentials to run the child with (needs root or CAP_SETUID/CAP_SETGID).
  // When uid or gid is set the child calls setgroups(groups), setresgid(gid)
  // and setresuid(uid) before exec; unset ones stay the server's. posix_spawn
  // cannot change credentials, so such children are started with fork +
  // execve instead; everything else (process group, pipes, signals, closed
  // descriptors, exec errors reported by spawn()) is the same.
  std::optional<uid_t> uid{};
  std::optional<gid_t> gid{};
  std::vector<gid_t> groups{};  // supplementary groups; used when uid or gid is set
};

class Process {
 public:
  // Starts the child. Errors: empty argv, pipe/pidfd exhaustion, and exec
  // failures (posix_spawn reports them: "cannot run git: No such file...").
  static Result<std::shared_ptr<Process>> spawn(boost::asio::any_io_executor ex, const ProcessSpec& spec);

  // Does not kill the child: one that is still running is left to finish and
  // reaped in the background when it exits (the reaper owns the shared state).
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const;

  // Writes all of `data` to stdin (backpressure: suspends while the pipe is
  // full). Error when stdin was closed or the child stopped reading (EPIPE).
  awaitable<Result<void>> write_stdin(std::string_view data);
  // Closes stdin (the child sees EOF). Idempotent.
  void close_stdin();
  // Writes `data` to stdin from a background coroutine, then closes stdin —
  // for callers that read stdout meanwhile (no pipe deadlock). A child that
  // exits without reading everything is not an error here.
  void feed_stdin(std::string data);

  // The next piece of stdout as it arrives; "" at EOF (every writer closed
  // it). One reader at a time.
  awaitable<Result<std::string>> read_stdout();

  // Waits until the child exited and was reaped: the exit code, or 128 +
  // signal number when it was killed. Also waits (up to a second) for stderr
  // to reach EOF so stderr_text() is complete. May be called repeatedly.
  awaitable<int> wait();
  bool exited() const;

  // stderr so far, drained in the background (so a chatty child never blocks);
  // only the last kStderrLimit bytes are kept.
  const std::string& stderr_text() const;
  static constexpr size_t kStderrLimit = 64 * 1024;

  // Sends `sig` to the child's process group. A no-op once the child was
  // reaped (its pid may belong to someone else by then).
  void kill(int sig = SIGKILL);

  struct State;

 private:
  explicit Process(std::shared_ptr<State> s);
  std::shared_ptr<State> s_;
};

struct ProcessResult {
  int exit_code = 0;  // 128 + signal when killed
  std::string out;
  std::string err;    // last Process::kStderrLimit bytes
};

// Runs a child to completion with `input` on stdin and everything it writes
// collected. A non-zero exit is a result, not an error. Errors: spawn
// failures, and the timeout — the process group is killed and the error names
// the command and the limit.
awaitable<Result<ProcessResult>> run_process(ProcessSpec spec, std::string input,
                                             std::chrono::milliseconds timeout);

// "git rev-parse HEAD" — argv joined for messages (not for a shell).
std::string describe_command(const std::vector<std::string>& argv);

}  // namespace stele::net
