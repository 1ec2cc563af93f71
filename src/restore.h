// `stele restore FILE --data-dir DIR`: writes a `stele backup` into a data
// dir, offline (docs/architecture.md "Backup and restore"). Part of the
// `stele` executable: it needs the store, artifact and git layouts that the
// CLI library does not link.
#pragma once
#include <string>

#include <CLI/CLI.hpp>

struct RestoreFlags {
  std::string file, dir;
  bool force = false, up = false, json = false;
};

// Registers `stele restore` on app; `restore` is set to its subcommand.
void add_restore_command(CLI::App& app, CLI::App*& restore, RestoreFlags& r);
int run_restore(const RestoreFlags& r);
