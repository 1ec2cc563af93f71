// LaunchSpec: everything an executor needs to start one task. TaskRunner
// hands it to the executor over their socket ({"type":"launch","spec":...});
// the executor keeps it as <sandbox>/task.json (root-only: it holds the env).
// Plain value type; JSON keys are the snake_case field names below.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/result.h"

namespace stele {

// What the "docker" containerizer needs beyond LaunchSpec's common fields
// (the app's container spec, resolved by the agent).
struct DockerLaunch {
  std::string image;
  bool force_pull = false;
  std::string user;                           // from the spec's parameters; "" = the task user's uid:gid
  std::string working_dir;                    // "" = the image's WORKDIR
  std::map<std::string, std::string> labels;  // from the spec's parameters (stele.* are the agent's)
  std::vector<std::string> binds;             // "host:container[:ro]"
  std::string agent_id;                       // the stele.agent label
  std::string socket = "/var/run/docker.sock";
  // Set: the task is a Dockerfile build, not a container -- the image `image`
  // is built from the sandbox's app dir with this Dockerfile (relative to
  // it) and saved to the sandbox (kBuiltImageTar/Id).
  std::string dockerfile;

  friend bool operator==(const DockerLaunch&, const DockerLaunch&) = default;
};

// Where a Dockerfile build leaves the saved image and its id in the sandbox.
inline constexpr const char* kBuiltImageTar = "image.tar";
inline constexpr const char* kBuiltImageId = "image.id";

struct LaunchSpec {
  std::string task_id;                   // "<app name>-r<release>.<seq>.<n>"
  std::string app_id;                    // Marathon path, "/shop/web"
  int64_t release = 0;
  int seq = 0;
  std::optional<std::string> cmd;        // run via /bin/sh -c
  std::vector<std::string> args;         // exec form when cmd is absent
  std::map<std::string, std::string> env;
  double cpus = 1.0;
  double mem = 128.0;                    // MB
  double disk = 0.0;                     // MB (not enforced)
  std::vector<int> ports;
  std::string host;                      // advertised address of the agent
  std::string user;                      // task user name; never resolves to root
  double kill_grace_seconds = 3.0;
  std::string sandbox;                   // absolute path of the sandbox dir
  std::string cgroup_parent;             // "stele/<agent-id>"; empty = no cgroups
  double recovery_timeout_seconds = 0;   // 0 = wait for an agent forever
  std::optional<std::string> work_dir;   // default: sandbox
  // Log records (executor_output.h): the agent's hostname, and the pipeline
  // step (build, test, smoke, release, run) whose output is tagged
  // `stele.<app name>.pipeline` instead of `.stdout`/`.stderr`.
  std::string node;
  std::string step;
  // Credentials of `user`, filled in by TaskRunner from its cache so the
  // executor skips NSS on the launch path (getgrouplist through nss-systemd
  // costs 0.5-5 ms here). Absent: the executor resolves `user` itself.
  std::optional<uint32_t> uid, gid;
  std::vector<uint32_t> groups;
  // Which containerizer runs the task ("process" or "docker"); docker is
  // set exactly when it is "docker".
  std::string containerizer = "process";
  std::optional<DockerLaunch> docker;
};

// A task user, resolved.
struct TaskCredentials {
  std::string user;
  uint32_t uid = 0, gid = 0;
  std::vector<uint32_t> groups;  // supplementary, including gid
};

// NSS lookup of `name` ("" = "stele-task" when it exists, else "nobody").
// Errors: unknown user, or one that resolves to uid 0 (tasks never run as
// root). Blocking (may talk to nss-systemd).
Result<TaskCredentials> resolve_task_user(const std::string& name);

void to_json(Json& j, const LaunchSpec& s);
// Missing fields keep their defaults; wrong types throw nlohmann exceptions
// (use parse_launch_spec() at edges).
void from_json(const Json& j, LaunchSpec& s);

// Parses and checks the fields the executor relies on (task_id is a plain
// file name, sandbox is absolute, cmd or args present). Errors have code 422.
Result<LaunchSpec> parse_launch_spec(const Json& j);

// The task's environment: spec env overlaid by the platform's variables
// (PORT, PORT0..n, PORTS, HOST, MARATHON_APP_ID, MESOS_TASK_ID, STELE_APP_ID,
// STELE_TASK_ID, STELE_RELEASE, MESOS_SANDBOX, MARATHON_APP_RESOURCE_*);
// HOME defaults to the sandbox and PATH to a standard one when the spec env
// does not set them.
std::map<std::string, std::string> task_environment(const LaunchSpec& s);

// True for a name usable as one path component (no '/', not "." or "..").
bool is_safe_task_id(const std::string& id);

}  // namespace stele
