#include "pipeline/pipeline.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <filesystem>
#include <set>
#include <spdlog/spdlog.h>

#include "artifact/slug.h"
#include "common/names.h"
#include "logs/msgpack.h"
#include "net/offload.h"
#include "pipeline/stele_json.h"

namespace stele::pipeline {

namespace fs = std::filesystem;
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string short_id(const std::string& s, size_t n) { return s.substr(0, std::min(n, s.size())); }

std::string human_size(int64_t bytes) {
  if (bytes >= (1 << 20)) return fmt::format("{:.1f} MB", bytes / 1048576.0);
  if (bytes >= 1024) return fmt::format("{:.1f} KB", bytes / 1024.0);
  return fmt::format("{} B", bytes);
}

std::string seconds(int64_t ms) { return fmt::format("{:.1f} s", ms / 1000.0); }

// Why a finished step task did not succeed, from its final event.
std::string step_failure(const Json& end) {
  std::string state = end.value("state", "");
  std::string reason = end.value("reason", "");
  if (state == "finished" && end.value("exitCode", 0) == 0) return "";
  if (!reason.empty() && reason != "exited") return reason;
  if (end.contains("exitCode")) return fmt::format("exited with status {}", end.value("exitCode", -1));
  return state.empty() ? "ended" : state;
}

}  // namespace

// A pipeline task or deployment the pipeline waits on: its events, as they come.
struct Watch {
  explicit Watch(asio::any_io_executor ex) : signal(std::move(ex)) {}
  net::AsyncSignal signal;
  std::vector<Json> events;
  std::optional<Json> end;   // terminal task status / final deployment event
  bool healthy = false;
  bool running = false;
};

struct Pipeline::Impl {
  asio::io_context& io;
  deploy::Cluster& cluster;
  GitRepos& git;
  artifact::ArtifactStore& artifacts;
  PipelineOptions opts;
  net::AsyncSignal changed;
  std::map<std::string, std::shared_ptr<Watch>> task_watches;        // by task id
  std::map<std::string, std::shared_ptr<Watch>> deployment_watches;  // by deployment id
  std::map<std::string, Json> ended;           // step task id -> final event (runs read it)
  std::deque<std::string> ended_order;
  std::set<std::pair<std::string, int64_t>> running;  // pipelines in flight

  Impl(asio::io_context& i, deploy::Cluster& c, GitRepos& g, artifact::ArtifactStore& a, PipelineOptions o)
      : io(i), cluster(c), git(g), artifacts(a), opts(std::move(o)), changed(i.get_executor()) {}

  // ---- logs: the release log is records in the log store, tagged
  // stele.<app name>.pipeline (design.md "Names"), one per line:
  // {"app", "release", "stream": "pipeline", "log"}. The steps' own output
  // arrives there from the agents (stream "stdout", with "task" and "step").
  // Appends run in order on one thread (they fsync); changed is notified
  // once each is stored.
  boost::asio::thread_pool log_writer{1};
  int appends_pending = 0;  // io thread: lines said but not stored yet (finished() waits for them)
  ~Impl() { log_writer.join(); }  // lines already said are stored, not dropped
  void append_lines(const std::string& app_id, int64_t n, std::string_view text) {
    if (!opts.logs) return;
    std::vector<logs::OwnedLogEntry> batch;
    int64_t t = now_ns();
    std::string tag = log_tag(app_id, "pipeline");
    while (!text.empty()) {
      size_t nl = text.find('\n');
      std::string_view line = text.substr(0, nl);
      text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
      std::string rec;
      logs::msgpack::Writer w(rec);
      w.map(4);
      w.str("app"), w.str(app_id);
      w.str("release"), w.integer(n);
      w.str("stream"), w.str("pipeline");
      w.str("log"), w.str(line);
      batch.push_back({tag, t, std::move(rec)});
    }
    ++appends_pending;
    auto done = [this] {
      --appends_pending;
      changed.notify();
    };
    asio::post(log_writer, [store = opts.logs, batch = std::move(batch), done, ex = io.get_executor()] {
      std::vector<logs::LogEntry> views;
      for (const auto& e : batch) views.push_back(e.view());
      if (auto r = store->append(views); !r) spdlog::error("release log: {}", r.error().message);
      asio::post(ex, done);
    });
  }
  // One status line in the release log: "-----> text".
  void say(const std::string& app_id, int64_t n, const std::string& text) {
    append_lines(app_id, n, "-----> " + text);
  }

  // ---- waiting
  std::shared_ptr<Watch> watch_task(const std::string& id) {
    auto w = std::make_shared<Watch>(io.get_executor());
    task_watches[id] = w;
    return w;
  }

  // Waits until the watch ends, `ready` holds, or the deadline passes.
  template <class Pred>
  net::awaitable<bool> wait(std::shared_ptr<Watch> w, int64_t deadline_ms, Pred& ready) {
    while (!w->end && !ready(*w)) {
      if (now_ms() >= deadline_ms) co_return false;
      co_await w->signal.wait(500ms);
    }
    co_return true;
  }

  void remember_end(const std::string& id, const Json& e) {
    if (!ended.count(id)) ended_order.push_back(id);
    ended[id] = e;
    while (ended_order.size() > 500) {
      ended.erase(ended_order.front());
      ended_order.pop_front();
    }
  }

  // ---- release record
  Result<void> update(const std::string& app_id, int64_t n, const std::function<void(deploy::Release&)>& fn) {
    const deploy::Release* cur = cluster.release(app_id, n);
    if (!cur) return fail(Error{"release vanished (app deleted?)", {}, 404});
    deploy::Release r = *cur;
    fn(r);
    return cluster.update_release(r);
  }

  void finish(const std::string& app_id, int64_t n) {
    running.erase({app_id, n});
    changed.notify();
  }

  void fail_release(const std::string& app_id, int64_t n, const std::string& step, const std::string& reason,
                    int64_t step_ms = -1) {
    auto r = update(app_id, n, [&](deploy::Release& rel) {
      rel.status = "failed";
      rel.step = step;
      rel.reason = reason;
      if (step_ms >= 0) rel.durations[step] = step_ms;
    });
    if (!r) spdlog::warn("{} release {}: cannot record the failure: {}", app_id, n, r.error().message);
    append_lines(app_id, n, fmt::format("!!!!!> {} failed: {}\n!!!!!> release {} failed; nothing was deployed",
                                        step, reason, n));
    spdlog::info("{} release {}: {} failed: {}", app_id, n, step, reason);
  }

  // A step's spec: the app's env and user, the step's own limits, no ports,
  // routes or health checks.
  static AppSpec step_spec(const AppSpec& app, const std::string& cmd, double cpus, double mem) {
    AppSpec s = app;
    s.cmd = cmd;
    s.args.clear();
    s.cpus = cpus;
    s.mem = mem;
    s.health_checks.clear();
    s.port_definitions.clear();
    s.routes.clear();
    s.require_ports = false;
    s.instances = 1;
    return s;
  }

  // Starts a step and waits for its end. Returns the final event, or an error
  // naming why it could not run or finish in time.
  net::awaitable<Result<Json>> run_step(const std::string& app_id, int64_t n, deploy::StepRequest req,
                                        int64_t timeout_s) {
    auto id = cluster.start_step(req, "pipeline");
    if (!id) co_return fail(id.error());
    auto w = watch_task(*id);
    const deploy::Task* t = cluster.task(*id);
    const deploy::Node* node = t ? cluster.node(t->agent_id) : nullptr;
    say(app_id, n, fmt::format("{} task {} on {}", req.kind, *id, node ? node->hostname : "?"));
    // The agent enforces the timeout; the margin covers fetching and packing.
    auto never = [](const Watch&) { return false; };
    bool done = co_await wait(w, now_ms() + (timeout_s + 120) * 1000, never);
    task_watches.erase(*id);
    if (!done) {
      (void)cluster.kill_tasks({*id}, false, "pipeline");
      co_return fail(fmt::format("no result from the {} task within {} s", req.kind, timeout_s + 120));
    }
    co_return *w->end;
  }

  // ---- the steps
  net::awaitable<void> run(std::string app_id, int64_t n, RepoSpec repo, int64_t received_ms);
  net::awaitable<bool> build(const std::string& app_id, int64_t n, const RepoSpec& repo);
  net::awaitable<bool> test(const std::string& app_id, int64_t n, const RepoSpec& repo);
  net::awaitable<bool> smoke(const std::string& app_id, int64_t n);
  net::awaitable<bool> replicated(const std::string& app_id, int64_t n);
  net::awaitable<bool> release_step(const std::string& app_id, int64_t n, const RepoSpec& repo);
  net::awaitable<void> deploy(const std::string& app_id, int64_t n);
  void collect(const std::string& app_id);
  void remove_step_outputs(const std::string& app_id, int64_t n);
};

// Several servers: the release is ready once every live server holds its
// artifact (a new leader must be able to deploy it), or fails after
// replica_timeout_s naming the servers that still lack it.
net::awaitable<bool> Pipeline::Impl::replicated(const std::string& app_id, int64_t n) {
  const deploy::Release* rel = cluster.release(app_id, n);
  if (!opts.missing_replicas || !rel || rel->artifact.empty()) co_return true;
  std::string digest = rel->artifact;
  int64_t start = now_ms();
  bool said = false;
  for (;;) {
    auto missing = opts.missing_replicas(digest);
    if (missing.empty()) {
      if (said) say(app_id, n, "Every server holds the artifact");
      co_return true;
    }
    std::string names;
    for (const auto& m : missing) names += (names.empty() ? "" : ", ") + m;
    if (now_ms() - start > opts.replica_timeout_s * 1000) {
      fail_release(app_id, n, "replicate", "servers " + names + " did not copy the artifact within " +
                                               std::to_string(opts.replica_timeout_s) + " s");
      co_return false;
    }
    if (!said) say(app_id, n, "Waiting for " + names + " to copy the artifact");
    said = true;
    co_await net::sleep_for(std::chrono::milliseconds(250));
  }
}

net::awaitable<void> Pipeline::Impl::run(std::string app_id, int64_t n, RepoSpec repo, int64_t received_ms) {
  (void)update(app_id, n, [&](deploy::Release& r) { r.durations["receive"] = now_ms() - received_ms; });
  if (!co_await build(app_id, n, repo)) {
    finish(app_id, n);
    co_return;
  }
  if (!co_await test(app_id, n, repo)) {
    finish(app_id, n);
    co_return;
  }
  if (!co_await smoke(app_id, n)) {
    finish(app_id, n);
    co_return;
  }
  if (repo.auto_deploy && !co_await release_step(app_id, n, repo)) {
    finish(app_id, n);
    co_return;
  }
  if (!co_await replicated(app_id, n)) {
    finish(app_id, n);
    co_return;
  }
  auto ready = update(app_id, n, [](deploy::Release& r) {
    r.status = "ready";
    r.step.clear();
  });
  if (!ready) {
    say(app_id, n, "cannot mark the release ready: " + ready.error().message);
    {
    finish(app_id, n);
    co_return;
  }
  }
  const deploy::Release* rel = cluster.release(app_id, n);
  if (rel->image.empty())
    say(app_id, n, fmt::format("Release {} is ready (slug {}, {})", n, short_id(rel->artifact, 12),
                               human_size(rel->artifact_size)));
  else
    say(app_id, n, fmt::format("Release {} is ready (image {} {}, {})", n, rel->spec.container->image,
                               short_id(rel->image, 19), human_size(rel->artifact_size)));
  collect(app_id);
  if (!repo.auto_deploy) {
    say(app_id, n, fmt::format("autoDeploy is off: deploy it with `stele deploy {} --release {}`", app_name(app_id), n));
    {
    finish(app_id, n);
    co_return;
  }
  }
  co_await deploy(app_id, n);
  collect(app_id);  // what was previous before this deploy may be collectable now
  finish(app_id, n);
}

net::awaitable<bool> Pipeline::Impl::build(const std::string& app_id, int64_t n, const RepoSpec& repo) {
  const deploy::Release* rel = cluster.release(app_id, n);
  if (!rel) co_return false;
  std::string tree = rel->tree, sha = rel->sha;
  int64_t start = now_ms();
  // A tree built before is not built again: its slug is the same.
  for (const deploy::Release* r : cluster.releases(app_id)) {
    if (r->number == n || r->tree != tree || r->status != "ready" || r->artifact.empty() || r->artifact_collected ||
        !artifacts.has(r->artifact))
      continue;
    int64_t from = r->reused_from ? r->reused_from : r->number;
    std::string digest = r->artifact, image = r->image;
    std::optional<ContainerSpec> container = r->spec.container;
    int64_t size = r->artifact_size;
    (void)update(app_id, n, [&](deploy::Release& x) {
      x.artifact = digest;
      x.artifact_size = size;
      x.reused_from = from;
      if (!image.empty()) {  // the image built for that release
        x.image = image;
        x.spec.container = container;
      }
      x.status = "testing";
      x.step = "test";
    });
    say(app_id, n, fmt::format("Tree {} was built for release {}: reusing {} {} (no build)", short_id(tree, 8), from,
                               image.empty() ? "slug" : "image", short_id(image.empty() ? digest : image, 19)));
    co_return true;
  }

  (void)update(app_id, n, [](deploy::Release& x) { x.step = "build"; });
  say(app_id, n, fmt::format("Exporting {} (tree {})", short_id(sha, 8), short_id(tree, 8)));
  fs::path tmp = fs::path(opts.data_dir) / "tmp" / fmt::format("{}-{}", app_name(app_id), n);
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp / "tree", ec);
  std::string tree_dir = (tmp / "tree").string();
  auto exported = co_await git.export_tree(app_id, sha, tree_dir);
  if (!exported) {
    fail_release(app_id, n, "build", "cannot export the commit: " + exported.error().message);
    co_return false;
  }
  std::string tmp_dir = tmp.string();
  // (A named lambda: g++ 12 destroys temporaries inside co_await twice.)
  auto pack = [this, tmp_dir]() -> Result<artifact::Slug> {
    auto s = artifact::make_slug(tmp_dir + "/tree", tmp_dir);
    if (!s) return s;
    if (auto stored = artifacts.put_file(s->path, s->digest); !stored) return fail(stored.error());
    return s;
  };
  auto packed = co_await net::offload(std::move(pack));
  fs::remove_all(tmp, ec);
  if (!packed) {
    fail_release(app_id, n, "build", "cannot pack the source: " + packed.error().message);
    co_return false;
  }

  std::string digest = packed->digest, image;
  int64_t size = static_cast<int64_t>(packed->size);
  // A Dockerfile build runs on an agent with Docker and makes the image
  // stele/<app name>:r<n>, saved into the artifact store (docs/pipeline.md).
  std::optional<ContainerSpec> container;
  if (repo.dockerfile) {
    container = rel->spec.container.value_or(ContainerSpec{});
    container->image = fmt::format("stele/{}:r{}", app_name(app_id), n);
  }
  if (repo.build) {
    const StepSpec& b = *repo.build;
    double cpus = b.cpus.value_or(opts.build_cpus), mem = b.mem.value_or(opts.build_mem);
    int64_t timeout = b.timeout_seconds.value_or(opts.build_timeout_s);
    say(app_id, n, fmt::format("Building: {} (cpus {}, mem {} MB, timeout {} s)", b.cmd, cpus, mem, timeout));
    deploy::StepRequest req;
    req.app_id = app_id;
    req.release = n;
    req.kind = "build";
    req.spec = step_spec(rel->effective_spec(), b.cmd, cpus, mem);
    req.spec.env["SOURCE_VERSION"] = sha;
    req.step = {{"kind", "build"}, {"cmd", b.cmd}, {"timeoutSeconds", timeout}, {"source", digest}};
    if (container) {
      req.spec.container = container;  // placed where Docker runs
      req.step["dockerfile"] = *repo.dockerfile;
      req.step["tag"] = container->image;
    } else {
      req.step["cacheKey"] = app_name(app_id);
    }
    // The agent that built the app last keeps its build cache: prefer it.
    auto rels = cluster.releases(app_id);
    for (auto it = rels.rbegin(); it != rels.rend() && req.prefer_agent.empty(); ++it) req.prefer_agent = (*it)->built_on;
    auto end = co_await run_step(app_id, n, req, timeout);
    (void)artifacts.remove(digest);  // the source is not kept past its build
    if (!end) {
      fail_release(app_id, n, "build", end.error().message, now_ms() - start);
      co_return false;
    }
    std::string agent = end->value("agentId", "");
    (void)update(app_id, n, [&](deploy::Release& x) { x.built_on = agent; });
    if (std::string why = step_failure(*end); !why.empty()) {
      fail_release(app_id, n, "build", why, now_ms() - start);
      co_return false;
    }
    digest = end->value("artifact", "");
    size = end->value("artifactSize", int64_t(0));
    image = end->value("image", "");
    const char* what = container ? "image" : "slug";
    if (digest.empty() || !artifacts.has(digest) || (container && image.empty())) {
      fail_release(app_id, n, "build", fmt::format("the build finished but its {} never reached the server", what),
                   now_ms() - start);
      co_return false;
    }
    if (container)
      say(app_id, n, fmt::format("Built image {} {} (saved: {}, {}) in {}", container->image, short_id(image, 19),
                                 short_id(digest, 12), human_size(size), seconds(now_ms() - start)));
    else
      say(app_id, n, fmt::format("Built slug {} ({}) in {}", short_id(digest, 12), human_size(size),
                                 seconds(now_ms() - start)));
  } else {
    say(app_id, n, fmt::format("No build step: the checkout is the slug {} ({})", short_id(digest, 12), human_size(size)));
  }
  int64_t took = now_ms() - start;
  (void)update(app_id, n, [&](deploy::Release& x) {
    x.artifact = digest;
    x.artifact_size = size;
    if (container) {
      x.image = image;
      x.spec.container = container;
    }
    x.durations["build"] = took;
    x.status = "testing";
    x.step = "test";
  });
  co_return true;
}

net::awaitable<bool> Pipeline::Impl::test(const std::string& app_id, int64_t n, const RepoSpec& repo) {
  if (!repo.test) co_return true;
  const deploy::Release* rel = cluster.release(app_id, n);
  if (!rel) co_return false;
  int64_t start = now_ms();
  say(app_id, n, "Testing: " + repo.test->cmd);
  deploy::StepRequest req;
  req.app_id = app_id;
  req.release = n;
  req.kind = "test";
  req.spec = step_spec(rel->effective_spec(), repo.test->cmd, opts.build_cpus, opts.build_mem);
  req.step = {{"kind", "test"}, {"cmd", repo.test->cmd}, {"timeoutSeconds", opts.test_timeout_s}};
  req.artifact = rel->artifact;
  req.image = rel->image;
  auto end = co_await run_step(app_id, n, req, opts.test_timeout_s);
  int64_t took = now_ms() - start;
  std::string why = end ? step_failure(*end) : end.error().message;
  if (!why.empty()) {
    fail_release(app_id, n, "test", why, took);
    co_return false;
  }
  (void)update(app_id, n, [&](deploy::Release& x) {
    x.durations["test"] = took;
    x.step = "smoke";
  });
  say(app_id, n, "Tests passed in " + seconds(took));
  co_return true;
}

net::awaitable<bool> Pipeline::Impl::smoke(const std::string& app_id, int64_t n) {
  const deploy::Release* rel = cluster.release(app_id, n);
  if (!rel) co_return false;
  int64_t start = now_ms();
  (void)update(app_id, n, [](deploy::Release& x) { x.step = "smoke"; });
  AppSpec spec = rel->effective_spec();
  double grace = 0;
  for (const auto& h : spec.health_checks)
    grace = std::max<double>(grace, h.grace_period_seconds + h.interval_seconds * (h.max_consecutive_failures + 1));
  int64_t deadline = start + static_cast<int64_t>((grace + opts.smoke_timeout_s) * 1000);
  say(app_id, n, spec.health_checks.empty() ? std::string("Smoke run: one instance must start and stay up")
                                            : std::string("Smoke run: one instance must pass its health checks"));
  deploy::StepRequest req;
  req.app_id = app_id;
  req.release = n;
  req.kind = "smoke";
  req.spec = spec;
  req.spec.instances = 1;
  req.artifact = rel->artifact;
  req.image = rel->image;
  auto id = cluster.start_step(req, "pipeline");
  if (!id) {
    fail_release(app_id, n, "smoke", id.error().message, now_ms() - start);
    co_return false;
  }
  auto w = watch_task(*id);
  const deploy::Task* t = cluster.task(*id);
  if (t) say(app_id, n, fmt::format("smoke task {} on {}:{}", *id, t->host, t->ports.empty() ? 0 : t->ports[0]));
  bool checks = !spec.health_checks.empty();
  int64_t up_since = 0;
  auto up = [&](const Watch& x) {
    if (checks) return x.healthy;
    if (!x.running) return false;
    if (!up_since) up_since = now_ms();
    return now_ms() - up_since >= 2000;  // no checks: alive for 2 s
  };
  bool passed = co_await wait(w, deadline, up);
  passed = passed && !w->end;
  std::string why;
  if (!passed) {
    if (w->end) {
      why = w->end->value("reason", "");
      if (why.empty() || why == "exited") why = step_failure(*w->end);
      why = "the instance ended before it was healthy: " + why;
    } else {
      why = fmt::format("not healthy within {}", seconds(deadline - start));
    }
  }
  if (!w->end) (void)cluster.kill_tasks({*id}, false, "pipeline");
  task_watches.erase(*id);
  int64_t took = now_ms() - start;
  if (!passed) {
    fail_release(app_id, n, "smoke", why, took);
    co_return false;
  }
  (void)update(app_id, n, [&](deploy::Release& x) { x.durations["smoke"] = took; });
  say(app_id, n, "Smoke run healthy in " + seconds(took));
  co_return true;
}

net::awaitable<bool> Pipeline::Impl::release_step(const std::string& app_id, int64_t n, const RepoSpec& repo) {
  if (!repo.release) co_return true;
  const deploy::Release* rel = cluster.release(app_id, n);
  if (!rel) co_return false;
  int64_t start = now_ms();
  (void)update(app_id, n, [](deploy::Release& x) { x.step = "release"; });
  say(app_id, n, "Release step: " + repo.release->cmd);
  AppSpec app = rel->effective_spec();
  deploy::StepRequest req;
  req.app_id = app_id;
  req.release = n;
  req.kind = "release";
  req.spec = step_spec(app, repo.release->cmd, app.cpus, app.mem);
  req.step = {{"kind", "release"}, {"cmd", repo.release->cmd}, {"timeoutSeconds", opts.release_timeout_s}};
  req.artifact = rel->artifact;
  req.image = rel->image;
  auto end = co_await run_step(app_id, n, req, opts.release_timeout_s);
  int64_t took = now_ms() - start;
  std::string why = end ? step_failure(*end) : end.error().message;
  if (!why.empty()) {
    fail_release(app_id, n, "release", why + " (the deploy does not start)", took);
    co_return false;
  }
  (void)update(app_id, n, [&](deploy::Release& x) { x.durations["release"] = took; });
  co_return true;
}

net::awaitable<void> Pipeline::Impl::deploy(const std::string& app_id, int64_t n) {
  int64_t start = now_ms();
  if (const deploy::Deployment* d = cluster.active_deployment(app_id))
    say(app_id, n, fmt::format("Superseding the running deployment {} (release {} → {})", short_id(d->id, 8),
                               d->from_release, d->to_release));
  auto res = cluster.deploy_release(app_id, n, true, "pipeline");
  if (!res) {
    say(app_id, n, "cannot deploy: " + res.error().message);
    co_return;
  }
  if (res->deployment_id.empty()) {
    say(app_id, n, "Nothing to deploy: the app already runs this release");
    co_return;
  }
  const deploy::App* app = cluster.app(app_id);
  say(app_id, n, fmt::format("Deploying release {} to {} instance(s) (deployment {})", n, app ? app->instances : 0,
                             short_id(res->deployment_id, 8)));
  auto w = std::make_shared<Watch>(io.get_executor());
  deployment_watches[res->deployment_id] = w;
  std::string last_step;
  while (!w->end) {
    co_await w->signal.wait(1s);
    for (const Json& e : w->events) {
      std::string step = e.contains("deployment") ? e["deployment"].value("step", "") : "";
      if (!step.empty() && step != last_step && !w->end) append_lines(app_id, n, "       " + step);
      last_step = step;
    }
    w->events.clear();
  }
  deployment_watches.erase(res->deployment_id);
  std::string type = w->end->value("type", "");
  const Json& d = (*w->end)["deployment"];
  if (type == "deployment_succeeded") {
    std::vector<std::string> where;
    for (const deploy::Task* t : cluster.tasks(app_id))
      if (t->kind.empty() && t->release == n && !t->ports.empty())
        where.push_back(fmt::format("http://{}:{}", t->host.empty() ? "127.0.0.1" : t->host, t->ports[0]));
    std::sort(where.begin(), where.end());
    say(app_id, n, fmt::format("Deployed release {} in {}; serving at {}", n, seconds(now_ms() - start),
                               where.empty() ? std::string("(no instances: scale is 0)") : fmt::format("{}", fmt::join(where, " "))));
  } else if (type == "deployment_canceled") {
    say(app_id, n, fmt::format("Deployment of release {} was superseded: {}", n, d.value("reason", "")));
  } else {
    const deploy::App* a = cluster.app(app_id);
    say(app_id, n, fmt::format("Deploy of release {} failed: {}; the app is back on release {}", n,
                               d.value("reason", ""), a ? a->current_release : 0));
  }
}

// The raw output files of a release's step tasks (its log keeps the text).
void Pipeline::Impl::remove_step_outputs(const std::string& app_id, int64_t n) {
  std::string prefix = fmt::format("{}-r{}.", app_name(app_id), n);
  std::error_code ec;
  for (auto& e : fs::directory_iterator(fs::path(opts.data_dir) / "steps", ec))
    if (e.path().filename().string().rfind(prefix, 0) == 0) fs::remove(e.path(), ec);
}

// Retention: the slugs of the newest `retain_releases` ready releases stay,
// and always those of the running, previous and deploying releases.
void Pipeline::Impl::collect(const std::string& app_id) {
  const deploy::App* app = cluster.app(app_id);
  if (!app) return;
  std::set<int64_t> keep = {app->current_release, app->previous_release};
  for (const deploy::Deployment* d : cluster.deployments(true))
    if (d->app_id == app_id) keep.insert({d->from_release, d->to_release});
  auto rels = cluster.releases(app_id);
  int ready = 0;
  for (auto it = rels.rbegin(); it != rels.rend(); ++it) {
    const deploy::Release* r = *it;
    if (r->status != "ready" && r->status != "failed") keep.insert(r->number);  // still in its pipeline
    if (r->status == "ready" && ready++ < opts.retain_releases) keep.insert(r->number);
  }
  std::set<std::string> kept_digests;
  for (const deploy::Release* r : rels)
    if (keep.count(r->number)) kept_digests.insert(r->artifact);
  std::vector<std::pair<int64_t, std::string>> drop;
  for (const deploy::Release* r : rels)
    if (!keep.count(r->number) && !r->artifact.empty() && !r->artifact_collected) drop.emplace_back(r->number, r->artifact);
  for (auto& [number, digest] : drop) {
    (void)cluster.mark_artifact_collected(app_id, number);
    remove_step_outputs(app_id, number);
    if (!kept_digests.count(digest) && artifacts.has(digest)) {
      (void)artifacts.remove(digest);
      spdlog::info("{}: retention removed slug {} of release {}", app_id, short_id(digest, 12), number);
    }
  }
}

// ---- Pipeline

Pipeline::Pipeline(asio::io_context& io, deploy::Cluster& cluster, GitRepos& git, artifact::ArtifactStore& artifacts,
                   PipelineOptions opts)
    : impl_(std::make_unique<Impl>(io, cluster, git, artifacts, std::move(opts))) {}

Pipeline::~Pipeline() = default;

void Pipeline::recover() {
  std::error_code ec;
  fs::remove_all(fs::path(impl_->opts.data_dir) / "tmp", ec);  // exports of pipelines that died with the server
  for (const deploy::App* app : impl_->cluster.apps())
    for (const deploy::Release* r : impl_->cluster.releases(app->id))
      if (r->status == "building" || r->status == "testing")
        impl_->fail_release(app->id, r->number, r->step.empty() ? "build" : r->step,
                            "the server restarted while the pipeline ran; push again");
}

net::awaitable<Result<ReceiveResult>> Pipeline::receive(const std::string& app_id, const std::vector<RefUpdate>& updates,
                                                        const std::string& cause, const std::string& actor) {
  Impl& s = *impl_;
  int64_t received = now_ms();
  if (!s.cluster.app(app_id)) co_return fail(Error{"App '" + app_id + "' does not exist", {}, 404});
  ReceiveResult out;
  std::vector<std::string> skipped;
  for (const RefUpdate& u : updates) {
    if (u.after.empty() || u.after.find_first_not_of('0') == std::string::npos) {
      skipped.push_back(u.ref + " deleted");
      continue;
    }
    auto text = co_await s.git.read_file(app_id, u.after, "stele.json");
    if (!text) co_return fail(text.error());
    Result<RepoSpec> repo = fail(Error{"stele.json not found at the repository root", {{"/", {"missing"}}}, 422});
    if (*text) repo = parse_stele_json(**text, app_id);
    if (repo && !repo->build) {  // no build step: a Dockerfile at the root is built through Docker
      auto dockerfile = co_await s.git.read_file(app_id, u.after, "Dockerfile");
      if (dockerfile && *dockerfile) {
        repo->dockerfile = "Dockerfile";
        repo->build = StepSpec{dockerfile_build_cmd("Dockerfile")};
      }
    }
    std::string branch = repo ? repo->branch : std::string("main");
    if (u.ref != "refs/heads/" + branch && !(updates.size() == 1 && !repo)) {
      skipped.push_back(fmt::format("{} is not the deploy branch ({}): not built", u.ref, branch));
      continue;
    }
    deploy::Release rel;
    rel.app_id = app_id;
    rel.sha = u.after;
    rel.ref = u.ref;
    rel.cause = cause;
    rel.status = "building";
    rel.step = "receive";
    auto tree = co_await s.git.tree_of(app_id, u.after);
    if (tree) rel.tree = *tree;
    if (repo) {
      rel.spec = repo->app;
    } else if (const deploy::Release* cur = s.cluster.current_release(app_id)) {
      rel.spec = cur->spec;
    } else {
      rel.spec.id = app_id;
    }
    auto n = s.cluster.add_release(rel, actor);
    if (!n) co_return fail(n.error());
    out.release = *n;
    s.append_lines(app_id, *n, fmt::format("-----> {} release {}: {} {} ({})", app_id, *n, u.ref,
                                           short_id(u.after, 8), cause));
    if (!repo) {
      std::string why = repo.error().message;
      for (const auto& d : repo.error().details)
        for (const auto& e : d.errors) why += fmt::format("\n       {}: {}", d.path, e);
      s.fail_release(app_id, *n, "receive", why);
      break;
    }
    s.running.insert({app_id, *n});
    asio::co_spawn(s.io, s.run(app_id, *n, *repo, received), asio::detached);
    break;
  }
  for (auto& m : skipped) out.message += (out.message.empty() ? "" : "; ") + m;
  co_return out;
}

void Pipeline::on_event(const Json& e) {
  Impl& s = *impl_;
  std::string type = e.value("type", "");
  if (type == "task_status" || type == "health_changed") {
    std::string id = e.value("task", "");
    std::string state = e.value("state", "");
    bool terminal = state == "finished" || state == "failed" || state == "killed" || state == "lost";
    if (type == "task_status" && terminal && e.contains("kind")) s.remember_end(id, e);
    auto it = s.task_watches.find(id);
    if (it == s.task_watches.end()) return;
    Watch& w = *it->second;
    if (type == "health_changed") w.healthy = e.value("alive", false);
    else if (terminal) w.end = e;
    else if (state == "running") w.running = true;
    w.signal.notify();
    return;
  }
  if (type.rfind("deployment_", 0) == 0 && e.contains("deployment")) {
    auto it = s.deployment_watches.find(e["deployment"].value("id", ""));
    if (it == s.deployment_watches.end()) return;
    Watch& w = *it->second;
    w.events.push_back(e);
    if (type == "deployment_succeeded" || type == "deployment_failed" || type == "deployment_canceled") w.end = e;
    w.signal.notify();
  }
}

bool Pipeline::finished(const std::string& app_id, int64_t n) const {
  return !impl_->running.count({app_id, n}) && impl_->appends_pending == 0;
}

net::AsyncSignal& Pipeline::changed() { return impl_->changed; }

Result<std::string> Pipeline::start_run(const std::string& app_id, std::optional<int64_t> n, const std::string& cmd,
                                        const std::string& actor) {
  Impl& s = *impl_;
  const deploy::App* app = s.cluster.app(app_id);
  if (!app) return fail(Error{"App '" + app_id + "' does not exist", {}, 404});
  if (cmd.empty()) return fail(Error{"cmd must not be empty", {{"/cmd", {"must not be empty"}}}, 422});
  const deploy::Release* rel = n ? s.cluster.release(app_id, *n) : s.cluster.current_release(app_id);
  if (!rel) return fail(Error{n ? "app " + app_id + " has no release " + std::to_string(*n) : "app " + app_id + " has no release yet: push first", {}, 404});
  if (rel->status != "ready") return fail(Error{"release " + std::to_string(rel->number) + " is " + rel->status + ", not ready", {}, 409});
  if (rel->artifact_collected) return fail(Error{"release " + std::to_string(rel->number) + " was collected by retention", {}, 410});
  AppSpec app_spec = rel->effective_spec();
  deploy::StepRequest req;
  req.app_id = app_id;
  req.release = rel->number;
  req.kind = "run";
  req.spec = Impl::step_spec(app_spec, cmd, app_spec.cpus, std::max(app_spec.mem, 128.0));
  req.step = {{"kind", "run"}, {"cmd", cmd}, {"timeoutSeconds", s.opts.run_timeout_s}};
  req.artifact = rel->artifact;
  req.image = rel->image;
  return s.cluster.start_step(req, actor);
}

std::optional<Json> Pipeline::task_end(const std::string& task_id) const {
  auto it = impl_->ended.find(task_id);
  if (it == impl_->ended.end()) return std::nullopt;
  return it->second;
}

}  // namespace stele::pipeline
