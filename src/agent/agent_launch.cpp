// The agent's launches: plain ones straight to the TaskRunner; those with an
// artifact fetched and unpacked into <sandbox>/app first; one-off steps with
// their output shipped, a timeout, and (build) the slug uploaded before the
// terminal status goes out.
//
// Sandbox ordering: TaskRunner::stage() creates the sandbox (root, 0750,
// nothing of the task's yet) and reports "staging"; the tree is unpacked
// into <sandbox>/app on a worker thread; only then does launch() hand the
// spec to an executor, which opens the sandbox to the task's group.
#include <fstream>
#include <utility>  // before Asio with g++ 12

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "agent/agent_impl.h"
#include "net/offload.h"

namespace stele::agent {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

std::string string_field(const Json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

std::string describe(const Error& e) {
  std::string out = e.message;
  for (const auto& d : e.details) out += "; " + d.path + ": " + (d.errors.empty() ? "" : d.errors.front());
  return out;
}

double kill_grace(const Json& cmd) {
  auto spec = parse_app_spec(cmd.value("spec", Json::object()));
  return spec ? spec->task_kill_grace_period_seconds : 3.0;
}

// What a worker prepares in the sandbox before the executor starts.
struct TreeJob {
  std::string slug_path;  // "" = an empty app dir
  std::string app_dir;
  std::string user;       // owner of the tree when task_owned (steps)
  bool task_owned = false;
  std::string cache_root, cache_key;  // build cache, when cache_key is set
  std::set<std::string> caches_in_use;
  BuildCacheLimits limits;
};

// Blocking. Returns the build cache's path ("" without one).
Result<std::string> prepare_tree(const TreeJob& j) {
  std::optional<TaskCredentials> owner;
  if (j.task_owned) {
    auto c = resolve_task_user(j.user);
    if (!c) return fail(c.error());
    owner = *c;
  }
  if (auto r = install_app_tree(j.slug_path, j.app_dir, owner); !r) return fail(r.error());
  if (j.cache_key.empty() || !owner) return std::string();
  return prepare_build_cache(j.cache_root, j.cache_key, *owner, j.caches_in_use, j.limits);
}

// The container part of a docker task's launch: the app's container spec,
// its honoured CLI parameters spread over the fields they set.
DockerLaunch docker_launch(const ContainerSpec& c, const std::string& agent_id, std::map<std::string, std::string>& env) {
  DockerLaunch d;
  d.image = c.image;
  d.force_pull = c.force_pull_image;
  d.agent_id = agent_id;
  for (const auto& p : c.parameters) {
    auto eq = p.value.find('=');
    if (p.key == "user" || p.key == "u") d.user = p.value;
    else if (p.key == "workdir" || p.key == "w") d.working_dir = p.value;
    else if (p.key == "label" || p.key == "l") d.labels[p.value.substr(0, eq)] = p.value.substr(eq + 1);
    else if (p.key == "env" || p.key == "e") env.try_emplace(p.value.substr(0, eq), p.value.substr(eq + 1));
  }
  for (const auto& v : c.volumes) d.binds.push_back(v.host_path + ":" + v.container_path + (v.read_only ? ":ro" : ""));
  return d;
}

}  // namespace

LaunchSpec Agent::Impl::launch_spec(const Json& cmd, const AppSpec& spec) const {
  const Json task = cmd.value("task", Json::object());
  LaunchSpec ls;
  ls.task_id = task.value("id", "");
  ls.app_id = spec.id;
  ls.release = task.value("release", int64_t(0));
  ls.seq = task.value("seq", 0);
  ls.cmd = spec.cmd;
  ls.args = spec.args;
  ls.env = spec.env;
  ls.cpus = spec.cpus;
  ls.mem = spec.mem;
  ls.disk = spec.disk;
  ls.ports = task.value("ports", std::vector<int>{});
  ls.host = task.value("host", opts.advertise_addr);
  ls.user = spec.user.value_or(opts.task_user);
  ls.kill_grace_seconds = spec.task_kill_grace_period_seconds;
  ls.recovery_timeout_seconds = opts.recovery_timeout_seconds;
  ls.node = opts.hostname;
  ls.step = task.value("kind", "");
  ls.containerizer = containerizer_of(spec);
  if (spec.container) {
    ls.docker = docker_launch(*spec.container, opts.id, ls.env);
    ls.docker->socket = opts.docker_socket;
  }
  return ls;
}

// The blocking job that fills <sandbox>/app (built outside the coroutine:
// g++ 12 miscompiles aggregate temporaries in coroutine frames).
std::function<Result<std::string>()> Agent::Impl::tree_work(const std::string& slug, const std::string& app_dir,
                                                            const std::string& user,
                                                            const std::optional<StepSpec>& step) const {
  TreeJob job;
  job.slug_path = slug;
  job.app_dir = app_dir;
  job.user = user;
  job.task_owned = step.has_value();
  if (step && step->is_build()) job.cache_key = step->cache_key;
  job.cache_root = build_cache_dir();
  job.caches_in_use = build_caches_in_use();
  job.limits = build_cache_limits;
  return [job] { return prepare_tree(job); };
}

void Agent::Impl::launch(const Json& cmd) {
  const Json task = cmd.value("task", Json::object());
  std::string id = task.value("id", "");
  if (id.empty() || launches.count(id)) return;  // re-sent command for a task we have
  auto spec = parse_app_spec(cmd.value("spec", Json::object()));
  if (!spec) {
    enqueue({{"taskId", id}, {"state", "failed"}, {"reason", "invalid app spec: " + spec.error().message}});
    return;
  }
  auto step = parse_step(cmd);
  if (!step) {
    enqueue({{"taskId", id}, {"state", "failed"}, {"reason", describe(step.error())}});
    return;
  }
  launches[id] = cmd;
  fs::create_directories(launch_dir());
  std::ofstream(launch_dir() / (id + ".json")) << cmd.dump();
  LaunchSpec ls = launch_spec(cmd, *spec);
  std::string artifact = string_field(cmd, "artifact");
  // With an image, the artifact is that image saved by a Dockerfile build:
  // loaded into the engine when it lacks it, never unpacked.
  std::string image = ls.docker ? string_field(cmd, "image") : std::string();
  if (*step) {
    ls.cmd = step_shell_command((*step)->cmd);
    ls.args.clear();
    if ((*step)->is_build()) artifact = (*step)->source;
    if ((*step)->is_docker_build()) {
      if (!ls.docker) {
        enqueue({{"taskId", id}, {"state", "failed"}, {"reason", "a Dockerfile build needs an app container spec"}});
        return;
      }
      ls.docker->dockerfile = (*step)->dockerfile;
      ls.docker->image = (*step)->tag;
      image.clear();
    }
    track_step(id, **step, ls.kill_grace_seconds);
  } else if (artifact.empty()) {
    return runner.launch(std::move(ls));
  }
  preparing.insert(id);
  asio::co_spawn(io, prepare_and_launch(std::move(ls), std::move(artifact), std::move(image), std::move(*step)),
                 asio::detached);
}

net::awaitable<Result<void>> Agent::Impl::ensure_image(std::string image, std::string artifact, std::string task_id) {
  const docker::EngineOptions eo = docker_engine_options();
  auto has = [eo, image] { return docker::Engine(eo).image_exists(image); };
  auto present = co_await net::offload(workers, std::move(has));
  if (!present) co_return fail(present.error());
  if (*present) co_return Result<void>();
  auto tar = co_await slugs.acquire(artifact, task_id);  // verified: its sha256 is the digest
  if (!tar) co_return fail("cannot fetch the saved image " + artifact + ": " + tar.error().message);
  spdlog::info("docker: loading image {} of task {} from the artifact store ({})", image, task_id, artifact);
  auto load = [eo, path = *tar, image]() -> Result<void> {
    auto id = docker::Engine(eo).load(path, docker::deadline_in(std::chrono::minutes(10)));
    if (!id) return fail(id.error());
    if (*id != image) return fail("the saved image " + path + " loaded as " + *id + ", not the release's " + image);
    return {};
  };
  co_return co_await net::offload(workers, std::move(load));
}

net::awaitable<void> Agent::Impl::prepare_and_launch(LaunchSpec ls, std::string artifact, std::string image,
                                                     std::optional<StepSpec> step) {
  const std::string id = ls.task_id;
  auto sandbox = runner.stage(id);  // reports "staging", or "failed" itself
  if (!sandbox) {
    preparing.erase(id);
    co_return;
  }
  Result<std::string> slug = std::string();
  Result<void> loaded;
  if (!image.empty()) {
    loaded = co_await ensure_image(image, artifact, id);
    ls.docker->image = image;  // the exact image, not a tag that may since point elsewhere
  } else if (!artifact.empty()) {
    slug = co_await slugs.acquire(artifact, id);
  }
  if (stopped) co_return;
  Result<std::string> cache = std::string();
  if (slug && image.empty()) {
    auto work = tree_work(*slug, *sandbox + "/app", ls.user, step);
    cache = co_await net::offload(workers, std::move(work));
  }
  preparing.erase(id);
  if (stopped) co_return;
  if (cancelled.erase(id)) {
    runner.abandon_staged(id, "killed", "killed on request", "killed before it started");
  } else if (!loaded) {
    runner.abandon_staged(id, "failed", "cannot provide image " + image + ": " + loaded.error().message, "");
  } else if (!slug) {
    runner.abandon_staged(id, "failed", "cannot fetch artifact " + artifact + ": " + slug.error().message, "");
  } else if (!cache) {
    runner.abandon_staged(id, "failed", "cannot prepare the app directory: " + cache.error().message, "");
  } else if (!image.empty()) {
    runner.launch(std::move(ls));
  } else {
    ls.work_dir = *sandbox + "/app";
    if (!cache->empty()) ls.env["STELE_CACHE_DIR"] = *cache;
    runner.launch(std::move(ls));
  }
}

// ---- steps

void Agent::Impl::track_step(const std::string& id, const StepSpec& spec, double kill_grace_seconds) {
  auto run = std::make_unique<StepRun>();
  run->spec = spec;
  run->sandbox = runner.sandbox_dir(id);
  run->kill_grace_seconds = kill_grace_seconds;
  steps[id] = std::move(run);
}

// Steps get no health checks; their terminal status waits for the output
// (and a build's slug) to reach the server. True when `st` was handled.
bool Agent::Impl::on_step_status(const TaskStatus& st) {
  auto it = steps.find(st.task_id);
  if (it == steps.end()) return false;
  StepRun& run = *it->second;
  if (st.state == "running" && !run.timer_armed && run.spec.timeout_seconds > 0) {
    run.timer_armed = true;
    int64_t started = st.started_ms ? st.started_ms : wall_ms();
    asio::co_spawn(io, step_timeout(st.task_id, started, run.spec.timeout_seconds, run.kill_grace_seconds),
                   asio::detached);
  }
  if (!is_terminal_state(st.state)) {
    enqueue(status_json(st));
  } else if (!run.finishing) {
    run.finishing = true;
    asio::co_spawn(io, finish_step(st), asio::detached);
  }
  return true;
}

// Counted from the task's start (wall clock: a restarted agent re-arms it
// from the executor's started_ms).
net::awaitable<void> Agent::Impl::step_timeout(std::string id, int64_t started_ms, double seconds, double grace) {
  int64_t wait_ms = std::max<int64_t>(0, started_ms + int64_t(seconds * 1000) - wall_ms());
  co_await net::sleep_for(std::chrono::milliseconds(wait_ms));
  auto it = steps.find(id);
  if (stopped || it == steps.end() || it->second->finishing) co_return;
  spdlog::warn("step {} timed out after {} s: killing it", id, seconds);
  kill_reasons[id] = fmt::format("timed out after {} s", seconds);
  runner.kill(id, grace);
}

net::awaitable<void> Agent::Impl::finish_step(TaskStatus st) {
  const std::string id = st.task_id;
  auto it = steps.find(id);
  if (it == steps.end()) co_return;
  StepSpec spec = it->second->spec;
  std::string sandbox = it->second->sandbox, app_dir = sandbox + "/app";
  // The step's records (tag stele.<app>.pipeline) reach the log store before
  // the server hears that the step ended, so the release log is complete
  // when the pipeline moves on. A server that does not ack them within the
  // bound gets the status anyway (the records follow once it acks).
  if (shipper.has_destination() && !co_await shipper.drained(id, std::chrono::seconds(30)))
    spdlog::warn("step {}: its output is not all shipped yet; reporting its end anyway", id);
  if (stopped || !steps.count(id)) co_return;
  Json status = status_json(st);
  if (spec.is_docker_build() && st.state == "finished")
    status = co_await upload_image(sandbox, std::move(status));
  else if (spec.is_build() && st.state == "finished")
    status = co_await upload_build(app_dir, std::move(status));
  if (spec.is_build() && !spec.cache_key.empty()) co_await trim_cache(spec.cache_key);
  if (stopped || !steps.count(id)) co_return;
  enqueue(std::move(status));
}

net::awaitable<Json> Agent::Impl::upload_build(std::string app_dir, Json status) {
  auto job = [app_dir, dir = slugs.dir(), server = opts.server_url, h = headers()] {
    return pack_and_upload(app_dir, dir, server, h);
  };
  auto up = co_await net::offload(workers, std::move(job));
  if (up) {
    status["artifact"] = up->digest;
    status["artifactSize"] = up->size;
  } else {
    status["state"] = "failed";
    status["reason"] = "slug upload failed: " + up.error().message;
  }
  co_return status;
}

// A Dockerfile build's saved image (containerizers/docker.cpp) into the
// artifact store; its id goes with the status.
net::awaitable<Json> Agent::Impl::upload_image(std::string sandbox, Json status) {
  auto job = [sandbox, server = opts.server_url, h = headers()]() -> Result<std::pair<UploadedSlug, std::string>> {
    auto id = read_file(sandbox + "/" + kBuiltImageId);
    if (!id || id->empty()) return fail(std::string("the build left no image id"));
    auto up = upload_file(sandbox + "/" + kBuiltImageTar, server, h);
    if (!up) return fail(up.error());
    return std::make_pair(*up, *id);
  };
  auto up = co_await net::offload(workers, std::move(job));
  if (up) {
    status["artifact"] = up->first.digest;
    status["artifactSize"] = up->first.size;
    status["image"] = up->second;
  } else {
    status["state"] = "failed";
    status["reason"] = "image upload failed: " + up.error().message;
  }
  co_return status;
}

net::awaitable<void> Agent::Impl::trim_cache(std::string key) {
  auto job = [dir = build_cache_dir(), key, limits = build_cache_limits] { return trim_build_cache(dir, key, limits); };
  co_await net::offload(workers, std::move(job));
}

std::set<std::string> Agent::Impl::build_caches_in_use() const {
  std::set<std::string> keys;
  for (const auto& [id, run] : steps)
    if (run->spec.is_build() && !run->spec.cache_key.empty()) keys.insert(run->spec.cache_key);
  return keys;
}

TaskStatus Agent::Impl::visible_status(const TaskStatus& st) const {
  auto it = steps.find(st.task_id);
  if (it == steps.end() || !is_terminal_state(st.state)) return st;
  TaskStatus held = st;
  held.state = "running";
  held.reason.clear();
  held.exit_code.reset();
  return held;
}

// After a restart: re-pins the artifacts of tasks still running and resumes
// their steps -- the records are shipped from the spool cursor (the server skips what it
// has), the timeout from the executor's started_ms, and the terminal
// handling (a build's slug is packed and uploaded then) once the recovered
// executor reports its status.
void Agent::Impl::recover_launches(const std::vector<std::string>& recovered) {
  for (const auto& id : recovered) {
    auto it = launches.find(id);
    if (it == launches.end()) continue;
    const Json& cmd = it->second;
    std::string artifact = string_field(cmd, "artifact");
    auto step = parse_step(cmd);
    if (step && *step) {
      track_step(id, **step, kill_grace(cmd));
      if ((*step)->is_build()) artifact = (*step)->source;
    }
    slugs.pin(artifact, id);
  }
}

void Agent::Impl::forget_launch(const std::string& id) {
  steps.erase(id);
  slugs.unpin(id);
  cancelled.erase(id);
}

}  // namespace stele::agent
