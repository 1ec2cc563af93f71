// AgentChecks: the agent's side of monitoring subscription checks (issue 7;
// the server side is monitor/service.h). The server sends, on the agent's
// command stream, the checks this agent's --subscriptions select
// (event "checks": {"version", "entity", "checks": [check spec, with
// "roundRobin": {"index", "of"} for round-robin checks]}) and run-now
// requests (event "check-run": {"request", "check"}).
//
// Scheduling: each check runs at the instants k * interval + splay (splay =
// a hash of its name modulo the interval), the same instants on every agent,
// so a round-robin check runs on the agent whose index == k mod of. A run
// still going at the next instant makes that instant skip (a plugin whose
// timeout exceeds its interval never piles up). Plugins run through
// monitor::run_plugin as the task user (never root) with the check's timeout.
//
// Results go to POST /api/v1/agent/checks in batches; a batch the server
// does not take is retried for a while, then dropped with a log line (a
// check's ttl is what notices results that never arrive).
//
// Single-threaded: everything on the agent's io_context.
#pragma once
#include <utility>  // before asio, for g++ 12

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "common/json.h"
#include "monitor/check_spec.h"
#include "net/http.h"
#include "net/signal.h"

namespace stele::agent {

struct AgentChecksOptions {
  std::string agent_id;
  std::optional<uid_t> uid;  // the task user's credentials; unset = the agent's own
  std::optional<gid_t> gid;
  std::vector<gid_t> groups;
  // POSTs a body to /api/v1/agent/checks; true when the server took it.
  std::function<net::awaitable<bool>(std::string body)> post;
};

class AgentChecks {
 public:
  AgentChecks(boost::asio::io_context& io, AgentChecksOptions opts);
  ~AgentChecks();  // stop()
  void start();
  void stop();

  // The "checks" event: replaces the set of checks (unchanged ones keep
  // their schedule). Bad entries are skipped with a log line.
  void set_checks(const Json& doc);
  // The "check-run" event: runs it now (unknown checks are answered by
  // nothing; the server's wait ends at its timeout).
  void run_now(const Json& req);

  // For tests: names of the checks scheduled.
  std::vector<std::string> scheduled_for_test() const;

 private:
  struct Scheduled {
    monitor::CheckSpec spec;
    int64_t rr_index = 0, rr_of = 0;  // of == 0: not round robin
    uint64_t generation = 0;
  };
  net::awaitable<void> schedule(std::string name, uint64_t generation);
  net::awaitable<void> execute(monitor::CheckSpec spec, std::optional<uint64_t> request);
  net::awaitable<void> send_loop();

  boost::asio::io_context& io_;
  AgentChecksOptions opts_;
  std::map<std::string, Scheduled> checks_;
  std::set<std::string> running_;  // checks with a run in flight
  std::deque<Json> outbox_;
  net::AsyncSignal outbox_signal_;
  uint64_t next_generation_ = 1;
  std::shared_ptr<bool> alive_;
};

}  // namespace stele::agent
