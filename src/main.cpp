// The one binary: wires the subsystems into the roles of design.md —
// server, agent, executor, up, down — and the CLI client verbs.
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <pwd.h>
#include <spawn.h>
extern char** environ;
#include <sys/wait.h>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>
#include <spdlog/spdlog.h>

#include "agent/agent.h"
#include "agent/executor.h"
#include "agent/executor_output.h"
#include "agent/task_runner.h"
#include "api/api_server.h"
#include "restore.h"
#include "cli/cli.h"
#include "cli/hook.h"
#include "common/log.h"
#include "common/names.h"
#include "common/spec.h"
#include "deploy/cluster.h"
#include "logs/forward_relay.h"
#include "logs/forward_server.h"
#include "logs/log_store.h"
#include "logs/shipper.h"
#include "logs/spool.h"
#include "metrics/metric_record.h"
#include "metrics/service.h"
#include "monitor/service.h"
#include "router/service.h"
#include "net/offload.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "net/tls.h"
#include "store/election.h"
#include "store/store.h"

namespace fs = std::filesystem;
namespace asio = boost::asio;
using namespace stele;

namespace {

struct Flags {
  std::string data_dir;
  std::string listen = "127.0.0.1:7070";
  std::string server = "http://127.0.0.1:7070";
  std::string hostname;
  std::string advertise_addr;
  std::string agent_id;
  std::string ports = "31000-32000";
  std::string resources;
  std::string attributes;
  std::string subscriptions;
  std::string task_user;
  std::string token;
  std::string join_token;      // server: what agents must present; agent: what it presents
  bool require_token = false;  // server: tokens even on a loopback listener
  double agent_timeout = 30;
  double recovery_timeout = 900;
  std::string docker_socket = "/var/run/docker.sock";
  double metrics_interval = 10;
  double deploy_timeout = 600;
  std::vector<std::string> apps;  // up: specs to deploy once
  std::vector<std::string> repos; // up: source dirs pushed through the pipeline once
  std::string webhook_secret;
  double build_mem = 1024;
  double build_cpus = 1;
  int64_t build_timeout = 900;
  int retain_releases = 10;
  std::string forward_listen = "127.0.0.1:24224";  // "off": no forward input
  std::string forward_shared_key;
  std::string forward_to;  // "host:port": relay the log store upstream; empty = off
  std::string forward_to_shared_key;
  std::string log_retention = "7d,10GB";
  std::string graphite_listen = "127.0.0.1:2003";  // "off": no plaintext input
  std::string router_listen = "127.0.0.1:7080";    // "off": no built-in router
  std::string router_tls_listen = "off";           // "off": no TLS listener
  std::string router_certs;                        // empty: <data dir>/certs
  double router_header_timeout = 10;               // seconds, TLS handshake and each request head
  std::string metrics_schemas;
  std::string metrics_aggregation;
  size_t metrics_max_series = 100'000;
  std::string carbon_relay;
  double probe_interval = 10;  // exported-port probes, seconds; 0 = off
  bool agent_router = false;                         // `stele agent --router`: a router on this host
  std::string agent_router_listen = "127.0.0.1:7080";  // ... listening here
  bool verbose = false;
  std::string store_url;  // --store: "" = SQLite in the data dir
  std::string tls_cert, tls_key;  // server: the API listener is HTTPS with these (both or neither)
  std::string tls_ca;             // CA https:// servers and TLS forward inputs are verified with
  bool forward_tls = false;       // server: the forward input is TLS too (same cert/key)
  std::string advertise_url;  // server: its API as other servers, agents and clients reach it
  int leader_ttl = 5;         // server with an etcd store: the leader lease's TTL, seconds
};

std::string self_exe() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("stele") : p.string();
}

std::string system_hostname() {
  char buf[256] = {0};
  gethostname(buf, sizeof buf - 1);
  return buf;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::string s((std::istreambuf_iterator<char>(in)), {});
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The token in data_dir/<name> (token, join-token), generated (0600) when missing.
std::string load_or_create_token(const fs::path& dir, const char* name = "token") {
  fs::create_directories(dir);
  auto p = dir / name;
  if (fs::exists(p)) return read_file(p);
  std::random_device rd;
  std::string tok;
  static const char* hex = "0123456789abcdef";
  for (int i = 0; i < 40; ++i) tok.push_back(hex[rd() % 16]);
  umask(077);
  std::ofstream(p) << tok << "\n";
  umask(022);
  return tok;
}

Result<std::map<std::string, std::string>> parse_kv(const std::string& s, const char* flag) {
  std::map<std::string, std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    std::string part = s.substr(i, j - i);
    auto eq = part.find('=');
    if (eq == std::string::npos || eq == 0) return fail(std::string(flag) + ": expected k=v, got '" + part + "'");
    out[part.substr(0, eq)] = part.substr(eq + 1);
    i = j + 1;
  }
  return out;
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// The task user: given, else `stele-task` (created when we are root), else nobody.
std::string resolve_task_user(const std::string& given) {
  if (!given.empty()) return given;
  if (getpwnam("stele-task")) return "stele-task";
  if (geteuid() == 0 && system("useradd --system --no-create-home --shell /usr/sbin/nologin stele-task >/dev/null 2>&1") == 0 &&
      getpwnam("stele-task"))
    return "stele-task";
  return "nobody";
}

// Tasks run as the task user inside sandboxes under the agent's data dir: every
// directory above it must let that user through, or every launch fails with
// an unhelpful exec error. Checked once at start, naming the directory.
Result<void> check_task_user_reaches(const std::string& data_dir, const std::string& user) {
  auto creds = ::stele::resolve_task_user(user);
  if (!creds) return fail("--task-user: " + creds.error().message);
  std::error_code ec;
  fs::path p = fs::absolute(data_dir, ec);
  for (fs::path dir = p.parent_path(); !dir.empty(); dir = dir.parent_path()) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0) {
      bool through = (st.st_mode & S_IXOTH) || (st.st_uid == creds->uid && (st.st_mode & S_IXUSR)) ||
                     (std::find(creds->groups.begin(), creds->groups.end(), st.st_gid) != creds->groups.end() &&
                      (st.st_mode & S_IXGRP));
      if (!through)
        return fail(fmt::format("the task user {} cannot enter {} (mode {:04o}), above the data dir {}: tasks "
                                "could not start; use a data dir the task user can reach (e.g. chmod o+x {})",
                                creds->user, dir.string(), st.st_mode & 07777, p.string(), dir.string()));
    }
    if (dir == dir.parent_path()) break;
  }
  return {};
}

Result<agent::AgentOptions> agent_options(const Flags& f, const std::string& data_dir, const std::string& server) {
  agent::AgentOptions o;
  o.servers = net::split_url_list(server);  // "http://a:7070,http://b:7070"
  if (o.servers.empty()) return fail("--server: no server URL given");
  o.server_url = o.servers.front();
  o.data_dir = data_dir;
  o.id = agent::load_or_create_agent_id(data_dir, f.agent_id);
  o.hostname = f.hostname.empty() ? system_hostname() : f.hostname;
  o.advertise_addr = f.advertise_addr;
  int b = 0, e = 0;
  if (sscanf(f.ports.c_str(), "%d-%d", &b, &e) != 2 || b <= 0 || e < b || e > 65535)
    return fail("--ports: expected a range like 31000-32000, got '" + f.ports + "'");
  o.ports = {b, e};
  o.resources = agent::detect_resources(data_dir);
  auto res = parse_kv(f.resources, "--resources");
  if (!res) return fail(res.error());
  for (auto& [k, v] : *res) {
    double d = atof(v.c_str());
    if (k == "cpus") o.resources.cpus = d;
    else if (k == "mem") o.resources.mem = d;
    else if (k == "disk") o.resources.disk = d;
    else return fail("--resources: unknown resource '" + k + "' (cpus, mem, disk)");
  }
  auto attrs = parse_kv(f.attributes, "--attributes");
  if (!attrs) return fail(attrs.error());
  o.attributes = *attrs;
  o.subscriptions = split_list(f.subscriptions);
  o.task_user = resolve_task_user(f.task_user);
  if (auto reach = check_task_user_reaches(data_dir, o.task_user); !reach) return fail(reach.error());
  o.agent_timeout_seconds = f.agent_timeout;
  o.recovery_timeout_seconds = f.recovery_timeout;
  o.docker_socket = f.docker_socket;
  o.metrics_interval_seconds = f.metrics_interval;
  o.stele_binary = self_exe();
  return o;
}

// Every ~10 s the log store's idle tails are compressed and retention is
// applied, on the worker pool (both block on disk).
void log_maintenance(std::shared_ptr<logs::LogStore> logs, std::shared_ptr<asio::steady_timer> t,
                     std::shared_ptr<std::atomic<bool>> busy) {
  t->expires_after(std::chrono::seconds(10));
  t->async_wait([logs, t, busy](boost::system::error_code ec) {
    if (ec) return;
    if (!busy->exchange(true)) {
      asio::post(net::worker_pool(), [logs, busy] {
        if (auto r = logs->flush(); !r) spdlog::warn("log store flush: {}", r.error().message);
        if (auto r = logs->enforce_retention(); !r) spdlog::warn("log retention: {}", r.error().message);
        busy->store(false);
      });
    }
    log_maintenance(logs, t, busy);
  });
}

// Points from external senders as metric records (metric_record.h) in the
// relay spool: one record per timestamp, at most 1,000 points each.
void relay_points(logs::SharedSpoolWriter& spool, std::span<const metrics::Point> points) {
  std::map<int64_t, std::vector<metrics::NamedValue>> by_time;
  for (const auto& p : points) by_time[p.time_s].push_back({std::string(p.name), p.value});
  std::vector<std::pair<int64_t, std::string>> records;
  for (const auto& [t, values] : by_time)
    for (size_t at = 0; at < values.size(); at += 1000) {
      std::vector<metrics::NamedValue> part(values.begin() + at, values.begin() + std::min(values.size(), at + 1000));
      records.emplace_back(t, metrics::encode_metric_record(part));
    }
  std::vector<logs::LogEntry> entries;
  for (const auto& [t, rec] : records) entries.push_back({metrics::kMetricTag, t * 1'000'000'000, rec});
  spool.append(entries);
}

// The control plane inside one io_context.
struct ServerRole {
  // With an etcd store (several servers): what external senders give this
  // server (forward records, Graphite points, check perfdata), spooled for
  // the other servers (design.md: each server holds the whole history).
  // Before the metrics service and the forward input that write to it.
  std::unique_ptr<logs::SharedSpoolWriter> relay_spool;
  // Declared first so it outlives the API and the forward input that use it.
  std::shared_ptr<logs::LogStore> logs;
  std::unique_ptr<asio::steady_timer> log_timer;
  // Also before the API and the forward input (its signal sink).
  std::unique_ptr<metrics::MetricsService> metrics;
  std::unique_ptr<asio::steady_timer> metrics_timer;
  std::shared_ptr<std::atomic<bool>> metrics_busy;  // a pass is on the worker pool
  std::unique_ptr<store::Store> store;
  SystemClock clock;
  std::unique_ptr<deploy::Cluster> cluster;
  std::unique_ptr<api::ApiServer> api;
  std::unique_ptr<monitor::MonitorService> monitor;
  std::unique_ptr<net::HttpServer> http;
  std::unique_ptr<logs::ForwardServer> forward;  // nullptr with --forward-listen off
  std::unique_ptr<logs::ForwardRelay> relay;     // nullptr without --forward-to
  std::unique_ptr<logs::Shipper> peers;          // relay_spool -> the other servers' forward inputs
  std::function<Result<void>()> leader_relay;    // --forward-to with several servers: started on election
  std::unique_ptr<router::RouterService> router;  // nullptr with --router-listen off
  std::unique_ptr<asio::steady_timer> router_timer;
  uint64_t router_version = 0;                   // last table version sent to the router
  // With an etcd store: the election; the leader-only duties (cluster,
  // pipeline, monitoring, router feed) start once it is won.
  std::unique_ptr<store::LeaderElection> election;
  bool leading = false;  // io thread: the duties run
  int exit_code = 0;     // 75 after losing leadership
  fs::path logs_dir;
  std::string bound;
  std::string forward_bound;  // "" when off
  std::string relay_dir;      // <data>/relay-spool (relay_spool's)
  std::shared_ptr<net::TlsContext> tls;  // --tls-cert/--tls-key; nullptr: plain HTTP

  // The API listener's (and with --forward-tls the forward input's) TLS
  // context; an unreadable or mismatched file is a startup error naming it.
  Result<void> open_tls(const Flags& f) {
    if (f.tls_cert.empty() != f.tls_key.empty()) return fail("--tls-cert and --tls-key go together");
    if (f.tls_cert.empty()) {
      if (f.forward_tls) return fail("--forward-tls needs --tls-cert and --tls-key");
      return {};
    }
    auto c = net::make_server_context(f.tls_cert, f.tls_key);
    if (!c) return fail("--tls-cert/--tls-key: " + c.error().message);
    tls = *c;
    return {};
  }
  std::string api_scheme() const { return tls ? "https://" : "http://"; }

  Result<void> open_logs(asio::io_context& io, const Flags& f, const fs::path& data_dir) {
    auto retention = logs::parse_retention(f.log_retention);
    if (!retention) return fail("--log-retention '" + f.log_retention + "': " + retention.error().message);
    logs::LogStoreOptions lo;
    lo.retention = *retention;
    logs_dir = data_dir / "logs";
    logs = std::make_shared<logs::LogStore>(logs_dir.string(), lo);
    if (auto r = logs->open(); !r) return fail("log store " + (data_dir / "logs").string() + ": " + r.error().message);
    log_timer = std::make_unique<asio::steady_timer>(io);
    log_maintenance(logs, std::shared_ptr<asio::steady_timer>(log_timer.get(), [](auto*) {}),
                    std::make_shared<std::atomic<bool>>(false));
    return {};
  }

  Result<void> open_metrics(asio::io_context& io, const Flags& f, const fs::path& data_dir) {
    metrics::MetricsServiceOptions mo;
    mo.dir = (data_dir / "metrics").string();
    mo.graphite_listen = f.graphite_listen;
    mo.schemas_file = f.metrics_schemas;
    mo.aggregation_file = f.metrics_aggregation;
    mo.max_series = f.metrics_max_series;
    mo.carbon_relay = f.carbon_relay;
    mo.request_logs_after = logs->last_seq();  // open_logs ran first
    if (auto* sp = relay_spool.get())
      mo.replicate = [sp](std::span<const metrics::Point> points) { relay_points(*sp, points); };
    metrics = std::make_unique<metrics::MetricsService>();
    if (auto r = metrics->open(mo); !r) return r;
    metrics_timer = std::make_unique<asio::steady_timer>(io);
    metrics_busy = std::make_shared<std::atomic<bool>>(false);
    metrics_tick(metrics_busy, 0);
    return {};
  }

  // Every second: the apps' access lines become request metrics; every 10 s
  // Stele's own stele.server.* points. Store work runs on the worker pool,
  // one pass at a time; the app list is read here, on the io thread.
  void metrics_tick(std::shared_ptr<std::atomic<bool>> busy, int n) {
    metrics_timer->expires_after(std::chrono::seconds(1));
    metrics_timer->async_wait([this, busy, n](boost::system::error_code ec) {
      if (ec) return;
      if (!busy->exchange(true)) {
        std::map<std::string, metrics::RequestSource> apps;
        std::vector<std::pair<std::string, double>> self;
        if (cluster) {
          for (const auto* a : cluster->apps())
            if (const auto* rel = cluster->current_release(a->id)) {
              // A routed app's requests are counted from the router's access
              // records (one source per app, never both).
              std::string name = app_name(a->id);
              if (router && !rel->spec.routes.empty())
                apps.emplace(name, metrics::RequestSource{router::access_log_spec(), log_tag(a->id, "access")});
              else if (rel->spec.access_log)
                apps.emplace(name, metrics::RequestSource{*rel->spec.access_log, log_tag(a->id, "stdout")});
            }
          if (n % 10 == 0) {
            self.emplace_back("apps", double(cluster->apps().size()));
            self.emplace_back("agents", double(cluster->nodes().size()));
          }
        }
        auto* m = metrics.get();
        auto* l = logs.get();
        asio::post(net::worker_pool(), [m, l, apps = std::move(apps), self = std::move(self), busy, n] {
          int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
          m->poll_requests(*l, apps, now);
          if (n % 10 == 0) m->record_self(self, now);
          busy->store(false);
        });
      }
      metrics_tick(busy, n + 1);
    });
  }

  Result<void> start_forward(asio::io_context& io, const Flags& f) {
    if (f.forward_listen == "off") return start_relay(io, f);
    logs::ForwardServerOptions fo;
    fo.listen = f.forward_listen;
    fo.shared_key = f.forward_shared_key;
    fo.self_hostname = f.hostname.empty() ? system_hostname() : f.hostname;
    fo.signal_sink = metrics->signal_sink();
    if (f.forward_tls) fo.tls = tls;
    if (auto* sp = relay_spool.get()) fo.relay = [sp](std::span<const logs::LogEntry> entries) { sp->append(entries); };
    forward = std::make_unique<logs::ForwardServer>(io, *logs, fo);
    auto b = forward->start();
    if (!b) return fail(b.error());
    forward_bound = *b;
    return start_relay(io, f);
  }

  // --forward-to: everything in the log store relayed to an upstream forward
  // input, the cursor kept next to the store.
  // With several servers (etcd) the relay is a leader-only duty (design.md):
  // every server holds every record, so the leader alone relays them; it
  // starts in start_duties().
  Result<void> start_relay(asio::io_context& io, const Flags& f) {
    if (f.forward_to.empty()) return {};
    auto hp = net::split_host_port(f.forward_to);
    if (!hp || hp->second == 0) return fail("--forward-to: expected host:port, got '" + f.forward_to + "'");
    if (hp->first + ":" + std::to_string(hp->second) == forward_bound)
      return fail("--forward-to " + f.forward_to + " is this server's own forward input: records would loop");
    if (relay_spool && !leader_relay) {
      leader_relay = [this, &io, f] { return start_relay(io, f); };
      return {};
    }
    logs::ForwardRelayOptions ro;
    if (relay_spool) {
      // A server that never relayed (it followed until now) starts with the
      // last minute (what the previous leader may not have sent), not with
      // everything its store holds, which the previous leader relayed.
      logs::LogQuery q;
      q.after = 0;
      q.limit = 1;
      q.since_ns = (std::chrono::duration_cast<std::chrono::seconds>(
                        std::chrono::system_clock::now().time_since_epoch()).count() - 60) * 1'000'000'000LL;
      if (auto first = logs->query(q); first && !first->empty()) ro.start_after = first->front().seq - 1;
      else ro.start_after = logs->last_seq();
    }
    ro.client.address = f.forward_to;
    ro.client.shared_key = f.forward_to_shared_key;
    ro.client.self_hostname = f.hostname.empty() ? system_hostname() : f.hostname;
    ro.cursor_path = (logs_dir / "forward-to.cursor").string();
    relay = std::make_unique<logs::ForwardRelay>(io, *logs, ro);
    return relay->start();
  }

  Result<void> start(asio::io_context& io, const Flags& f, const fs::path& data_dir, const std::string& token,
                     const std::string& join_token) {
    fs::create_directories(data_dir);
    if (f.store_url.rfind("etcd://", 0) == 0) {
      relay_dir = (data_dir / "relay-spool").string();
      fs::create_directories(relay_dir);
      relay_spool = std::make_unique<logs::SharedSpoolWriter>(relay_dir, "records");
    }
    if (auto r = open_logs(io, f, data_dir); !r) return r;
    if (auto r = open_metrics(io, f, data_dir); !r) return r;
    if (relay_spool) metrics->set_relay_active(false);  // --carbon-relay: the leader's duty
    auto st = store::open_store(f.store_url, (data_dir / "state.db").string());
    if (!st) return fail(st.error());
    store = std::move(*st);
    if (auto r = open_tls(f); !r) return r;
    // The forward input first: agents learn its address at registration.
    if (auto r = start_forward(io, f); !r) return r;
    deploy::ClusterOptions co;
    co.forward_address = forward_bound;
    co.forward_shared_key = f.forward_shared_key;
    co.forward_tls = f.forward_tls;
    co.agent_timeout_ms = static_cast<int64_t>(f.agent_timeout * 1000);
    co.deploy_timeout_ms = static_cast<int64_t>(f.deploy_timeout * 1000);
    co.heartbeat_interval_ms = std::max<int64_t>(200, co.agent_timeout_ms / 6);
    // When every router (this server's, and every connected agent's) runs a
    // table computed at or after the returned time (io thread, as feed_router);
    // no router at all: nothing to wait for.
    co.routers_synced_ms = [this]() -> int64_t {
      auto computed = [this](uint64_t version) { return api ? api->route_table_computed_ms(version) : int64_t(0); };
      int64_t synced = std::numeric_limits<int64_t>::max();
      if (router) synced = std::min(synced, computed(router->applied_version()));
      if (api)
        for (uint64_t v : api->agent_router_versions()) synced = std::min(synced, computed(v));
      return synced;
    };
    cluster = std::make_unique<deploy::Cluster>(*store, clock, co);
    api::ApiOptions ao;
    auto hp = net::split_host_port(f.listen);
    if (!hp) return fail("--listen: " + hp.error().message);
    ao.require_token = f.require_token || !net::is_loopback_host(hp->first);
    ao.token = token;
    ao.join_token = join_token;
    ao.leader = f.listen;
    ao.artifacts_dir = (data_dir / "artifacts").string();
    ao.git_dir = (data_dir / "git").string();
    ao.pipeline_dir = (data_dir / "pipeline").string();
    ao.webhook_secret = f.webhook_secret;
    ao.tls_ca = f.tls_ca;
    ao.server_url = api_scheme() + (net::is_loopback_host(hp->first) || hp->first == "0.0.0.0" || hp->first == "::" ||
                                         hp->first == "[::]"
                                     ? std::string("127.0.0.1")
                                     : hp->first) +
                    ":" + std::to_string(hp->second);
    ao.stele_binary = self_exe();
    ao.pipeline.build_mem = f.build_mem;
    ao.pipeline.build_cpus = f.build_cpus;
    ao.pipeline.build_timeout_s = f.build_timeout;
    ao.pipeline.retain_releases = f.retain_releases;
    ao.logs = logs.get();
    ao.metrics = metrics.get();
    if (f.router_listen != "off") {
      router::RouterServiceOptions ro;
      ro.listen = f.router_listen;
      ro.tls_listen = f.router_tls_listen;
      ro.certs_dir = f.router_certs.empty() ? (data_dir / "certs").string() : f.router_certs;
      if (!(f.router_header_timeout > 0)) return fail("--router-header-timeout: must be more than 0 seconds");
      ro.proxy.header_timeout = std::chrono::milliseconds(static_cast<int64_t>(f.router_header_timeout * 1000));
      ro.node = f.hostname.empty() ? system_hostname() : f.hostname;
      if (auto* sp = relay_spool.get()) {  // its access records go to the other servers too
        ro.access_sink = [store = logs, sp](const std::vector<logs::LogEntry>& views) -> Result<void> {
          auto r = store->append(views);
          if (!r) return fail(r.error());
          sp->append(views);
          return {};
        };
        router = std::make_unique<router::RouterService>(ro, nullptr);
      } else {
        router = std::make_unique<router::RouterService>(ro, logs.get());
      }
      auto rb = router->start();
      if (!rb) return fail(rb.error());
      ao.routers = [r = router.get(), node = ro.node] {
        return Json::array({{{"node", node}, {"address", r->address()}, {"appliedVersion", r->applied_version()}}});
      };
    }
    monitor = std::make_unique<monitor::MonitorService>(io, *store, clock, monitor_options(f));
    ao.monitor = monitor.get();
    if (auto r = prepare_election(io, f, ao); !r) return r;
    api = std::make_unique<api::ApiServer>(io, *cluster, *store, ao);
    net::ServerOptions so;
    so.tls = tls;
    http = std::make_unique<net::HttpServer>(io, api->router(), so);
    auto b = http->listen(f.listen);
    if (!b) return fail(b.error());
    bound = *b;
    if (router) spdlog::info("router (HTTP reverse proxy for apps' routes) on http://{}", router->address());
    router_timer = std::make_unique<asio::steady_timer>(io);
    if (election) {
      election->start([this, &io] { asio::post(io, [this, &io] { lead(io); }); },
                      [this, &io](const std::string&) {
                        asio::post(io, [this, &io] {
                          spdlog::critical("exiting: a server that lost leadership restarts as a follower");
                          exit_code = 75;
                          stop();
                          io.stop();
                        });
                      });
      api->start_replication();  // until elected: artifacts and repositories copied from the leader
      return {};
    }
    return start_duties();
  }

  // The leader-only duties (design.md): reconciliation, deployments, the
  // pipeline, monitoring, the router's table.
  Result<void> start_duties() {
    if (auto r = store->refresh(); !r) return fail("state store: " + r.error().message);
    if (leader_relay)
      if (auto r = leader_relay(); !r) return r;
    if (metrics) metrics->set_relay_active(true);
    if (auto r = cluster->load(); !r) return r;
    if (auto r = monitor->load(); !r) return fail("monitoring state: " + r.error().message);
    api->start();
    monitor->start();
    feed_router();
    leading = true;
    return {};
  }

  void lead(asio::io_context& io) {
    if (exit_code) return;
    if (auto r = start_duties(); !r) {
      spdlog::critical("elected, but cannot take over: {}", r.error().message);
      exit_code = 75;
      stop();
      io.stop();
      return;
    }
    spdlog::info("this server leads: scheduling, deployments, the pipeline and monitoring run here");
  }

  // With an etcd store: joins the election (before the API listens, whose
  // gate reads it).
  Result<void> prepare_election(asio::io_context& io, const Flags& f, api::ApiOptions& ao) {
    if (f.store_url.rfind("etcd://", 0) != 0) return {};
    auto eo = store::parse_etcd_url(f.store_url);
    if (!eo) return fail(eo.error());
    store::ElectionOptions o;
    o.etcd = *eo;
    o.id = f.hostname.empty() ? system_hostname() : f.hostname;
    o.url = f.advertise_url.empty() ? ao.server_url : f.advertise_url;
    o.ttl_seconds = f.leader_ttl;
    election = std::make_unique<store::LeaderElection>(o);
    ao.server_id = o.id;
    ao.advertise_url = o.url;
    if (!forward_bound.empty() && relay_spool) {
      ao.forward_advertise = net::reachable_address(forward_bound, o.url);
      logs::ShipperOptions so{.extra_sources = {{"_relay", relay_dir}},
                              .node = o.id,
                              .signal_tag = std::string(metrics::kMetricTag),
                              .replicated = true,
                              .what = "relayed records"};
      peers = std::make_unique<logs::Shipper>(io, net::worker_pool(), so);
      ao.relay_peers = [this, key = f.forward_shared_key, tls = f.forward_tls](const std::vector<std::string>& to) {
        std::vector<logs::ShipDestination> d;
        for (const auto& a : to) d.push_back({a, key, tls});
        peers->set_destinations(std::move(d));
      };
      peers->start();
    }
    ao.leadership = [this]() {
      api::LeaderView v;
      auto l = election->leader();
      v.self = leading;
      if (l) {
        v.id = l->id;
        v.url = l->url;
        v.since = iso8601(l->since_ms);
      }
      if (!leading && election->is_leader()) v.url.clear();  // elected, still loading: 503 until it leads
      return v;
    };
    return {};
  }

  // Monitoring reads the cluster, stores perfdata as metrics from a worker,
  // and tells the API about its events and agents' new definitions.
  monitor::MonitorOptions monitor_options(const Flags& f) {
    monitor::MonitorOptions mo;
    mo.agent_timeout_ms = static_cast<int64_t>(f.agent_timeout * 1000);
    mo.probe_interval_ms = static_cast<int64_t>(f.probe_interval * 1000);
    mo.probe_timeout_ms = std::clamp<int64_t>(mo.probe_interval_ms / 2, 500, 5000);
    if (geteuid() == 0)  // proxy checks and pipe handlers run as the task user, never root
      if (auto creds = ::stele::resolve_task_user(resolve_task_user(f.task_user))) {
        mo.uid = creds->uid;
        mo.gid = creds->gid;
        mo.groups = creds->groups;
      }
    mo.inventory = [this] { return api::monitor_inventory(*cluster); };
    mo.agents = [this] { return api::monitor_agents(*cluster); };
    mo.task_running = [this](const std::string& id) { return api::monitor_task_running(*cluster, id); };
    mo.write_points = [this](std::vector<monitor::MetricPoint> points) {
      auto* m = metrics.get();
      asio::post(net::worker_pool(), [m, points = std::move(points)] {
        std::vector<metrics::Point> view;
        for (const auto& p : points) view.push_back(metrics::Point{p.path, p.value, p.time_s});
        int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
        m->ingest().append(view, now, "check perfdata", true);
      });
    };
    mo.on_event = [this](const Json& e) {
      if (api) api->publish_event(e);
    };
    mo.agent_changed = [this](const std::string& id) {
      if (api) api->notify_agent(id);
    };
    return mo;
  }

  // Every 200 ms: the route table, when it changed, to the router (io
  // thread: the cluster is read here).
  void feed_router() {
    Json t = api->route_table();  // a new version also wakes the agents' routers' streams
    uint64_t v = t.value("version", uint64_t(0));
    if (v != router_version) {
      if (router)
        if (auto r = router->update(t); !r) spdlog::error("router: table {} refused: {}", v, r.error().message);
      router_version = v;
    }
    router_timer->expires_after(std::chrono::milliseconds(200));
    router_timer->async_wait([this](boost::system::error_code ec) {
      if (!ec) feed_router();
    });
  }

  void stop() {
    if (monitor) monitor->stop();
    if (api) api->stop();
    if (http) http->stop();
    if (forward) forward->stop();
    if (relay) relay->stop();
    if (peers) peers->stop();
    if (log_timer) log_timer->cancel();
    if (metrics_timer) metrics_timer->cancel();
    if (router_timer) router_timer->cancel();
    if (election) election->resign();  // a leader hands over now, not after its lease's TTL
  }

  // After the io_context stopped: waits for the forward input's last append,
  // then compresses the store's tails.
  void close_logs() {
    if (router) router->stop();  // stores its last access records
    relay.reset();  // records its last acked sequence
    forward.reset();
    // No metrics pass may still be running on the worker pool.
    for (int i = 0; metrics_busy && metrics_busy->load() && i < 1000; ++i) usleep(10'000);
    if (metrics) metrics->close();
    if (logs)
      if (auto r = logs->flush(); !r) spdlog::warn("log store flush: {}", r.error().message);
  }
};

void deploy_initial_apps(ServerRole& s, const std::vector<std::string>& files) {
  for (const auto& f : files) {
    auto j = parse_json(read_file(f));
    if (!j) { spdlog::error("{}: {}", f, j.error().message); continue; }
    auto spec = parse_app_spec(*j);
    if (!spec) {
      std::string why;
      for (auto& d : spec.error().details) why += " " + d.path + ": " + (d.errors.empty() ? "" : d.errors[0]) + ";";
      spdlog::error("{}: {}{}", f, spec.error().message, why);
      continue;
    }
    if (s.cluster->app(spec->id)) continue;  // already deployed: keep its state
    auto r = s.cluster->create_app(*spec, "stele up --app");
    if (r) spdlog::info("deploying {} from {}", spec->id, f);
    else spdlog::error("{}: {}", f, r.error().message);
  }
  s.api->kick();
}

// Prints a status line whenever the picture changes.
void status_line(asio::io_context& io, ServerRole& s, std::shared_ptr<asio::steady_timer> t, std::shared_ptr<std::string> last) {
  t->expires_after(std::chrono::seconds(1));
  t->async_wait([&io, &s, t, last](boost::system::error_code ec) {
    if (ec) return;
    int running = 0, healthy = 0, wanted = 0, agents = 0, steps = 0;
    for (auto* tk : s.cluster->tasks()) {
      if (!tk->kind.empty()) {  // pipeline tasks are not app instances
        ++steps;
        continue;
      }
      running += tk->state == deploy::TaskState::Running;
      healthy += tk->healthy();
    }
    for (auto* a : s.cluster->apps()) wanted += a->instances;
    for (auto* n : s.cluster->nodes()) agents += n->state == "active";
    std::string line = fmt::format("status: {} apps, {}/{} instances running ({} healthy), {} agents, {} deployments",
                                   s.cluster->apps().size(), running, wanted, healthy, agents, s.cluster->deployments().size());
    if (steps) line += fmt::format(", {} pipeline task(s)", steps);
    if (line != *last) {
      fmt::print("{}\n", line);
      fflush(stdout);
      *last = line;
    }
    status_line(io, s, t, last);
  });
}

void on_stop_signal(asio::io_context& io, std::function<void()> stop) {
  auto sigs = std::make_shared<asio::signal_set>(io, SIGINT, SIGTERM);
  sigs->async_wait([sigs, stop](boost::system::error_code ec, int) {
    if (!ec) stop();
  });
}

int run_server(const Flags& f) {
  init_logging("server", f.verbose);
  fs::path dir = f.data_dir.empty() ? "/var/lib/stele" : f.data_dir;
  asio::io_context io;
  ServerRole s;
  std::string token = f.token.empty() ? load_or_create_token(dir) : f.token;
  std::string join_token = f.join_token.empty() ? load_or_create_token(dir, "join-token") : f.join_token;
  if (auto r = s.start(io, f, dir, token, join_token); !r) {
    fmt::print(stderr, "stele: {}\n", r.error().message);
    return 1;
  }
  spdlog::info("Stele server listening on {}{} (data in {})", s.api_scheme(), s.bound, dir.string());
  if (!s.forward_bound.empty())
    spdlog::info("forward input (Fluentd forward protocol) on {}{}{}", s.forward_bound,
                 f.forward_tls ? " over TLS" : "", f.forward_shared_key.empty() ? "" : " with shared-key handshake");
  on_stop_signal(io, [&] { s.stop(); io.stop(); });
  io.run();
  s.close_logs();
  return s.exit_code;
}

// `stele agent --router`: the router on its own thread; its access records
// go to a spool the agent's shipper sends to the server like task output.
Result<std::unique_ptr<router::RouterService>> start_agent_router(const Flags& f, agent::AgentOptions& o) {
  router::RouterServiceOptions ro;
  ro.listen = f.agent_router_listen;
  ro.node = o.hostname;
  std::string spool_dir = o.data_dir + "/router-spool";
  std::error_code ec;
  fs::create_directories(spool_dir, ec);
  auto spool = std::make_shared<logs::SpoolWriter>(spool_dir, TaskRecords::kPrefix);
  auto mu = std::make_shared<std::mutex>();
  ro.access_sink = [spool, mu](const std::vector<logs::LogEntry>& entries) -> Result<void> {
    std::lock_guard<std::mutex> lk(*mu);
    uint64_t dropped = spool->dropped();
    for (const auto& e : entries) spool->append(e.tag, e.time_ns, e.record);
    spool->flush();
    if (spool->dropped() != dropped) return fail("router spool " + spool->last_error());
    return {};
  };
  auto router = std::make_unique<router::RouterService>(ro, nullptr);
  auto bound = router->start();
  if (!bound) return fail(bound.error());
  spdlog::info("router (HTTP reverse proxy for apps' routes) on http://{}", *bound);
  o.router_address = *bound;
  o.apply_routes = [r = router.get()](const Json& table) {
    auto u = r->update(table);
    if (!u) spdlog::error("router: table {} refused: {}", table.value("version", uint64_t(0)), u.error().message);
    return bool(u);
  };
  o.router_applied = [r = router.get()] { return r->applied_version(); };
  return router;
}

int run_agent(const Flags& f) {
  init_logging("agent", f.verbose);
  std::string dir = f.data_dir.empty() ? "/var/lib/stele-agent" : f.data_dir;
  auto o = agent_options(f, dir, f.server);
  if (!o) {
    fmt::print(stderr, "stele: {}\n", o.error().message);
    return 2;
  }
  o->token = f.join_token.empty() ? f.token : f.join_token;  // --token: the older spelling
  std::unique_ptr<router::RouterService> router;
  if (f.agent_router) {
    auto r = start_agent_router(f, *o);
    if (!r) {
      fmt::print(stderr, "stele: {}\n", r.error().message);
      return 2;
    }
    router = std::move(*r);
  }
  asio::io_context io;
  agent::Agent a(io, *o);
  a.start();
  spdlog::info("Stele agent {} ({}) serving {} with ports {}-{}", o->id, o->hostname, f.server, o->ports.begin, o->ports.end);
  on_stop_signal(io, [&] { a.stop(); io.stop(); });
  io.run();
  spdlog::info("agent stopped; its tasks keep running and are re-attached when it starts again");
  return 0;
}

// `stele up --push DIR`: the directory is committed into a scratch repository
// and pushed to its app with stock git, so the sample app goes through the
// whole pipeline and the push's progress shows on this console. An app that
// already has a release keeps it (push again with git to update it).
void push_initial_repos(ServerRole& s, const std::vector<std::string>& dirs, const std::string& api_url,
                        const std::string& ca_file) {
  std::vector<std::pair<std::string, std::string>> pushes;  // dir, remote url
  for (const auto& d : dirs) {
    fs::path dir = fs::absolute(d);
    auto j = parse_json(read_file(dir / "stele.json"));
    std::string id = canonical_app_id(j && j->is_object() && j->contains("id") && (*j)["id"].is_string()
                                          ? (*j)["id"].get<std::string>()
                                          : dir.filename().string());
    if (!s.cluster->app(id)) {
      if (auto r = s.cluster->create_empty_app(id, "stele up --push"); !r) {
        spdlog::error("{}: {}", d, r.error().message);
        continue;
      }
    } else if (!s.cluster->releases(id).empty()) {
      fmt::print("{} already has releases: not pushing {} again (git push to {}/git/{}.git)\n", id, d, api_url, app_name(id));
      continue;
    }
    pushes.emplace_back(dir.string(), api_url + "/git/" + app_name(id) + ".git");
  }
  if (pushes.empty()) return;
  std::thread([pushes, ca_file] {
    for (const auto& [dir, url] : pushes) {
      fmt::print("pushing {} to {}\n", dir, url);
      fflush(stdout);
      std::string script =
          "set -e; t=$(mktemp -d); trap 'rm -rf \"$t\"' EXIT; cp -a \"$0\"/. \"$t\"; cd \"$t\"; rm -rf .git; "
          "git init -q -b main; git add -A; "
          "git -c user.name='stele up' -c user.email=stele@localhost commit -qm \"stele up --push $0\"; "
          "if [ -n \"$2\" ]; then export GIT_SSL_CAINFO=\"$2\"; fi; "  // an https:// API (--tls-ca)
          "git push -q \"$1\" main";
      const char* argv[] = {"sh", "-c", script.c_str(), dir.c_str(), url.c_str(), ca_file.c_str(), nullptr};
      pid_t pid = -1;
      if (posix_spawnp(&pid, "sh", nullptr, nullptr, const_cast<char**>(argv), environ) != 0) {
        spdlog::error("cannot start git to push {}", dir);
        continue;
      }
      int status = 0;
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) spdlog::error("pushing {} failed (see above)", dir);
    }
  }).detach();
}

int run_up(Flags f) {
  init_logging("up", f.verbose);
  fs::path dir = fs::absolute(f.data_dir.empty() ? "stele-data" : f.data_dir);
  fs::create_directories(dir);
  std::ofstream(dir / "stele.pid") << getpid() << "\n";
  std::string token = load_or_create_token(dir);
  std::string join_token = f.join_token.empty() ? load_or_create_token(dir, "join-token") : f.join_token;
  f.recovery_timeout = 0;  // nothing else can take over under `up` (design.md)
  asio::io_context io;
  ServerRole s;
  if (auto r = s.start(io, f, dir / "server", token, join_token); !r) {
    fmt::print(stderr, "stele: {}\n", r.error().message);
    return 1;
  }
  std::string api_url = s.api_scheme() + s.bound;
  auto o = agent_options(f, (dir / "agent").string(), api_url);
  if (!o) {
    fmt::print(stderr, "stele: {}\n", o.error().message);
    return 2;
  }
  o->token = join_token;
  if (o->advertise_addr.empty()) o->advertise_addr = "127.0.0.1";
  agent::Agent a(io, *o);
  a.start();
  fmt::print("Stele is up.\n  API: {}\n  forward: {}\n  data: {}\n  token: {}/token (admin; agents join with {})\n  agent: {} ({}), tasks as user {}, ports {}-{}\n"
             "Ctrl-C stops the platform and leaves apps running; `stele down` stops them too.\n",
             api_url, s.forward_bound.empty() ? std::string("off") : "tcp+udp " + s.forward_bound, dir.string(),
             dir.string(), f.join_token.empty() ? (dir / "join-token").string() : std::string("--join-token"), o->id, o->hostname, o->task_user, o->ports.begin, o->ports.end);
  fflush(stdout);
  if (s.leading) deploy_initial_apps(s, f.apps);
  else if (!f.apps.empty()) spdlog::warn("--app: not deployed, this server is not the leader");
  push_initial_repos(s, f.repos, api_url, f.tls_ca);
  auto timer = std::make_shared<asio::steady_timer>(io);
  status_line(io, s, timer, std::make_shared<std::string>());
  on_stop_signal(io, [&] {
    a.stop();
    s.stop();
    timer->cancel();
    io.stop();
  });
  io.run();
  s.close_logs();
  size_t live = s.cluster->tasks().size();
  fs::remove(dir / "stele.pid");
  fmt::print("Stele stopped. {} app instance(s) keep running; `stele up` re-attaches them, `stele down` stops them.\n", live);
  return 0;
}

bool process_alive(pid_t pid) { return pid > 0 && kill(pid, 0) == 0; }

int run_down(const Flags& f) {
  fs::path dir = fs::absolute(f.data_dir.empty() ? "stele-data" : f.data_dir);
  if (!fs::exists(dir)) {
    fmt::print(stderr, "stele: no data dir at {}\n", dir.string());
    return 1;
  }
  pid_t pid = static_cast<pid_t>(atoi(read_file(dir / "stele.pid").c_str()));
  if (process_alive(pid)) {
    fmt::print("stopping the platform (pid {})...\n", pid);
    kill(pid, SIGTERM);
    for (int i = 0; i < 100 && process_alive(pid); ++i) usleep(100'000);
  }
  int n = stop_all_tasks((dir / "agent").string(), 5.0);
  fmt::print("Stele is down: {} task(s) stopped.\n", n);
  return 0;
}

// `stele store migrate`: copies every document and event between two stores.
struct StoreMigrateFlags {
  std::string from, to;
  bool force = false;
  bool json = false;
};

int print_error(const std::string& what, const Error& e) {
  fmt::print(stderr, "stele: {}: {}\n", what, e.message);
  return 1;
}

int run_store_migrate(const StoreMigrateFlags& m) {
  auto from = store::open_store(m.from, "", false);
  if (!from) return print_error("--from " + m.from, from.error());
  auto to = store::open_store(m.to, "");
  if (!to) return print_error("--to " + m.to, to.error());
  auto report = store::migrate_state(**from, **to, m.force);
  if (!report) return print_error("store migrate", report.error());
  if (m.json) {
    fmt::print("{}\n", Json{{"from", m.from}, {"to", m.to}, {"documents", report->documents}, {"events", report->events}}.dump());
    return 0;
  }
  for (const auto& [collection, n] : report->documents) fmt::print("{:<16} {}\n", collection, n);
  fmt::print("{:<16} {}\ncopied from {} to {}\n", "events", report->events, m.from, m.to);
  return 0;
}

void add_store_commands(CLI::App& app, CLI::App*& migrate, StoreMigrateFlags& m) {
  auto* storec = app.add_subcommand("store", "the server's state store (stop the servers using it first)");
  storec->require_subcommand(1);
  migrate = storec->add_subcommand("migrate", "copy every document and event from one store to another (e.g. SQLite to etcd)");
  migrate->add_option("--from", m.from, "source store: sqlite:PATH or etcd://host:port[,host:port...][/prefix/]")->required();
  migrate->add_option("--to", m.to, "destination store, same forms; must be empty unless --force")->required();
  migrate->add_flag("--force", m.force, "write over a non-empty destination (same keys replaced, nothing deleted)");
  migrate->add_flag("--json", m.json, "print the counts as JSON");
}

void add_common_flags(CLI::App* c, Flags& f) {
  c->add_option("--data-dir", f.data_dir, "data directory")->envname("STELE_DATA_DIR");
  c->add_option("--agent-timeout", f.agent_timeout, "seconds without heartbeat before an agent is lost (and fences itself)")
      ->envname("STELE_AGENT_TIMEOUT")->capture_default_str();
  c->add_option("--token", f.token,
                "server: the bootstrap admin token (default: <data-dir>/token); agent: the older spelling of --join-token")
      ->envname("STELE_TOKEN");
  c->add_option("--join-token", f.join_token,
                "server: the token agents must present (default: <data-dir>/join-token, generated 0600); "
                "agent: the join token it presents")
      ->envname("STELE_JOIN_TOKEN");
  c->add_flag("-v,--verbose", f.verbose, "debug logging");
  c->add_option("--tls-ca", f.tls_ca,
                "CA certificate (PEM) an https:// server and a TLS forward input must be signed by (`stele certs "
                "init`); server: also passed to its own git hooks")
      ->envname("STELE_CA");
}

void add_server_flags(CLI::App* c, Flags& f) {
  c->add_option("--listen", f.listen, "API listener host:port")->envname("STELE_LISTEN")->capture_default_str();
  c->add_flag("--require-token", f.require_token,
              "require a token for mutating calls and agents even on a loopback listener (always so off loopback)")
      ->envname("STELE_REQUIRE_TOKEN");
  c->add_option("--deploy-timeout", f.deploy_timeout, "seconds for new instances to become healthy before a deployment fails")
      ->envname("STELE_DEPLOY_TIMEOUT")->capture_default_str();
  c->add_option("--webhook-secret", f.webhook_secret, "secret for X-Hub-Signature-256 on POST /api/v1/hooks/git")
      ->envname("STELE_WEBHOOK_SECRET");
  c->add_option("--build-mem", f.build_mem, "default memory limit of a build or test step, MB")
      ->envname("STELE_BUILD_MEM")->capture_default_str();
  c->add_option("--build-cpus", f.build_cpus, "default cpus of a build or test step")
      ->envname("STELE_BUILD_CPUS")->capture_default_str();
  c->add_option("--build-timeout", f.build_timeout, "default time limit of a build, seconds")
      ->envname("STELE_BUILD_TIMEOUT")->capture_default_str();
  c->add_option("--retain-releases", f.retain_releases, "ready releases per app whose slugs are kept")
      ->envname("STELE_RETAIN_RELEASES")->capture_default_str();
  c->add_option("--router-listen", f.router_listen,
                "built-in HTTP router host:port: requests for apps' \"routes\" (by Host and path) go to their "
                "healthy instances; \"off\" disables it")
      ->envname("STELE_ROUTER_LISTEN")->capture_default_str();
  c->add_option("--router-tls-listen", f.router_tls_listen,
                "TLS listener host:port of the built-in router (e.g. 0.0.0.0:443), certificate per host name (SNI) "
                "from --router-certs; \"off\" disables it")
      ->envname("STELE_ROUTER_TLS_LISTEN")->capture_default_str();
  c->add_option("--router-certs", f.router_certs,
                "the router's certificates: <host>.crt + <host>.key (PEM chain, key), _wildcard.<domain>.crt/.key "
                "for *.<domain>, default.crt/.key for other names; re-read when they change (default: <data-dir>/certs)")
      ->envname("STELE_ROUTER_CERTS");
  c->add_option("--router-header-timeout", f.router_header_timeout,
                "seconds a router client has for its TLS handshake and for each request head; slower clients are cut")
      ->envname("STELE_ROUTER_HEADER_TIMEOUT")->capture_default_str();
  c->add_option("--tls-cert", f.tls_cert,
                "certificate chain (PEM) of the API listener: with --tls-key it speaks only HTTPS (`stele certs node`)")
      ->envname("STELE_TLS_CERT");
  c->add_option("--tls-key", f.tls_key, "private key (PEM) of --tls-cert")->envname("STELE_TLS_KEY");
  c->add_flag("--forward-tls", f.forward_tls,
              "the forward input speaks TLS too, with --tls-cert/--tls-key (as Fluentd's <transport tls>); "
              "agents are told to ship over TLS")
      ->envname("STELE_FORWARD_TLS");
  c->add_option("--forward-listen", f.forward_listen,
                "Fluentd forward protocol input host:port (tcp, and udp heartbeat); \"off\" disables it")
      ->envname("STELE_FORWARD_LISTEN")->capture_default_str();
  c->add_option("--forward-shared-key", f.forward_shared_key,
                "shared key forward senders must prove (HELO/PING/PONG handshake); empty = none")
      ->envname("STELE_FORWARD_SHARED_KEY");
  c->add_option("--forward-to", f.forward_to,
                "relay every stored log record to this upstream forward input host:port (Fluentd, Fluent Bit), "
                "with acks and retry")
      ->envname("STELE_FORWARD_TO");
  c->add_option("--forward-to-shared-key", f.forward_to_shared_key,
                "shared key for the --forward-to upstream's handshake; empty = none")
      ->envname("STELE_FORWARD_TO_SHARED_KEY");
  c->add_option("--log-retention", f.log_retention, "log store retention: age, size or both (e.g. 7d,10GB; 0 = no limit)")
      ->envname("STELE_LOG_RETENTION")->capture_default_str();
  c->add_option("--graphite-listen", f.graphite_listen,
                "Graphite plaintext input host:port (tcp and udp); \"off\" disables it")
      ->envname("STELE_GRAPHITE_LISTEN")->capture_default_str();
  c->add_option("--metrics-schemas", f.metrics_schemas,
                "carbon storage-schemas.conf: retentions per metric pattern (default 10s:6h,1m:7d,10m:1y for all)")
      ->envname("STELE_METRICS_SCHEMAS")->check(CLI::ExistingFile);
  c->add_option("--metrics-aggregation", f.metrics_aggregation,
                "carbon storage-aggregation.conf: aggregationMethod and xFilesFactor per pattern (default average, 0.5)")
      ->envname("STELE_METRICS_AGGREGATION")->check(CLI::ExistingFile);
  c->add_option("--metrics-max-series", f.metrics_max_series,
                "most metric series kept; new ones past it are refused (the store's disk is bounded by it)")
      ->envname("STELE_METRICS_MAX_SERIES")->capture_default_str();
  c->add_option("--probe-interval", f.probe_interval,
                "seconds between probes of every running instance's ports (TCP, or HTTP for apps with an HTTP "
                "health check; observations only, never kills); 0 = off")
      ->envname("STELE_PROBE_INTERVAL")->capture_default_str();
  c->add_option("--carbon-relay", f.carbon_relay, "also send every metric point to this Graphite line receiver host:port")
      ->envname("STELE_CARBON_RELAY");
  c->add_option("--store", f.store_url,
                "state store: sqlite:PATH, or etcd://host:port[,host:port...][/prefix/] (etcd v3; several servers "
                "can share it) (default: SQLite <data-dir>/state.db)")
      ->envname("STELE_STORE");
  c->add_option("--advertise-url", f.advertise_url,
                "this server's API URL as other servers, agents and the CLI reach it; with an etcd store followers "
                "redirect to the leader's (default: http://<--listen>)")
      ->envname("STELE_ADVERTISE_URL");
  c->add_option("--leader-ttl", f.leader_ttl,
                "with an etcd store: seconds of the leader's lease; a dead leader is replaced within about this")
      ->envname("STELE_LEADER_TTL")->check(CLI::Range(2, 60))->capture_default_str();
}

void add_agent_flags(CLI::App* c, Flags& f) {
  c->add_option("--hostname", f.hostname, "name for constraints and metrics (default: the system's)")->envname("STELE_HOSTNAME");
  c->add_option("--advertise-addr", f.advertise_addr, "address probes and HOST use")->envname("STELE_ADVERTISE_ADDR");
  c->add_option("--agent-id", f.agent_id, "stable agent id (default: generated, kept in the data dir)")->envname("STELE_AGENT_ID");
  c->add_option("--ports", f.ports, "task port range")->envname("STELE_PORTS")->capture_default_str();
  c->add_option("--resources", f.resources, "cpus=N,mem=MB,disk=MB (default: detected)")->envname("STELE_RESOURCES");
  c->add_option("--attributes", f.attributes, "k=v,... for constraints")->envname("STELE_ATTRIBUTES");
  c->add_option("--subscriptions", f.subscriptions, "check subscriptions a,b")->envname("STELE_SUBSCRIPTIONS");
  c->add_option("--task-user", f.task_user, "user tasks run as (default: stele-task, else nobody; never root)")->envname("STELE_TASK_USER");
  c->add_option("--recovery-timeout", f.recovery_timeout, "seconds an executor waits for its agent before killing its task")
      ->envname("STELE_RECOVERY_TIMEOUT")->capture_default_str();
  c->add_option("--docker-socket", f.docker_socket, "the Docker engine's API socket (docker containerizer)")
      ->envname("STELE_DOCKER_SOCKET")->capture_default_str();
  c->add_option("--metrics-interval", f.metrics_interval,
                "seconds between collections of task (cgroup) and node metrics; 0 = off")
      ->envname("STELE_METRICS_INTERVAL")->capture_default_str();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "executor") return executor_main(argc, argv);
  // https:// callers trust $STELE_CA (git hooks get it from the server); the
  // flags (--tls-ca, --ca) replace it below.
  if (const char* ca = getenv("STELE_CA"); ca && *ca) net::set_client_ca_file(ca);
  if (argc > 1 && std::string(argv[1]) == "hook") return cli::hook_main(argc, argv);  // git runs it
  signal(SIGPIPE, SIG_IGN);
  CLI::App app{"Stele: git push to running, immutable releases — one binary for the whole platform.\n"
               "Roles: server, agent, up, down (and executor, started by agents). Every other verb is a client of the API."};
  app.require_subcommand(1);
  Flags f;
  auto* server = app.add_subcommand("server", "run the control plane (API, scheduler, deployments, git + pipeline, artifact store)");
  add_common_flags(server, f);
  add_server_flags(server, f);
  server->add_option("--hostname", f.hostname, "this server's name: its router's node, its name in the leader election "
                                               "(default: the system's)")->envname("STELE_HOSTNAME");
  auto* agentc = app.add_subcommand("agent", "run an agent: offers this host's resources and runs tasks");
  add_common_flags(agentc, f);
  add_agent_flags(agentc, f);
  agentc->add_option("--server", f.server,
                     "server URL; several, comma-separated, for servers sharing an etcd store: the agent follows "
                     "whichever leads")->envname("STELE_SERVER")->capture_default_str();
  agentc->add_flag("--router", f.agent_router,
                   "also run the HTTP router on this host (on --router-listen); it gets every route table from the "
                   "server and acknowledges it before routed instances are stopped")
      ->envname("STELE_AGENT_ROUTER");
  agentc->add_option("--router-listen", f.agent_router_listen, "host:port of this host's router (with --router)")
      ->envname("STELE_ROUTER_LISTEN")->capture_default_str();
  auto* up = app.add_subcommand("up", "run a one-machine cluster (server + agent) in the foreground; data in ./stele-data");
  add_common_flags(up, f);
  add_server_flags(up, f);
  add_agent_flags(up, f);
  up->add_option("--push", f.repos, "source directory with a stele.json to push through the pipeline once the platform is up (as `git push` would); repeatable")->check(CLI::ExistingDirectory);
  up->add_option("--app", f.apps, "app spec (Marathon JSON) to deploy once the platform is up; repeatable")->check(CLI::ExistingFile);
  auto* down = app.add_subcommand("down", "stop the platform started by `stele up` and every app instance, from the data dir");
  down->add_option("--data-dir", f.data_dir, "data directory of `stele up`")->envname("STELE_DATA_DIR");
  StoreMigrateFlags store_migrate;
  CLI::App* migrate = nullptr;
  add_store_commands(app, migrate, store_migrate);
  RestoreFlags restore_flags;
  CLI::App* restore = nullptr;
  add_restore_command(app, restore, restore_flags);
  cli::add_client_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (!f.tls_ca.empty()) net::set_client_ca_file(f.tls_ca);
  if (*server) return run_server(f);
  if (*agentc) return run_agent(f);
  if (*up) return run_up(f);
  if (*down) return run_down(f);
  if (*migrate) return run_store_migrate(store_migrate);
  if (*restore) return run_restore(restore_flags);
  return cli::run_client(app);
}
