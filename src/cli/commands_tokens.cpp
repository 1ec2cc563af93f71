// `stele tokens create NAME --role R | list | rm NAME`: API tokens with roles
// (docs/api.md "Tokens"). The secret is printed once, by create.
#include <iostream>

#include "cli/commands.h"
#include "cli/fields.h"

namespace stele::cli {

namespace {

const char* kRolesHelp =
    "Roles:\n"
    "  viewer    reads: GET/HEAD calls, the event stream, logs, metrics, git fetch\n"
    "            (not backups, not the token list)\n"
    "  deployer  viewer + every change to apps, releases, deployments, config and tasks,\n"
    "            git push, stele run, checks, handlers and silences\n"
    "            (not tokens, not backups)\n"
    "  admin     everything, tokens and GET /api/v1/backup included\n"
    "The server's own token (<data-dir>/token or --token) is an admin token named\n"
    "'bootstrap'. Agents use the join token (<data-dir>/join-token), not these.";

void add_create(ClientCommand& parent, const std::shared_ptr<GlobalFlags>& flags) {
  struct Args {
    std::string name, role;
  };
  auto a = std::make_shared<Args>();
  auto& c = add_verb(parent, flags, "create",
                     {"Create a token and print its secret (shown only this once)",
                      std::string("NAME: [a-z0-9][a-z0-9._-]{0,62}. Needs an admin token.\n") + kRolesHelp,
                      "  stele tokens create ci --role deployer\n  stele tokens create grafana --role viewer --json"});
  c.add_option("NAME", a->name, "token name")->required();
  c.add_option("--role", a->role, "admin, deployer or viewer")
      ->required()
      ->check(CLI::IsMember({"admin", "deployer", "viewer"}));
  c.set_runner([a](const ApiClient& api) {
    Json body = {{"name", a->name}, {"role", a->role}};
    auto r = api.send("POST", "/api/v1/tokens", body);
    if (!r) return report(r.error());
    if (api.options().json) {
      print_json(*r);
      return 0;
    }
    print_line("Created " + field_str(*r, "role") + " token '" + field_str(*r, "name") + "':");
    print_line("  " + field_str(*r, "token"));
    std::cerr << "Save it now: the server keeps only its hash and cannot show it again.\n"
                 "Use it as STELE_TOKEN, --token or Authorization: Bearer <token>."
              << std::endl;
    return 0;
  });
}

void add_list(ClientCommand& parent, const std::shared_ptr<GlobalFlags>& flags) {
  auto& c = add_verb(parent, flags, "list",
                     {"List the tokens (never their secrets)", "Needs an admin token.",
                      "  stele tokens list\n  stele tokens list --json"});
  c.set_runner([](const ApiClient& api) {
    return show_list(api, "/api/v1/tokens", "tokens", tokens_table,
                     "No tokens (the server's bootstrap token is not listed).");
  });
}

void add_rm(ClientCommand& parent, const std::shared_ptr<GlobalFlags>& flags) {
  auto name = std::make_shared<std::string>();
  auto& c = add_verb(parent, flags, "rm",
                     {"Delete (revoke) a token: calls with it are refused at once", "Needs an admin token.",
                      "  stele tokens rm ci"});
  c.add_option("NAME", *name, "token name")->required();
  c.set_runner([name](const ApiClient& api) {
    auto r = api.send("DELETE", "/api/v1/tokens/" + net::percent_encode(*name), Json());
    if (!r) return report(r.error());
    if (api.options().json) print_json(*r);
    else print_line("token " + *name + " deleted");
    return 0;
  });
}

}  // namespace

Table tokens_table(const Json& tokens) {
  Table t({"NAME", "ROLE", "CREATED", "CREATED-BY"});
  if (!tokens.is_array()) return t;
  for (const auto& tok : tokens)
    t.add_row({field_str(tok, "name"), field_str(tok, "role"), field_str(tok, "created"), field_str(tok, "createdBy")});
  return t;
}

void add_token_commands(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags) {
  auto& c = add_verb(root, flags, "tokens",
                     {"Manage API tokens with roles: create, list, rm",
                      std::string("Subcommands: create NAME --role admin|deployer|viewer, list, rm NAME.\n") + kRolesHelp,
                      "  stele tokens create ci --role deployer\n  stele tokens list\n  stele tokens rm ci"});
  c.set_runner([](const ApiClient&) {
    return report(Error{"tokens needs a subcommand: create, list, rm (stele tokens --help)", {}, 0});
  });
  add_create(c, flags);
  add_list(c, flags);
  add_rm(c, flags);
}

}  // namespace stele::cli
