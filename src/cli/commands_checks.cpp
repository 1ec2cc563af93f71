// Monitoring verbs: checks (states), check list|show|set|rm|run,
// handler list|set|rm, silence list|add|rm.
#include <fstream>
#include <iostream>

#include "cli/check_view.h"
#include "cli/commands.h"
#include "cli/fields.h"
#include "common/clock.h"

namespace stele::cli {

namespace {

int64_t now_ms() { return SystemClock().now_ms(); }

// A JSON document from a file, or stdin for "-".
Result<Json> read_doc(const std::string& path) {
  std::string text;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), {});
  } else {
    std::ifstream in(path);
    if (!in) return fail(path + ": cannot read");
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto j = parse_json(text);
  if (!j) return fail(path + ": " + j.error().message);
  return j;
}

// "90", "90s", "15m", "2h", "7d" -> seconds.
Result<int64_t> parse_seconds(const std::string& s) {
  if (s.empty()) return fail("empty duration");
  size_t used = 0;
  int64_t n = 0;
  try {
    n = std::stoll(s, &used);
  } catch (...) {
    return fail("'" + s + "' is not a duration (e.g. 90s, 15m, 2h, 7d)");
  }
  std::string unit = s.substr(used);
  int64_t mult = unit.empty() || unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : unit == "d" ? 86400 : 0;
  if (mult == 0 || n <= 0) return fail("'" + s + "' is not a duration (e.g. 90s, 15m, 2h, 7d)");
  return n * mult;
}

// Defines `set FILE`, `list`, `show NAME` (when show) and `rm NAME` under
// `parent` for one kind of definition.
void add_definition_verbs(ClientCommand& parent, const std::shared_ptr<GlobalFlags>& flags, const std::string& kind,
                          const std::string& path, const std::function<Table(const Json&)>& table, bool show,
                          const std::string& example_file) {
  std::string plural = kind + "s";
  auto file = std::make_shared<std::string>();
  auto& set = add_verb(parent, flags, "set",
                       {"Create or replace a " + kind + " from a JSON file ('-' = stdin)",
                        "The server checks every field and names each bad one; nothing is changed then.",
                        "  stele " + kind + " set " + example_file});
  set.add_option("FILE", *file, "JSON definition")->required();
  set.set_runner([file, path, kind](const ApiClient& api) {
    auto doc = read_doc(*file);
    if (!doc) return report(doc.error());
    auto r = api.send("POST", path, *doc);
    if (!r) return report(r.error());
    if (api.options().json) {
      print_json(*r);
      return 0;
    }
    print_line(kind + " " + field_str(field(*r, kind.c_str()), "name") + field_str(field(*r, kind.c_str()), "id") + " saved");
    return 0;
  });
  auto& list = add_verb(parent, flags, "list", {"List the " + plural, "", "  stele " + kind + " list --json"});
  list.set_runner([path, plural, table](const ApiClient& api) {
    return show_list(api, path, plural.c_str(), table, "No " + plural + " defined.");
  });
  if (show) {
    auto name = std::make_shared<std::string>();
    auto& sh = add_verb(parent, flags, "show", {"Show one " + kind + " as JSON", "", "  stele " + kind + " show NAME"});
    sh.add_option("NAME", *name, kind + " name")->required();
    sh.set_runner([name, path, kind](const ApiClient& api) {
      auto r = api.get(path + "/" + net::percent_encode(*name));
      if (!r) return report(r.error());
      std::cout << field(*r, kind.c_str()).dump(2) << "\n" << std::flush;
      return 0;
    });
  }
  auto id = std::make_shared<std::string>();
  auto& rm = add_verb(parent, flags, "rm", {"Delete a " + kind, "", "  stele " + kind + " rm NAME"});
  rm.add_option("NAME", *id, kind + (kind == "silence" ? " id (subscription:check)" : " name"))->required();
  rm.set_runner([id, path, kind](const ApiClient& api) {
    auto r = api.send("DELETE", path + "/" + net::percent_encode(*id), Json());
    if (!r) return report(r.error());
    if (api.options().json) print_json(*r);
    else print_line(kind + " " + *id + " deleted");
    return 0;
  });
}

// A verb that only groups subcommands: alone, it says which there are.
void require_subcommand(ClientCommand& c, const std::string& verb, const std::string& subcommands) {
  c.set_runner([verb, subcommands](const ApiClient&) {
    return report(Error{verb + " needs a subcommand: " + subcommands + " (stele " + verb + " --help)", {}, 0});
  });
}

void add_checks_verb(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags) {
  struct Args {
    bool failing = false;
    std::string check, entity;
  };
  auto a = std::make_shared<Args>();
  auto& c = add_verb(root, flags, "checks",
                     {"Show check states: every (entity, check) with its status",
                      "Entities are agents (their host name: keepalive and subscription checks) and app\n"
                      "instances (<app>-r<release>-<seq>: exported-port probes and proxy checks).\n"
                      "STATE is passing, failing or flapping; OCC counts results in a row with this status.",
                      "  stele checks --failing\n  stele checks --check keepalive --json"});
  c.add_flag("--failing", a->failing, "Only states that are not OK (or flapping)");
  c.add_option("--check", a->check, "Only this check");
  c.add_option("--entity", a->entity, "Only this entity");
  c.set_runner([a](const ApiClient& api) {
    std::string q = "/api/v1/checks/status?failing=" + std::string(a->failing ? "1" : "0");
    if (!a->check.empty()) q += "&check=" + net::percent_encode(a->check);
    if (!a->entity.empty()) q += "&entity=" + net::percent_encode(a->entity);
    return show_list(api, q, "states", [](const Json& j) { return check_states_table(j, now_ms()); },
                     a->failing ? "Nothing failing." : "No check results yet.");
  });
}

void add_check_verb(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags) {
  auto& c = add_verb(root, flags, "check",
                     {"Define, list, delete and run checks (Nagios plugins)",
                      "A check runs `command` (any Nagios plugin: exit 0 OK, 1 WARNING, 2 CRITICAL, else\n"
                      "UNKNOWN; perfdata becomes metrics stele.check.<entity>.<check>.<label>) every `interval`\n"
                      "seconds on the agents whose --subscriptions include one of `subscriptions` (\"*\" = all),\n"
                      "or with `proxy` (an app id) once per running instance of that app, where {{host}},\n"
                      "{{port0}}, {{task}}, {{entity}} are substituted. Fields: name, command, interval, timeout,\n"
                      "subscriptions, round_robin, ttl, handlers, occurrences, proxy, annotations.\n"
                      "Subcommands: set FILE, list, show NAME, rm NAME, run NAME.",
                      "  echo '{\"name\":\"disk\",\"command\":\"check_disk -w 20% -c 10% -p /\",\"interval\":60,\n"
                      "         \"subscriptions\":[\"*\"]}' | stele check set -\n  stele check run disk"});
  add_definition_verbs(c, flags, "check", "/api/v1/checks", checks_table, true, "disk.json");
  auto name = std::make_shared<std::string>();
  auto& run = add_verb(c, flags, "run",
                       {"Run a check now where it runs and print the results",
                        "Waits for every agent that runs it (at most its timeout + 5 s); agents that did not\n"
                        "answer are named. The results are recorded like scheduled ones.",
                        "  stele check run disk"});
  run.add_option("NAME", *name, "check name")->required();
  run.set_runner([name](const ApiClient& api) {
    auto r = api.send("POST", "/api/v1/checks/" + net::percent_encode(*name) + "/run", Json::object());
    if (!r) return report(r.error());
    if (api.options().json) {
      print_json(*r);
      return 0;
    }
    Table t = check_states_table(field(*r, "results"), now_ms());
    std::cout << (t.empty() ? std::string("No results.\n") : t.render());
    for (const auto& m : field(*r, "missing")) std::cout << "no answer from agent " << m.get<std::string>() << "\n";
    std::cout << std::flush;
    return 0;
  });
  require_subcommand(c, "check", "set, list, show, rm or run");
}

void add_handler_verb(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags) {
  auto& c = add_verb(root, flags, "handler",
                     {"Define, list and delete handlers (what runs on incidents and resolutions)",
                      "{\"name\", \"type\": \"pipe\" (command gets the event JSON on stdin) or \"http\" (url gets it\n"
                      "POSTed, retried with backoff), \"filters\": [\"is_incident\", \"not_silenced\",\n"
                      "\"occurrences >= N\"]}. Checks name their handlers in \"handlers\".\n"
                      "Subcommands: set FILE, list, show NAME, rm NAME.",
                      "  echo '{\"name\":\"mail\",\"type\":\"pipe\",\"command\":\"mail -s alert ops@example.com\"}' |\n"
                      "    stele handler set -"});
  add_definition_verbs(c, flags, "handler", "/api/v1/handlers", handlers_table, true, "mail.json");
  require_subcommand(c, "handler", "set, list, show or rm");
}

void add_silence_verb(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags) {
  auto& c = add_verb(root, flags, "silence",
                     {"Silence checks: their states are still recorded, their handlers are not called",
                      "A silence is SUBSCRIPTION:CHECK with '*' wildcards: \"*:check_disk\", \"web:*\",\n"
                      "\"entity:node1:keepalive\" (one entity). Subcommands: add, list, rm ID.",
                      "  stele silence add '*:disk' --expire 2h --reason 'resizing /var'\n  stele silence list"});
  struct AddArgs {
    std::string id, expire, reason;
    bool on_resolve = false;
  };
  auto a = std::make_shared<AddArgs>();
  auto& add = add_verb(c, flags, "add",
                       {"Silence SUBSCRIPTION:CHECK", "", "  stele silence add 'entity:web-1:*' --expire-on-resolve"});
  add.add_option("ID", a->id, "SUBSCRIPTION:CHECK, '*' wildcards (a bare CHECK means *:CHECK)")->required();
  add.add_option("--expire", a->expire, "Lift it after this long (90s, 15m, 2h, 7d); default never");
  add.add_flag("--expire-on-resolve", a->on_resolve, "Lift it when a matching check resolves");
  add.add_option("--reason", a->reason, "Why (shown in lists and events)");
  add.set_runner([a](const ApiClient& api) {
    Json body = Json::object();
    auto colon = a->id.rfind(':');
    body["subscription"] = colon == std::string::npos ? "*" : a->id.substr(0, colon);
    body["check"] = colon == std::string::npos ? a->id : a->id.substr(colon + 1);
    if (!a->expire.empty()) {
      auto s = parse_seconds(a->expire);
      if (!s) return report(Error{"--expire: " + s.error().message, {}, 0});
      body["expire"] = *s;
    }
    if (a->on_resolve) body["expire_on_resolve"] = true;
    if (!a->reason.empty()) body["reason"] = a->reason;
    auto r = api.send("POST", "/api/v1/silences", body);
    if (!r) return report(r.error());
    if (api.options().json) print_json(*r);
    else print_line("silenced " + field_str(field(*r, "silence"), "id"));
    return 0;
  });
  add_definition_verbs(c, flags, "silence", "/api/v1/silences",
                       [](const Json& j) { return silences_table(j, now_ms()); }, false, "silence.json");
  c.set_runner([](const ApiClient& api) {
    return show_list(api, "/api/v1/silences", "silences", [](const Json& j) { return silences_table(j, now_ms()); },
                     "No silences.");
  });
}

}  // namespace

void add_check_commands(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags) {
  add_checks_verb(root, flags);
  add_check_verb(root, flags);
  add_handler_verb(root, flags);
  add_silence_verb(root, flags);
}

}  // namespace stele::cli
