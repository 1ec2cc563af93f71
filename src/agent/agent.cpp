#include "agent/agent.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <deque>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <spdlog/spdlog.h>

#include "agent/agent_impl.h"
#include "agent/collectors.h"
#include "agent/containerizers/docker.h"
#include "agent/executor_output.h"
#include "metrics/metric_record.h"
#include "net/offload.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "net/signal.h"
#include "net/sse.h"

namespace stele::agent {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string load_or_create_agent_id(const std::string& data_dir, const std::string& given) {
  fs::create_directories(data_dir);
  auto path = fs::path(data_dir) / "agent-id";
  if (!given.empty()) {
    std::ofstream(path) << given << "\n";
    return given;
  }
  std::ifstream in(path);
  std::string id;
  if (in >> id && !id.empty()) return id;
  std::mt19937_64 rng{std::random_device{}()};
  char buf[24];
  snprintf(buf, sizeof buf, "agent-%012llx", static_cast<unsigned long long>(rng() & 0xffffffffffffULL));
  std::ofstream(path) << buf << "\n";
  return buf;
}

sched::Resources detect_resources(const std::string& data_dir) {
  sched::Resources r;
  r.cpus = static_cast<double>(sysconf(_SC_NPROCESSORS_ONLN));
  r.mem = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
  struct statvfs sv;
  if (statvfs(data_dir.c_str(), &sv) == 0) r.disk = static_cast<double>(sv.f_bavail) * sv.f_frsize / (1024.0 * 1024.0);
  return r;
}

Agent::Impl::Impl(asio::io_context& i, AgentOptions o)
    : io(i), opts(std::move(o)),
      runner(i, RunnerConfig{opts.data_dir, opts.stele_binary, opts.task_user, "stele/" + opts.id,
                             opts.recovery_timeout_seconds, 3600},
             [this](const TaskStatus& st) { on_status(st); }),
      updates_signal(i.get_executor()),
      slugs(i.get_executor(), workers,
            SlugCacheOptions{opts.data_dir + "/slugs", [this] { return opts.server_url; }, headers(), 20}),
      shipper(i, workers,
              logs::ShipperOptions{.tasks_dir = opts.data_dir + "/executors",
                                   .prefix = TaskRecords::kPrefix,
                                   .acked_marker = sandbox_files::kAcked,
                                   .extra_sources = {{"_agent-metrics", opts.data_dir + "/metrics-spool"},
                                                     {"_agent-router", opts.data_dir + "/router-spool"}},
                                   .node = opts.hostname,
                                   .signal_tag = std::string(metrics::kMetricTag),
                                   .replicated = true,
                                   .what = "task output"}) {}

// Where logs and metrics go, from a registration or heartbeat answer: every
// server ("forwardPeers", the leader's own input first), else the one named
// in "forward" (a single server, or an older one).
void Agent::Impl::ship_to(const Json& answer) {
  if (answer.contains("forward")) {  // a registration answer: the leader's own input
    std::string f = answer.value("forward", "");
    primary_forward = {f.empty() ? "" : net::reachable_address(f, opts.server_url), answer.value("forwardSharedKey", ""),
                       answer.value("forwardTls", false)};
  }
  std::vector<logs::ShipDestination> to;
  if (!primary_forward.address.empty()) to.push_back(primary_forward);
  for (const auto& p : answer.value("forwardPeers", Json::array()))
    if (p.is_string() && !p.get<std::string>().empty())
      to.push_back({net::reachable_address(p.get<std::string>(), opts.server_url), primary_forward.shared_key,
                    primary_forward.tls});
  shipper.set_destinations(std::move(to));
}

// The next server of --server's list (when there are several).
void Agent::Impl::next_server() {
  if (opts.servers.size() < 2) return;
  auto at = std::find(opts.servers.begin(), opts.servers.end(), opts.server_url);
  size_t i = at == opts.servers.end() ? 0 : size_t(at - opts.servers.begin() + 1) % opts.servers.size();
  opts.server_url = opts.servers[i];
}

// A follower's answer (307 naming the leader, or 503 while none is
// elected): moves to the leader, or on along the list. true when it was one.
bool Agent::Impl::follow_leader(const net::ClientResponse& r) {
  if (r.status == 503 && r.headers.count("retry-after")) {
    next_server();
    return true;
  }
  if (r.status != 307 && r.status != 308) return false;
  auto leader = net::leader_redirect(r);
  if (!leader) {
    next_server();
    return true;
  }
  if (*leader != opts.server_url) spdlog::info("{} is a follower: the leader is {}", opts.server_url, *leader);
  opts.server_url = *leader;
  return true;
}

net::Headers Agent::Impl::headers() const {
  net::Headers h;
  if (!opts.token.empty()) h.emplace_back("Authorization", "Bearer " + opts.token);
  return h;
}

// ---- statuses and health
Json Agent::Impl::status_json(const TaskStatus& st) const {
  Json j = {{"taskId", st.task_id}, {"state", st.state}, {"pid", st.pid}, {"reason", st.reason},
            {"message", st.message}, {"startedMs", st.started_ms}};
  if (st.exit_code) j["exitCode"] = *st.exit_code;
  auto h = health.find(st.task_id);
  if (h != health.end() && h->second) {
    Json arr = Json::array();
    for (auto& r : h->second->results())
      arr.push_back({{"index", r.index}, {"alive", r.alive}, {"consecutiveFailures", r.consecutive_failures},
                     {"firstSuccess", r.first_success}, {"lastSuccess", r.last_success},
                     {"lastFailure", r.last_failure}, {"lastFailureCause", r.last_failure_cause}});
    j["health"] = arr;
  }
  return j;
}

void Agent::Impl::enqueue(Json update) {
  pending_updates.push_back(std::move(update));
  updates_signal.notify();
}

void Agent::Impl::on_status(TaskStatus st) {
  auto kr = kill_reasons.find(st.task_id);
  if (is_terminal_state(st.state) && kr != kill_reasons.end()) {
    st.reason = kr->second;
    if (st.state == "killed") st.state = "failed";  // a health kill is a failure, not a requested kill
  }
  last_status[st.task_id] = st;
  if (on_step_status(st)) return;
  if (st.state == "running" && !health.count(st.task_id)) start_health(st);
  if (is_terminal_state(st.state)) health.erase(st.task_id);
  enqueue(status_json(st));
}

void Agent::Impl::start_health(const TaskStatus& st) {
  auto it = launches.find(st.task_id);
  if (it == launches.end()) return;
  auto spec = parse_app_spec(it->second.value("spec", Json::object()));
  if (!spec || spec->health_checks.empty()) return;
  const Json& task = it->second["task"];
  HealthTarget target;
  target.task_id = st.task_id;
  target.host = opts.advertise_addr.empty() ? "127.0.0.1" : opts.advertise_addr;
  target.ports = task.value("ports", std::vector<int>{});
  target.env = spec->env;
  target.sandbox = runner.sandbox_dir(st.task_id);
  target.user = spec->user.value_or(opts.task_user);
  if (containerizer_of(*spec) == "docker") {
    target.container = container_name(st.task_id);
    target.docker_socket = opts.docker_socket;
  }
  target.started_ms = st.started_ms ? st.started_ms : clock.now_ms();
  std::string id = st.task_id;
  auto h = std::make_unique<TaskHealth>(
      io.get_executor(), target, spec->health_checks,
      [this, id](const std::vector<HealthCheckResult>&) {
        auto s = last_status.find(id);
        if (s != last_status.end() && !is_terminal_state(s->second.state)) enqueue(status_json(s->second));
      },
      [this, id, grace = spec->task_kill_grace_period_seconds](const std::string& cause) {
        spdlog::warn("task {} failed its health check ({}): killing it", id, cause);
        kill_reasons[id] = "health check failed: " + cause;
        runner.kill(id, grace);
      });
  h->start();
  health[id] = std::move(h);
}

// ---- commands
void Agent::Impl::handle_command(const std::string& data) {
  auto parsed = parse_json(data);
  if (!parsed) {
    spdlog::warn("ignoring malformed command from the server: {}", parsed.error().message);
    return;
  }
  const Json& cmd = *parsed;
  std::string type = cmd.value("type", "");
  if (type == "launch") launch(cmd);
  else if (type == "kill") kill(cmd.value("taskId", ""), cmd.value("graceSeconds", 3.0));
}

void Agent::Impl::kill(const std::string& id, double grace) {
  bool known = false;
  for (auto& st : runner.snapshot())
    if (st.task_id == id) known = true;
  if (known && preparing.count(id)) {
    cancelled.insert(id);  // its launch ends it (TaskRunner holds the kill)
    return;
  }
  if (!known) {
    // Nothing runs under that id: tell the server so its kill completes.
    enqueue({{"taskId", id}, {"state", "killed"}, {"reason", "not running on this agent"}});
    return;
  }
  health.erase(id);
  runner.kill(id, grace);
}

void Agent::Impl::forget(const std::string& id) {
  runner.ack(id);
  launches.erase(id);
  kill_reasons.erase(id);
  last_status.erase(id);
  forget_launch(id);
  std::error_code ec;
  fs::remove(launch_dir() / (id + ".json"), ec);
}

void Agent::Impl::load_launches() {
  std::error_code ec;
  for (auto& e : fs::directory_iterator(launch_dir(), ec)) {
    std::ifstream in(e.path());
    std::string text((std::istreambuf_iterator<char>(in)), {});
    if (auto j = parse_json(text)) launches[e.path().stem().string()] = *j;
  }
}

// ---- server conversation
Json Agent::Impl::registration() const {
  Json tasks = Json::array();
  for (auto& st : runner.snapshot()) tasks.push_back(status_json(visible_status(st)));
  Json attrs = opts.attributes;
  Json j = {{"id", opts.id}, {"hostname", opts.hostname}, {"address", opts.advertise_addr},
          {"resources", {{"cpus", opts.resources.cpus}, {"mem", opts.resources.mem}, {"disk", opts.resources.disk}}},
          {"ports", Json::array({Json::array({opts.ports.begin, opts.ports.end})})},
          {"attributes", attrs}, {"subscriptions", opts.subscriptions}, {"tasks", tasks},
          {"containerizers", docker_unavailable.empty() ? Json::array({"process", "docker"}) : Json::array({"process"})},
          {"dockerUnavailable", docker_unavailable.empty() ? Json(nullptr) : Json(docker_unavailable)}};
  if (!opts.router_address.empty()) j["router"] = opts.router_address;
  return j;
}

// Blocking, bounded by a short engine timeout: it runs once before the
// agent registers, so no launch can race the orphan sweep.
void Agent::Impl::check_docker(const std::set<std::string>& known_tasks) {
  docker::Engine engine(docker_engine_options());
  auto ok = engine.available();
  docker_unavailable = ok ? "" : ok.error().message;
  if (!ok) {
    spdlog::warn("docker containerizer unavailable: {}", docker_unavailable);
    return;
  }
  auto listed = agent_containers(engine, opts.id);
  if (!listed) spdlog::warn("docker: cannot sweep this agent's containers: {}", listed.error().message);
  else log_removed_orphans(remove_containers(engine, orphan_containers(*listed, opts.id, known_tasks)));
}

docker::EngineOptions Agent::Impl::docker_engine_options() const {
  docker::EngineOptions eo;
  eo.socket_path = opts.docker_socket;
  eo.timeout = std::chrono::seconds(5);
  return eo;
}

// The server's list of images whose releases retention collected: each is
// removed from this agent's engine once (an image a container still uses
// is refused by the engine and tried again with the next list).
void Agent::Impl::on_collected_images(const std::string& data) {
  auto j = parse_json(data);
  if (!j || !j->contains("collected") || !(*j)["collected"].is_array()) {
    spdlog::warn("docker: bad images event from the server: {}", j ? "no \"collected\" list" : j.error().message);
    return;
  }
  if (!docker_unavailable.empty()) return;
  std::vector<std::string> todo;
  for (const auto& id : (*j)["collected"])
    if (id.is_string() && !images_removed.count(id.get<std::string>())) todo.push_back(id.get<std::string>());
  if (todo.empty()) return;
  asio::co_spawn(io, remove_images(std::move(todo)), asio::detached);
}

net::awaitable<void> Agent::Impl::remove_images(std::vector<std::string> ids) {
  auto job = [eo = docker_engine_options(), ids] {
    std::vector<std::pair<std::string, Result<void>>> done;
    docker::Engine engine(eo);
    for (const auto& id : ids) done.emplace_back(id, engine.remove_image(id, false));
    return done;
  };
  auto done = co_await net::offload(workers, std::move(job));
  for (const auto& [id, r] : done) {
    if (!r && r.error().code != 404) {
      spdlog::info("docker: image {} of a collected release stays for now: {}", id, r.error().message);
      continue;
    }
    images_removed.insert(id);
    if (r) spdlog::info("docker: removed image {} (its release was collected)", id);
  }
}

void Agent::Impl::log_removed_orphans(const std::vector<std::string>& tasks) {
  for (const auto& t : tasks) spdlog::warn("docker: removed the container of task {}: no executor runs it", t);
}

// Every minute, this agent's containers whose task the runner no longer
// knows (its executor died) are removed. The listing comes first and the
// runner's tasks are read after it: a container only exists for a task the
// runner registered before the container was created, so none in flight is
// taken for an orphan.
net::awaitable<void> Agent::Impl::container_sweep_loop() {
  while (!stopped) {
    co_await net::sleep_for(60s);
    if (stopped || !docker_unavailable.empty()) continue;
    auto list = [eo = docker_engine_options(), id = opts.id] { return agent_containers(docker::Engine(eo), id); };
    auto listed = co_await net::offload(workers, list);
    if (!listed || stopped) continue;
    std::set<std::string> known;
    for (const auto& st : runner.snapshot()) known.insert(st.task_id);
    auto orphans = orphan_containers(*listed, opts.id, known);
    if (orphans.empty()) continue;
    auto remove = [eo = docker_engine_options(), orphans] { return remove_containers(docker::Engine(eo), orphans); };
    auto removed = co_await net::offload(workers, remove);
    log_removed_orphans(removed);
  }
}

net::awaitable<bool> Agent::Impl::register_once() {
  auto r = co_await net::http_request("POST", url("/api/v1/agent/register"), registration().dump(), headers(), 10s);
  if (!r) {
    spdlog::warn("cannot register with {}: {}", opts.server_url, r.error().message);
    next_server();
    co_return false;
  }
  if (follow_leader(*r)) co_return false;
  join_refused = r->status == 401;
  if (join_refused) {
    spdlog::error("server refused the join token (401: {}): start the agent with the server's --join-token "
                  "(env STELE_JOIN_TOKEN; the server keeps it in <data-dir>/join-token); retrying", r->body);
    co_return false;
  }
  if (r->status != 200) {
    spdlog::error("server refused registration ({}): {}", r->status, r->body);
    co_return false;
  }
  last_contact_ms = clock.now_ms();
  auto j = r->json();
  if (j) ship_to(*j);
  if (j)
    for (auto& id : j->value("kill", Json::array())) {
      spdlog::warn("server does not know task {}: killing it", id.get<std::string>());
      runner.kill(id.get<std::string>(), 0);
    }
  co_return true;
}

net::awaitable<void> Agent::Impl::main_loop() {
  auto backoff = 200ms;
  while (!stopped) {
    if (!registered) {
      if (co_await register_once()) {
        registered = true;
        ++session;
        fenced = false;
        backoff = 200ms;
        spdlog::info("agent {} registered with {}", opts.id, opts.server_url);
        asio::co_spawn(io, command_loop(session), asio::detached);
        asio::co_spawn(io, heartbeat_loop(session), asio::detached);
        updates_signal.notify();
      } else {
        co_await net::sleep_for(backoff);
        // A refused join token will not fix itself soon: retry, but calmly.
        backoff = std::min(backoff * 2, std::chrono::milliseconds(join_refused ? 10000 : 2000));
      }
    }
    check_fencing();
    co_await net::sleep_for(registered ? 1000ms : 0ms);
  }
}

void Agent::Impl::check_fencing() {
  if (fenced || stopped || last_contact_ms == 0) return;
  if (clock.now_ms() - last_contact_ms < static_cast<int64_t>(opts.agent_timeout_seconds * 1000)) return;
  fenced = true;
  spdlog::error("no server reached for {} s: killing every task (the server has replaced them)", opts.agent_timeout_seconds);
  for (auto& st : runner.snapshot())
    if (!is_terminal_state(st.state)) {
      kill_reasons[st.task_id] = "agent fenced: no server reached for agent timeout";
      runner.kill(st.task_id, 0);
    }
}

// Bodies are built outside co_await expressions (g++ 12 miscompiles
// braced initializer lists there).
std::string Agent::Impl::heartbeat_body() const {
  Json j{{"id", opts.id}};
  if (!opts.router_address.empty()) j["routerVersion"] = router_version;
  return j.dump();
}

// A route table from the server: applied, then acknowledged at once (the
// server holds planned kills of routed instances until every router has).
void Agent::Impl::on_routes(const std::string& data) {
  auto j = parse_json(data);
  if (!j || !opts.apply_routes || !opts.router_applied) {
    spdlog::warn("router: bad route table from the server: {}", j ? "no router" : j.error().message);
    return;
  }
  uint64_t version = j->value("version", uint64_t(0));
  if (!opts.apply_routes(*j)) return;
  asio::co_spawn(io, [this, version]() -> net::awaitable<void> {
    // The router applies tables on its own thread: wait (briefly) for it.
    for (int i = 0; i < 200 && opts.router_applied() < version; ++i) co_await net::sleep_for(5ms);
    if (opts.router_applied() == router_version) co_return;
    router_version = opts.router_applied();
    std::string body = heartbeat_body();
    auto r = co_await net::http_request("POST", url("/api/v1/agent/heartbeat"), std::move(body), headers(), 5s);
    if (r && r->status == 200) last_contact_ms = clock.now_ms();
  }, asio::detached);
}
std::string Agent::Impl::status_body(Json batch) const { return Json{{"id", opts.id}, {"updates", std::move(batch)}}.dump(); }

net::awaitable<void> Agent::Impl::heartbeat_loop(int my_session) {
  while (!stopped && session == my_session) {
    std::string body = heartbeat_body();
    auto r = co_await net::http_request("POST", url("/api/v1/agent/heartbeat"), std::move(body), headers(), 5s);
    if (r && r->status == 200) {
      last_contact_ms = clock.now_ms();
      if (auto j = r->json(); j && j->contains("forwardPeers") && !primary_forward.address.empty()) ship_to(*j);
    }
    if (r && r->status == 404 && session == my_session) {
      spdlog::warn("server forgot this agent: registering again");
      registered = false;
      co_return;
    }
    // Several servers: one that stopped answering, or is no longer the
    // leader, is left for the leader (a new leader knows this agent only
    // once it registered again).
    if (opts.servers.size() > 1 && session == my_session) {
      failed_heartbeats = r && r->status == 200 ? 0 : failed_heartbeats + 1;
      if ((r && follow_leader(*r)) || (!r && failed_heartbeats >= 2)) {
        spdlog::warn("leaving server {}: {}; registering with the leader", opts.server_url,
                     r ? "it is no longer the leader" : r.error().message);
        if (!r) next_server();
        registered = false;
        co_return;
      }
    }
    co_await net::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(std::max(0.2, opts.agent_timeout_seconds / 6) * 1000)));
  }
}

net::awaitable<void> Agent::Impl::command_loop(int my_session) {
  while (!stopped && session == my_session) {
    net::SseParser parser([this](const net::SseEvent& e) {
      last_contact_ms = clock.now_ms();
      if (e.event == "command") handle_command(e.data);
      if (e.event == "routes") on_routes(e.data);
      if (e.event == "images") on_collected_images(e.data);
      if ((e.event == "checks" || e.event == "check-run") && checks) {
        auto j = parse_json(e.data);
        if (!j) spdlog::warn("checks: bad {} event from the server: {}", e.event, j.error().message);
        else if (e.event == "checks") checks->set_checks(*j);
        else checks->run_now(*j);
      }
    });
    auto r = co_await net::http_stream("GET", url("/api/v1/agent/commands?id=" + net::percent_encode(opts.id)), "", headers(),
                                       [&](std::string_view chunk) {
                                         if (stopped || session != my_session) return false;
                                         last_contact_ms = clock.now_ms();
                                         parser.feed(chunk);
                                         return true;
                                       },
                                       30s);
    if (r && *r == 404 && session == my_session) {
      registered = false;
      co_return;
    }
    if (!stopped) co_await net::sleep_for(500ms);
  }
}

net::awaitable<void> Agent::Impl::status_loop() {
  while (!stopped) {
    if (pending_updates.empty() || !registered) {
      co_await updates_signal.wait(1s);
      continue;
    }
    size_t n = std::min<size_t>(pending_updates.size(), 100);
    Json batch = Json::array();
    for (size_t i = 0; i < n; ++i) batch.push_back(pending_updates[i]);
    std::string body = status_body(std::move(batch));
    auto r = co_await net::http_request("POST", url("/api/v1/agent/status"), std::move(body), headers(), 10s);
    if (r && r->status == 200) {
      last_contact_ms = clock.now_ms();
      for (size_t i = 0; i < n; ++i) {
        const Json& u = pending_updates.front();
        if (is_terminal_state(u.value("state", ""))) forget(u.value("taskId", ""));
        pending_updates.pop_front();
      }
      continue;
    }
    if (r && r->status == 404) registered = false;
    co_await net::sleep_for(500ms);
  }
}

net::awaitable<void> Agent::Impl::gc_loop() {
  while (!stopped) {
    co_await net::sleep_for(60s);
    runner.gc_sandboxes();
  }
}

net::awaitable<void> Agent::Impl::metrics_loop() {
  if (opts.metrics_interval_seconds <= 0) co_return;
  std::string dir = opts.data_dir + "/metrics-spool";
  std::error_code ec;
  fs::create_directories(dir, ec);
  metrics_spool = std::make_shared<logs::SpoolWriter>(dir, TaskRecords::kPrefix);
  auto interval = std::chrono::milliseconds(int64_t(opts.metrics_interval_seconds * 1000));
  std::string parent = "stele/" + opts.id;
  while (!stopped) {
    auto job = [spool = metrics_spool, parent, host = opts.hostname, data = opts.data_dir] {
      std::vector<MetricPoint> pts;
      CgroupFs fs = CgroupFs::detect();
      for (const auto& t : discover_task_metrics(fs, parent)) collect_task(t, host, pts);
      NodeSources ns;
      ns.mounts = {"/"};
      struct stat a {}, b {};
      if (::stat("/", &a) == 0 && ::stat(data.c_str(), &b) == 0 && a.st_dev != b.st_dev) ns.mounts.push_back(data);
      collect_node(ns, host, pts);
      std::vector<metrics::NamedValue> named;
      named.reserve(pts.size());
      for (auto& p : pts) named.push_back({std::move(p.path), p.value});
      int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                           std::chrono::system_clock::now().time_since_epoch()).count();
      spool->append(metrics::kMetricTag, now_ns, metrics::encode_metric_record(named));
      spool->flush();
      return named.size();
    };
    co_await net::offload(workers, job);
    co_await net::sleep_for(interval);
  }
}

Agent::Agent(asio::io_context& io, AgentOptions opts) : impl_(std::make_unique<Impl>(io, std::move(opts))) {}
Agent::~Agent() { stop(); }

void Agent::start() {
  Impl& s = *impl_;
  s.load_launches();
  auto recovered = s.runner.recover();
  if (!recovered.empty()) spdlog::info("re-attached to {} executors", recovered.size());
  // Launch records of tasks no executor knows any more are stale.
  std::set<std::string> known(recovered.begin(), recovered.end());
  for (auto it = s.launches.begin(); it != s.launches.end();) {
    if (known.count(it->first)) { ++it; continue; }
    std::error_code ec;
    fs::remove(s.launch_dir() / (it->first + ".json"), ec);
    it = s.launches.erase(it);
  }
  s.recover_launches(recovered);
  s.check_docker(known);
  s.shipper.start();
  AgentChecksOptions co;
  co.agent_id = s.opts.id;
  if (geteuid() == 0) {  // plugins run as the task user, never root
    auto creds = resolve_task_user(s.opts.task_user);
    if (!creds) spdlog::error("checks: task user: {} (plugins will not run)", creds.error().message);
    else co.uid = creds->uid, co.gid = creds->gid, co.groups = {creds->groups.begin(), creds->groups.end()};
  }
  co.post = [&s](std::string body) -> net::awaitable<bool> {
    auto r = co_await net::http_request("POST", s.url("/api/v1/agent/checks"), std::move(body), s.headers(), 10s);
    co_return r && r->status == 200;
  };
  s.checks = std::make_unique<AgentChecks>(s.io, std::move(co));
  s.checks->start();
  asio::co_spawn(s.io, s.main_loop(), asio::detached);
  asio::co_spawn(s.io, s.status_loop(), asio::detached);
  asio::co_spawn(s.io, s.gc_loop(), asio::detached);
  asio::co_spawn(s.io, s.metrics_loop(), asio::detached);
  asio::co_spawn(s.io, s.container_sweep_loop(), asio::detached);
}

void Agent::stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  impl_->health.clear();
  impl_->steps.clear();  // their shippers stop; a restarted agent resumes them
  impl_->shipper.stop();
  if (impl_->checks) impl_->checks->stop();
  impl_->updates_signal.notify();
}

}  // namespace stele::agent
