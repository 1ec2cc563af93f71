// Native API: GET /api/v1/backup — the server's state, the releases'
// artifacts and the apps' git repositories as one tar, taken while the server
// runs (docs/architecture.md "Backup and restore"; `stele restore` reads it).
//
// Members, in this order:
//   state/state.db              SQLite snapshot of the Store (VACUUM INTO or a copy)
//   artifacts/sha256/<digest>   every artifact a release names that is present
//   git/<name>.bundle           `git bundle create --all` of <git_dir>/<name>.git
//   manifest.json               counts, repos' HEADs, size and sha256 of each member
// The manifest comes last: a download cut short has none and is refused.
//
// Consistency: the state is snapshotted first, on the io thread, between two
// Store writes. Artifacts are immutable (content-addressed) and hard-linked
// into a staging dir. Bundles are made after the snapshot, so every commit a
// snapshotted release names is in them (refs only move forward; git itself
// makes a bundle's refs and objects agree, even while a push lands). Files are
// hashed and read by a thread of the backup's own, into a bounded queue: the
// io thread only sends chunks.
#include <stdlib.h>

#include <boost/asio/thread_pool.hpp>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <spdlog/spdlog.h>

#include "api/api_impl.h"
#include "artifact/sha256.h"
#include "artifact/tar_writer.h"
#include "net/offload.h"
#include "net/process.h"
#include "net/router.h"
#include "pipeline/git_repos.h"

namespace stele::api {

using net::HttpRequest;
using net::HttpResponse;
namespace fs = std::filesystem;

namespace {

constexpr size_t kChunkBytes = 256 * 1024;
constexpr size_t kQueuedChunks = 4;

// Tar bytes from the archive thread to the connection. Bounded: a slow client
// holds back the reading of files instead of filling memory. Thread-safe.
class ChunkQueue final : public artifact::TarSink {
 public:
  Result<void> write(const char* p, size_t n) override {
    pending_.append(p, n);
    return pending_.size() >= kChunkBytes ? flush() : Result<void>();
  }
  // Producer: queues what write() gathered; fails once cancelled.
  Result<void> flush() {
    std::unique_lock l(m_);
    cv_.wait(l, [this] { return cancelled_ || q_.size() < kQueuedChunks; });
    if (cancelled_) return fail("backup download cancelled");
    if (!pending_.empty()) q_.push_back(std::move(pending_));
    pending_.clear();
    cv_.notify_all();
    return {};
  }
  // Producer: no more chunks; `error` when the archive is incomplete.
  void close(std::optional<Error> error) {
    std::lock_guard l(m_);
    done_ = true;
    error_ = std::move(error);
    cv_.notify_all();
  }
  // Consumer: the next chunk, "" at the end. Blocks.
  std::string pop() {
    std::unique_lock l(m_);
    cv_.wait(l, [this] { return cancelled_ || done_ || !q_.empty(); });
    if (cancelled_ || q_.empty()) return {};
    std::string c = std::move(q_.front());
    q_.pop_front();
    cv_.notify_all();
    return c;
  }
  void cancel() {
    std::lock_guard l(m_);
    cancelled_ = true;
    cv_.notify_all();
  }
  std::optional<Error> error() {
    std::lock_guard l(m_);
    return error_;
  }

 private:
  std::string pending_;  // producer only
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::string> q_;
  bool done_ = false, cancelled_ = false;
  std::optional<Error> error_;
};

// One backup download: its staging dir (removed at the end) and its threads
// (one writes the archive, one waits for its chunks).
struct BackupJob {
  fs::path staging;
  std::vector<std::string> members;  // paths relative to `staging`, archive order
  Json manifest;                     // without "members"
  ChunkQueue queue;
  boost::asio::thread_pool pool{2};
  ~BackupJob() {
    queue.cancel();
    pool.join();
    std::error_code ec;
    if (!staging.empty()) fs::remove_all(staging, ec);
  }
};

std::optional<HttpResponse> backup_auth(ApiServer::Impl& s, const HttpRequest& req) {
  // The state holds the apps' environments (secrets): an admin token is
  // required even on a loopback listener when the server has one.
  if (s.opts.token.empty() || !bearer_secret(req).empty()) return s.check_auth(req, Role::admin, true);
  auto r = HttpResponse::json(401, {{"message", "a backup requires an admin token (Authorization: Bearer <token>); "
                                                "stele up writes it to <data-dir>/token"}});
  r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"stele\"");
  return r;
}

Result<fs::path> make_staging(const ApiServer::Impl& s) {
  std::error_code ec;
  fs::path base = s.opts.artifacts_dir.empty() ? fs::temp_directory_path(ec) : fs::path(s.opts.artifacts_dir).parent_path();
  std::string tmpl = (base / ".backup-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) return fail("cannot create a backup staging dir in " + base.string() + ": " + strerror(errno), 500);
  return fs::path(tmpl);
}

// Links (or copies, across filesystems) each present artifact a release names.
Result<size_t> stage_artifacts(ApiServer::Impl& s, BackupJob& job, size_t& releases) {
  std::set<std::string> digests;
  for (const auto* app : s.cluster.apps())
    for (const auto* r : s.cluster.releases(app->id)) {
      ++releases;
      if (s.artifacts && artifact::is_sha256_hex(r->artifact) && s.artifacts->has(r->artifact)) digests.insert(r->artifact);
    }
  std::error_code ec;
  if (!digests.empty()) fs::create_directories(job.staging / "artifacts" / "sha256", ec);
  for (const auto& d : digests) {
    std::string rel = "artifacts/sha256/" + d;
    fs::create_hard_link(s.artifacts->path(d), job.staging / rel, ec);
    if (ec) fs::copy_file(s.artifacts->path(d), job.staging / rel, ec);
    if (ec) return fail("cannot stage artifact " + d + ": " + ec.message(), 500);
    job.members.push_back(rel);
  }
  return digests.size();
}

std::string read_head(const fs::path& repo) {
  std::ifstream in(repo / "HEAD");
  std::string line;
  std::getline(in, line);
  return line.rfind("ref: ", 0) == 0 ? line.substr(5) : line;
}

net::awaitable<Result<net::ProcessResult>> git_in(const fs::path& repo, std::vector<std::string> args) {
  args.insert(args.begin(), {"git", "--git-dir=" + repo.string()});
  net::ProcessSpec spec{std::move(args), pipeline::GitRepos::git_environment(), ""};
  co_return co_await net::run_process(std::move(spec), std::string(), std::chrono::minutes(10));
}

// A bundle of every ref of `repo` (none for a repository without refs).
net::awaitable<Result<Json>> bundle_repo(ApiServer::Impl& s, BackupJob& job, fs::path repo) {
  std::string name = repo.stem().string();
  Json entry = {{"repo", repo.filename().string()}, {"head", read_head(repo)}, {"bundle", nullptr}, {"app", ""}};
  for (const auto* app : s.cluster.apps())
    if (app_name(app->id) == name) entry["app"] = app->id;
  std::vector<std::string> list_args = {"for-each-ref", "--count=1"};
  auto refs = co_await git_in(repo, std::move(list_args));
  if (!refs || refs->exit_code != 0) co_return fail("cannot list the refs of " + repo.string(), 500);
  if (refs->out.empty()) co_return entry;
  std::string rel = "git/" + name + ".bundle";
  std::vector<std::string> bundle_args = {"bundle", "create", (job.staging / rel).string(), "--all"};
  auto b = co_await git_in(repo, std::move(bundle_args));
  if (!b) co_return fail(b.error());
  if (b->exit_code != 0) co_return fail("git bundle create of " + repo.string() + " failed: " + b->err, 500);
  job.members.push_back(rel);
  entry["bundle"] = rel;
  co_return entry;
}

net::awaitable<Result<Json>> bundle_repos(ApiServer::Impl& s, BackupJob& job) {
  Json out = Json::array();
  std::error_code ec;
  if (s.opts.git_dir.empty() || !fs::is_directory(s.opts.git_dir, ec)) co_return out;
  std::vector<fs::path> repos;
  for (const auto& e : fs::directory_iterator(s.opts.git_dir, ec))
    if (e.path().extension() == ".git" && fs::exists(e.path() / "HEAD", ec)) repos.push_back(e.path());
  std::sort(repos.begin(), repos.end());
  fs::create_directories(job.staging / "git", ec);
  for (const auto& repo : repos) {
    auto entry = co_await bundle_repo(s, job, repo);
    if (!entry) co_return fail(entry.error());
    out.push_back(std::move(*entry));
  }
  co_return out;
}

// On the io thread: snapshot, staging of artifacts, bundles, the manifest's head.
net::awaitable<Result<void>> prepare(ApiServer::Impl& s, BackupJob& job) {
  auto staging = make_staging(s);
  if (!staging) co_return fail(staging.error());
  job.staging = *staging;
  std::error_code ec;
  fs::create_directories(job.staging / "state", ec);
  if (auto r = s.store.snapshot((job.staging / "state" / "state.db").string()); !r)
    co_return fail("state snapshot: " + r.error().message, 500);
  job.members.push_back("state/state.db");
  int64_t last_event = s.store.last_event_id();
  size_t releases = 0;
  auto artifacts = stage_artifacts(s, job, releases);
  if (!artifacts) co_return fail(artifacts.error());
  auto repos = co_await bundle_repos(s, job);
  if (!repos) co_return fail(repos.error());
  job.manifest = {{"format", "stele-backup"},
                  {"formatVersion", 1},
                  {"createdMs", s.cluster.now_ms()},
                  {"counts",
                   {{"apps", s.cluster.apps().size()},
                    {"releases", releases},
                    {"artifacts", *artifacts},
                    {"gitRepos", repos->size()},
                    {"lastEventId", last_event}}},
                  {"git", std::move(*repos)}};
  co_return Result<void>();
}

Result<void> add_member(artifact::TarWriter& tar, const fs::path& root, const std::string& rel, Json& members) {
  std::string abs = (root / rel).string();
  auto sha = artifact::sha256_file(abs);
  if (!sha) return fail(sha.error());
  std::error_code ec;
  uint64_t size = fs::file_size(abs, ec);
  if (ec) return fail("backup member " + rel + ": " + ec.message());
  members.push_back({{"name", rel}, {"size", size}, {"sha256", *sha}});
  artifact::TreeEntry e{rel, '0', 0644, size, ""};
  return tar.add(e, root);
}

// On the job's thread: every member, then the manifest, into job.queue.
void write_archive(BackupJob& job) {
  artifact::TarWriter tar(job.queue, "backup");
  auto r = [&]() -> Result<void> {
    Json members = Json::array();
    for (const auto& rel : job.members)
      if (auto a = add_member(tar, job.staging, rel, members); !a) return a;
    Json manifest = job.manifest;
    manifest["members"] = std::move(members);
    {
      std::ofstream out(job.staging / "manifest.json", std::ios::binary | std::ios::trunc);
      out << manifest.dump(2) << "\n";
      if (!out.flush()) return fail("cannot write the backup manifest");
    }
    std::error_code ec;
    artifact::TreeEntry e{"manifest.json", '0', 0644, fs::file_size(job.staging / "manifest.json", ec), ""};
    if (auto a = tar.add(e, job.staging); !a) return a;
    if (auto f = tar.finish(); !f) return f;
    return job.queue.flush();
  }();
  job.queue.close(r ? std::nullopt : std::optional<Error>(r.error()));
}

net::awaitable<void> stream_archive(std::shared_ptr<BackupJob> job, net::StreamWriter& w) {
  BackupJob* raw = job.get();  // the job outlives its thread: ~BackupJob joins it
  boost::asio::post(job->pool, [raw] { write_archive(*raw); });
  size_t sent = 0;
  for (;;) {
    auto next = [raw] { return raw->queue.pop(); };
    std::string chunk = co_await net::offload(job->pool, next);
    if (chunk.empty()) break;
    sent += chunk.size();
    if (!co_await w.write(std::move(chunk))) break;
  }
  if (auto e = job->queue.error()) spdlog::warn("backup cut short after {} bytes: {}", sent, e->message);
  else if (w.closed()) spdlog::warn("backup: the client went away after {} bytes", sent);
  else spdlog::info("backup sent: {} bytes, {} members", sent, job->members.size() + 1);
}

net::awaitable<HttpResponse> get_backup(ApiServer::Impl& s, HttpRequest& req) {
  if (auto denied = backup_auth(s, req)) co_return *denied;
  auto job = std::make_shared<BackupJob>();
  auto ready = co_await prepare(s, *job);
  if (!ready) co_return HttpResponse::error(ready.error(), 500);
  HttpResponse res;
  res.content_type = "application/x-tar";
  res.headers.emplace_back("Content-Disposition", "attachment; filename=\"stele-backup.tar\"");
  res.stream = [job](net::StreamWriter& w) -> net::awaitable<void> { co_await stream_archive(job, w); };
  co_return res;
}

}  // namespace

void add_backup_routes(net::Router& r, ApiServer::Impl& s) {
  r.add("GET", "/api/v1/backup", [&s](HttpRequest& req) { return get_backup(s, req); });
}

}  // namespace stele::api
