// What the built-in routers route (router/route_table.h's JSON, without its
// "version"): each app's `routes` from its current release's spec, and per
// routed app its live instances -- address, ports, and whether they may get
// traffic: running, passing their health checks (design.md: an instance
// gets traffic only after its checks pass), not draining and not being
// killed.
#pragma once
#include "common/json.h"
#include "deploy/cluster.h"

namespace stele::deploy {

// {"routes": [{"host", "path", "app", "portIndex", "balance", "redirectHttps"}],
//  "apps": {"/id": {"instances": [{"task", "host", "ports", "healthy"}]}}},
// apps and tasks in id order so equal states give equal documents.
Json route_table_json(const Cluster& cluster);

}  // namespace stele::deploy
