// MonitorService: the server's monitoring (issue 7) over the pure pieces of
// src/monitor -- check, handler and silence definitions (persisted in the
// Store), check states per (entity, check) with their events, keepalives,
// exported-port probes, proxy checks, ttl expiry, handlers and silences.
//
// Who runs what:
// - Subscription checks run on agents (agent/checks.h). The server tells
//   each agent the checks its subscriptions select (agent_checks(), sent on
//   its command stream whenever checks_version() changes); round_robin
//   checks carry {"index", "of"} so that of the subscribed agents exactly one
//   runs each interval slot. Results come back through record_agent_results().
// - Proxy checks (`proxy`: an app) run here, once per running task of the
//   app, with the task's host and ports substituted, as the task user
//   (MonitorOptions::uid/gid): the server is the proxy for the task entity.
// - Exported-port probes: every running task's ports, TCP connect (HTTP GET
//   of the health check's path for apps with an HTTP health check), check
//   name "probe", entity = the task entity. Observations only: nothing here
//   ever kills a task (design.md "Health, liveness and one clock").
// - Keepalives: check "keepalive" on each agent's entity (its host name):
//   OK, WARNING at half of agent_timeout without a heartbeat, CRITICAL at it.
//
// Every status change and ttl expiry is an event "check_state" on the one
// event stream (stored, then on_event); incidents and resolutions go to the
// check's handlers unless silenced or filtered (never awaited by the check
// path: handlers run in their own coroutines). Perfdata becomes metric
// points stele.check.<entity>.<check>.<label> (write_points).
//
// Thread-safety: none; everything on the server's io_context thread, like
// the Cluster. Leader-only duties (design.md): the caller starts the service
// only where it leads.
#pragma once
#include <utility>  // before asio, for g++ 12

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "common/clock.h"
#include "common/json.h"
#include "common/result.h"
#include "monitor/check_spec.h"
#include "monitor/check_state.h"
#include "net/http.h"
#include "net/signal.h"
#include "store/store.h"

namespace stele::monitor {

// What the service monitors, read from the control plane when needed.
struct AgentEntity {
  std::string id;
  std::string entity;  // host name (design.md "Names")
  std::vector<std::string> subscriptions;
  int64_t last_heartbeat_ms = 0;
  bool lost = false;
  bool connected = false;  // registered with this server (commands reach it)
};
struct TaskEntity {
  std::string task_id, app_id, entity, node, host;  // host: the address to probe
  std::vector<int> ports;
  std::optional<std::string> http_path;  // the app's HTTP health check path
  int http_port_index = 0;
};
struct Inventory {
  std::vector<AgentEntity> agents;
  std::vector<TaskEntity> tasks;  // running app instances (no pipeline steps)
};

struct MetricPoint {
  std::string path;
  double value = 0;
  int64_t time_s = 0;
};

struct MonitorOptions {
  int64_t agent_timeout_ms = 30'000;
  int64_t probe_interval_ms = 10'000;  // 0 = no probes
  int64_t probe_timeout_ms = 2'000;
  int64_t keepalive_record_ms = 10'000;  // an unchanged keepalive is recorded this often
  // Credentials of proxy checks and pipe handlers (the task user).
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  std::vector<gid_t> groups;
  std::function<Inventory()> inventory;  // everything: O(tasks), called once per pass
  std::function<std::vector<AgentEntity>()> agents;  // agents alone (agent calls); default: inventory's
  std::function<bool(const std::string& task_id)> task_running;  // cheap; default: true
  // Perfdata points; may be called often, should not block.
  std::function<void(std::vector<MetricPoint>)> write_points;
  // An event stored by the service (with its "id").
  std::function<void(const Json&)> on_event;
  // The definitions an agent runs changed: its command stream should send them.
  std::function<void(const std::string& agent_id)> agent_changed;
};

class MonitorService {
 public:
  MonitorService(boost::asio::io_context& io, store::Store& store, const Clock& clock, MonitorOptions opts);
  ~MonitorService();
  MonitorService(const MonitorService&) = delete;
  MonitorService& operator=(const MonitorService&) = delete;

  // Definitions and stored states from the store.
  Result<void> load();
  // Starts the loops (keepalives, ttl, silences' expiry, probes, proxy checks).
  void start();
  void stop();

  // ---- definitions (errors: 422 naming fields, 404 unknown, 503 store)
  // Creates or replaces; `created` tells which.
  struct Put {
    Json doc;
    bool created = false;
  };
  Result<Put> put_check(const Json& j, const std::string& actor);
  Result<Put> put_handler(const Json& j, const std::string& actor);
  Result<Put> put_silence(const Json& j, const std::string& actor);
  Result<void> delete_check(const std::string& name, const std::string& actor);
  Result<void> delete_handler(const std::string& name, const std::string& actor);
  Result<void> delete_silence(const std::string& id, const std::string& actor);
  Json checks_json() const;
  std::optional<Json> check_json(const std::string& name) const;
  Json handlers_json() const;
  std::optional<Json> handler_json(const std::string& name) const;
  Json silences_json() const;

  // ---- states: GET /api/v1/checks/status
  Json status_json(const std::string& check, const std::string& entity, bool failing_only) const;

  // ---- agents
  // Grows whenever any agent's set of checks may have changed.
  uint64_t checks_version() const { return checks_version_; }
  // {"version", "entity", "checks": [check spec + "roundRobin": {"index", "of"}?]}
  Json agent_checks(const std::string& agent_id) const;
  // Run-now requests queued for this agent: [{"request", "check"}]; taken once.
  std::vector<Json> take_run_requests(const std::string& agent_id);
  // {"results": [CheckResult JSON + "request"?]} from agent `agent_id`.
  Result<size_t> record_agent_results(const std::string& agent_id, const Json& body);

  // POST /api/v1/checks/{name}/run: runs it now where it runs and answers
  // {"check", "results": [state JSON]} once every target answered or the
  // timeout passed (targets that did not answer are listed in "missing").
  net::awaitable<Result<Json>> run_now(std::string name);

  // Tests: one pass of the periodic evaluation at the clock's time.
  void evaluate_for_test() { evaluate(); }

 private:
  struct Pending;
  void evaluate();
  void keepalives(const std::vector<AgentEntity>& agents, int64_t now);
  void expire_silences(int64_t now);
  void forget_gone_entities(const Inventory& inv);
  net::awaitable<void> probe_loop();
  net::awaitable<void> proxy_loop(std::string check);
  net::awaitable<void> probe_task(TaskEntity t);
  net::awaitable<CheckResult> run_proxy(CheckSpec spec, TaskEntity t);
  // Records one result and does what follows from it: event, store,
  // handlers, perfdata points. `subs` are the entity's subscriptions.
  void record(const std::string& entity, const std::vector<std::string>& subs, CheckResult r);
  void after_record(const std::string& entity, const std::vector<std::string>& subs, const Recorded& rec,
                    const CheckState& st, bool stored_change);
  bool silenced(const std::vector<std::string>& subs, const std::string& check, const CheckState& st,
                bool resolution);
  void handle(const std::string& handler, const Json& event, const FilterInput& in);
  net::awaitable<void> run_handler(HandlerSpec h, std::string event);
  Result<void> persist(std::vector<store::Write> writes, std::vector<Json> events);
  StatePolicy policy(const std::string& check) const;
  std::vector<std::string> entity_subscriptions(const std::string& entity) const;
  std::vector<AgentEntity> agents() const;
  void bump_checks_version();

  boost::asio::io_context& io_;
  store::Store& store_;
  const Clock& clock_;
  MonitorOptions opts_;
  std::map<std::string, CheckSpec> checks_;
  std::map<std::string, HandlerSpec> handlers_;
  std::map<std::string, Silence> silences_;  // by silence_id()
  CheckStateTracker states_;
  std::map<std::string, std::vector<std::string>> entity_subs_;  // last known, for silences
  std::map<std::string, int64_t> keepalive_recorded_ms_;          // agent entity -> last record
  std::map<std::string, std::vector<Json>> run_requests_;         // agent id -> queued
  std::map<uint64_t, std::shared_ptr<Pending>> pending_;           // run-now requests
  std::set<std::string> proxy_loops_;                              // checks whose loop runs
  std::set<std::string> probing_;                                  // tasks with a probe in flight
  std::string members_;  // connected agents and their subscriptions (round robin depends on them)
  uint64_t checks_version_ = 1;
  uint64_t passes_ = 0;  // evaluate() calls
  uint64_t next_request_ = 1;
  std::shared_ptr<bool> alive_;  // loops end when it turns false
};

}  // namespace stele::monitor
