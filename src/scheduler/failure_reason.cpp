#include "scheduler/failure_reason.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace stele::sched::detail {
namespace {

constexpr double kEpsilon = 1e-9;

// One thing the task needs: how to say it, and whether an agent has it free.
struct Need {
  std::string alone;     // "2 cpus free", "3 free ports"
  std::string together;  // "2 cpus", "3 ports"
  bool (*has)(const Agent&, const TaskRequest&);
};

std::string port_list(const std::vector<int>& ports) {
  return fmt::format("port{} {}", ports.size() == 1 ? "" : "s", fmt::join(ports, ", "));
}

std::vector<Need> needs_of(const TaskRequest& r) {
  std::vector<Need> out;
  if (r.res.cpus > 0)
    out.push_back({fmt::format("{:g} cpus free", r.res.cpus), fmt::format("{:g} cpus", r.res.cpus),
                   [](const Agent& a, const TaskRequest& q) {
                     return q.res.cpus <= a.free.cpus + kEpsilon;
                   }});
  if (r.res.mem > 0)
    out.push_back({fmt::format("{:g} MB mem free", r.res.mem), fmt::format("{:g} MB mem", r.res.mem),
                   [](const Agent& a, const TaskRequest& q) {
                     return q.res.mem <= a.free.mem + kEpsilon;
                   }});
  if (r.res.disk > 0)
    out.push_back({fmt::format("{:g} MB disk free", r.res.disk),
                   fmt::format("{:g} MB disk", r.res.disk), [](const Agent& a, const TaskRequest& q) {
                     return q.res.disk <= a.free.disk + kEpsilon;
                   }});
  const int ports = r.port_count + static_cast<int>(r.fixed_ports.size());
  if (ports > 0)
    out.push_back({fmt::format("{} free ports", ports), fmt::format("{} ports", ports),
                   [](const Agent& a, const TaskRequest& q) {
                     return a.ports.free_count() >= q.port_count + static_cast<int>(q.fixed_ports.size());
                   }});
  if (!r.fixed_ports.empty())
    out.push_back({port_list(r.fixed_ports) + " free", port_list(r.fixed_ports),
                   [](const Agent& a, const TaskRequest& q) {
                     return std::all_of(q.fixed_ports.begin(), q.fixed_ports.end(),
                                        [&](int p) { return a.ports.is_free(p); });
                   }});
  return out;
}

std::string resource_reason(const Cluster& cluster, const std::vector<Index>& candidates,
                            const TaskRequest& req) {
  const std::vector<Need> needs = needs_of(req);
  std::vector<std::string> together;
  for (const Need& n : needs) {
    const bool somewhere = std::any_of(candidates.begin(), candidates.end(), [&](Index a) {
      return n.has(cluster.agent(a), req);
    });
    if (!somewhere) return "no agent with " + n.alone;
    together.push_back(n.together);
  }
  if (together.empty()) return "no agent fits the task";
  return fmt::format("no agent with {} free at once", fmt::join(together, " + "));
}

}  // namespace

std::string explain_failure(const Cluster& cluster, const App& app, const TaskRequest& req,
                            const CompiledConstraints& constraints) {
  std::vector<Index> candidates = cluster.live_agents();
  if (candidates.empty()) return "no agents registered";
  for (const CompiledConstraint& c : constraints) {
    std::vector<Index> next;
    for (Index a : candidates)
      if (allows(c, cluster.agent(a).value(c.field), app, cluster)) next.push_back(a);
    if (next.empty()) return unsatisfiable_reason(c, candidates, app, cluster);
    candidates = std::move(next);
  }
  std::string reason = resource_reason(cluster, candidates, req);
  if (candidates.size() < cluster.live_agents().size())
    reason += fmt::format(" among the {} agent{} that satisfy the constraints", candidates.size(),
                          candidates.size() == 1 ? "" : "s");
  return reason;
}

}  // namespace stele::sched::detail
