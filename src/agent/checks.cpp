#include "agent/checks.h"

#include <chrono>
#include <functional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <spdlog/spdlog.h>

#include "monitor/check_state.h"
#include "monitor/plugin_runner.h"

namespace stele::agent {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

constexpr size_t kOutboxLimit = 10'000;

}  // namespace

AgentChecks::AgentChecks(asio::io_context& io, AgentChecksOptions opts)
    : io_(io), opts_(std::move(opts)), outbox_signal_(io.get_executor()), alive_(std::make_shared<bool>(true)) {}

AgentChecks::~AgentChecks() { stop(); }

void AgentChecks::start() { asio::co_spawn(io_, send_loop(), asio::detached); }

void AgentChecks::stop() {
  *alive_ = false;
  outbox_signal_.notify();
}

std::vector<std::string> AgentChecks::scheduled_for_test() const {
  std::vector<std::string> out;
  for (const auto& [n, c] : checks_) out.push_back(n);
  return out;
}

void AgentChecks::set_checks(const Json& doc) {
  std::map<std::string, Scheduled> next;
  for (const auto& cj : doc.value("checks", Json::array())) {
    Json spec_json = cj;
    Json rr = spec_json.value("roundRobin", Json());
    spec_json.erase("roundRobin");
    auto spec = monitor::parse_check(spec_json);
    if (!spec) {
      spdlog::warn("checks: definition from the server skipped: {}", spec.error().message);
      continue;
    }
    Scheduled s;
    s.spec = std::move(*spec);
    if (rr.is_object()) {
      s.rr_index = rr.value("index", int64_t(0));
      s.rr_of = rr.value("of", int64_t(0));
    }
    auto old = checks_.find(s.spec.name);
    // An unchanged check keeps its running schedule; a changed one restarts.
    if (old != checks_.end() && old->second.spec == s.spec) {
      old->second.rr_index = s.rr_index;
      old->second.rr_of = s.rr_of;
      s.generation = old->second.generation;
    } else {
      s.generation = next_generation_++;
      asio::co_spawn(io_, schedule(s.spec.name, s.generation), asio::detached);
    }
    next[s.spec.name] = std::move(s);
  }
  for (const auto& [name, s] : checks_)
    if (!next.contains(name)) spdlog::info("checks: {} no longer runs here", name);
  for (const auto& [name, s] : next)
    if (!checks_.contains(name)) spdlog::info("checks: {} runs here every {} s", name, s.spec.interval);
  checks_ = std::move(next);
}

void AgentChecks::run_now(const Json& req) {
  std::string name = req.value("check", "");
  auto it = checks_.find(name);
  if (it == checks_.end()) {
    spdlog::warn("checks: run-now of {}, which does not run here", name);
    return;
  }
  std::optional<uint64_t> request;
  if (req.contains("request") && req["request"].is_number_unsigned()) request = req["request"].get<uint64_t>();
  asio::co_spawn(io_, execute(it->second.spec, request), asio::detached);
}

net::awaitable<void> AgentChecks::schedule(std::string name, uint64_t generation) {
  auto alive = alive_;
  while (*alive) {
    auto it = checks_.find(name);
    if (it == checks_.end() || it->second.generation != generation) co_return;
    int64_t interval = it->second.spec.interval * 1000;
    int64_t splay = static_cast<int64_t>(std::hash<std::string>{}(name) % static_cast<uint64_t>(interval));
    int64_t now = wall_ms();
    int64_t k = (now - splay) / interval + 1;  // the next slot
    co_await net::sleep_for(std::chrono::milliseconds(k * interval + splay - now));
    if (!*alive) co_return;
    it = checks_.find(name);
    if (it == checks_.end() || it->second.generation != generation) co_return;
    const Scheduled& s = it->second;
    if (s.rr_of > 0 && k % s.rr_of != s.rr_index) continue;
    if (running_.contains(name)) {
      spdlog::warn("checks: {} still running at its next interval: this run skipped", name);
      continue;
    }
    asio::co_spawn(io_, execute(s.spec, std::nullopt), asio::detached);
  }
}

net::awaitable<void> AgentChecks::execute(monitor::CheckSpec spec, std::optional<uint64_t> request) {
  auto alive = alive_;
  running_.insert(spec.name);
  monitor::PluginCommand cmd;
  cmd.command = spec.command;
  cmd.uid = opts_.uid;
  cmd.gid = opts_.gid;
  cmd.groups = opts_.groups;
  cmd.timeout = std::chrono::seconds(spec.timeout);
  int64_t started = wall_ms() / 1000;
  monitor::PluginResult pr = co_await monitor::run_plugin(std::move(cmd));
  if (!*alive) co_return;
  running_.erase(spec.name);
  monitor::CheckResult r;
  r.name = spec.name;
  r.status = pr.status;
  r.output = pr.output.text();
  r.executed = started;
  r.perfdata = std::move(pr.output.perfdata);
  Json j = r;
  if (request) j["request"] = *request;
  if (outbox_.size() >= kOutboxLimit) {
    spdlog::warn("checks: {} results not yet delivered: the oldest is dropped", outbox_.size());
    outbox_.pop_front();
  }
  outbox_.push_back(std::move(j));
  outbox_signal_.notify();
}

net::awaitable<void> AgentChecks::send_loop() {
  auto alive = alive_;
  int failures = 0;
  while (*alive) {
    if (outbox_.empty()) {
      co_await outbox_signal_.wait(5s);
      continue;
    }
    size_t n = std::min<size_t>(outbox_.size(), 200);
    Json results = Json::array();
    for (size_t i = 0; i < n; ++i) results.push_back(outbox_[i]);
    std::string body = Json{{"id", opts_.agent_id}, {"results", std::move(results)}}.dump();
    bool ok = co_await opts_.post(std::move(body));
    if (!*alive) co_return;
    if (ok || ++failures >= 10) {
      if (!ok) spdlog::warn("checks: {} results dropped: the server did not take them 10 times", n);
      for (size_t i = 0; i < n && !outbox_.empty(); ++i) outbox_.pop_front();
      failures = 0;
      continue;
    }
    co_await net::sleep_for(500ms);
  }
}

}  // namespace stele::agent
