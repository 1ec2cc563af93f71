#include "restore.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <vector>

#include <fmt/format.h>

#include "artifact/sha256.h"
#include "artifact/tar_reader.h"
#include "common/json.h"
#include "common/result.h"
#include "net/process.h"
#include "store/store.h"

extern char** environ;

namespace fs = std::filesystem;
using namespace stele;

namespace {

struct TarMember {
  std::string name;
  uint64_t size = 0;
  std::streamoff offset = 0;  // of its data
};

// The regular files of a ustar archive; a bad header is an error naming the
// member before it.
Result<std::vector<TarMember>> list_tar(std::ifstream& in) {
  std::vector<TarMember> out;
  artifact::TarEntry over;  // from a pax header, for the next entry
  char h[artifact::kTarBlock];
  auto after = [&] { return out.empty() ? std::string("the start") : "member " + out.back().name; };
  while (in.read(h, sizeof h)) {
    if (artifact::tar_end_block(h)) return out;
    auto e = artifact::decode_tar_header(h);
    if (!e) return fail(e.error().message + " after " + after() + " (the backup is damaged)");
    std::streamoff data = in.tellg();
    uint64_t size = e->size;
    if (e->type == 'x') {
      if (size > artifact::kMaxTarMeta) return fail("oversized pax header after " + after() + " (the backup is damaged)");
      std::string pax(size, '\0');
      in.read(pax.data(), std::streamsize(size));
      artifact::apply_pax(pax, over);
    } else if (e->type == '0' || e->type == '\0') {
      if (over.size) size = over.size;
      out.push_back({over.path.empty() ? e->path : over.path, size, data});
      over = {};
    }
    in.seekg(data + std::streamoff(size + artifact::tar_padding(size)));
  }
  return fail("the archive ends without its end marker after " + after() + " (truncated?)");
}

// Calls `sink` with the member's bytes in pieces.
Result<void> read_member(std::ifstream& in, const TarMember& m, const std::function<Result<void>(std::string_view)>& sink) {
  in.clear();
  in.seekg(m.offset);
  std::string buf(1 << 20, '\0');
  for (uint64_t left = m.size; left > 0;) {
    size_t n = size_t(std::min<uint64_t>(left, buf.size()));
    if (!in.read(buf.data(), std::streamsize(n))) return fail("member " + m.name + " is truncated");
    if (auto r = sink(std::string_view(buf.data(), n)); !r) return r;
    left -= n;
  }
  return {};
}

// The manifest, after checking every member's size and sha256 against it.
Result<Json> verify_backup(std::ifstream& in, const std::vector<TarMember>& members) {
  auto mf = std::find_if(members.begin(), members.end(), [](const TarMember& m) { return m.name == "manifest.json"; });
  if (mf == members.end()) return fail("no manifest.json: not a Stele backup, or a download cut short");
  std::string text;
  if (auto r = read_member(in, *mf, [&](std::string_view d) { text += d; return Result<void>(); }); !r) return fail(r.error());
  auto manifest = parse_json(text);
  if (!manifest || manifest->value("format", "") != "stele-backup") return fail("manifest.json is not a Stele backup manifest");
  std::map<std::string, Json> want;
  for (const auto& m : manifest->value("members", Json::array())) want[m.value("name", "")] = m;
  for (const auto& m : members) {
    if (m.name == "manifest.json") continue;
    auto it = want.find(m.name);
    if (it == want.end()) return fail("member " + m.name + " is not in the manifest");
    artifact::Sha256 h;
    if (auto r = read_member(in, m, [&](std::string_view d) { h.update(d); return Result<void>(); }); !r) return fail(r.error());
    if (it->second.value("size", uint64_t(0)) != m.size || it->second.value("sha256", "") != h.final())
      return fail("member " + m.name + " does not match its sha256 in the manifest (the backup is corrupted)");
    want.erase(it);
  }
  if (!want.empty()) return fail("member " + want.begin()->first + " of the manifest is missing from the archive");
  return *manifest;
}

Result<void> extract_member(std::ifstream& in, const TarMember& m, const fs::path& dest) {
  std::error_code ec;
  fs::create_directories(dest.parent_path(), ec);
  fs::path tmp = dest.string() + ".restore-tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    auto r = read_member(in, m, [&](std::string_view d) {
      return out.write(d.data(), std::streamsize(d.size())) ? Result<void>() : fail("cannot write " + tmp.string());
    });
    if (!r) return r;
    if (!out.flush()) return fail("cannot write " + tmp.string());
  }
  fs::rename(tmp, dest, ec);
  if (ec) return fail("cannot write " + dest.string() + ": " + ec.message());
  return {};
}

Result<void> run_git(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawnp(&pid, "git", nullptr, nullptr, argv.data(), environ) != 0) return fail("cannot run git");
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return fail("git " + args[1] + " " + args[2] + " failed (see above)");
  return {};
}

// A bare repository as GitRepos keeps it, filled from the member `bundle`.
Result<void> restore_repo(std::ifstream& in, const std::vector<TarMember>& members, const Json& entry, const fs::path& git_dir) {
  std::string repo_name = entry.value("repo", "");
  if (repo_name.empty() || repo_name.find('/') != std::string::npos) return fail("bad git repo name in the manifest");
  fs::path repo = git_dir / repo_name;
  std::error_code ec;
  fs::remove_all(repo, ec);
  if (auto r = run_git({"git", "init", "-q", "--bare", "-b", "main", repo.string()}); !r) return r;
  std::string bundle = entry["bundle"].is_string() ? entry["bundle"].get<std::string>() : "";
  if (!bundle.empty()) {
    auto m = std::find_if(members.begin(), members.end(), [&](const TarMember& t) { return t.name == bundle; });
    if (m == members.end()) return fail("bundle " + bundle + " is missing");
    fs::path file = git_dir / (repo_name + ".restore.bundle");
    if (auto r = extract_member(in, *m, file); !r) return r;
    auto fetched = run_git({"git", "--git-dir=" + repo.string(), "fetch", "-q", file.string(), "+refs/*:refs/*"});
    fs::remove(file, ec);
    if (!fetched) return fetched;
  }
  std::string head = entry.value("head", "");
  if (head.rfind("refs/", 0) == 0)
    if (auto r = run_git({"git", "--git-dir=" + repo.string(), "symbolic-ref", "HEAD", head}); !r) return r;
  return run_git({"git", "--git-dir=" + repo.string(), "config", "http.receivepack", "true"});
}

Result<void> check_restore_target(const RestoreFlags& r, const fs::path& root, const fs::path& target) {
  for (const fs::path& pidfile : {root / "stele.pid", root.parent_path() / "stele.pid"}) {
    pid_t pid = 0;
    std::ifstream(pidfile) >> pid;
    if (pid > 0 && kill(pid, 0) == 0)
      return fail("a Stele server (pid " + std::to_string(pid) + ", " + pidfile.string() + ") runs on " +
                  root.string() + ": stop it first (stele down)");
  }
  std::error_code ec;
  bool empty = !fs::exists(target, ec) || fs::is_empty(target, ec);
  if (!empty && !r.force) return fail(target.string() + " is not empty; restore into a fresh data dir, or --force to write over it");
  return {};
}

Result<Json> restore_backup(const RestoreFlags& r) {
  fs::path root = fs::absolute(r.dir);
  fs::path target = r.up ? root / "server" : root;
  if (auto ok = check_restore_target(r, root, target); !ok) return fail(ok.error());
  std::ifstream in(r.file, std::ios::binary);
  if (!in) return fail("cannot read " + r.file + ": " + strerror(errno));
  auto members = list_tar(in);
  if (!members) return fail(members.error());
  auto manifest = verify_backup(in, *members);
  if (!manifest) return fail(manifest.error());
  std::error_code ec;
  fs::create_directories(target, ec);
  for (const char* stale : {"state.db-wal", "state.db-shm"}) fs::remove(target / stale, ec);
  for (const auto& m : *members) {
    fs::path dest;
    if (m.name == "state/state.db") dest = target / "state.db";
    else if (m.name.rfind("artifacts/sha256/", 0) == 0 && artifact::is_sha256_hex(m.name.substr(17))) dest = target / m.name;
    else continue;
    if (auto w = extract_member(in, m, dest); !w) return fail(w.error());
  }
  for (const auto& entry : manifest->value("git", Json::array()))
    if (auto g = restore_repo(in, *members, entry, target / "git"); !g) return fail(g.error());
  auto st = store::open_sqlite_store((target / "state.db").string());
  if (!st) return fail("the restored state does not open: " + st.error().message);
  return Json{{"dataDir", target.string()}, {"counts", manifest->value("counts", Json::object())},
              {"createdMs", manifest->value("createdMs", int64_t(0))}};
}

}  // namespace

int run_restore(const RestoreFlags& r) {
  auto done = restore_backup(r);
  if (!done) {
    fmt::print(stderr, "stele: restore {}: {}\n", r.file, done.error().message);
    return 1;
  }
  if (r.json) {
    fmt::print("{}\n", done->dump());
    return 0;
  }
  const Json& c = (*done)["counts"];
  fmt::print("Restored {} into {}: {} app(s), {} release(s), {} artifact(s), {} git repo(s), events up to id {}.\n"
             "Start it with `stele {} --data-dir {}`.\n",
             r.file, (*done)["dataDir"].get<std::string>(), c.value("apps", 0), c.value("releases", 0),
             c.value("artifacts", 0), c.value("gitRepos", 0), c.value("lastEventId", 0), r.up ? "up" : "server", r.dir);
  return 0;
}

void add_restore_command(CLI::App& app, CLI::App*& restore, RestoreFlags& r) {
  restore = app.add_subcommand("restore", "write a `stele backup` FILE into a data dir (offline: the server must be stopped)");
  restore->add_option("FILE", r.file, "the backup (a tar written by `stele backup`)")->required()->check(CLI::ExistingFile);
  restore->add_option("--data-dir", r.dir, "data dir to restore into (state.db, artifacts/, git/)")->required();
  restore->add_flag("--up", r.up, "the layout of `stele up` (DIR/server/...) instead of `stele server`'s");
  restore->add_flag("--force", r.force, "write over a non-empty data dir (its git repos are replaced)");
  restore->add_flag("--json", r.json, "print what was restored as JSON");
}
