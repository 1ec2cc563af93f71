// The "docker" containerizer: runs the task as a Docker container through the
// Engine API (docker/engine.h), never the docker CLI.
//
// start() checks the engine, makes sure the image is present (pulled only
// with forcePullImage), creates the container -- host network, the task's
// env and ports, memory/cpu limits, labels stele.app/task/release/agent,
// User = the task user's uid:gid unless the spec's parameters name one, no
// restart policy, cgroup parent = the task's own cgroup so metrics and kills
// work as for process tasks -- starts it, then forks a watcher. The watcher
// is the executor's child (its pid is the task's pid): it streams the
// container's output (logs?follow, from the container's start, so nothing
// written before it connected is lost) into the task's stdout/stderr pipes
// and exits with the container's exit code once the container stopped. As
// the executor's child it survives agent restarts with the executor.
//
// signal(): SIGTERM and SIGKILL become the engine's kill with that signal;
// the executor's own grace timer sends the SIGKILL (so no call blocks for
// the grace period). collect() inspects the container (exit code, OOM
// kill) and removes it. Used from the executor's single thread only.
#pragma once
#include <set>
#include <string>
#include <vector>

#include "agent/containerizers/containerizer.h"
#include "docker/api_types.h"
#include "docker/engine.h"

namespace stele {

class DockerContainerizer final : public Containerizer {
 public:
  const char* name() const override { return "docker"; }
  Result<StartedTask> start(const TaskLaunch& launch) override;
  void signal(const StartedTask& task, int sig) override;
  TaskExit collect(StartedTask& task, int wait_status) override;

 private:
  Result<void> ensure_image(const docker::Engine& engine, const DockerLaunch& d, std::string& warning) const;
  void remove_container(const std::string& id);

  docker::EngineOptions engine_options_;
  std::string cgroup_relpath_;  // "<parent>/<task>" when the container lives in the task's cgroup
};

// The name of a task's container.
inline std::string container_name(const std::string& task_id) { return "stele-" + task_id; }

// The container a task runs as (pure; unit-tested): name container_name(),
// host network, env with MESOS_SANDBOX/HOME pointing at the sandbox mounted
// at /mnt/mesos/sandbox, limits from the spec, the stele.* labels. `user` is
// "uid:gid" or the spec's own user.
docker::ContainerConfig container_config(const TaskLaunch& launch, const std::string& user);

// The Dockerfile build a build task (DockerLaunch::dockerfile set) asks the
// engine for (pure; unit-tested): the app dir as context, the image tag, the
// task's memory and cpu shares as the build's limits, stele.app/release
// labels, the context tar written in the sandbox.
docker::BuildOptions build_options(const LaunchSpec& s);

// The user the container runs as, and a warning when the spec's parameters
// override the task user.
std::string container_user(const TaskLaunch& launch, std::string* warning);

// Label keys of Stele's containers.
inline constexpr const char* kLabelApp = "stele.app";
inline constexpr const char* kLabelTask = "stele.task";
inline constexpr const char* kLabelRelease = "stele.release";
inline constexpr const char* kLabelAgent = "stele.agent";

// Of `containers`, those of agent `agent_id` whose task is not in `known`
// (their executor is gone): never another agent's, never a known task's.
std::vector<docker::ContainerSummary> orphan_containers(const std::vector<docker::ContainerSummary>& containers,
                                                        const std::string& agent_id,
                                                        const std::set<std::string>& known_tasks);

// Blocking: the engine's containers labelled stele.agent=<agent_id>.
Result<std::vector<docker::ContainerSummary>> agent_containers(const docker::Engine& engine,
                                                               const std::string& agent_id);
// Blocking: force-removes `containers`; returns the task ids (or container
// ids) of those removed.
std::vector<std::string> remove_containers(const docker::Engine& engine,
                                           const std::vector<docker::ContainerSummary>& containers);

}  // namespace stele
