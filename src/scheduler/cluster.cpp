#include "scheduler/cluster.h"

#include <algorithm>

namespace stele::sched::detail {
namespace {

const std::vector<Index> kNoIndexes;

Resources minus(const Resources& a, const Resources& b) {
  return {a.cpus - b.cpus, a.mem - b.mem, a.disk - b.disk};
}

void add_to(Resources& r, const Resources& d, double sign) {
  r.cpus += sign * d.cpus;
  r.mem += sign * d.mem;
  r.disk += sign * d.disk;
}

// Removes `x` from `v` by swapping in the last element (order not kept).
void swap_erase(std::vector<Index>& v, Index x) {
  auto it = std::find(v.begin(), v.end(), x);
  if (it == v.end()) return;
  *it = v.back();
  v.pop_back();
}

}  // namespace

void FieldValues::reset(Index size) {
  std::fill(std::begin(inline_), std::end(inline_), kNone);
  more_.assign(size > kInline ? size - kInline : 0, kNone);
  size_ = size;
}

void FieldValues::set(Index field, Index value) {
  if (field >= size_) {  // grow, keeping the values set so far
    if (field >= kInline) more_.resize(field + 1 - kInline, kNone);
    size_ = field + 1;
  }
  if (field < kInline)
    inline_[field] = value;
  else
    more_[field - kInline] = value;
}

Index StringPool::intern(std::string_view s) {
  if (auto it = ids_.find(s); it != ids_.end()) return it->second;
  const auto id = static_cast<Index>(names_.size());
  names_.emplace_back(s);
  ids_.emplace(std::string(s), id);
  return id;
}

Index StringPool::find(std::string_view s) const {
  auto it = ids_.find(s);
  return it == ids_.end() ? kNone : it->second;
}

int App::tasks_at(Index agent) const {
  auto it = agent_tasks.find(agent);
  return it == agent_tasks.end() ? 0 : it->second;
}

int App::tasks_on(Index field, Index value) const {
  auto it = value_tasks.find(value_key(field, value));
  return it == value_tasks.end() ? 0 : it->second;
}

Cluster::Cluster() { fields.intern("hostname"); }

Index Cluster::find_agent(std::string_view id) const {
  auto it = agent_ids_.find(id);
  return it == agent_ids_.end() ? kNone : it->second;
}

Index Cluster::new_agent_slot(const std::string& id) {
  Index a;
  if (!free_agent_slots_.empty()) {
    a = free_agent_slots_.back();
    free_agent_slots_.pop_back();
  } else {
    a = static_cast<Index>(agents_.size());
    agents_.emplace_back();
  }
  agent_ids_.emplace(id, a);
  agents_[a].live = true;
  agents_[a].live_pos = static_cast<Index>(live_agents_.size());
  live_agents_.push_back(a);
  return a;
}

void Cluster::upsert_agent(const AgentInfo& info) {
  Index a = find_agent(info.id);
  if (a == kNone) {
    a = new_agent_slot(info.id);
  } else {
    count_agent_values(agents_[a], -1);
    unindex_agent(a);
  }
  Agent& ag = agents_[a];
  ag.info = info;
  ag.free = minus(info.total, ag.used);
  ag.values.reset(static_cast<Index>(fields.size()));
  ag.values.set(kHostnameField, values.intern(info.hostname));
  for (const auto& [name, value] : info.attributes) {
    if (name == "hostname") continue;  // the field "hostname" is the agent's hostname
    ag.values.set(fields.intern(name), values.intern(value));
  }
  ag.ports.reset(info.ports);
  for (Index t : ag.tasks)
    for (int p : tasks_[t].ports) ag.ports.take(p);
  index_agent(a);
  count_agent_values(ag, +1);
}

void Cluster::remove_agent(Index a) {
  Agent& ag = agents_[a];
  while (!ag.tasks.empty()) remove_task(ag.tasks.back());
  unindex_agent(a);
  agent_ids_.erase(ag.info.id);
  Agent& moved = agents_[live_agents_.back()];
  moved.live_pos = ag.live_pos;
  live_agents_[ag.live_pos] = live_agents_.back();
  live_agents_.pop_back();
  ag = Agent{};
  free_agent_slots_.push_back(a);
}

void Cluster::index_agent(Index a) {
  const Agent& ag = agents_[a];
  if (values_by_field_.size() < ag.values.size()) values_by_field_.resize(ag.values.size());
  for (Index f = 0; f < ag.values.size(); ++f) {
    const Index v = ag.value(f);
    if (v == kNone) continue;
    auto& list = agents_by_value_[value_key(f, v)];
    if (list.empty()) values_by_field_[f].push_back(v);
    list.push_back(a);
  }
}

void Cluster::unindex_agent(Index a) {
  const Agent& ag = agents_[a];
  for (Index f = 0; f < ag.values.size(); ++f) {
    const Index v = ag.value(f);
    if (v == kNone) continue;
    auto it = agents_by_value_.find(value_key(f, v));
    swap_erase(it->second, a);
    if (!it->second.empty()) continue;
    agents_by_value_.erase(it);
    swap_erase(values_by_field_[f], v);
  }
}

const std::vector<Index>& Cluster::agents_with(Index field, Index value) const {
  auto it = agents_by_value_.find(value_key(field, value));
  return it == agents_by_value_.end() ? kNoIndexes : it->second;
}

const std::vector<Index>& Cluster::values_of(Index field) const {
  return field < values_by_field_.size() ? values_by_field_[field] : kNoIndexes;
}

Index Cluster::intern_app(std::string_view id) {
  if (auto it = app_ids_.find(id); it != app_ids_.end()) return it->second;
  const auto a = static_cast<Index>(apps_.size());
  apps_.emplace_back().id = std::string(id);
  app_ids_.emplace(std::string(id), a);
  return a;
}

Index Cluster::find_task(std::string_view id) const {
  return task_ids_.find(id, [this](Index t) { return task_id(t); });
}

Index Cluster::claim_task(const std::string& id) {
  const auto next = static_cast<Index>(free_task_slots_.empty() ? tasks_.size() : free_task_slots_.back());
  if (!task_ids_.insert(id, next, [this](Index t) { return task_id(t); })) return kNone;
  if (free_task_slots_.empty())
    tasks_.emplace_back();
  else
    free_task_slots_.pop_back();
  tasks_[next].id = id;
  return next;
}

void Cluster::unclaim_task(Index t) {
  task_ids_.erase(tasks_[t].id, [this](Index i) { return task_id(i); });
  tasks_[t] = Task{};
  free_task_slots_.push_back(t);
}

void Cluster::record_task(Index t, Index app, Index agent, const Resources& res,
                          std::vector<int> ports) {
  Agent& ag = agents_[agent];
  tasks_[t] = Task{std::move(tasks_[t].id), agent, app, res, std::move(ports),
                   static_cast<Index>(ag.tasks.size())};
  ag.tasks.push_back(t);
  add_to(ag.used, res, +1);
  add_to(ag.free, res, -1);
  count_task(agent, app, +1);
}

void Cluster::remove_task(Index t) {
  Task& task = tasks_[t];
  Agent& ag = agents_[task.agent];
  for (int p : task.ports) ag.ports.release(p);
  add_to(ag.used, task.res, -1);
  add_to(ag.free, task.res, +1);
  count_task(task.agent, task.app, -1);
  tasks_[ag.tasks.back()].agent_pos = task.agent_pos;
  ag.tasks[task.agent_pos] = ag.tasks.back();
  ag.tasks.pop_back();
  unclaim_task(t);
}

// Adds `delta` tasks of `app` to each attribute value of `ag`.
void Cluster::count_values(const Agent& ag, Index app, int delta) {
  App& ap = apps_[app];
  if (ap.values_used.size() < ag.values.size()) ap.values_used.resize(ag.values.size(), 0);
  for (Index f = 0; f < ag.values.size(); ++f) {
    const Index v = ag.value(f);
    if (v == kNone) continue;
    auto it = ap.value_tasks.try_emplace(value_key(f, v), 0).first;
    if (it->second == 0) ++ap.values_used[f];
    it->second += delta;
    if (it->second > 0) continue;
    --ap.values_used[f];
    ap.value_tasks.erase(it);
  }
}

// Counts (or uncounts) all tasks of `ag` on its attribute values.
void Cluster::count_agent_values(const Agent& ag, int delta) {
  for (Index t : ag.tasks) count_values(ag, tasks_[t].app, delta);
}

void Cluster::count_task(Index agent, Index app, int delta) {
  App& ap = apps_[app];
  ap.tasks += delta;
  auto it = ap.agent_tasks.try_emplace(agent, 0).first;
  it->second += delta;
  if (it->second <= 0) ap.agent_tasks.erase(it);
  count_values(agents_[agent], app, delta);
}

}  // namespace stele::sched::detail
