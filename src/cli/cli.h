// The `stele <verb>` client of the HTTP API (design.md "Roles", docs/api.md,
// docs/pipeline.md "CLI"): apps, app, deploy, scale, restart, rollback,
// releases, ps, nodes, deployments, events, create, pipeline, run, config
// (with config set / config unset), logs, tokens (create / list / rm).
//
// Global client options, accepted before the verb (`stele --api URL apps`)
// and after it (`stele apps --api URL`):
//   --api URL       else $STELE_API, else http://127.0.0.1:7070
//   --token T       else $STELE_TOKEN, else the token file `stele up` writes:
//                   <--data-dir>/token, or $STELE_DATA_DIR/token then ./stele-data/token
//   --json          print the server's JSON answers (events: one per line)
//   --data-dir DIR  where to look for the token file
// Failures print one line "stele: <message>" to stderr and exit 1.
#pragma once
#include <CLI/CLI.hpp>

namespace stele::cli {

// Registers the client verbs as subcommands of `app` and the global client
// options on `app` itself (in the option group "Client options"). The verbs
// own the option storage, so `app` must outlive run_client().
void add_client_commands(CLI::App& app);

// After app.parse(): runs the client verb that was selected and returns the
// process exit code (0 = success), or -1 if no client verb was selected.
// Blocks until the verb is done (`events` and `--wait` follow a stream).
int run_client(CLI::App& app);

}  // namespace stele::cli
