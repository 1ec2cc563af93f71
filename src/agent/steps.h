// One-off step tasks (docs/pipeline.md "Agent side"): the launch command's
// "step" object and the slug a successful build uploads. (Their output
// travels as log records, like every task's: executor_output.h, shipper.h.)
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
  std::string dockerfile;  // build: a Dockerfile build of the source (docker containerizer) ...
  std::string tag;         // ... tagged so; the saved image is uploaded instead of a slug
  bool is_build() const { return kind == "build"; }
  bool is_docker_build() const { return is_build() && !dockerfile.empty(); }
};

// The launch command's "step", or nullopt when it has none. Errors (code
// 422) name the field.
Result<std::optional<StepSpec>> parse_step(const Json& launch_command);

// The shell command a step runs: its stderr merged into stdout.
std::string step_shell_command(const std::string& cmd);

// Packs <app_dir> with make_slug into `out_dir` and uploads it with
// PUT <server>/api/v1/artifacts/<digest> (retried on network errors and
// 5xx). Blocking: call through offload().
struct UploadedSlug {
  std::string digest;
  uint64_t size = 0;
};
Result<UploadedSlug> pack_and_upload(const std::string& app_dir, const std::string& out_dir,
                                     const std::string& server_url, const net::Headers& headers);
// The same for a file made elsewhere (a Docker build's saved image):
// hashed, then uploaded under its sha256.
Result<UploadedSlug> upload_file(const std::string& path, const std::string& server_url, const net::Headers& headers);

}  // namespace stele::agent
