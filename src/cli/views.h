// How the client shows the API's records (docs/api.md shapes) to a person:
// one table per list verb and a detail block for `stele app`. Pure functions
// of the JSON answer and the current time, so they are unit-tested.
#pragma once
#include <cstdint>
#include <string>

#include "cli/table.h"
#include "common/json.h"

namespace stele::cli {

// `stele apps`: ID RELEASE RUNNING HEALTHY STATUS AGE.
Table apps_table(const Json& apps, int64_t now_ms);
// `stele ps`: ID APP RELEASE STATE HEALTH HOST PORTS AGE (uptime of a
// running task, else time since it was staged).
Table tasks_table(const Json& tasks, int64_t now_ms);
// `stele nodes`: ID HOSTNAME ADDRESS STATE CPUS MEM PORTS (used/total).
Table nodes_table(const Json& nodes);
// The servers sharing a store: the leader (GET /api/v1/leader) and the
// followers that report to it (GET /api/v1/replication "servers"), with the
// artifacts each holds and how long ago a follower last reported.
Table servers_table(const Json& leader, const Json& replication);
// `stele routes` (GET /api/v1/routes): HOST PATH APP INSTANCE ADDRESS STATE,
// a row per instance of each route ("(no instances)" when it has none);
// STATE is healthy or "not ready" (running but not passing its checks, or
// being stopped: it gets no traffic).
Table routes_table(const Json& doc);
// "router 127.0.0.1:7080 on host1: table version 7 applied" per router, or
// a line saying that no router runs.
std::string routers_summary(const Json& doc);
// `stele deployments`: ID APP KIND RELEASE INSTANCES STATUS AGE STEP.
Table deployments_table(const Json& deployments, int64_t now_ms);
// `stele releases`: RELEASE CURRENT STATUS CAUSE SHA ARTIFACT BUILD TEST
// SMOKE AGE NOTE, newest first. '*' marks the release whose "current" is
// true or whose number is `current` (the app's release; 0 = unknown).
// ARTIFACT is the short digest and size; NOTE says why a failed release
// failed ("test: exit status 1") or whose slug a release reused ("slug of r3").
Table releases_table(const Json& releases, int64_t current, int64_t now_ms);
// `stele config`: KEY VALUE, sorted by key (values as the server sent them,
// masked unless --reveal).
Table config_table(const Json& config);
// `stele app ID`: aligned "Key: value" lines for an App.
std::string app_details(const Json& app, int64_t now_ms);

// One-word-or-so state of an App: its deployment ("deploy r2->r3: 1/3 new
// healthy, 3 old"), why it waits ("waiting: ..."), "suspended" at 0
// instances, "degraded" below its scale or with unhealthy tasks, else "ok".
std::string app_status(const Json& app);
// "healthy", "unhealthy", "pending" (checks not passed yet), or "-" (no checks).
std::string task_health(const Json& task);
// Task ports "31000,31001" ("-" when none).
std::string task_ports(const Json& task);
// A deployment's from->to: "r2->r3" (or "r3" when equal), "3->5" (or "3").
std::string release_change(const Json& deployment);
std::string instance_change(const Json& deployment);
// Ports of a node in use / offered: "2/1001".
std::string node_ports(const Json& node);

}  // namespace stele::cli
