// Engine: Stele's client of the Docker Engine API (HTTP/1.1 over the unix
// socket, API v1.41), never the `docker` CLI.
//
// Every call is blocking and bounded: short calls by options.timeout, calls
// that run as long as a container or a build (wait, logs, attach, events,
// build, save, load) by the deadline they are given. The caller is the
// executor's single thread (or a worker thread); an Engine holds no
// connection between calls, so one Engine may be used by several threads.
//
// Failures are Errors whose message names the call and the object
// ("docker: create container stele-web-r3: No such image: stele/web:r3
// (404)") and whose code is the engine's HTTP status, 0 for transport
// failures (no engine, timed out), 400 for a name that cannot be a container
// or image (checked before any request). "Not found" is code 404.
#pragma once
#include <chrono>
#include <csignal>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/result.h"
#include "docker/api_types.h"
#include "docker/stream_decoders.h"
#include "docker/unix_http.h"

namespace stele::docker {

struct EngineOptions {
  std::string socket_path = "/var/run/docker.sock";
  std::string api_prefix = "/v1.41";
  std::chrono::milliseconds timeout = std::chrono::seconds(30);  // each short call
};

struct LogsOptions {
  bool follow = true;  // until the container stops (or on_output says stop)
  bool stdout_stream = true, stderr_stream = true;
  bool tty = false;       // the container has a TTY: raw bytes, all on stdout
  std::string since;      // unix seconds; empty: from the start
  Deadline deadline = kNoDeadline;
};

struct BuildOptions {
  std::string context_dir;
  std::string dockerfile = "Dockerfile";  // relative to context_dir
  std::string tag;                        // e.g. "stele/web:r3"
  int64_t memory_bytes = 0;               // 0: no limit
  int64_t cpu_shares = 0;
  std::map<std::string, std::string> labels;
  std::string scratch_dir = "/tmp";  // where the context tar is written (and removed)
  Deadline deadline = kNoDeadline;
};

// A command to run in a running container (POST /containers/{ref}/exec),
// without a TTY and without stdin.
struct ExecConfig {
  std::vector<std::string> cmd;  // argv, e.g. {"/bin/sh", "-c", "..."}
  std::string user;              // "" = the container's own user
  std::vector<std::string> env;  // "K=V", added to the container's env
};

// GET /exec/{id}/json.
struct ExecInfo {
  bool running = false;
  int exit_code = -1;  // -1 while running or never started
  int pid = 0;         // in the host's pid namespace; 0 when not running
};

// Receives container output; returns false to stop the stream.
using OutputSink = std::function<bool(StreamKind, std::string_view)>;
// Receives one decoded event; returns false to stop the stream.
using EventSink = std::function<bool(const Json&)>;

class Engine {
 public:
  explicit Engine(EngineOptions o = {});
  const EngineOptions& options() const { return o_; }

  // GET /_ping: ok, or why the engine cannot be used ("docker: ping: cannot
  // connect to /var/run/docker.sock: No such file or directory").
  Result<void> available() const;
  Result<Json> version() const;

  // Containers. `ref` is a name or id.
  Result<std::string> create(const ContainerConfig& c) const;  // the new id
  Result<void> start(const std::string& ref) const;            // already running: ok
  // SIGTERM (or the stop signal), SIGKILL after grace_s; already stopped: ok.
  Result<void> stop(const std::string& ref, int grace_s) const;
  Result<void> kill(const std::string& ref, int sig = SIGKILL) const;
  // force: kills a running container first. Unknown container: 404.
  Result<void> remove(const std::string& ref, bool force) const;
  Result<ContainerInfo> inspect(const std::string& ref) const;
  // All containers (running or not) carrying every label ("k" or "k=v").
  Result<std::vector<ContainerSummary>> list(const std::vector<std::string>& labels) const;
  // Blocks until the container is not running; its exit code. Call it after
  // start: a created container is not running, so it returns at once.
  Result<int> wait(const std::string& ref, Deadline deadline) const;

  // Output of a container without TTY, demultiplexed; returns when the
  // stream ends (with follow: the container stopped), on_output returns
  // false, or the deadline passes (an error). logs() replays from the start
  // (or `since`); attach() gives only what is written from now on.
  Result<void> logs(const std::string& ref, const LogsOptions& o, const OutputSink& on_output) const;
  Result<void> attach(const std::string& ref, const LogsOptions& o, const OutputSink& on_output) const;

  // Container events carrying every label, from `since` (unix seconds, may be
  // empty) until `until` (empty: endless) or on_event returns false.
  Result<void> events(const std::vector<std::string>& labels, const std::string& since, const std::string& until,
                      Deadline deadline, const EventSink& on_event) const;

  // Exec: a command in the running container `ref` (409 when it is not
  // running, 404 when unknown). exec_start runs it attached: its stdout and
  // stderr, demultiplexed, go to on_output until they end (the command and
  // any child still holding them exited), on_output returns false, or the
  // deadline passes (an error; the command keeps running -- the engine has
  // no API to kill an exec, kill exec_inspect's pid instead). Its exit code
  // is then exec_inspect's.
  Result<std::string> exec_create(const std::string& ref, const ExecConfig& e) const;  // the exec's id
  Result<void> exec_start(const std::string& id, Deadline deadline, const OutputSink& on_output) const;
  Result<ExecInfo> exec_inspect(const std::string& id) const;  // unknown: 404

  // Images. `ref` is a name[:tag] or "sha256:..." id.
  Result<ImageInfo> inspect_image(const std::string& ref) const;  // unknown: 404
  Result<bool> image_exists(const std::string& ref) const;
  // POST /images/create?fromImage=: pulls `ref` (name[:tag], default tag
  // "latest") from its registry; the pull's own error (e.g. no registry
  // reachable) fails the call even though the engine answered 200.
  Result<void> pull(const std::string& ref, Deadline deadline) const;
  Result<void> remove_image(const std::string& ref, bool force) const;
  // GET /images/{ref}/get into tar_path (written whole, then renamed).
  Result<void> save(const std::string& ref, const std::string& tar_path, Deadline deadline) const;
  // POST /images/load of a `save` tar; the id of the (first) loaded image.
  Result<std::string> load(const std::string& tar_path, Deadline deadline) const;
  // POST /build (host network, limits); each line of the build's output goes
  // to on_line as it arrives. The built image's id, or the build's own error.
  Result<std::string> build(const BuildOptions& b, const std::function<void(std::string_view)>& on_line) const;

 private:
  HttpCall call(std::string method, const std::string& path) const;
  // Bounded by options().timeout + extra; transport errors name `what`.
  Result<HttpReply> short_call(const std::string& what, const HttpCall& c,
                               std::chrono::milliseconds extra = std::chrono::milliseconds(0)) const;
  // short_call, and an api_error unless the status is 2xx or one of `also_ok`.
  Result<HttpReply> expect_ok(const std::string& what, const HttpCall& c, std::initializer_list<int> also_ok = {},
                              std::chrono::milliseconds extra = std::chrono::milliseconds(0)) const;
  // expect_ok of a call on `ref` (checked first) whose answer has no body of interest.
  Result<void> command(const std::string& what, const std::string& ref, const HttpCall& c,
                       std::initializer_list<int> also_ok = {},
                       std::chrono::milliseconds extra = std::chrono::milliseconds(0)) const;
  // GET of a JSON document about `ref` (checked first unless empty).
  Result<Json> get_json(const std::string& what, const std::string& ref, const std::string& path) const;
  Result<void> output_stream(const std::string& what, HttpCall c, const LogsOptions& o,
                             const OutputSink& on_output) const;
  Result<void> json_stream(const std::string& what, const HttpCall& c, Deadline deadline,
                           const std::function<void(Json)>& on_json, const std::function<bool()>& stop) const;

  EngineOptions o_;
  UnixHttp http_;
};

}  // namespace stele::docker
