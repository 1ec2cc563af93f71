// Value types of the Engine API calls Stele makes, and their JSON mapping.
// Pure functions: unit-tested without an engine.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/result.h"

namespace stele::docker {

// What POST /containers/create gets. Containers always use the host network
// (design.md "Listeners and security"); Stele, not Docker, decides restarts,
// so no restart policy is set.
struct ContainerConfig {
  std::string name;   // container name, e.g. "stele-web-r3.0.1"
  std::string image;  // reference or "sha256:..." id
  // The command in exec form; empty keeps the image's CMD. When shell_cmd is
  // set instead, the container runs ["/bin/sh", "-c", shell_cmd].
  std::vector<std::string> cmd;
  std::optional<std::vector<std::string>> entrypoint;  // set: replaces the image's
  std::string shell_cmd;
  std::vector<std::string> env;  // "K=V"
  std::map<std::string, std::string> labels;
  std::string user;         // "uid:gid"; empty keeps the image's USER
  std::string working_dir;  // empty keeps the image's WORKDIR
  int64_t memory_bytes = 0;  // 0: no limit; swap limited to the same amount
  int64_t cpu_shares = 0, cpu_quota_us = 0, cpu_period_us = 0;  // 0: unset
  std::vector<std::string> binds;  // "host:container[:ro]"
  std::string cgroup_parent;       // e.g. "/stele/<agent>/<task>"; empty: the engine's default
  std::string stop_signal;         // e.g. "SIGTERM"; empty keeps the image's
  std::optional<int> stop_timeout_s;
};

// GET /containers/{id}/json, the parts Stele uses.
struct ContainerInfo {
  std::string id, name, image_id;
  std::string status;  // "created", "running", "paused", "restarting", "removing", "exited", "dead"
  bool running = false;
  int pid = 0;  // host pid of the container's init, 0 when not running
  int exit_code = 0;
  bool oom_killed = false;
  std::string error;  // the engine's reason when the start failed
  std::string started_at, finished_at;  // RFC 3339 as the engine gives them ("0001-01-01T00:00:00Z": never)
  std::map<std::string, std::string> labels;
};

// One row of GET /containers/json.
struct ContainerSummary {
  std::string id, name, image_id, state;
  std::map<std::string, std::string> labels;
};

struct ImageInfo {
  std::string id;  // "sha256:..."
  std::vector<std::string> repo_tags;
  int64_t size = 0;
};

Json create_body(const ContainerConfig& c);
Result<ContainerInfo> parse_container_info(const Json& j);
Result<std::vector<ContainerSummary>> parse_container_list(const Json& j);
Result<ImageInfo> parse_image_info(const Json& j);

// The filters query value selecting containers by labels ("k" or "k=v").
std::string label_filters(const std::vector<std::string>& labels, const std::string& type = "");

// A failed API answer as an Error naming what was attempted:
// "docker: create container stele-web: No such image: stele/web:r3 (404)".
// code is the HTTP status. The message comes from the body's "message"
// field, else its text, else "HTTP <status>".
Error api_error(const std::string& what, int status, const std::string& body);

// Refuses names that could not be a container name/id or image reference
// (and so could smuggle a path or query into a request target).
Result<void> check_ref(const std::string& what, const std::string& ref);

}  // namespace stele::docker
