// One-off step tasks (docs/pipeline.md "Agent side"): the launch command's
// "step" object, the output shipped to the server while the step runs, and
// the slug a successful build uploads.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <utility>  // before Asio with g++ 12
#include <boost/asio/any_io_executor.hpp>

#include "agent/executor_io.h"
#include "common/json.h"
#include "common/result.h"
#include "net/http.h"

namespace stele::agent {

struct StepSpec {
  std::string kind;        // build | test | release | run
  std::string cmd;
  double timeout_seconds = 0;  // 0 = none
  std::string source;      // build: the source artifact's digest
  std::string cache_key;   // build: names the build cache
  bool is_build() const { return kind == "build"; }
};

// The launch command's "step", or nullopt when it has none. Errors (code
// 422) name the field.
Result<std::optional<StepSpec>> parse_step(const Json& launch_command);

// The shell command a step runs: its stderr merged into stdout.
std::string step_shell_command(const std::string& cmd);

// Reads <sandbox>/stdout by global offset (bytes since the task started),
// following the executor's rotation to stdout.1 while it holds the old file
// open. Opens only regular files owned by the agent's uid, never through a
// symlink (the task may write into its sandbox). Not thread-safe.
class OutputTail {
 public:
  explicit OutputTail(std::string sandbox);
  // Up to `max` bytes from `offset`; empty when nothing new is there yet.
  // An offset in output rotated away twice skips forward (logged).
  std::string read(uint64_t& offset, size_t max);

 private:
  void follow_rotation();
  std::string sandbox_;
  UniqueFd cur_, prev_;
  uint64_t cur_start_ = 0, prev_start_ = 0;
  bool opened_ = false;
};

struct OutputShipperOptions {
  std::string server_url;
  net::Headers headers;
  std::string task_id;
  std::string sandbox;
};

// Ships a step's output as it grows: every ~200 ms (and once more after
// finish()) POST <server>/api/v1/agent/output?task=<id>&offset=<n> with the
// bytes from n. The server answers {"offset": end}, or 409 {"offset": have}
// on a gap, and the shipper continues from there; failures are retried with
// backoff. Starting at offset 0 (a restarted agent) is safe: the server
// skips what it has. Runs on one io thread; safe to destroy while running.
class OutputShipper {
 public:
  OutputShipper(boost::asio::any_io_executor io, OutputShipperOptions opts);
  ~OutputShipper();
  void start();
  // The task ended (its output is complete): ship the rest, then drain.
  void finish();
  // Resumes when everything up to the end was delivered after finish()
  // (or the shipper gave up on a server that keeps refusing).
  net::awaitable<void> drained();
  uint64_t delivered() const;

 private:
  struct State;
  static net::awaitable<void> run(std::shared_ptr<State> s);
  std::shared_ptr<State> state_;
};

// Packs <app_dir> with make_slug into `out_dir` and uploads it with
// PUT <server>/api/v1/artifacts/<digest> (retried on network errors and
// 5xx). Blocking: call through offload().
struct UploadedSlug {
  std::string digest;
  uint64_t size = 0;
};
Result<UploadedSlug> pack_and_upload(const std::string& app_dir, const std::string& out_dir,
                                     const std::string& server_url, const net::Headers& headers);

}  // namespace stele::agent
