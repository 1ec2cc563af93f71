// `stele config APP`, `stele config set APP K=V...`, `stele config unset APP
// K...`: the app's config, the environment that overlays the spec's `env` in
// every release (design.md "Data model"). A change makes a new release of
// the current slug and deploys it.
#include <iostream>

#include "cli/commands.h"
#include "cli/config_patch.h"
#include "cli/fields.h"
#include "cli/views.h"
#include "common/names.h"

namespace stele::cli {

namespace {

std::string config_path(const std::string& app) { return app_path(app) + "/config"; }

// The vars of a GET config answer: {"K": "V"}, or that wrapped as
// {"config": {...}} (values are strings, so an object there is the wrapper).
const Json& config_vars(const Json& answer) {
  const Json& inner = field(answer, "config");
  return inner.is_object() ? inner : answer;
}

int show_config(const ApiClient& api, const std::string& app, bool reveal) {
  auto r = api.get(config_path(app) + (reveal ? "?reveal=1" : ""));
  if (!r) return report(r.error());
  if (api.options().json) {
    print_json(*r);
    return 0;
  }
  Table t = config_table(config_vars(*r));
  std::cout << (t.empty() ? "No config. Set some with: stele config set " + canonical_app_id(app) + " KEY=VALUE\n"
                          : t.render())
            << std::flush;
  return 0;
}

std::string join_keys(const Json& patch) {
  std::string out;
  for (const auto& [k, _] : patch.items()) out += (out.empty() ? "" : ", ") + k;
  return out;
}

// Sends `patch` and reports the release it made.
int change_config(const ApiClient& api, const std::string& app, const Json& patch, const ChangeFlags& f,
                  const std::string& verb) {
  std::string id = canonical_app_id(app);
  auto call = [&] { return api.send("PATCH", with_force(config_path(id), f.force), patch); };
  auto started = [&](const Json& answer) {
    std::string r = field_str(answer, "release");
    return verb + " " + join_keys(patch) + " on " + id + (r.empty() ? "" : ": release " + r);
  };
  return run_change(api, id, f, call, started);
}

struct SetArgs {
  std::string app;
  std::vector<std::string> items;
  ChangeFlags change;
};

void add_config_set(ClientCommand& config, const std::shared_ptr<GlobalFlags>& flags) {
  auto a = std::make_shared<SetArgs>();
  auto& c = add_verb(config, flags, "set",
                     {"Set config vars of an app (a new release of the same slug, deployed)",
                      "Each KEY=VALUE sets one variable; the value is everything after the first '=' and may\n"
                      "be empty. Keys are environment variable names. The new release keeps the current\n"
                      "release's artifact (no build) and is deployed at once; config outlives pushes.",
                      "  stele config set /hello GREETING=hi\n  stele config set shop/web DB_URL='postgres://db/shop' --wait"});
  c.add_option("APP", a->app, "App id (e.g. /hello)")->required();
  c.add_option("KEY=VALUE", a->items, "Variables to set")->required();
  add_change_flags(c, a->change);
  c.set_runner([a](const ApiClient& api) {
    auto patch = config_set_patch(a->items);
    if (!patch) return report(patch.error());
    return change_config(api, a->app, *patch, a->change, "Set");
  });
}

void add_config_unset(ClientCommand& config, const std::shared_ptr<GlobalFlags>& flags) {
  auto a = std::make_shared<SetArgs>();
  auto& c = add_verb(config, flags, "unset",
                     {"Remove config vars of an app (a new release of the same slug, deployed)",
                      "A key the spec's \"env\" also sets falls back to the spec's value.",
                      "  stele config unset /hello GREETING"});
  c.add_option("APP", a->app, "App id (e.g. /hello)")->required();
  c.add_option("KEY", a->items, "Variables to remove")->required();
  add_change_flags(c, a->change);
  c.set_runner([a](const ApiClient& api) {
    auto patch = config_unset_patch(a->items);
    if (!patch) return report(patch.error());
    return change_config(api, a->app, *patch, a->change, "Unset");
  });
}

}  // namespace

void add_config_commands(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags) {
  struct Args {
    std::string app;
    bool reveal = false;
  };
  auto a = std::make_shared<Args>();
  auto& c = add_verb(root, flags, "config",
                     {"Show an app's config vars; `config set` / `config unset` change them",
                      "Config vars are the environment every release of the app gets on top of the spec's\n"
                      "\"env\" (config wins). Values are masked unless --reveal is given.\n"
                      "Subcommands:\n"
                      "  config set APP KEY=VALUE...   set vars (new release, same slug, deployed)\n"
                      "  config unset APP KEY...       remove vars",
                      "  stele config /hello\n  stele config /hello --reveal --json\n"
                      "  stele config set /hello GREETING=hi"});
  c.add_option("APP", a->app, "App id (e.g. /hello)");
  c.add_flag("--reveal", a->reveal, "Show the values instead of masking them");
  add_config_set(c, flags);
  add_config_unset(c, flags);
  c.set_runner([a](const ApiClient& api) {
    if (a->app.empty()) return report(Error{"config needs an app: stele config APP (or config set / unset)", {}, 0});
    return show_config(api, a->app, a->reveal);
  });
}

}  // namespace stele::cli
