// AppSpec: a Marathon app definition (the subset Stele honours), parsed and
// validated from JSON, and rendered back to Marathon's JSON shape.
// Field names and defaults follow Marathon's app JSON documentation.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/result.h"

namespace stele {

struct Constraint {
  std::string field;     // "hostname" or an attribute name
  std::string op;        // UNIQUE CLUSTER GROUP_BY LIKE UNLIKE MAX_PER
  std::string value;     // optional for UNIQUE / GROUP_BY

  friend bool operator==(const Constraint&, const Constraint&) = default;
};

struct PortDefinition {
  int port = 0;          // 0 = any free port from the agent's range
  std::string protocol = "tcp";
  std::string name;
  std::map<std::string, std::string> labels;  // Marathon's portDefinitions[].labels

  friend bool operator==(const PortDefinition&, const PortDefinition&) = default;
};

struct HealthCheck {
  std::string protocol = "HTTP";  // HTTP, HTTPS, TCP, COMMAND (MESOS_HTTP/MESOS_TCP accepted as HTTP/TCP)
  std::string path = "/";         // HTTP
  int port_index = 0;             // which assigned port to probe
  std::optional<int> port;        // fixed port instead of port_index
  std::string command;            // COMMAND: {"command": {"value": "..."}}
  int grace_period_seconds = 300;
  int interval_seconds = 60;
  int timeout_seconds = 20;
  int max_consecutive_failures = 3;
  bool ignore_http1xx = false;

  friend bool operator==(const HealthCheck&, const HealthCheck&) = default;
};

struct UpgradeStrategy {
  double minimum_health_capacity = 1.0;  // 0..1
  double maximum_over_capacity = 1.0;    // 0..1

  friend bool operator==(const UpgradeStrategy&, const UpgradeStrategy&) = default;
};

// [Stele] How the app's access log lines look, so the server can count its
// requests from its log stream (stele.app.<app name>.requests.*; see
// metrics/request_metrics.h). JSON: "accessLog": {"format": "ltsv"|"json",
// "status": "status", "latency": "reqtime", "latencyUnit": "s"|"ms"|"us"};
// format is required, the rest default as below.
struct AccessLogSpec {
  enum class Format : uint8_t { kLtsv, kJson };
  enum class LatencyUnit : uint8_t { kSeconds, kMilliseconds, kMicroseconds };

  Format format = Format::kLtsv;
  std::string status = "status";    // LTSV label / top-level JSON key of the HTTP status
  std::string latency = "reqtime";  // ... of the request's duration (nginx $request_time)
  // nginx's $request_time is float seconds, Apache's %D microseconds.
  LatencyUnit latency_unit = LatencyUnit::kSeconds;

  friend bool operator==(const AccessLogSpec&, const AccessLogSpec&) = default;
};

// [Stele] Where the built-in router sends requests for the app: by Host
// (exact, "*.example.com" for any subdomain, or "*") and path prefix (whole
// segments) to the app's healthy instances' port `port_index`. JSON:
// "routes": [{"host": "web.localhost", "path": "/", "portIndex": 0,
// "balance": "round-robin"|"least-conn", "redirectHttps": false}].
struct RouteSpec {
  std::string host;  // lower case
  std::string path = "/";
  int port_index = 0;
  bool least_conn = false;
  bool redirect_https = false;

  friend bool operator==(const RouteSpec&, const RouteSpec&) = default;
};

// A Marathon `container` of type DOCKER: {"type": "DOCKER", "docker":
// {"image", "network", "forcePullImage", "parameters", "privileged"},
// "volumes": [{"containerPath", "hostPath", "mode"}]}. Stele runs containers
// on the host network only, never privileged; of Docker's CLI parameters it
// honours user/u, workdir/w, label/l and env/e (and net/network = host).
struct VolumeSpec {
  std::string container_path, host_path;  // both absolute
  bool read_only = false;                 // "mode": "RO" | "RW"

  friend bool operator==(const VolumeSpec&, const VolumeSpec&) = default;
};

struct DockerParameter {
  std::string key, value;

  friend bool operator==(const DockerParameter&, const DockerParameter&) = default;
};

struct ContainerSpec {
  std::string image;
  bool force_pull_image = false;
  std::vector<DockerParameter> parameters;
  std::vector<VolumeSpec> volumes;
  Json docker_extra = Json::object();     // other fields of "docker", kept verbatim
  Json container_extra = Json::object();  // other fields of "container", kept verbatim

  // The user named by a "user"/"u" parameter, or "".
  std::string user_parameter() const;

  friend bool operator==(const ContainerSpec&, const ContainerSpec&) = default;
};

struct AppSpec {
  std::string id;                         // canonical, leading '/'
  std::optional<std::string> cmd;
  std::vector<std::string> args;          // exec form when cmd absent
  double cpus = 1.0;
  double mem = 128.0;                     // MB
  double disk = 0.0;                      // MB
  int instances = 1;
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> labels;
  std::vector<Constraint> constraints;
  std::vector<PortDefinition> port_definitions;  // from portDefinitions or ports
  bool require_ports = false;
  std::vector<HealthCheck> health_checks;
  UpgradeStrategy upgrade_strategy;
  double backoff_seconds = 1.0;
  double backoff_factor = 1.15;
  double max_launch_delay_seconds = 300.0;   // Marathon's default (3600 in old versions)
  double task_kill_grace_period_seconds = 3;  // Stele default when absent
  std::optional<std::string> user;          // honoured only if it is not root
  std::optional<AccessLogSpec> access_log;  // [Stele] absent: no log-derived request metrics
  std::vector<RouteSpec> routes;            // [Stele] router entries (none: not routed)
  std::optional<ContainerSpec> container;   // DOCKER container; absent: a process task
  Json extra = Json::object();              // unknown fields, kept verbatim (Marathon clients send many)

  // Field-by-field equality (extra compared as JSON values).
  friend bool operator==(const AppSpec&, const AppSpec&) = default;
};

// Parses and validates a whole spec. On any invalid field the error has
// code 422 and one FieldError per bad field (path like "/cpus",
// "/healthChecks/0/protocol"); nothing is partially applied.
// `id_override`, when set, is the id from the URL (PUT /v2/apps/{id}).
Result<AppSpec> parse_app_spec(const Json& j, const std::optional<std::string>& id_override = {});

// Applies a partial update (PUT/PATCH with some fields) over `base` and
// validates the result. Fields absent in `patch` keep base's values.
Result<AppSpec> merge_app_spec(const AppSpec& base, const Json& patch);

// Marathon JSON of the spec (all fields, defaults filled in).
Json app_spec_json(const AppSpec& s);

// Why a canonical app id ("/shop/web") is not valid, or "" when it is.
std::string app_id_problem(std::string_view canonical_id);

// The name of the containerizer that runs the app's tasks: "docker" for a
// DOCKER container, else "process".
std::string containerizer_of(const AppSpec& s);

// Returns true when `a` and `b` differ only in `instances`.
bool only_instances_differ(const AppSpec& a, const AppSpec& b);

}  // namespace stele
