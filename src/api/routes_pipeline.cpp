// Pipeline routes: the post-receive hook's stream, push webhooks, release
// logs, config, one-off runs and step output from agents (docs/pipeline.md).
#include <spdlog/spdlog.h>


#include "api/api_impl.h"
#include "common/names.h"
#include "net/offload.h"
#include "pipeline/pipeline.h"

namespace stele::api {

using net::HttpRequest;
using net::HttpResponse;

namespace {

HttpResponse no_pipeline() {
  return HttpResponse::json(503, {{"message", "this server runs no pipeline (no artifact store configured)"}});
}

std::string ndjson(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n"; }

// Pages through log records matching `q` (seq order from q.after), keeping
// those `keep` accepts and writing them with `emit`, until `done()` held
// before a read that found nothing more. Without `done` it stops once caught
// up. Store reads run on the worker pool; waiting polls the store (records
// from agents arrive through the forward input) and the pipeline's signal.
using RecordWriter = std::function<net::awaitable<bool>(const logs::LogResult&)>;
net::awaitable<void> follow_records(ApiServer::Impl& s, logs::LogQuery q, std::function<bool(const Json&)> keep,
                                    RecordWriter emit, std::function<bool()> done) {
  logs::LogStore* store = s.opts.logs;
  if (!store) co_return;
  q.after = q.after.value_or(0);
  q.limit = 2000;
  for (;;) {
    bool was_done = !done || done();  // before reading: what was stored before the end is sent
    auto job = [store, q] { return store->query(q); };
    auto page = co_await net::offload(std::move(job));
    if (!page) {
      spdlog::warn("release log: {}", page.error().message);
      co_return;
    }
    for (const auto& r : *page) {
      q.after = r.seq;
      if (keep && !keep(r.record)) continue;
      if (!co_await emit(r)) co_return;
    }
    if (page->size() == q.limit) continue;
    if (was_done) co_return;
    if (s.pipeline) co_await s.pipeline->changed().wait(std::chrono::milliseconds(100));
  }
}

// The records of release n's log: pipeline lines and its steps' output.
logs::LogQuery release_log_query(ApiServer::Impl& s, const std::string& app_id, int64_t n) {
  logs::LogQuery q;
  q.app = app_id;
  q.tag = log_tag(app_id, "pipeline");
  if (const deploy::Release* rel = s.cluster.release(app_id, n); rel && rel->created_ms > 0)
    q.since_ns = (rel->created_ms - 60'000) * 1'000'000;  // nothing of it is older (clock steps aside)
  return q;
}

std::function<bool(const Json&)> of_release(int64_t n) {
  return [n](const Json& rec) { return rec.is_object() && rec.value("release", int64_t(-1)) == n; };
}

// Writes a release's log as it grows until its pipeline (and deployment)
// ends, then the outcome line the push terminal ends with.
net::awaitable<void> write_release_log(ApiServer::Impl& s, net::StreamWriter& w, std::string app_id, int64_t n) {
  pipeline::Pipeline& p = *s.pipeline;
  std::function<bool()> done = [&p, app_id, n] { return p.finished(app_id, n); };
  RecordWriter emit = [&w](const logs::LogResult& r) -> net::awaitable<bool> {
    std::string line = r.record.value("log", "") + "\n";
    co_return co_await w.write(std::move(line));
  };
  logs::LogQuery q = release_log_query(s, app_id, n);
  std::function<bool(const Json&)> keep = of_release(n);
  co_await follow_records(s, q, keep, emit, done);
  const deploy::Release* rel = s.cluster.release(app_id, n);
  std::string tail = "=====> release " + std::to_string(n) + " " + (rel ? rel->status : std::string("gone")) + "\n";
  co_await w.write(std::move(tail));
}

// Text answer that follows a release's log until its pipeline ends.
HttpResponse follow_release(ApiServer::Impl& s, const std::string& app_id, int64_t n) {
  HttpResponse r;
  r.status = 200;
  r.content_type = "text/plain; charset=utf-8";
  r.stream = [&s, app_id, n](net::StreamWriter& w) -> net::awaitable<void> {
    co_await write_release_log(s, w, app_id, n);
  };
  return r;
}

HttpResponse receive_hook(ApiServer::Impl& s, const HttpRequest& req) {
  auto body = body_json(req);
  if (!body) return HttpResponse::error(body.error(), 400);
  std::string app_id = canonical_app_id(body->value("app", ""));
  std::vector<pipeline::RefUpdate> updates;
  if (body->contains("updates") && (*body)["updates"].is_array())
    for (const auto& u : (*body)["updates"])
      if (u.is_object())
        updates.push_back({u.value("before", ""), u.value("after", ""), u.value("ref", "")});
  if (updates.empty())
    return HttpResponse::error(Error{"updates must list the pushed refs", {{"/updates", {"expected [{before, after, ref}]"}}}, 422});
  HttpResponse r;
  r.status = 200;
  r.content_type = "text/plain; charset=utf-8";
  std::string actor = s.actor(req);
  // The server's own hook (bootstrap token) names the pusher it was started for.
  if (actor == "token:bootstrap" && body->contains("actor") && (*body)["actor"].is_string())
    actor = (*body)["actor"].get<std::string>();
  r.stream = [&s, app_id, updates, actor](net::StreamWriter& w) -> net::awaitable<void> {
    auto res = co_await s.pipeline->receive(app_id, updates, "push", actor);
    if (!res) {
      std::string msg = "!!!!!> " + res.error().message + "\n";
      co_await w.write(std::move(msg));
      co_return;
    }
    if (!res->message.empty()) {
      std::string msg = "-----> " + res->message + "\n";
      if (!co_await w.write(std::move(msg))) co_return;
    }
    if (res->release == 0) co_return;
    s.kick();
    co_await write_release_log(s, w, app_id, res->release);
  };
  return r;
}

// GitHub/Gitea push payload -> fetch into the app's repo -> the same pipeline.
net::awaitable<HttpResponse> webhook(ApiServer::Impl& s, HttpRequest& req) {
  if (!s.opts.webhook_secret.empty()) {
    if (!pipeline::valid_hub_signature(s.opts.webhook_secret, req.body, req.header("x-hub-signature-256")))
      co_return HttpResponse::json(401, {{"message", "X-Hub-Signature-256 is missing or does not match the webhook secret"}});
  } else if (auto denied = s.check_auth(req, Role::deployer, true)) {
    co_return *denied;  // no secret configured: the API token (or loopback) guards it
  }
  auto body = body_json(req);
  if (!body) co_return HttpResponse::error(body.error(), 400);
  if (req.header("x-github-event") == "ping" || req.header("x-gitea-event") == "ping")
    co_return HttpResponse::json(200, {{"message", "pong"}});
  std::string url, ref = body->value("ref", ""), after = body->value("after", ""), name;
  if (body->contains("repository") && (*body)["repository"].is_object()) {
    url = (*body)["repository"].value("clone_url", "");
    name = (*body)["repository"].value("name", "");
  }
  Error bad{"push payload is not valid", {}, 422};
  if (url.empty()) bad.details.push_back({"/repository/clone_url", {"required"}});
  if (ref.rfind("refs/", 0) != 0) bad.details.push_back({"/ref", {"expected refs/heads/<branch>"}});
  if (after.size() != 40) bad.details.push_back({"/after", {"expected a 40-hex commit id"}});
  if (!bad.details.empty()) co_return HttpResponse::error(bad);
  std::string app_id = req.query_param("app");
  if (app_id.empty()) {
    for (const auto* a : s.cluster.apps())
      if (app_name(a->id) == name) app_id = a->id;
  } else {
    app_id = canonical_app_id(app_id);
  }
  if (app_id.empty() || !s.cluster.app(app_id))
    co_return HttpResponse::json(404, {{"message", "no app for repository '" + name + "' (name an app with ?app=ID)"}});
  auto fetched = co_await s.git->fetch(app_id, url, ref);
  if (!fetched) co_return HttpResponse::json(502, {{"message", "cannot fetch " + ref + " from " + url + ": " + fetched.error().message}});
  std::vector<pipeline::RefUpdate> updates = {{"", *fetched, ref}};
  auto res = co_await s.pipeline->receive(app_id, updates, "webhook", s.actor(req));
  if (!res) co_return HttpResponse::error(res.error());
  s.kick();
  co_return HttpResponse::json(202, {{"app", app_id}, {"release", res->release}, {"message", res->message}});
}

HttpResponse run_app(ApiServer::Impl& s, const HttpRequest& req, const std::string& app_id) {
  auto body = body_json(req);
  if (!body) return HttpResponse::error(body.error(), 400);
  std::string cmd = body->value("cmd", "");
  std::optional<int64_t> n;
  if (body->contains("release") && (*body)["release"].is_number_integer()) n = (*body)["release"].get<int64_t>();
  auto id = s.pipeline->start_run(app_id, n, cmd, s.actor(req));
  if (!id) return HttpResponse::error(id.error());
  s.kick();
  HttpResponse r;
  r.status = 200;
  r.content_type = "application/x-ndjson";
  std::string task = *id;
  r.stream = [&s, task, app_id](net::StreamWriter& w) -> net::awaitable<void> {
    pipeline::Pipeline& p = *s.pipeline;
    Json started = {{"type", "started"}, {"task", task}};
    std::string first = ndjson(started);
    if (!co_await w.write(std::move(first))) co_return;
    std::function<bool()> done = [&p, task] { return p.task_end(task).has_value(); };
    RecordWriter emit = [&w](const logs::LogResult& r) -> net::awaitable<bool> {
      Json line = {{"type", "output"}, {"data", r.record.value("log", "") + "\n"}};
      std::string text = ndjson(line);
      co_return co_await w.write(std::move(text));
    };
    logs::LogQuery q;
    q.task = task;
    q.tag = log_tag(app_id, "pipeline");
    std::function<bool(const Json&)> keep_all;
    co_await follow_records(s, q, keep_all, emit, done);
    auto end = p.task_end(task);
    int code = end ? end->value("exitCode", end->value("state", "") == "finished" ? 0 : 1) : 1;
    std::string reason = end ? end->value("reason", "") : "the task's end was not seen";
    if (reason == "exited") reason.clear();
    Json last = {{"type", "exit"}, {"code", code}, {"reason", reason}};
    std::string text = ndjson(last);
    co_await w.write(std::move(text));
  };
  return r;
}

Json masked(const std::map<std::string, std::string>& config, bool reveal) {
  Json out = Json::object();
  for (const auto& [k, v] : config) out[k] = reveal ? v : std::string("****");
  return out;
}

}  // namespace

HttpResponse release_log(ApiServer::Impl& s, const HttpRequest& req, const std::string& app_id, int64_t n) {
  if (!s.pipeline) return no_pipeline();
  if (!s.cluster.release(app_id, n))
    return HttpResponse::json(404, {{"message", "app " + app_id + " has no release " + std::to_string(n)}});
  if (req.query_flag("follow")) return follow_release(s, app_id, n);
  HttpResponse r;
  r.status = 200;
  r.content_type = "text/plain; charset=utf-8";
  r.stream = [&s, app_id, n](net::StreamWriter& w) -> net::awaitable<void> {
    RecordWriter emit = [&w](const logs::LogResult& rec) -> net::awaitable<bool> {
      std::string line = rec.record.value("log", "") + "\n";
      co_return co_await w.write(std::move(line));
    };
    logs::LogQuery q = release_log_query(s, app_id, n);
    std::function<bool(const Json&)> keep = of_release(n);
    std::function<bool()> until_caught_up;
    co_await follow_records(s, q, keep, emit, until_caught_up);
  };
  return r;
}

HttpResponse app_config(ApiServer::Impl& s, const HttpRequest& req, const std::string& app_id) {
  const deploy::App* app = s.cluster.app(app_id);
  if (!app) return HttpResponse::json(404, {{"message", "App '" + app_id + "' does not exist"}});
  bool reveal = req.query_flag("reveal");
  if (reveal)
    if (auto denied = s.check_auth(req, Role::deployer, true)) return *denied;  // the values are secrets
  return HttpResponse::json(200, {{"config", masked(app->config, reveal)}});
}

HttpResponse patch_config(ApiServer::Impl& s, const HttpRequest& req, const std::string& app_id) {
  auto body = body_json(req);
  if (!body) return HttpResponse::error(body.error(), 400);
  if (!body->is_object())
    return HttpResponse::error(Error{"config patch must be an object {\"KEY\": \"value\" | null}", {{"/", {"expected an object"}}}, 422});
  std::map<std::string, std::optional<std::string>> changes;
  Error bad{"config patch is not valid", {}, 422};
  for (auto& [k, v] : body->items()) {
    if (v.is_null()) changes[k] = std::nullopt;
    else if (v.is_string()) changes[k] = v.get<std::string>();
    else bad.details.push_back({"/" + k, {"expected a string or null"}});
  }
  if (!bad.details.empty()) return HttpResponse::error(bad);
  return change_answer(s.cluster.set_config(app_id, changes, s.actor(req)));
}

HttpResponse post_run(ApiServer::Impl& s, const HttpRequest& req, const std::string& app_id) {
  if (!s.pipeline) return no_pipeline();
  return run_app(s, req, app_id);
}

void add_pipeline_routes(net::Router& r, ApiServer::Impl& s) {
  r.add("POST", "/api/v1/hooks/receive", sync_handler(s, [&s](HttpRequest& req) {
    if (!s.pipeline) return no_pipeline();
    return receive_hook(s, req);
  }, true));
  r.add("POST", "/api/v1/hooks/git", [&s](HttpRequest& req) -> net::awaitable<HttpResponse> {
    if (!s.pipeline) co_return no_pipeline();
    co_return co_await webhook(s, req);
  });
}

}  // namespace stele::api
