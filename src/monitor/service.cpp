#include "monitor/service.h"

#include <algorithm>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "common/names.h"
#include "monitor/command_tokens.h"
#include "monitor/plugin_runner.h"
#include "net/http_client.h"

namespace stele::monitor {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr const char* kKeepalive = "keepalive";
constexpr const char* kProbe = "probe";

bool is_builtin(const std::string& name) { return name == kKeepalive || name == kProbe; }

int64_t seconds(int64_t ms) { return ms / 1000; }

std::string state_key(const std::string& entity, const std::string& check) { return entity + "\n" + check; }

bool subscribed(const CheckSpec& c, const std::vector<std::string>& agent_subs) {
  for (const auto& s : c.subscriptions) {
    if (s == "*") return true;
    if (std::find(agent_subs.begin(), agent_subs.end(), s) != agent_subs.end()) return true;
  }
  return false;
}

std::vector<std::string> agent_subscriptions(const AgentEntity& a) {
  std::vector<std::string> subs = a.subscriptions;
  subs.push_back("entity:" + a.entity);
  return subs;
}

std::vector<std::string> task_subscriptions(const TaskEntity& t) {
  return {"entity:" + t.entity, "app:" + app_name(t.app_id)};
}

Error not_found(const std::string& what) { return Error{what + " not found", {}, 404}; }

}  // namespace

struct MonitorService::Pending {
  explicit Pending(asio::io_context& io) : signal(io.get_executor()) {}
  std::string check;
  std::set<std::string> waiting;  // agent ids
  Json results = Json::array();
  net::AsyncSignal signal;
};

MonitorService::MonitorService(asio::io_context& io, store::Store& store, const Clock& clock, MonitorOptions opts)
    : io_(io), store_(store), clock_(clock), opts_(std::move(opts)), alive_(std::make_shared<bool>(true)) {}

MonitorService::~MonitorService() { stop(); }

StatePolicy MonitorService::policy(const std::string& check) const {
  auto it = checks_.find(check);
  return it == checks_.end() ? StatePolicy{} : policy_of(it->second);
}

Result<void> MonitorService::load() {
  auto load_docs = [this](const char* coll, auto parse, auto& into, auto key_of) -> Result<void> {
    auto docs = store_.list(coll);
    if (!docs) return fail(docs.error());
    for (const auto& [key, text] : *docs) {
      auto j = parse_json(text);
      if (!j) return fail(std::string(coll) + " " + key + ": " + j.error().message);
      auto v = parse(*j);
      if (!v) return fail(std::string(coll) + " " + key + ": " + v.error().message);
      into[key_of(*v)] = std::move(*v);
    }
    return {};
  };
  if (auto r = load_docs("checks", parse_check, checks_, [](const CheckSpec& c) { return c.name; }); !r) return r;
  if (auto r = load_docs("handlers", parse_handler, handlers_, [](const HandlerSpec& h) { return h.name; }); !r) return r;
  if (auto r = load_docs("silences", parse_silence, silences_, [](const Silence& s) { return silence_id(s); }); !r) return r;
  auto states = store_.list("check_states");
  if (!states) return fail(states.error());
  int64_t now = clock_.now_ms();
  for (const auto& [key, text] : *states) {
    auto j = parse_json(text);
    auto st = j ? parse_check_state(*j) : Result<CheckState>(fail(j.error()));
    if (!st) {
      spdlog::warn("monitor: stored check state {} ignored: {}", key, st.error().message);
      continue;
    }
    std::string check = st->check.name;
    states_.restore(std::move(*st), policy(check), now);
  }
  return {};
}

void MonitorService::start() {
  auto alive = alive_;
  asio::co_spawn(io_, [this, alive]() -> net::awaitable<void> {
    while (*alive) {
      evaluate();
      co_await net::sleep_for(250ms);
    }
  }, asio::detached);
  if (opts_.probe_interval_ms > 0) asio::co_spawn(io_, probe_loop(), asio::detached);
}

void MonitorService::stop() {
  *alive_ = false;
  for (auto& [id, p] : pending_) p->signal.notify();
}

// ---------------------------------------------------------------- definitions

Result<void> MonitorService::persist(std::vector<store::Write> writes, std::vector<Json> events) {
  std::vector<int64_t> ids;
  for (auto& e : events) e["time"] = iso8601(clock_.now_ms());
  auto r = store_.apply(writes, events, &ids);
  if (!r) return fail(Error{r.error().message, {}, 503});
  for (size_t i = 0; i < events.size() && i < ids.size(); ++i) {
    events[i]["id"] = ids[i];
    if (opts_.on_event) opts_.on_event(events[i]);
  }
  return {};
}

std::vector<AgentEntity> MonitorService::agents() const {
  if (opts_.agents) return opts_.agents();
  return opts_.inventory ? opts_.inventory().agents : std::vector<AgentEntity>{};
}

void MonitorService::bump_checks_version() {
  ++checks_version_;
  if (!opts_.agent_changed) return;
  for (const auto& a : agents()) opts_.agent_changed(a.id);
}

Result<MonitorService::Put> MonitorService::put_check(const Json& j, const std::string& actor) {
  auto c = parse_check(j);
  if (!c) return fail(c.error());
  if (is_builtin(c->name))
    return fail(Error{"check is not valid", {{"/name", {"'" + c->name + "' is the name of a built-in check"}}}, 422});
  Json doc = *c;
  bool created = !checks_.contains(c->name);
  Json ev{{"type", created ? "check_created" : "check_updated"}, {"check", c->name}, {"actor", actor}};
  if (auto r = persist({{"checks", c->name, doc.dump()}}, {ev}); !r) return fail(r.error());
  checks_[c->name] = *c;
  bump_checks_version();
  return Put{doc, created};
}

Result<MonitorService::Put> MonitorService::put_handler(const Json& j, const std::string& actor) {
  auto h = parse_handler(j);
  if (!h) return fail(h.error());
  Json doc = *h;
  bool created = !handlers_.contains(h->name);
  Json ev{{"type", created ? "handler_created" : "handler_updated"}, {"handler", h->name}, {"actor", actor}};
  if (auto r = persist({{"handlers", h->name, doc.dump()}}, {ev}); !r) return fail(r.error());
  handlers_[h->name] = *h;
  return Put{doc, created};
}

Result<MonitorService::Put> MonitorService::put_silence(const Json& j, const std::string& actor) {
  auto s = parse_silence(j);
  if (!s) return fail(s.error());
  s->begin = seconds(clock_.now_ms());
  s->creator = actor;
  std::string id = silence_id(*s);
  Json doc = *s;
  bool created = !silences_.contains(id);
  Json ev{{"type", "silence_created"}, {"silence", id}, {"reason", s->reason}, {"actor", actor}};
  if (auto r = persist({{"silences", id, doc.dump()}}, {ev}); !r) return fail(r.error());
  silences_[id] = *s;
  return Put{doc, created};
}

Result<void> MonitorService::delete_check(const std::string& name, const std::string& actor) {
  if (!checks_.contains(name)) return fail(not_found("check '" + name + "'"));
  std::vector<store::Write> writes{{"checks", name, std::nullopt}};
  for (const auto* st : states_.states())
    if (st->check.name == name) writes.push_back({"check_states", state_key(st->entity, name), std::nullopt});
  Json ev{{"type", "check_deleted"}, {"check", name}, {"actor", actor}};
  if (auto r = persist(std::move(writes), {ev}); !r) return r;
  checks_.erase(name);
  states_.remove_check(name);
  bump_checks_version();
  return {};
}

Result<void> MonitorService::delete_handler(const std::string& name, const std::string& actor) {
  if (!handlers_.contains(name)) return fail(not_found("handler '" + name + "'"));
  Json ev{{"type", "handler_deleted"}, {"handler", name}, {"actor", actor}};
  if (auto r = persist({{"handlers", name, std::nullopt}}, {ev}); !r) return r;
  handlers_.erase(name);
  return {};
}

Result<void> MonitorService::delete_silence(const std::string& id, const std::string& actor) {
  if (!silences_.contains(id)) return fail(not_found("silence '" + id + "'"));
  Json ev{{"type", "silence_deleted"}, {"silence", id}, {"actor", actor}};
  if (auto r = persist({{"silences", id, std::nullopt}}, {ev}); !r) return r;
  silences_.erase(id);
  return {};
}

Json MonitorService::checks_json() const {
  Json out = Json::array();
  for (const auto& [n, c] : checks_) out.push_back(c);
  return out;
}

std::optional<Json> MonitorService::check_json(const std::string& name) const {
  auto it = checks_.find(name);
  if (it == checks_.end()) return std::nullopt;
  return Json(it->second);
}

Json MonitorService::handlers_json() const {
  Json out = Json::array();
  for (const auto& [n, h] : handlers_) out.push_back(h);
  return out;
}

std::optional<Json> MonitorService::handler_json(const std::string& name) const {
  auto it = handlers_.find(name);
  if (it == handlers_.end()) return std::nullopt;
  return Json(it->second);
}

Json MonitorService::silences_json() const {
  Json out = Json::array();
  for (const auto& [id, s] : silences_) {
    Json j = s;
    if (s.expire) j["expiresAt"] = s.begin + *s.expire;
    out.push_back(std::move(j));
  }
  return out;
}

Json MonitorService::status_json(const std::string& check, const std::string& entity, bool failing_only) const {
  Json out = Json::array();
  for (const auto* st : states_.states()) {
    if (!check.empty() && st->check.name != check) continue;
    if (!entity.empty() && st->entity != entity) continue;
    if (failing_only && st->check.status == CheckStatus::kOk && !st->flapping) continue;
    Json j = *st;
    auto subs = entity_subscriptions(st->entity);
    bool muted = false;
    for (const auto& [id, s] : silences_)
      if (silence_matches(s, subs, st->check.name)) muted = true;
    j["silenced"] = muted;
    out.push_back(std::move(j));
  }
  return out;
}

std::vector<std::string> MonitorService::entity_subscriptions(const std::string& entity) const {
  auto it = entity_subs_.find(entity);
  if (it != entity_subs_.end()) return it->second;
  return {"entity:" + entity};
}

// ---------------------------------------------------------------- agents

Json MonitorService::agent_checks(const std::string& agent_id) const {
  Json out{{"version", checks_version_}, {"checks", Json::array()}};
  std::vector<AgentEntity> all = agents();
  const AgentEntity* me = nullptr;
  for (const auto& a : all)
    if (a.id == agent_id) me = &a;
  if (!me) return out;
  out["entity"] = me->entity;
  for (const auto& [name, c] : checks_) {
    if (c.proxy || !subscribed(c, me->subscriptions)) continue;
    Json j = c;
    if (c.round_robin) {
      std::vector<std::string> members;
      for (const auto& a : all)
        if (a.connected && !a.lost && subscribed(c, a.subscriptions)) members.push_back(a.id);
      std::sort(members.begin(), members.end());
      auto pos = std::find(members.begin(), members.end(), agent_id);
      if (pos == members.end()) continue;
      j["roundRobin"] = {{"index", pos - members.begin()}, {"of", members.size()}};
    }
    out["checks"].push_back(std::move(j));
  }
  return out;
}

std::vector<Json> MonitorService::take_run_requests(const std::string& agent_id) {
  auto it = run_requests_.find(agent_id);
  if (it == run_requests_.end()) return {};
  std::vector<Json> out = std::move(it->second);
  run_requests_.erase(it);
  return out;
}

Result<size_t> MonitorService::record_agent_results(const std::string& agent_id, const Json& body) {
  const AgentEntity* agent = nullptr;
  std::vector<AgentEntity> all = agents();
  for (const auto& a : all)
    if (a.id == agent_id) agent = &a;
  if (!agent) return fail(Error{"unknown agent '" + agent_id + "': register again", {}, 404});
  if (!body.contains("results") || !body["results"].is_array())
    return fail(Error{"invalid check results", {{"/results", {"expected an array"}}}, 422});
  size_t n = 0;
  auto subs = agent_subscriptions(*agent);
  entity_subs_[agent->entity] = subs;
  for (const auto& rj : body["results"]) {
    auto r = parse_check_result(rj);
    if (!r) {
      spdlog::warn("monitor: agent {}: bad check result: {}", agent_id, r.error().message);
      continue;
    }
    if (!checks_.contains(r->name)) continue;  // deleted meanwhile
    std::string name = r->name;
    record(agent->entity, subs, std::move(*r));
    ++n;
    if (rj.contains("request") && rj["request"].is_number_unsigned()) {
      auto p = pending_.find(rj["request"].get<uint64_t>());
      if (p != pending_.end() && p->second->waiting.erase(agent_id)) {
        if (const auto* st = states_.find(agent->entity, name)) p->second->results.push_back(Json(*st));
        p->second->signal.notify();
      }
    }
  }
  return n;
}

net::awaitable<Result<Json>> MonitorService::run_now(std::string name) {
  auto it = checks_.find(name);
  if (it == checks_.end()) {
    Error unknown = not_found("check '" + name + "'");
    co_return fail(unknown);
  }
  CheckSpec spec = it->second;
  Inventory inv = opts_.inventory ? opts_.inventory() : Inventory{};
  Json out{{"check", name}, {"results", Json::array()}, {"missing", Json::array()}};
  if (spec.proxy) {
    for (const auto& t : inv.tasks) {
      if (t.app_id != *spec.proxy) continue;
      CheckResult r = co_await run_proxy(spec, t);
      record(t.entity, task_subscriptions(t), std::move(r));
      if (const auto* st = states_.find(t.entity, name)) out["results"].push_back(Json(*st));
    }
    co_return out;
  }
  auto p = std::make_shared<Pending>(io_);
  p->check = name;
  for (const auto& a : inv.agents)
    if (a.connected && !a.lost && subscribed(spec, a.subscriptions)) {
      p->waiting.insert(a.id);
      if (spec.round_robin) break;
    }
  if (p->waiting.empty()) {
    Error none{"no connected agent subscribes to check '" + name + "'", {}, 409};
    co_return fail(none);
  }
  uint64_t id = next_request_++;
  pending_[id] = p;
  for (const auto& a : p->waiting) {
    run_requests_[a].push_back(Json{{"request", id}, {"check", name}});
    if (opts_.agent_changed) opts_.agent_changed(a);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(spec.timeout + 5);
  auto alive = alive_;
  while (!p->waiting.empty() && *alive && std::chrono::steady_clock::now() < deadline)
    co_await p->signal.wait(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
  pending_.erase(id);
  out["results"] = p->results;
  for (const auto& a : p->waiting) out["missing"].push_back(a);
  co_return out;
}

// ---------------------------------------------------------------- recording

void MonitorService::record(const std::string& entity, const std::vector<std::string>& subs, CheckResult r) {
  entity_subs_[entity] = subs;
  bool first = states_.find(entity, r.name) == nullptr;
  std::string check = r.name;
  std::vector<MetricPoint> points;
  for (const auto& p : r.perfdata)
    if (auto v = to_metric_value(p)) points.push_back({check_metric_path(entity, check, p.label), *v, r.executed});
  Recorded rec = states_.record(entity, std::move(r), policy(check), clock_.now_ms());
  const CheckState* st = states_.find(entity, check);
  if (!points.empty() && opts_.write_points) opts_.write_points(std::move(points));
  if (st) after_record(entity, subs, rec, *st, first);
}

bool MonitorService::silenced(const std::vector<std::string>& subs, const std::string& check, const CheckState& st,
                              bool resolution) {
  bool muted = false;
  std::vector<std::string> resolved;
  for (const auto& [id, s] : silences_) {
    if (!silence_matches(s, subs, check)) continue;
    muted = true;
    if (resolution && s.expire_on_resolve) resolved.push_back(id);
  }
  for (const auto& id : resolved) {
    Json ev{{"type", "silence_deleted"}, {"silence", id}, {"reason", "expire_on_resolve: " + st.entity + " " + check + " resolved"}};
    if (persist({{"silences", id, std::nullopt}}, {ev})) silences_.erase(id);
  }
  return muted;
}

void MonitorService::after_record(const std::string& entity, const std::vector<std::string>& subs, const Recorded& rec,
                                  const CheckState& st, bool first) {
  bool changed = first || rec.status != rec.previous || rec.change != Change::kNone || rec.flapping_started ||
                 rec.flapping_stopped;
  if (!changed) return;
  const std::string& check = st.check.name;
  bool resolution = rec.change == Change::kResolution;
  bool muted = silenced(subs, check, st, resolution);
  Json ev{{"type", "check_state"},
          {"entity", entity},
          {"check", check},
          {"status", static_cast<int>(rec.status)},
          {"previous", static_cast<int>(rec.previous)},
          {"change", change_name(rec.change)},
          {"state", st.state()},
          {"output", st.check.output.substr(0, 1024)},
          {"occurrences", st.occurrences},
          {"silenced", muted}};
  if (rec.flapping_started) ev["flapping"] = "started";
  if (rec.flapping_stopped) ev["flapping"] = "stopped";
  Json doc = st;
  if (auto r = persist({{"check_states", state_key(entity, check), doc.dump()}}, {ev}); !r)
    spdlog::error("monitor: check state {} {}: {}", entity, check, r.error().message);
  if (rec.change == Change::kNone) return;
  auto it = checks_.find(check);
  if (it == checks_.end() || it->second.handlers.empty()) return;
  if (muted) {
    spdlog::info("monitor: {} {} {} silenced: no handler called", entity, check, change_name(rec.change));
    return;
  }
  Json event{{"entity", {{"name", entity}, {"subscriptions", subs}}},
             {"check", doc["check"]},
             {"action", resolution ? "resolve" : "create"},
             {"change", change_name(rec.change)},
             {"state", st.state()},
             {"occurrences", st.occurrences},
             {"history", doc["history"]},
             {"silenced", false},
             {"annotations", it->second.annotations},
             {"timestamp", seconds(clock_.now_ms())}};
  for (const auto& h : it->second.handlers) handle(h, event, rec.filter_input(false));
}

void MonitorService::handle(const std::string& name, const Json& event, const FilterInput& in) {
  auto it = handlers_.find(name);
  if (it == handlers_.end()) {
    spdlog::warn("monitor: handler '{}' named by check {} is not defined", name, event["check"].value("name", ""));
    return;
  }
  if (!filters_pass(it->second.filters, in)) return;
  asio::co_spawn(io_, run_handler(it->second, event.dump()), asio::detached);
}

net::awaitable<void> MonitorService::run_handler(HandlerSpec h, std::string event) {
  if (h.type == HandlerSpec::Type::kPipe) {
    PluginCommand cmd;
    cmd.command = h.command;
    cmd.input = std::move(event);
    cmd.uid = opts_.uid;
    cmd.gid = opts_.gid;
    cmd.groups = opts_.groups;
    cmd.timeout = std::chrono::seconds(h.timeout);
    PluginResult r = co_await run_plugin(std::move(cmd));
    if (r.exit_code != 0)
      spdlog::warn("monitor: handler {} exited {}{}: {}", h.name, r.exit_code, r.timed_out ? " (timed out)" : "",
                   r.err.empty() ? r.output.text() : r.err);
    co_return;
  }
  // http: POST with retries, 1 s, 2 s, 4 s apart.
  std::chrono::milliseconds backoff = 1s;
  for (int attempt = 1; attempt <= 4; ++attempt) {
    net::Headers headers;
    auto r = co_await net::http_request("POST", h.url, event, headers, std::chrono::seconds(h.timeout));
    if (r && r->status >= 200 && r->status < 300) co_return;
    std::string why = r ? "HTTP " + std::to_string(r->status) : r.error().message;
    if (attempt == 4) {
      spdlog::error("monitor: handler {} gave up after {} attempts: {}", h.name, attempt, why);
      co_return;
    }
    spdlog::warn("monitor: handler {} attempt {} failed ({}), retrying in {} ms", h.name, attempt, why, backoff.count());
    co_await net::sleep_for(backoff);
    backoff *= 2;
  }
}

// ---------------------------------------------------------------- periodic

void MonitorService::evaluate() {
  int64_t now = clock_.now_ms();
  keepalives(agents(), now);
  for (auto& e : states_.expire_ttl(now)) after_record(e.entity, entity_subscriptions(e.entity), e.recorded, *e.state, false);
  expire_silences(now);
  // Every task (O(tasks)) once a second, not every pass.
  if (passes_++ % 4 == 0 && opts_.inventory) forget_gone_entities(opts_.inventory());
  for (const auto& [name, c] : checks_)
    if (c.proxy && !proxy_loops_.contains(name)) {
      proxy_loops_.insert(name);
      asio::co_spawn(io_, proxy_loop(name), asio::detached);
    }
}

void MonitorService::keepalives(const std::vector<AgentEntity>& all, int64_t now) {
  int64_t timeout = opts_.agent_timeout_ms;
  std::string members;  // who is connected with what subscriptions: round robin depends on it
  for (const auto& a : all) {
    if (a.connected && !a.lost) {
      members += a.id + "=";
      for (const auto& s : a.subscriptions) members += s + ",";
      members += ";";
    }
    int64_t age = now - a.last_heartbeat_ms;
    CheckStatus status = a.lost || age >= timeout ? CheckStatus::kCritical
                         : age >= timeout / 2     ? CheckStatus::kWarning
                                                  : CheckStatus::kOk;
    const CheckState* st = states_.find(a.entity, kKeepalive);
    int64_t& last = keepalive_recorded_ms_[a.entity];
    if (st && st->check.status == status && now - last < opts_.keepalive_record_ms) continue;
    last = now;
    CheckResult r;
    r.name = kKeepalive;
    r.status = status;
    r.executed = seconds(now);
    r.output = status == CheckStatus::kOk ? "Keepalive OK: last heartbeat " + std::to_string(age) + " ms ago"
               : a.lost ? "Keepalive CRITICAL: agent lost, no heartbeat for " + std::to_string(age / 1000) + " s"
                        : std::string(status == CheckStatus::kWarning ? "Keepalive WARNING" : "Keepalive CRITICAL") +
                              ": no heartbeat for " + std::to_string(age / 1000) + " s (agent timeout " +
                              std::to_string(timeout / 1000) + " s)";
    record(a.entity, agent_subscriptions(a), std::move(r));
  }
  if (members != members_) {
    members_ = members;
    bump_checks_version();
  }
}

void MonitorService::expire_silences(int64_t now) {
  std::vector<std::string> gone;
  for (const auto& [id, s] : silences_)
    if (silence_expired(s, seconds(now))) gone.push_back(id);
  for (const auto& id : gone) {
    Json ev{{"type", "silence_deleted"}, {"silence", id}, {"reason", "expired"}};
    if (persist({{"silences", id, std::nullopt}}, {ev})) silences_.erase(id);
  }
}

void MonitorService::forget_gone_entities(const Inventory& inv) {
  std::set<std::string> live;
  for (const auto& a : inv.agents) live.insert(a.entity);
  for (const auto& t : inv.tasks) {
    live.insert(t.entity);
    entity_subs_[t.entity] = task_subscriptions(t);
  }
  std::vector<std::pair<std::string, std::string>> gone;
  for (const auto* st : states_.states())
    if (!live.contains(st->entity)) gone.emplace_back(st->entity, st->check.name);
  if (gone.empty()) return;
  std::vector<store::Write> writes;
  for (const auto& [e, c] : gone) writes.push_back({"check_states", state_key(e, c), std::nullopt});
  if (auto r = persist(std::move(writes), {}); !r) return;
  for (const auto& [e, c] : gone) {
    states_.remove(e, c);
    entity_subs_.erase(e);
  }
}

net::awaitable<void> MonitorService::probe_loop() {
  auto alive = alive_;
  while (*alive) {
    Inventory inv = opts_.inventory ? opts_.inventory() : Inventory{};
    for (auto& t : inv.tasks) {
      if (t.ports.empty() || probing_.contains(t.task_id)) continue;
      probing_.insert(t.task_id);
      asio::co_spawn(io_, probe_task(std::move(t)), asio::detached);
    }
    co_await net::sleep_for(std::chrono::milliseconds(opts_.probe_interval_ms));
  }
}

namespace {

// TCP connect with a deadline; "" when it connected, else why not.
net::awaitable<std::string> tcp_connect(std::string host, int port, std::chrono::milliseconds timeout) {
  auto ex = co_await asio::this_coro::executor;
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) co_return "bad address '" + host + "'";
  // The timer's handler may run after this coroutine ended (it expired just
  // as the connect completed): it owns what it touches.
  auto sock = std::make_shared<tcp::socket>(ex);
  auto timed_out = std::make_shared<bool>(false);
  asio::steady_timer timer(ex, timeout);
  timer.async_wait([sock, timed_out](boost::system::error_code e) {
    if (e) return;
    *timed_out = true;
    boost::system::error_code ignored;
    sock->close(ignored);
  });
  tcp::endpoint ep(addr, static_cast<uint16_t>(port));
  co_await sock->async_connect(ep, asio::redirect_error(asio::use_awaitable, ec));
  timer.cancel();
  if (*timed_out) co_return "no answer within " + std::to_string(timeout.count()) + " ms";
  if (ec) co_return ec.message();
  co_return "";
}

std::string format_seconds(double s) {
  char buf[32];
  snprintf(buf, sizeof buf, "%.6f", s);
  return buf;
}

}  // namespace

net::awaitable<void> MonitorService::probe_task(TaskEntity t) {
  auto alive = alive_;
  auto timeout = std::chrono::milliseconds(opts_.probe_timeout_ms);
  CheckResult r;
  r.name = kProbe;
  r.executed = seconds(clock_.now_ms());
  r.status = CheckStatus::kOk;
  std::vector<std::string> parts;
  for (size_t i = 0; i < t.ports.size(); ++i) {
    auto start = std::chrono::steady_clock::now();
    std::string where = t.host + ":" + std::to_string(t.ports[i]);
    std::string err = co_await tcp_connect(t.host, t.ports[i], timeout);
    bool http = t.http_path && static_cast<int>(i) == t.http_port_index;
    if (err.empty() && http) {
      std::string url = "http://" + where + *t.http_path;
      net::Headers headers;
      auto res = co_await net::http_request("GET", url, "", headers, timeout);
      if (!res) err = res.error().message;
      else if (res->status >= 400) err = "HTTP " + std::to_string(res->status) + " from " + *t.http_path;
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!err.empty()) {
      r.status = CheckStatus::kCritical;
      parts.push_back(where + ": " + err);
    } else {
      parts.push_back(where + (http ? " HTTP " + *t.http_path : std::string(" TCP")) + " OK in " + format_seconds(secs) + " s");
      PerfValue pv;
      pv.label = "port" + std::to_string(i) + "_time";
      pv.value = secs;
      pv.uom = Uom::kSeconds;
      r.perfdata.push_back(std::move(pv));
    }
  }
  r.output = std::string(r.status == CheckStatus::kOk ? "PROBE OK - " : "PROBE CRITICAL - ");
  for (size_t i = 0; i < parts.size(); ++i) r.output += (i ? "; " : "") + parts[i];
  if (!*alive) co_return;
  probing_.erase(t.task_id);
  // The task may have ended meanwhile: only record for tasks still running.
  if (!opts_.task_running || opts_.task_running(t.task_id)) record(t.entity, task_subscriptions(t), std::move(r));
}

net::awaitable<CheckResult> MonitorService::run_proxy(CheckSpec spec, TaskEntity t) {
  CheckResult r;
  r.name = spec.name;
  r.executed = seconds(clock_.now_ms());
  auto cmd = substitute_tokens(spec.command, ProxyTarget{t.host, t.ports, t.task_id, t.app_id, t.entity});
  if (!cmd) {
    r.status = CheckStatus::kUnknown;
    r.output = "command: " + cmd.error().message;
    co_return r;
  }
  PluginCommand pc;
  pc.command = *cmd;
  pc.uid = opts_.uid;
  pc.gid = opts_.gid;
  pc.groups = opts_.groups;
  pc.timeout = std::chrono::seconds(spec.timeout);
  PluginResult pr = co_await run_plugin(std::move(pc));
  r.status = pr.status;
  r.output = pr.output.text();
  r.perfdata = std::move(pr.output.perfdata);
  co_return r;
}

net::awaitable<void> MonitorService::proxy_loop(std::string name) {
  auto alive = alive_;
  auto in_flight = std::make_shared<std::set<std::string>>();
  while (*alive) {
    auto it = checks_.find(name);
    if (it == checks_.end() || !it->second.proxy) break;
    CheckSpec spec = it->second;
    Inventory inv = opts_.inventory ? opts_.inventory() : Inventory{};
    for (const auto& t : inv.tasks) {
      if (t.app_id != *spec.proxy || in_flight->contains(t.task_id)) continue;
      in_flight->insert(t.task_id);
      asio::co_spawn(io_, [this, alive, in_flight, spec, t]() -> net::awaitable<void> {
        CheckResult r = co_await run_proxy(spec, t);
        in_flight->erase(t.task_id);
        if (*alive && checks_.contains(spec.name)) record(t.entity, task_subscriptions(t), std::move(r));
      }, asio::detached);
    }
    co_await net::sleep_for(std::chrono::seconds(spec.interval));
  }
  if (*alive) proxy_loops_.erase(name);
}

}  // namespace stele::monitor
