// Read-only verbs: apps, app, releases, ps, nodes, servers, routes, deployments.
#include <iostream>

#include "cli/commands.h"
#include "cli/fields.h"
#include "cli/views.h"
#include "common/clock.h"

namespace stele::cli {

namespace {

int64_t now_ms() { return SystemClock().now_ms(); }

int show_app(const ApiClient& api, const std::string& id) {
  auto r = api.get(app_path(id));
  if (!r) return report(r.error());
  if (api.options().json) {
    print_json(*r);
    return 0;
  }
  std::cout << app_details(field(*r, "app"), now_ms());
  auto tasks = api.get(app_path(id) + "/tasks");
  if (!tasks) return report(tasks.error());
  Table t = tasks_table(field(*tasks, "tasks"), now_ms());
  std::cout << "\n" << (t.empty() ? "No tasks.\n" : "Tasks:\n" + t.render()) << std::flush;
  return 0;
}

void add_apps(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags) {
  auto& c = add_verb(root, flags, "apps",
                     {"List the apps",
                      "Columns: release, running/wanted tasks, healthy tasks, status (the running deployment\n"
                      "and its step, why tasks wait, suspended, degraded or ok), age.",
                      "  stele apps\n  stele apps --json | jq -r '.apps[].id'"});
  c.set_runner([](const ApiClient& api) {
    return show_list(api, "/api/v1/apps", "apps", [](const Json& j) { return apps_table(j, now_ms()); },
                     "No apps yet. Create one with: stele deploy -f app.json");
  });
}

void add_app(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags) {
  auto id = std::make_shared<std::string>();
  auto& c = add_verb(root, flags, "app",
                     {"Show one app: state, release, spec summary and tasks", "",
                      "  stele app /shop/web\n  stele app shop/web --json"});
  c.add_option("ID", *id, "App id, with or without the leading '/' (e.g. /shop/web)")->required();
  c.set_runner([id](const ApiClient& api) { return show_app(api, *id); });
}

// The app's current release number (0 when unknown): "release" in the
// native answer, "currentRelease" in the stored record.
int64_t current_release(const Json& app_answer) {
  const Json& app = field(app_answer, "app").is_object() ? field(app_answer, "app") : app_answer;
  int64_t r = field_int(app, "release");
  return r > 0 ? r : field_int(app, "currentRelease");
}

int show_releases(const ApiClient& api, const std::string& id) {
  auto r = api.get(app_path(id) + "/releases");
  if (!r) return report(r.error());
  if (api.options().json) {
    print_json(*r);
    return 0;
  }
  auto app = api.get(app_path(id));
  if (!app) return report(app.error());
  Table t = releases_table(field(*r, "releases"), current_release(*app), now_ms());
  std::cout << (t.empty() ? "No releases yet. Push to the app's git remote (`stele create` prints it).\n" : t.render())
            << std::flush;
  return 0;
}

void add_releases(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags) {
  auto id = std::make_shared<std::string>();
  auto& c = add_verb(root, flags, "releases",
                     {"List the releases of an app",
                      "Newest first; '*' marks the current one. Columns: status (building, testing, ready,\n"
                      "failed), cause (push, api, config, rollback, webhook), the pushed commit, the slug\n"
                      "(short digest and size), how long build, test and smoke took, age, and a note: why a\n"
                      "failed release failed, or whose slug an unchanged tree reused. A ready release can\n"
                      "be deployed again with `stele rollback APP N` or `stele deploy APP --release N`;\n"
                      "`stele pipeline APP --release N` shows its build, test and smoke output.",
                      "  stele releases /shop/web\n  stele releases hello --json | jq '.releases[0].status'"});
  c.add_option("APP", *id, "App id (e.g. /shop/web)")->required();
  c.set_runner([id](const ApiClient& api) { return show_releases(api, *id); });
}

void add_ps(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags) {
  auto id = std::make_shared<std::string>();
  auto& c = add_verb(root, flags, "ps",
                     {"List the tasks (instances) of all apps or of one",
                      "Columns: task id, app, release, state, health, host, ports, age (uptime of a\n"
                      "running task, else time since it was staged).",
                      "  stele ps\n  stele ps /shop/web"});
  c.add_option("ID", *id, "Only the tasks of this app");
  c.set_runner([id](const ApiClient& api) {
    std::string path = id->empty() ? "/api/v1/tasks" : app_path(*id) + "/tasks";
    return show_list(api, path, "tasks", [](const Json& j) { return tasks_table(j, now_ms()); }, "No tasks.");
  });
}

void add_nodes(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags) {
  auto& c = add_verb(root, flags, "nodes",
                     {"List the agents (nodes) and their resources",
                      "CPUS, MEM and PORTS show what tasks use of what the agent offers.", "  stele nodes"});
  c.set_runner([](const ApiClient& api) {
    return show_list(api, "/api/v1/nodes", "nodes", nodes_table,
                     "No nodes. Start an agent (`stele up` runs one).");
  });
}

void add_servers(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags) {
  auto& c = add_verb(root, flags, "servers",
                     {"List the servers: the leader and the followers copying its artifacts and repositories",
                      "Several servers share an etcd store (--store etcd://...) and elect a leader; followers\n"
                      "report every second what they hold. A release is ready only when every follower that\n"
                      "reported in the last 5 s holds its artifact. With --api a,b,c the client asks the first\n"
                      "that answers who leads.",
                      "  stele --api http://10.0.0.1:7070,http://10.0.0.2:7070 servers"});
  c.set_runner([](const ApiClient& api) {
    auto leader = api.get("/api/v1/leader");
    if (!leader) return report(leader.error());
    auto rep = api.get("/api/v1/replication");
    if (!rep) return report(rep.error());
    if (api.options().json) {
      print_json(Json{{"leader", field(*leader, "leader")}, {"servers", field(*rep, "servers")}});
      return 0;
    }
    std::cout << servers_table(*leader, *rep).render() << std::flush;
    return 0;
  });
}

void add_routes(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags) {
  auto& c = add_verb(root, flags, "routes",
                     {"Show the router's table: hosts and paths, their app, its instances",
                      "One row per instance of each route; only healthy instances get traffic. The first\n"
                      "lines name each router and whether it runs the newest table. Routes come from the\n"
                      "apps' \"routes\" ([{\"host\", \"path\", \"portIndex\", \"balance\"}]).",
                      "  stele routes\n  curl -H 'Host: web.localhost' http://127.0.0.1:7080/"});
  c.set_runner([](const ApiClient& api) {
    auto r = api.get("/api/v1/routes");
    if (!r) return report(r.error());
    if (api.options().json) {
      print_json(*r);
      return 0;
    }
    Table t = routes_table(*r);
    std::cout << routers_summary(*r) << "\n"
              << (t.empty() ? "No routes. Give an app \"routes\": [{\"host\": \"web.localhost\"}].\n" : t.render())
              << std::flush;
    return 0;
  });
}

void add_deployments(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags) {
  auto all = std::make_shared<bool>(false);
  auto& c = add_verb(root, flags, "deployments",
                     {"List running deployments and their current step",
                      "With --all, finished ones too, with the reason of those that failed.",
                      "  stele deployments\n  stele deployments --all"});
  c.add_flag("--all", *all, "Include finished deployments");
  c.set_runner([all](const ApiClient& api) {
    return show_list(api, *all ? "/api/v1/deployments?all=1" : "/api/v1/deployments", "deployments",
                     [](const Json& j) { return deployments_table(j, now_ms()); },
                     *all ? "No deployments." : "No deployments running.");
  });
}

}  // namespace

int show_list(const ApiClient& api, const std::string& path, const char* key,
              const std::function<Table(const Json&)>& view, const std::string& empty_note) {
  auto r = api.get(path);
  if (!r) return report(r.error());
  if (api.options().json) {
    print_json(*r);
    return 0;
  }
  Table t = view(field(*r, key));
  std::cout << (t.empty() ? empty_note + "\n" : t.render()) << std::flush;
  return 0;
}

void add_read_commands(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags) {
  add_apps(root, flags);
  add_app(root, flags);
  add_releases(root, flags);
  add_ps(root, flags);
  add_nodes(root, flags);
  add_servers(root, flags);
  add_routes(root, flags);
  add_deployments(root, flags);
}

}  // namespace stele::cli
