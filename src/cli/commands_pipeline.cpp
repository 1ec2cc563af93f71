// Verbs of the git pipeline (docs/pipeline.md "CLI"): create (an app to push
// to), pipeline (a release's build/test/smoke/deploy log, followed), run (a
// one-off command in a release's slug, its output streamed).
#include <chrono>
#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "cli/fields.h"
#include "cli/run_stream.h"
#include "common/names.h"

namespace stele::cli {

namespace {

using namespace std::chrono_literals;

// A step may print nothing for a long time (a quiet build): the stream is
// reopened after this much silence rather than given up.
constexpr auto kLogIdleTimeout = 1h;
// A release log that ends while the release is still running (a dropped
// connection) is reopened this many times in a row without new bytes.
constexpr int kMaxLogReconnects = 30;
constexpr size_t kErrorBodyLimit = 64 * 1024;

void write_out(std::string_view data) {
  std::cout.write(data.data(), static_cast<std::streamsize>(data.size()));
  std::cout.flush();
}

// ---- create

// The app's git remote: the server's answer ("git", top level or in "app"),
// else <api>/git/<app name>.git.
std::string git_remote(const ApiClient& api, const Json& answer, const std::string& id) {
  if (auto g = field_str(answer, "git"); !g.empty()) return g;
  if (auto g = field_str(field(answer, "app"), "git"); !g.empty()) return g;
  return api.url("/git/" + app_name(id) + ".git");
}

int run_create(const ApiClient& api, const std::string& name, int instances) {
  std::string id = canonical_app_id(name);
  Json body = {{"id", id}};
  if (instances >= 0) body["instances"] = instances;
  auto r = api.send("POST", "/api/v1/apps", body);
  if (!r) return report(r.error());
  std::string git = git_remote(api, *r, id);
  if (api.options().json) {
    Json out = *r;
    if (out.is_object() && !out.contains("git")) out["git"] = git;
    print_json(out);
    return 0;
  }
  print_line("Created " + id + " (no release yet). Add its git remote and push to build and deploy it:");
  print_line("  git remote add stele " + git);
  print_line("  git push stele main");
  return 0;
}

void add_create(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags) {
  struct Args {
    std::string name;
    int instances = -1;
  };
  auto a = std::make_shared<Args>();
  auto& c = add_verb(root, flags, "create",
                     {"Create an app to deploy with git push, and print its git remote",
                      "The app has no release until the first push: the push's stele.json (app spec plus\n"
                      "build and test commands) is built, tested, smoke-tested and deployed, and the push\n"
                      "shows each step. NAME is an app id (\"hello\" is /hello).",
                      "  stele create hello\n  git remote add stele http://127.0.0.1:7070/git/hello.git\n"
                      "  git push stele main"});
  c.add_option("NAME", a->name, "App id, e.g. hello or /shop/web")->required();
  c.add_option("--instances", a->instances, "Instances of the first deploy (default: stele.json's \"instances\")")
      ->check(CLI::NonNegativeNumber);
  c.set_runner([a](const ApiClient& api) { return run_create(api, a->name, a->instances); });
}

// ---- pipeline

std::string releases_path(const std::string& id) { return app_path(id) + "/releases"; }
std::string release_path(const std::string& id, int64_t n) { return releases_path(id) + "/" + std::to_string(n); }

Result<int64_t> latest_release(const ApiClient& api, const std::string& id) {
  auto r = api.get(releases_path(id));
  if (!r) return fail(r.error());
  int64_t latest = 0;
  for (const auto& rel : array_or_empty(field(*r, "releases"))) latest = std::max(latest, field_int(rel, "number"));
  if (latest == 0) return fail("no releases of " + id + " yet: push to its git remote (see `stele create`)");
  return latest;
}

// A release record; the answer may wrap it as {"release": {...}}.
Result<Json> get_release(const ApiClient& api, const std::string& id, int64_t n) {
  auto r = api.get(release_path(id, n));
  if (!r) return r;
  if (field(*r, "release").is_object()) return Json(field(*r, "release"));
  return r;
}

bool final_status(const std::string& s) { return s == "ready" || s == "failed"; }

// One follow of the log: prints what lies past `printed` bytes.
struct LogFollow {
  Result<int> status = 0;
  std::string held;  // a body that may be an error answer, printed only on 2xx
  bool grew = false;
};

LogFollow follow_log_once(const ApiClient& api, const std::string& path, size_t& printed, bool print) {
  LogFollow f;
  size_t offset = 0;  // bytes of this answer seen so far
  bool hold = false;
  auto emit = [&](std::string_view data) {
    size_t skip = offset < printed ? std::min(data.size(), printed - offset) : 0;
    offset += data.size();
    if (skip == data.size()) return;
    if (print) write_out(data.substr(skip));
    printed += data.size() - skip;
    f.grew = true;
  };
  f.status = api.stream_request("GET", path + "?follow=1", "", "text/plain", {}, [&](std::string_view data) {
    if (offset == 0 && f.held.empty() && !data.empty() && data.front() == '{') hold = true;  // JSON error?
    if (hold) {
      f.held.append(data);
      if (f.held.size() < kErrorBodyLimit) return true;
      hold = false;  // too long for an error answer: it is the log
      std::string held = std::move(f.held);
      f.held.clear();
      emit(held);
      return true;
    }
    emit(data);
    return true;
  }, kLogIdleTimeout);
  if (hold && f.status && *f.status >= 200 && *f.status < 300) {
    std::string held = std::move(f.held);
    f.held.clear();
    emit(held);
  }
  return f;
}

// Follows the log until the release is final and the server ends the
// stream; reconnects when the stream drops early. Answers the release.
Result<Json> follow_log(const ApiClient& api, const std::string& id, int64_t n, size_t printed, bool print) {
  std::string path = release_path(id, n) + "/log";
  int idle_rounds = 0;
  for (;;) {
    LogFollow f = follow_log_once(api, path, printed, print);
    bool answered = f.status && *f.status >= 200 && *f.status < 300;
    bool no_log = f.status && *f.status == 404;  // not written yet, or a release without a pipeline
    if (f.status && !answered && !no_log) return fail(api.http_error(*f.status, f.held));
    auto rel = get_release(api, id, n);
    if (!rel) return rel;
    if ((answered || no_log) && final_status(field_str(*rel, "status"))) return rel;
    idle_rounds = f.grew ? 0 : idle_rounds + 1;
    if (idle_rounds > kMaxLogReconnects)
      return fail(f.status ? "the log of release " + std::to_string(n) + " ended before the release did"
                           : f.status.error().message);
    std::this_thread::sleep_for(1s);
  }
}

// The log so far; a release without a log (made through the API) reads "".
Result<std::string> current_log(const ApiClient& api, const std::string& id, int64_t n) {
  auto text = api.get_text(release_path(id, n) + "/log");
  if (text || text.error().code != 404) return text;
  auto rel = get_release(api, id, n);  // 404 of the release itself is the error to show
  if (!rel) return fail(rel.error());
  return std::string();
}

int release_outcome(const Json& rel, int64_t n, bool json) {
  if (json) print_json(rel);
  std::string status = field_str(rel, "status");
  if (status == "ready") return 0;
  std::string step = field_str(rel, "step"), reason = field_str(rel, "reason");
  return report(Error{"release " + std::to_string(n) + " " + (status.empty() ? "ended" : status) +
                          (step.empty() ? "" : " at " + step) + (reason.empty() ? "" : ": " + reason),
                      {}, 0});
}

int run_pipeline(const ApiClient& api, const std::string& app, int64_t release, bool follow) {
  std::string id = canonical_app_id(app);
  int64_t n = release;
  if (n <= 0) {
    auto latest = latest_release(api, id);
    if (!latest) return report(latest.error());
    n = *latest;
  }
  bool json = api.options().json;
  auto text = current_log(api, id, n);
  if (!text) return report(text.error());
  if (!json) write_out(*text);
  if (!follow) {
    if (text->empty() && !json) std::cerr << "stele: release " << n << " of " << id << " has no pipeline log" << std::endl;
    if (json) {
      auto rel = get_release(api, id, n);
      if (!rel) return report(rel.error());
      print_json(*rel);
    }
    return 0;
  }
  auto rel = follow_log(api, id, n, text->size(), !json);
  if (!rel) return report(rel.error());
  return release_outcome(*rel, n, json);
}

void add_pipeline(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags) {
  struct Args {
    std::string app;
    int64_t release = 0;
    bool follow = false;
  };
  auto a = std::make_shared<Args>();
  auto& c = add_verb(root, flags, "pipeline",
                     {"Show the pipeline log of a release: receive, build, test, smoke, release, deploy",
                      "Prints the log of the newest release (or --release N): the output of each step and\n"
                      "the platform's '-----> ' status lines. --follow streams it until the pipeline and the\n"
                      "deployment it starts are over, then exits 0 if the release is ready and 1 (with the\n"
                      "failing step and reason) if it failed. --json prints the release record instead of\n"
                      "the log (after following it with --follow).",
                      "  stele pipeline hello --follow\n  stele pipeline /shop/web --release 7\n"
                      "  stele pipeline hello --follow --json | jq -r .status"});
  c.add_option("APP", a->app, "App id (e.g. hello or /shop/web)")->required();
  c.add_option("--release", a->release, "Release number (default: the newest)")->check(CLI::PositiveNumber);
  c.add_flag("-f,--follow", a->follow, "Stream the log until the release and its deployment are done");
  c.set_runner([a](const ApiClient& api) { return run_pipeline(api, a->app, a->release, a->follow); });
}

// ---- run

int run_command(const ApiClient& api, const std::string& app, int64_t release, const std::vector<std::string>& cmd) {
  std::string id = canonical_app_id(app);
  Json body = {{"cmd", command_line(cmd)}};
  if (release > 0) body["release"] = release;
  bool json = api.options().json;
  RunStreamDecoder decoder([json](std::string_view data) {
    if (json) print_json(Json{{"type", "output"}, {"data", std::string(data)}});
    else write_out(data);
  });
  auto status = api.stream_request("POST", app_path(id) + "/run", body.dump(), "application/x-ndjson", {},
                                   [&](std::string_view data) {
                                     decoder.feed(data);
                                     return true;
                                   },
                                   std::chrono::hours(24));
  decoder.finish();
  if (!status) return report(status.error());
  if (*status < 200 || *status >= 300) return report(api.http_error(*status, decoder.other()));
  if (!decoder.exited()) return report(Error{"the command's output ended without its exit status", {}, 0});
  if (json) print_json(Json{{"type", "exit"}, {"code", decoder.code()}, {"reason", decoder.reason()}});
  if (!decoder.reason().empty()) {
    std::cout.flush();
    std::cerr << "stele: " << decoder.reason() << std::endl;
  }
  return decoder.exit_status();
}

void add_run(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags) {
  struct Args {
    std::string app;
    int64_t release = 0;
    std::vector<std::string> cmd;
  };
  auto a = std::make_shared<Args>();
  auto& c = add_verb(root, flags, "run",
                     {"Run a one-off command in a fresh copy of an app's release (migrations, consoles)",
                      "The command runs with `sh -c` as the task user, in a writable copy of the release's\n"
                      "slug with the release's environment, under the app's limits; its output (stdout and\n"
                      "stderr together) streams here, and stele exits with the command's exit code.\n"
                      "One CMD argument is a shell command line as it is; several are quoted as given.\n"
                      "Put CMD after `--` so its options are not read as stele's.",
                      "  stele run hello -- python3 -m unittest\n  stele run hello -- 'ls -l | wc -l'\n"
                      "  stele run /shop/web --release 4 -- ./migrate --dry-run"});
  c.add_option("APP", a->app, "App id (e.g. hello or /shop/web)")->required();
  c.add_option("--release", a->release, "Release to run (default: the current one)")->check(CLI::PositiveNumber);
  c.add_option("CMD", a->cmd, "The command and its arguments")->required();
  c.set_runner([a](const ApiClient& api) { return run_command(api, a->app, a->release, a->cmd); });
}

}  // namespace

void add_pipeline_commands(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags) {
  add_create(root, flags);
  add_pipeline(root, flags);
  add_run(root, flags);
}

}  // namespace stele::cli
