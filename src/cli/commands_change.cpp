// Verbs that change an app and start a deployment: deploy (a spec file, or
// an existing release with --release), scale, restart, rollback. Each
// prints what it started; with --wait it follows the deployment to its end
// (commands_follow.cpp).
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/fields.h"
#include "common/names.h"
#include "common/spec.h"

namespace stele::cli {

namespace {

Result<std::string> read_text(const std::string& path) {
  std::stringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
    return ss.str();
  }
  std::ifstream in(path);
  if (!in) return fail("cannot read " + path + ": " + std::strerror(errno));
  ss << in.rdbuf();
  return ss.str();
}

std::string release_suffix(const Json& answer) {
  std::string r = field_str(answer, "release");
  return r.empty() ? "" : " release " + r;
}

int run_deploy(const ApiClient& api, const std::string& file, const ChangeFlags& f) {
  auto spec = load_spec_file(file);
  if (!spec) return report(spec.error());
  const std::string id = spec->id;
  bool created = false;
  auto call = [&]() -> Result<Json> {
    auto existing = api.get(app_path(id));
    if (!existing && existing.error().code != 404) return existing;
    created = !existing;
    if (created) return api.send("POST", "/api/v1/apps", spec->doc);
    return api.send("PUT", with_force(app_path(id), f.force), spec->doc);
  };
  auto started = [&](const Json& a) {
    return (created ? "Created " : "Deploying ") + id + release_suffix(a);
  };
  return run_change(api, id, f, call, started);
}

// `stele deploy APP --release N`: an existing ready release, deployed as it is.
int run_deploy_release(const ApiClient& api, const std::string& app, int64_t release, const ChangeFlags& f) {
  std::string id = canonical_app_id(app);
  auto call = [&] {
    return api.send("POST", with_force(app_path(id) + "/deploy", f.force), Json{{"release", release}});
  };
  auto started = [&](const Json&) { return "Deploying " + id + " release " + std::to_string(release); };
  return run_change(api, id, f, call, started);
}

void add_deploy(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags) {
  struct Args {
    std::string file, app;
    int64_t release = 0;
    ChangeFlags change;
  };
  auto a = std::make_shared<Args>();
  auto& c = add_verb(root, flags, "deploy",
                     {"Create or update an app from a Marathon app definition, or deploy one of its releases",
                      "With -f: the definition must have an \"id\"; it is checked locally before it is sent.\n"
                      "A change other than \"instances\" makes a new release.\n"
                      "With APP --release N: deploys that earlier ready release again, as it was built\n"
                      "(`stele releases APP` lists them; `stele rollback` picks the previous one).\n"
                      "Either way new tasks start and old ones retire under the app's upgradeStrategy.",
                      "  stele deploy -f web.json --wait\n  cat web.json | stele deploy -f - --force\n"
                      "  stele deploy /shop/web --release 4 --wait"});
  auto* app = c.add_option("APP", a->app, "App id (with --release)");
  auto* source = c.add_option_group("Source", "What to deploy (exactly one)");
  auto* file = source->add_option("-f,--file", a->file, "App definition file (JSON); '-' reads stdin");
  auto* release = source->add_option("--release", a->release, "Deploy this release of APP")->check(CLI::PositiveNumber);
  source->require_option(1);
  release->needs(app);
  file->excludes(app);
  add_change_flags(c, a->change);
  c.set_runner([a](const ApiClient& api) {
    if (a->release > 0) return run_deploy_release(api, a->app, a->release, a->change);
    return run_deploy(api, a->file, a->change);
  });
}

void add_scale(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags) {
  struct Args {
    std::string id;
    int instances = 0;
    ChangeFlags change;
  };
  auto a = std::make_shared<Args>();
  auto& c = add_verb(root, flags, "scale",
                     {"Set the number of instances of an app",
                      "The app keeps its current release; 0 instances suspends it.", "  stele scale /shop/web 5 --wait"});
  c.add_option("ID", a->id, "App id (e.g. /shop/web)")->required();
  c.add_option("N", a->instances, "Number of instances")->required()->check(CLI::NonNegativeNumber);
  add_change_flags(c, a->change);
  c.set_runner([a](const ApiClient& api) {
    std::string id = canonical_app_id(a->id);
    auto call = [&] {
      return api.send("POST", with_force(app_path(id) + "/scale", a->change.force), Json{{"instances", a->instances}});
    };
    auto started = [&](const Json&) { return "Scaling " + id + " to " + std::to_string(a->instances) + " instances"; };
    return run_change(api, id, a->change, call, started);
  });
}

void add_restart(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags) {
  struct Args {
    std::string id;
    ChangeFlags change;
  };
  auto a = std::make_shared<Args>();
  auto& c = add_verb(root, flags, "restart",
                     {"Replace every task of an app with a fresh one",
                      "The new tasks run the same release; old ones are retired as the app's\n"
                      "upgradeStrategy allows, as in a deployment.",
                      "  stele restart /shop/web --wait"});
  c.add_option("ID", a->id, "App id (e.g. /shop/web)")->required();
  add_change_flags(c, a->change);
  c.set_runner([a](const ApiClient& api) {
    std::string id = canonical_app_id(a->id);
    auto call = [&] { return api.send("POST", with_force(app_path(id) + "/restart", a->change.force), Json::object()); };
    auto started = [&](const Json&) { return "Restarting " + id; };
    return run_change(api, id, a->change, call, started);
  });
}

void add_rollback(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags) {
  struct Args {
    std::string id;
    int64_t release = 0;
    ChangeFlags change;
  };
  auto a = std::make_shared<Args>();
  auto& c = add_verb(root, flags, "rollback",
                     {"Deploy an earlier release of an app again",
                      "Without RELEASE, the release before the current one. The release runs with its own\n"
                      "environment; `stele releases ID` lists them.",
                      "  stele rollback /shop/web --wait\n  stele rollback /shop/web 3"});
  c.add_option("ID", a->id, "App id (e.g. /shop/web)")->required();
  c.add_option("RELEASE", a->release, "Release number to go back to")->check(CLI::PositiveNumber);
  add_change_flags(c, a->change);
  c.set_runner([a](const ApiClient& api) {
    std::string id = canonical_app_id(a->id);
    Json body = a->release > 0 ? Json{{"release", a->release}} : Json::object();
    auto call = [&] { return api.send("POST", with_force(app_path(id) + "/rollback", a->change.force), body); };
    auto started = [&](const Json& answer) {
      std::string r = field_str(answer, "release");
      return "Rolling " + id + " back" + (r.empty() ? "" : " to release " + r);
    };
    return run_change(api, id, a->change, call, started);
  });
}

}  // namespace

void add_change_flags(CLI::App& c, ChangeFlags& f) {
  c.add_flag("--wait", f.wait,
             "Follow the deployment, printing each step and task change, until it ends; "
             "exit non-zero if it fails or is canceled");
  c.add_flag("--force", f.force, "Cancel a deployment of this app that is still running instead of being refused (409)");
}

std::string with_force(std::string path, bool force) { return force ? path + "?force=true" : path; }

int run_change(const ApiClient& api, const std::string& app_id, const ChangeFlags& f,
               const std::function<Result<Json>()>& call, const std::function<std::string(const Json&)>& started) {
  int64_t since = 0;
  if (f.wait) {
    auto head = head_event_id(api);
    if (!head) return report(head.error());
    since = *head;
  }
  auto answer = call();
  if (!answer) {
    Error e = answer.error();
    if (e.code == 409 && !f.force) e.message += " (--force cancels the running deployment)";
    return report(e);
  }
  std::string dep = field_str(*answer, "deploymentId");
  if (api.options().json) print_json(*answer);
  else print_line(started(*answer) + (dep.empty() ? "" : " (deployment " + dep + ")"));
  if (dep.empty()) return 0;
  if (!f.wait) {
    if (!api.options().json) print_line("Follow it with: stele events --app " + app_id + "   (or add --wait)");
    return 0;
  }
  return wait_for_deployment(api, app_id, dep, since);
}

Result<LoadedSpec> load_spec_file(const std::string& path) {
  auto text = read_text(path);
  if (!text) return fail(text.error());
  auto doc = parse_json(*text);
  if (!doc) return fail(path + ": " + doc.error().message);
  auto spec = parse_app_spec(*doc);
  if (!spec) {
    Error e = spec.error();
    e.message = path + ": " + e.message;
    return fail(std::move(e));
  }
  return LoadedSpec{std::move(*doc), spec->id};
}

void add_change_commands(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags) {
  add_deploy(root, flags);
  add_scale(root, flags);
  add_restart(root, flags);
  add_rollback(root, flags);
}

}  // namespace stele::cli
