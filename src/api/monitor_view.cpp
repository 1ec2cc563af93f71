// monitor_inventory(): the cluster as monitoring sees it (api_server.h).
#include "api/api_server.h"
#include "common/names.h"

namespace stele::api {

std::vector<monitor::AgentEntity> monitor_agents(const deploy::Cluster& c) {
  std::vector<monitor::AgentEntity> out;
  for (const auto* n : c.nodes()) {
    monitor::AgentEntity a;
    a.id = n->id;
    a.entity = host_name(n->hostname);
    a.subscriptions = n->subscriptions;
    a.last_heartbeat_ms = n->last_heartbeat_ms ? n->last_heartbeat_ms : n->registered_ms;
    a.lost = n->state == "lost";
    a.connected = n->session && !a.lost;
    out.push_back(std::move(a));
  }
  return out;
}

bool monitor_task_running(const deploy::Cluster& c, const std::string& task_id) {
  const auto* t = c.task(task_id);
  return t && t->kind.empty() && t->state == deploy::TaskState::Running && !t->kill_sent;
}

monitor::Inventory monitor_inventory(const deploy::Cluster& c) {
  monitor::Inventory inv;
  inv.agents = monitor_agents(c);
  std::map<std::string, std::string> addresses;  // agent id -> address
  for (const auto* n : c.nodes()) addresses[n->id] = n->address;
  for (const auto* t : c.tasks()) {
    if (!monitor_task_running(c, t->id)) continue;
    monitor::TaskEntity e;
    e.task_id = t->id;
    e.app_id = t->app_id;
    e.entity = task_entity(t->app_id, t->release, t->seq);
    e.node = t->agent_id;
    e.host = t->host.empty() ? addresses[t->agent_id] : t->host;
    e.ports = t->ports;
    if (const auto* rel = c.release(t->app_id, t->release))
      for (const auto& hc : rel->spec.health_checks)
        if (hc.protocol == "HTTP" && !hc.port) {
          e.http_path = hc.path;
          e.http_port_index = hc.port_index;
          break;
        }
    inv.tasks.push_back(std::move(e));
  }
  return inv;
}

}  // namespace stele::api
