#include "scheduler/scheduler.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "scheduler/cluster.h"
#include "scheduler/failure_reason.h"
#include "scheduler/placement.h"

namespace stele::sched {

using detail::Index;
using detail::kNone;

struct Scheduler::State {
  explicit State(uint64_t seed) : rng(seed) {}

  detail::Cluster cluster;
  detail::RegexCache regexes;
  detail::Rng rng;
  detail::SearchScratch scratch;

  const Result<detail::CompiledConstraints>& constraints_of(Index app,
                                                            const std::vector<Constraint>& spec);
  Placement commit(Index task, Index app, Index agent, const TaskRequest& req);
  Result<Placement> place(Index task, const TaskRequest& req);
};

namespace {

bool valid_amount(double x) { return std::isfinite(x) && x >= 0; }

// Empty when the request is well-formed, else what is wrong with it.
std::string request_problem(const TaskRequest& r) {
  if (!valid_amount(r.res.cpus) || !valid_amount(r.res.mem) || !valid_amount(r.res.disk))
    return fmt::format("invalid task resources (cpus {}, mem {}, disk {})", r.res.cpus, r.res.mem,
                       r.res.disk);
  if (r.port_count < 0) return fmt::format("invalid port count {}", r.port_count);
  const auto& ports = r.fixed_ports;
  for (auto it = ports.begin(); it != ports.end(); ++it) {  // a task asks for a handful
    if (*it < 1 || *it > 65535) return fmt::format("invalid port {}", *it);
    if (std::find(ports.begin(), it, *it) != it) return fmt::format("port {} requested twice", *it);
  }
  return "";
}

}  // namespace

const Result<detail::CompiledConstraints>& Scheduler::State::constraints_of(
    Index app, const std::vector<Constraint>& spec) {
  detail::App& a = cluster.app(app);
  if (!a.compiled || !detail::same_constraints(a.constraints, spec)) {
    a.constraints = spec;
    a.compiled = detail::compile_constraints(spec, cluster, regexes);
  }
  return *a.compiled;
}

Placement Scheduler::State::commit(Index task, Index app, Index agent, const TaskRequest& req) {
  detail::Agent& ag = cluster.agent(agent);
  std::vector<int> ports = req.fixed_ports;
  for (int p : ports) ag.ports.take(p);
  ag.ports.take_lowest(req.port_count, ports);
  cluster.record_task(task, app, agent, req.res, ports);
  return Placement{ag.info.id, std::move(ports)};
}

Scheduler::Scheduler(uint64_t seed) : s_(std::make_unique<State>(seed)) {}
Scheduler::~Scheduler() = default;
Scheduler::Scheduler(Scheduler&&) noexcept = default;
Scheduler& Scheduler::operator=(Scheduler&&) noexcept = default;

void Scheduler::upsert_agent(const AgentInfo& info) { s_->cluster.upsert_agent(info); }

void Scheduler::remove_agent(const std::string& id) {
  if (Index a = s_->cluster.find_agent(id); a != kNone) s_->cluster.remove_agent(a);
}

bool Scheduler::has_agent(const std::string& id) const {
  return s_->cluster.find_agent(id) != kNone;
}

void Scheduler::add_task(const std::string& task_id, const std::string& app_id,
                         const std::string& agent_id, const Resources& res,
                         const std::vector<int>& ports) {
  const Index agent = s_->cluster.find_agent(agent_id);
  if (agent == kNone) return;
  remove_task(task_id);
  // Reconciled tasks are trusted: a port outside the ranges or already taken
  // is still recorded on the task, only not marked twice.
  for (int p : ports) s_->cluster.agent(agent).ports.take(p);
  const Index t = s_->cluster.claim_task(task_id);
  s_->cluster.record_task(t, s_->cluster.intern_app(app_id), agent, res, ports);
}

void Scheduler::remove_task(const std::string& task_id) {
  if (Index t = s_->cluster.find_task(task_id); t != kNone) s_->cluster.remove_task(t);
}

bool Scheduler::has_task(const std::string& task_id) const {
  return s_->cluster.find_task(task_id) != kNone;
}

// Places claimed task `task`; the caller unclaims it on failure.
Result<Placement> Scheduler::State::place(Index task, const TaskRequest& req) {
  const Index app = cluster.intern_app(req.app_id);
  const auto& constraints = constraints_of(app, req.constraints);
  if (!constraints) return fail(constraints.error());
  detail::PlacementSearch search(cluster, rng, scratch, app, req, *constraints);
  Index agent = req.preferred_agent.empty() ? kNone : cluster.find_agent(req.preferred_agent);
  if (agent == kNone || !search.acceptable_preferred(agent)) agent = search.find();
  if (agent == kNone)
    return fail(detail::explain_failure(cluster, cluster.app(app), req, *constraints));
  return commit(task, app, agent, req);
}

stele::Result<Placement> Scheduler::place(const std::string& task_id, const TaskRequest& req) {
  if (std::string problem = request_problem(req); !problem.empty()) return fail(problem);
  const Index task = s_->cluster.claim_task(task_id);
  if (task == kNone) return fail(fmt::format("task {} is already placed", task_id));
  auto placed = s_->place(task, req);
  if (!placed) s_->cluster.unclaim_task(task);
  return placed;
}

Resources Scheduler::used(const std::string& agent_id) const {
  const Index a = s_->cluster.find_agent(agent_id);
  return a == kNone ? Resources{} : s_->cluster.agent(a).used;
}

std::vector<int> Scheduler::used_ports(const std::string& agent_id) const {
  const Index a = s_->cluster.find_agent(agent_id);
  std::vector<int> out;
  if (a == kNone) return out;
  for (Index t : s_->cluster.agent(a).tasks) {
    const auto& ports = s_->cluster.task(t).ports;
    out.insert(out.end(), ports.begin(), ports.end());
  }
  std::sort(out.begin(), out.end());
  return out;
}

size_t Scheduler::agent_count() const { return s_->cluster.live_agents().size(); }
size_t Scheduler::task_count() const { return s_->cluster.task_count(); }

}  // namespace stele::sched
