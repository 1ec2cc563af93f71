// ApiServer: the control plane's HTTP face — native /api/v1, Marathon /v2,
// the agent protocol and the event streams — over one Cluster. Handlers are
// thin: they parse, call the Cluster, and render.
//
// Runs on the server's single io_context thread, like the Cluster it owns a
// reference to.
#pragma once
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>

#include "deploy/cluster.h"
#include "logs/log_store.h"
#include "metrics/service.h"
#include "monitor/service.h"
#include "pipeline/pipeline.h"
#include "net/http.h"
#include "net/router.h"
#include "net/signal.h"
#include "store/store.h"

namespace stele::api {

// Who leads, when several servers share an etcd store (store/election.h).
struct LeaderView {
  bool self = true;  // this server leads
  std::string id;    // the leader's name; "" while none is elected
  std::string url;   // its API: "http://10.213.0.1:7070"
  std::string since; // ISO time it was elected
};

struct ApiOptions {
  std::string token;          // the bootstrap token: an admin token named "bootstrap"
  // Mutating calls (and always_auth ones) need a token; false on loopback-only
  // listeners unless `stele server --require-token`. A presented token is
  // checked either way.
  bool require_token = false;
  // What agents present on /api/v1/agent/... (and artifacts): `--join-token`,
  // else <data-dir>/join-token. Admin tokens are accepted there too.
  std::string join_token;
  std::string version = "0.1.0";
  std::string leader;         // "host:port" this server answers as
  // Leadership (unset: this server always leads, as with SQLite). A follower
  // answers /ping, /version, /v2/leader, /v2/info and /api/v1/leader itself
  // and redirects every other request to the leader (307, the same target;
  // X-Stele-Leader names its URL), or 503 while no leader is known.
  std::function<LeaderView()> leadership;
  // This server's name among the servers (its --hostname): followers report
  // what they hold under it (routes_replication.cpp).
  std::string server_id;
  std::string advertise_url;  // this server's API as the others reach it (--advertise-url)
  // A follower whose last report is older than this is not counted when a
  // release waits for every live server to hold its artifact.
  int64_t replica_timeout_ms = 5000;
  std::chrono::milliseconds replicate_interval{1000};
  // Logs and metrics to every server (design.md): this server's forward
  // input as the others reach it, reported to the leader, which names every
  // server's to agents ("forwardPeers" in registration and heartbeat
  // answers). `relay_peers` (io thread) gets the other servers' inputs, for
  // the relay of what external senders give this server; a server is named
  // until it has not reported for forward_forget_ms.
  std::string forward_advertise;
  std::function<void(const std::vector<std::string>&)> relay_peers;
  int64_t forward_forget_ms = 600'000;
  std::chrono::milliseconds tick_interval{250};
  std::string artifacts_dir;  // content-addressed artifact store; empty = no artifact routes
  // The pipeline runs when both the artifact store and these are set.
  std::string git_dir;        // bare repositories, <git_dir>/<app name>.git
  std::string pipeline_dir;   // pipeline temp trees (release logs are in `logs`)
  std::string webhook_secret; // X-Hub-Signature-256 key for /api/v1/hooks/git; empty = token auth
  std::string server_url;     // how the post-receive hook reaches this API
  std::string tls_ca;         // CA file the hook verifies an https server_url with ("" = none)
  std::string stele_binary;   // the binary the hook runs
  pipeline::PipelineOptions pipeline;  // build limits, timeouts, retention (dirs filled in from above)
  // The log store /api/v1/logs queries (owned by main, outlives the server);
  // nullptr = /api/v1/logs answers 503.
  logs::LogStore* logs = nullptr;
  // The metrics subsystem Graphite's API and /metrics read (owned by main);
  // nullptr = those routes answer 503.
  metrics::MetricsService* metrics = nullptr;
  // The routers fed by route_table() ("routers" of GET /api/v1/routes:
  // [{"node", "address", "appliedVersion"}]); empty = none runs.
  std::function<Json()> routers;
  // Monitoring (checks, handlers, silences, states; owned by main);
  // nullptr = those routes answer 503.
  monitor::MonitorService* monitor = nullptr;
};

class ApiServer {
 public:
  ApiServer(boost::asio::io_context& io, deploy::Cluster& cluster, store::Store& store, ApiOptions opts);
  ~ApiServer();
  const net::Router& router() const { return router_; }
  // Starts the reconciliation ticker (and runs a tick soon after changes).
  void start();
  // A follower: copies the leader's artifacts and git repositories until
  // this server leads (routes_replication.cpp).
  void start_replication();
  void stop();
  // Asks for a reconciliation as soon as possible.
  void kick();
  // The routers' table (deploy/route_view.h) with a "version" that grows
  // whenever its content changes. Io thread.
  Json route_table();
  // The table versions the routers of connected agents (`stele agent
  // --router`) acknowledged, one per router.
  std::vector<uint64_t> agent_router_versions() const;
  // When route_table() first had that version's content (cluster clock, ms);
  // 0 for versions too old to be remembered.
  int64_t route_table_computed_ms(uint64_t version) const;
  // An event stored by another subsystem (monitoring): to the streams.
  void publish_event(const Json& e);
  // Wakes agent `id`'s command stream (new check definitions or run requests).
  void notify_agent(const std::string& id);

  struct Impl;

 private:
  net::Router router_;
  std::unique_ptr<Impl> impl_;
};

// What monitoring watches, read from the cluster: agents with their
// heartbeats and subscriptions, running app instances with their probe
// targets (monitor/service.h).
monitor::Inventory monitor_inventory(const deploy::Cluster& c);
std::vector<monitor::AgentEntity> monitor_agents(const deploy::Cluster& c);
// A running app instance (not being killed): what probes report on.
bool monitor_task_running(const deploy::Cluster& c, const std::string& task_id);

}  // namespace stele::api
