// Internal: the Agent's state (see agent.h for the contract). agent.cpp
// holds the server conversation, statuses, health and plain launches;
// agent_launch.cpp launches from artifacts and runs one-off steps.
//
// Everything runs on the io thread; blocking work goes to `workers`
// through offload().
#pragma once
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include <utility>  // before Asio with g++ 12
#include <boost/asio/thread_pool.hpp>

#include "agent/agent.h"
#include "agent/app_tree.h"
#include "agent/checks.h"
#include "docker/engine.h"
#include "agent/health.h"
#include "logs/shipper.h"
#include "logs/spool.h"
#include "net/http_client.h"
#include "agent/slug_cache.h"
#include "agent/steps.h"
#include "agent/task_runner.h"
#include "common/clock.h"
#include "common/spec.h"
#include "net/signal.h"

namespace stele::agent {

// A step task from its launch until its terminal status is enqueued.
struct StepRun {
  StepSpec spec;
  std::string sandbox;
  double kill_grace_seconds = 3;
  bool timer_armed = false;
  bool finishing = false;  // terminal status seen: records (and slug) under way
};

struct Agent::Impl {
  boost::asio::io_context& io;
  AgentOptions opts;
  TaskRunner runner;
  net::AsyncSignal updates_signal;
  std::deque<Json> pending_updates;             // not yet acknowledged by the server
  std::map<std::string, Json> launches;         // task id -> launch command (persisted)
  std::map<std::string, std::unique_ptr<TaskHealth>> health;
  std::map<std::string, std::string> kill_reasons;  // task id -> why the agent killed it
  std::map<std::string, TaskStatus> last_status;
  SystemClock clock;
  int64_t last_contact_ms = 0;
  bool registered = false;
  bool join_refused = false;  // the last registration got 401: retry slower
  bool fenced = false;
  bool stopped = false;
  int session = 0;  // bumps on every registration; loops of older sessions end
  // Launching from artifacts, and steps (agent_launch.cpp).
  boost::asio::thread_pool workers{2};
  SlugCache slugs;
  std::set<std::string> preparing;  // fetching / unpacking before launch
  std::set<std::string> cancelled;  // killed while preparing
  std::map<std::string, std::unique_ptr<StepRun>> steps;
  BuildCacheLimits build_cache_limits;
  logs::Shipper shipper;  // task records -> every server's forward input
  std::unique_ptr<AgentChecks> checks;  // subscription checks (created in start())
  // Why the Docker engine cannot be used ("" = it answered at start; the
  // agent then offers the "docker" containerizer). Checked in start().
  std::string docker_unavailable = "not checked yet";

  Impl(boost::asio::io_context& i, AgentOptions o);

  std::string url(const std::string& path) const { return opts.server_url + path; }
  net::Headers headers() const;
  std::filesystem::path launch_dir() const { return std::filesystem::path(opts.data_dir) / "launches"; }
  std::string build_cache_dir() const { return opts.data_dir + "/build-cache"; }

  // agent.cpp: statuses, health, commands, the server conversation
  Json status_json(const TaskStatus& st) const;
  void enqueue(Json update);
  void on_status(TaskStatus st);
  void start_health(const TaskStatus& st);
  void handle_command(const std::string& data);
  void kill(const std::string& id, double grace);
  void forget(const std::string& id);
  void load_launches();
  Json registration() const;
  // At start, before any launch: the engine's availability, and removal of
  // this agent's containers whose task no executor runs any more.
  void check_docker(const std::set<std::string>& known_tasks);
  docker::EngineOptions docker_engine_options() const;
  static void log_removed_orphans(const std::vector<std::string>& tasks);
  net::awaitable<void> container_sweep_loop();
  net::awaitable<bool> register_once();
  void next_server();
  // Logs and metrics: the leader's forward input (registration answer), then
  // every other server's ("forwardPeers", registration and heartbeats).
  void ship_to(const Json& answer);
  logs::ShipDestination primary_forward;
  bool follow_leader(const net::ClientResponse& r);
  int failed_heartbeats = 0;
  net::awaitable<void> main_loop();
  void check_fencing();
  std::string heartbeat_body() const;
  uint64_t router_version = 0;  // the route table version this host's router runs
  void on_routes(const std::string& data);
  void on_collected_images(const std::string& data);
  net::awaitable<void> remove_images(std::vector<std::string> ids);
  std::set<std::string> images_removed;  // collected images this agent's engine no longer has
  std::string status_body(Json batch) const;
  net::awaitable<void> heartbeat_loop(int my_session);
  net::awaitable<void> command_loop(int my_session);
  net::awaitable<void> status_loop();
  net::awaitable<void> gc_loop();
  // Collects task and node metrics every metrics_interval_seconds into the
  // agent's metric spool (<data>/metrics-spool), which the shipper sends.
  net::awaitable<void> metrics_loop();
  std::shared_ptr<logs::SpoolWriter> metrics_spool;  // used by one worker job at a time

  // agent_launch.cpp
  void launch(const Json& cmd);
  LaunchSpec launch_spec(const Json& cmd, const AppSpec& spec) const;
  std::function<Result<std::string>()> tree_work(const std::string& slug, const std::string& app_dir,
                                                const std::string& user, const std::optional<StepSpec>& step) const;
  net::awaitable<void> prepare_and_launch(LaunchSpec ls, std::string artifact, std::string image,
                                          std::optional<StepSpec> step);
  // The engine has `image`, or it is loaded from the saved image `artifact`
  // (fetched by digest) and its id checked.
  net::awaitable<Result<void>> ensure_image(std::string image, std::string artifact, std::string task_id);
  void track_step(const std::string& id, const StepSpec& spec, double kill_grace_seconds);
  bool on_step_status(const TaskStatus& st);
  net::awaitable<void> step_timeout(std::string id, int64_t started_ms, double seconds, double grace);
  net::awaitable<void> finish_step(TaskStatus st);
  net::awaitable<Json> upload_build(std::string app_dir, Json status);
  net::awaitable<Json> upload_image(std::string sandbox, Json status);
  net::awaitable<void> trim_cache(std::string key);
  std::set<std::string> build_caches_in_use() const;
  void recover_launches(const std::vector<std::string>& recovered);
  void forget_launch(const std::string& id);
  // The state the server may see at registration: a step's terminal status
  // is held back until its output and slug are delivered.
  TaskStatus visible_status(const TaskStatus& st) const;
};

}  // namespace stele::agent
