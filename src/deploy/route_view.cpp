#include "deploy/route_view.h"

#include <algorithm>

namespace stele::deploy {

Json route_table_json(const Cluster& cluster) {
  Json routes = Json::array();
  Json apps = Json::object();
  for (const App* a : cluster.apps()) {
    const Release* rel = cluster.current_release(a->id);
    if (!rel || rel->spec.routes.empty()) continue;
    for (const RouteSpec& r : rel->spec.routes)
      routes.push_back({{"host", r.host}, {"path", r.path}, {"app", a->id}, {"portIndex", r.port_index},
                        {"balance", r.least_conn ? "least-conn" : "round-robin"},
                        {"redirectHttps", r.redirect_https}});
    std::vector<const Task*> tasks = cluster.tasks(a->id);
    std::sort(tasks.begin(), tasks.end(), [](const Task* x, const Task* y) { return x->id < y->id; });
    Json instances = Json::array();
    for (const Task* t : tasks) {
      if (!t->kind.empty() || t->host.empty() || t->ports.empty()) continue;
      instances.push_back({{"task", t->id}, {"host", t->host}, {"ports", t->ports},
                           {"healthy", t->healthy() && !t->kill_sent && t->drain_since_ms == 0}});
    }
    apps[a->id] = {{"instances", std::move(instances)}};
  }
  return {{"routes", std::move(routes)}, {"apps", std::move(apps)}};
}

}  // namespace stele::deploy
