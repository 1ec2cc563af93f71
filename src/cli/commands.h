// Private to src/cli: the client verbs as CLI11 subcommands, and what the
// verbs share (error reporting, JSON output, following the event stream).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/api_client.h"
#include "cli/table.h"

namespace stele::cli {

// One client verb: a CLI11 subcommand that also knows how to run itself, so
// run_client() finds the chosen verb among the parsed subcommands. Holds the
// global flags it shares with the root command and the other verbs.
class ClientCommand : public CLI::App {
 public:
  using Runner = std::function<int(const ApiClient&)>;

  ClientCommand(std::string name, std::string description, std::shared_ptr<GlobalFlags> flags);
  void set_runner(Runner r) { runner_ = std::move(r); }
  const GlobalFlags& flags() const { return *flags_; }
  // Resolves the options (environment, token file) and runs the verb;
  // returns the process exit code.
  int run() const;

 private:
  std::shared_ptr<GlobalFlags> flags_;
  Runner runner_;
};

// --api, --token, --json, --data-dir bound to `flags`, in an option group of
// `app` titled `group`.
void add_global_flags(CLI::App& app, GlobalFlags& flags, const std::string& group);
// What `stele VERB --help` says: a one-line summary (also listed by
// `stele --help`), optional details, and example command lines.
struct VerbHelp {
  std::string summary, details, example;
};
// A new verb under `root` with the global flags and its help.
ClientCommand& add_verb(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags, const std::string& name,
                        const VerbHelp& help);

// certs init, certs node (commands_certs.cpp): local files, no API call.
void add_certs_commands(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags);
// apps, app, releases, ps, nodes, deployments (commands_read.cpp).
void add_read_commands(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags);
// deploy (a spec file or a release), scale, restart, rollback (commands_change.cpp).
void add_change_commands(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags);
// events (commands_follow.cpp).
void add_event_commands(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags);
// create, pipeline, run (commands_pipeline.cpp).
void add_pipeline_commands(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags);
// config, config set, config unset (commands_config.cpp).
void add_config_commands(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags);
// logs (commands_logs.cpp).
void add_log_commands(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags);
// metrics, top (commands_metrics.cpp).
void add_metrics_commands(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags);
// checks, check, handler, silence (commands_checks.cpp).
void add_check_commands(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags);
// tokens create|list|rm (commands_tokens.cpp).
void add_token_commands(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags);
// NAME ROLE CREATED CREATED-BY of GET /api/v1/tokens' "tokens".
Table tokens_table(const Json& tokens);

// Options every verb that starts a deployment has.
struct ChangeFlags {
  bool wait = false;   // follow the deployment to its end
  bool force = false;  // cancel a running deployment instead of a 409
};
void add_change_flags(CLI::App& c, ChangeFlags& f);
// `path` with "?force=true" when `force`.
std::string with_force(std::string path, bool force);
// Runs `call` (the change) and reports its answer {"deploymentId"?,
// "release"?}: the raw JSON (--json) or the line `started` makes of it (e.g.
// "Scaling /shop/web to 5 instances"). With --wait, follows the deployment
// to its end. Returns the exit code.
int run_change(const ApiClient& api, const std::string& app_id, const ChangeFlags& f,
               const std::function<Result<Json>()>& call, const std::function<std::string(const Json&)>& started);

// A spec file checked locally with parse_app_spec: the document to send and
// its canonical app id. `path` "-" reads stdin. Errors name the file and, for
// an invalid spec, each bad field.
struct LoadedSpec {
  Json doc;
  std::string id;
};
Result<LoadedSpec> load_spec_file(const std::string& path);

// Prints format_error(e) to stderr; returns the exit code for failures (1).
int report(const Error& e);
// GETs `path`, then prints the raw answer (--json) or the table `view` makes
// of its `key` list, or `empty_note` when the list is empty.
int show_list(const ApiClient& api, const std::string& path, const char* key,
              const std::function<Table(const Json&)>& view, const std::string& empty_note);
// One compact JSON document per line on stdout, flushed (for pipes).
void print_json(const Json& j);
// One line on stdout, flushed.
void print_line(const std::string& line);

// Events of the native stream /api/v1/events/stream.
struct EventQuery {
  std::string app;               // canonical app id, "" = all apps
  std::string type;              // "" = all types
  std::optional<int64_t> since;  // resume after this event id; nullopt = from now
};
// Calls on_event for each event (oldest first) until it returns false.
// A dropped stream is reopened at once after the last event seen; if the API
// cannot be reached, it retries with backoff and gives up after a few
// minutes. Fails at once when the first connection fails or the server
// refuses the stream (4xx).
Result<void> follow_events(const ApiClient& api, EventQuery query, const std::function<bool(const Json&)>& on_event);

// Id of the newest event (0 when none): the point a change's --wait follows from.
Result<int64_t> head_event_id(const ApiClient& api);
// Prints the progress of `deployment_id` of `app_id` from the events after
// `since` until it ends; returns 0 when it succeeded, else reports why.
int wait_for_deployment(const ApiClient& api, const std::string& app_id, const std::string& deployment_id,
                        int64_t since);

}  // namespace stele::cli
