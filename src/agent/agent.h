// Agent: one per host. Registers with the server, heartbeats, follows the
// command stream (launch, kill), owns executors through the TaskRunner, runs
// app health checks and reports acknowledged status updates.
//
// Runs on one io_context thread. Fencing (design.md): when no server was
// reached for agent_timeout, every task is killed.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <utility>
#include <boost/asio/io_context.hpp>

#include "common/json.h"
#include "scheduler/scheduler.h"

namespace stele::agent {

struct AgentOptions {
  std::string server_url;       // the server in use: "http://127.0.0.1:7070"
  // Every server (`--server a,b,c`); with several the agent registers with
  // whichever leads, following followers' redirects, and moves on when the
  // one in use stops answering. Empty: server_url alone.
  std::vector<std::string> servers;
  std::string data_dir;
  std::string id;               // stable; persisted in data_dir/agent-id when generated
  std::string hostname;
  std::string advertise_addr;   // empty: the server uses the address it sees
  sched::PortRange ports{31000, 32000};
  sched::Resources resources;
  std::map<std::string, std::string> attributes;
  std::vector<std::string> subscriptions;
  std::string task_user = "stele-task";
  double agent_timeout_seconds = 30;
  double recovery_timeout_seconds = 900;
  std::string docker_socket = "/var/run/docker.sock";  // Engine API of the docker containerizer
  std::string token;            // the join token, sent as the bearer token on every request
  std::string stele_binary;     // for spawning executors
  // Collectors (collectors.h): task cgroups and the node, every this many
  // seconds, shipped to the server as metric records; 0 = off.
  double metrics_interval_seconds = 10;
  // A router on this host (`stele agent --router`): its address, told at
  // registration; the server then sends route tables on the command stream
  // ("routes"): apply_routes hands one to the router (false: refused) and,
  // once router_applied() shows it in force, the agent acknowledges it with
  // a heartbeat sent at once. Its access records go to
  // <data_dir>/router-spool, shipped like task output.
  std::string router_address;
  std::function<bool(const Json&)> apply_routes;
  std::function<uint64_t()> router_applied;
};

class Agent {
 public:
  Agent(boost::asio::io_context& io, AgentOptions opts);
  ~Agent();
  // Recovers executors and starts the loops.
  void start();
  // Stops the loops; tasks keep running (their executors wait for an agent).
  void stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Reads or creates the agent id in data_dir/agent-id.
std::string load_or_create_agent_id(const std::string& data_dir, const std::string& given);
// Detects cpus, mem (MB) and disk (MB, of data_dir's filesystem).
sched::Resources detect_resources(const std::string& data_dir);

}  // namespace stele::agent
