#include "cli/cli.h"

#include <iostream>

#include "cli/commands.h"
#include "net/tls.h"

namespace stele::cli {

ClientCommand::ClientCommand(std::string name, std::string description, std::shared_ptr<GlobalFlags> flags)
    : CLI::App(std::move(description), std::move(name)), flags_(std::move(flags)) {}

int ClientCommand::run() const {
  // A verb with verbs of its own (`config set`): the selected one runs.
  for (CLI::App* sub : get_subcommands())
    if (auto* cmd = dynamic_cast<ClientCommand*>(sub)) return cmd->run();
  if (!runner_) return report(Error{"verb '" + get_name() + "' is not implemented", {}, 0});
  ApiClient api(resolve_options(*flags_, process_env));
  // https:// APIs are verified against --ca / $STELE_CA (else the system's CAs).
  if (!api.options().ca.empty()) net::set_client_ca_file(api.options().ca);
  try {
    return runner_(api);
  } catch (const std::exception& e) {
    // Lenient field reads make this unexpected; still one clear line, not a crash.
    return report(Error{std::string("unexpected answer or internal error: ") + e.what(), {}, 0});
  }
}

void add_global_flags(CLI::App& app, GlobalFlags& flags, const std::string& group) {
  auto* g = app.add_option_group(group);
  g->add_option("--api", flags.api, "URL of the Stele API (env STELE_API; default http://127.0.0.1:7070); several, comma-separated, for servers sharing an etcd store: the client asks them who leads");
  g->add_option("--token", flags.token,
                "API token (env STELE_TOKEN; default: the token file in the data dir, written by `stele up`)");
  g->add_option("--ca", flags.ca, "CA certificate file an https:// API must be signed by (env STELE_CA)");
  g->add_flag("--json", flags.json, "Print the server's raw JSON answer (events: one JSON document per line)");
  g->add_option("--data-dir", flags.data_dir,
                "Data dir to read the token from (default $STELE_DATA_DIR, then ./stele-data)");
}

ClientCommand& add_verb(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags, const std::string& name,
                        const VerbHelp& help) {
  auto cmd = std::make_shared<ClientCommand>(name, help.summary, flags);
  add_global_flags(*cmd, *flags, "Global options");
  cmd->footer((help.details.empty() ? "" : help.details + "\n\n") + "Example:\n" + help.example);
  cmd->group("Client commands");
  root.add_subcommand(cmd);
  return *cmd;
}

// backup (commands_backup.cpp).
void add_backup_commands(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags);

void add_client_commands(CLI::App& app) {
  auto flags = std::make_shared<GlobalFlags>();
  add_global_flags(app, *flags, "Client options");
  add_certs_commands(app, flags);
  add_read_commands(app, flags);
  add_change_commands(app, flags);
  add_event_commands(app, flags);
  add_pipeline_commands(app, flags);
  add_config_commands(app, flags);
  add_log_commands(app, flags);
  add_metrics_commands(app, flags);
  add_check_commands(app, flags);
  add_token_commands(app, flags);
  add_backup_commands(app, flags);
}

int run_client(CLI::App& app) {
  for (CLI::App* sub : app.get_subcommands())
    if (auto* cmd = dynamic_cast<ClientCommand*>(sub)) return cmd->run();
  return -1;
}

int report(const Error& e) {
  std::cout.flush();
  std::cerr << format_error(e) << std::endl;
  return 1;
}

void print_json(const Json& j) { print_line(j.dump()); }

void print_line(const std::string& line) { std::cout << line << std::endl; }

}  // namespace stele::cli
