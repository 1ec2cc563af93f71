// App health checks, run by the task's agent with Marathon semantics
// (design.md "Health, liveness and one clock"). Their results travel to the
// server as status updates and alone decide kill-and-replace.
#pragma once
#include <utility>  // before asio, for g++ 12

#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/spec.h"

namespace stele::agent {

// One entry of Marathon's task "healthCheckResults".
struct HealthCheckResult {
  int index = 0;                    // which check of the app
  bool alive = false;
  int consecutive_failures = 0;
  std::string first_success;        // ISO-8601 (stele::iso8601) or empty
  std::string last_success, last_failure, last_failure_cause;

  friend bool operator==(const HealthCheckResult&, const HealthCheckResult&) = default;
};

// What to probe.
struct HealthTarget {
  std::string task_id, host;               // host: address to probe, e.g. "127.0.0.1"
  std::vector<int> ports;                  // the task's assigned ports (portIndex indexes these)
  std::map<std::string, std::string> env;  // task env for COMMAND checks
  std::string sandbox, user;               // COMMAND runs in sandbox as this user (never root)
  // A Docker task: COMMAND runs inside this container instead, through the
  // engine at docker_socket, as the container's user with the container's
  // env (sandbox, user and env above are then unused). docker_socket "":
  // the Engine's default.
  std::string container, docker_socket;
  int64_t started_ms = 0;                  // task start time; the grace period counts from here
};

// Runs all checks of one task on one io_context thread. Every method must be
// called on that thread; callbacks are invoked on it too and may destroy the
// TaskHealth.
//
// Probes: HTTP GET http://host:port/path, 200-399 healthy (1xx discarded when
// ignoreHttp1xx); HTTPS is probed as TCP connect (no TLS in stele_agent yet,
// logged once); TCP connect; COMMAND `/bin/sh -c` in the sandbox with the task
// env as `user` (root refused; when the agent itself is not root it runs as the
// agent's user), exit 0 healthy, its process group killed after timeoutSeconds.
// A Docker task's COMMAND runs in its container through the Engine API's exec
// (on a worker thread: the Engine is blocking), exit 0 healthy; after
// timeoutSeconds, or on stop(), the command is killed by the pid the engine
// reports (the engine cannot kill an exec; children it forked may survive).
// First probe at start(), then one every intervalSeconds (measured start to start).
//
// Accounting (Marathon): while clock < started_ms + gracePeriodSeconds and no
// success yet, failures are ignored (not recorded, no callback). Otherwise a
// failure sets alive=false and increments consecutive_failures; a success sets
// alive=true and resets it. on_change fires when a result's alive flag changes
// or a failure is recorded, with all results. When a check's
// consecutive_failures reaches maxConsecutiveFailures (> 0; 0 = never) on_change
// fires, then on_kill once with the cause, and all probing stops.
class TaskHealth {
 public:
  using ChangeFn = std::function<void(const std::vector<HealthCheckResult>&)>;
  using KillFn = std::function<void(const std::string& cause)>;

  // `clock` (timestamps and the grace period) must outlive this object;
  // nullptr = the system clock.
  TaskHealth(boost::asio::any_io_executor ex, HealthTarget target, std::vector<HealthCheck> checks,
             ChangeFn on_change, KillFn on_kill, const Clock* clock = nullptr);
  ~TaskHealth();  // stop()
  TaskHealth(const TaskHealth&) = delete;
  TaskHealth& operator=(const TaskHealth&) = delete;

  // Starts probing; a second call, or a call after stop(), does nothing.
  void start();
  // Cancels interval timers, closes pending TCP probes, kills pending COMMAND
  // process groups; no callback fires afterwards. An HTTP request in flight is
  // abandoned and ends by its own timeout. Idempotent.
  void stop();

  std::vector<HealthCheckResult> results() const;
  bool healthy() const;  // every check alive; true when there are no checks

 private:
  struct Shared;
  std::shared_ptr<Shared> s_;  // shared with the probe coroutines
};

}  // namespace stele::agent
