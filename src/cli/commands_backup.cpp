// `stele backup FILE`: downloads GET /api/v1/backup (a tar, manifest last)
// to FILE atomically (FILE.partial, then rename). `stele restore` (offline,
// in main.cpp: it needs the artifact and store libraries) reads it back.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli/commands.h"

namespace stele::cli {
namespace {

namespace fs = std::filesystem;

struct BackupArgs {
  std::string file;
};

uint64_t octal(const char* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n && p[i] >= '0' && p[i] <= '7'; ++i) v = v * 8 + uint64_t(p[i] - '0');
  return v;
}

// The manifest.json member of a downloaded backup (the last one), or an error
// when the archive ends without it (a download cut short).
Result<Json> read_manifest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char h[512];
  while (in.read(h, sizeof h) && h[0] != '\0') {
    std::string name(h, strnlen(h, 100));
    uint64_t size = octal(h + 124, 12);
    if (name == "manifest.json" && h[156] == '0') {
      std::string body(size, '\0');
      if (!in.read(body.data(), std::streamsize(size))) break;
      auto j = parse_json(body);
      if (!j) return fail("the backup's manifest.json is not JSON: " + j.error().message);
      return *j;
    }
    in.seekg(std::streamoff((size + 511) / 512 * 512), std::ios::cur);
  }
  return fail("the download has no manifest.json: it was cut short (see the server's log)");
}

std::string human(uint64_t n) {
  char buf[32];
  if (n >= (1u << 20)) snprintf(buf, sizeof buf, "%.1f MiB", double(n) / (1 << 20));
  else snprintf(buf, sizeof buf, "%.1f KiB", double(n) / 1024);
  return buf;
}

int run_backup(const ApiClient& api, const BackupArgs& a) {
  std::string partial = a.file + ".partial";
  std::ofstream out(partial, std::ios::binary | std::ios::trunc);
  if (!out) return report(Error{"cannot write " + partial + ": " + strerror(errno), {}, 0});
  uint64_t bytes = 0, shown = 0;
  std::string error_body;
  bool ok_status = true, write_failed = false;
  auto status = api.stream("/api/v1/backup", {}, [&](std::string_view data) {
    if (!ok_status) {
      error_body.append(data.substr(0, 64 * 1024));
      return true;
    }
    if (!out.write(data.data(), std::streamsize(data.size()))) {
      write_failed = true;
      return false;
    }
    bytes += data.size();
    if (bytes - shown >= (8u << 20)) {
      shown = bytes;
      std::cerr << "\rstele: backup: " << human(bytes) << " received" << std::flush;
    }
    return true;
  }, std::chrono::minutes(5));
  if (shown) std::cerr << "\n";
  out.close();
  auto cleanup = [&] { fs::remove(partial); };
  if (!status) return cleanup(), report(status.error());
  if (*status < 200 || *status >= 300) return cleanup(), report(api.http_error(*status, error_body));
  if (write_failed || !out) return cleanup(), report(Error{"writing " + partial + " failed: " + strerror(errno), {}, 0});
  auto manifest = read_manifest(partial);
  if (!manifest) return cleanup(), report(manifest.error());
  std::error_code ec;
  fs::rename(partial, a.file, ec);
  if (ec) return cleanup(), report(Error{"cannot rename " + partial + " to " + a.file + ": " + ec.message(), {}, 0});
  Json counts = manifest->value("counts", Json::object());
  if (api.options().json) {
    print_json({{"file", a.file}, {"bytes", bytes}, {"counts", counts}});
    return 0;
  }
  print_line("Backup written to " + a.file + " (" + human(bytes) + "): " +
             std::to_string(counts.value("apps", 0)) + " app(s), " + std::to_string(counts.value("releases", 0)) +
             " release(s), " + std::to_string(counts.value("artifacts", 0)) + " artifact(s), " +
             std::to_string(counts.value("gitRepos", 0)) + " git repo(s), events up to id " +
             std::to_string(counts.value("lastEventId", 0)));
  return 0;
}

}  // namespace

void add_backup_commands(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags) {
  auto a = std::make_shared<BackupArgs>();
  auto& c = add_verb(root, flags, "backup",
                     {"Download a consistent backup of the running server (state, artifacts, git repos) to FILE",
                      "The server snapshots its state between two writes, then streams a tar of the state,\n"
                      "every release's artifact, a bundle of each app's git repository and a manifest with\n"
                      "each member's sha256. FILE appears only once complete. It holds the apps' environments:\n"
                      "keep it as secret as the token, which the call requires. `stele restore` reads it.",
                      "  stele backup stele-$(date +%F).tar\n  stele backup /backups/stele.tar --api http://10.0.0.5:7070"});
  c.add_option("FILE", a->file, "Where to write the backup (a tar)")->required();
  c.set_runner([a](const ApiClient& api) { return run_backup(api, *a); });
}

}  // namespace stele::cli
