// Pipeline: turns a pushed commit into a release and rolls it out
// (docs/pipeline.md). For each push to an app's deploy branch it reads
// stele.json at the commit, reuses the slug of an already built git tree or
// has an agent build one, runs the test step and a smoke instance, marks the
// release ready or failed (once), runs the release step and hands the release
// to the Cluster's deployment controller, following the deployment to its end.
// Everything it does, and every step's output, goes to the release log (in
// the log store) that the push terminal, `stele pipeline` and the API follow.
//
// Threading: one io_context thread, like the Cluster it drives. The Cluster's
// events must be delivered with on_event() from a posted handler, never from
// inside a Cluster call.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <utility>  // before asio, for g++ 12
#include <boost/asio/io_context.hpp>

#include "artifact/artifact_store.h"
#include "common/json.h"
#include "common/result.h"
#include "deploy/cluster.h"
#include "logs/log_store.h"
#include "net/http.h"
#include "net/signal.h"
#include "pipeline/git_repos.h"

namespace stele::pipeline {

struct PipelineOptions {
  std::string data_dir;              // <server data>/pipeline: temp trees
  logs::LogStore* logs = nullptr;    // the release logs go here (nullptr: nowhere)
  double build_cpus = 1.0;           // defaults for a build (stele.json's build may set its own)
  double build_mem = 1024;           // MB
  int64_t build_timeout_s = 900;
  int64_t test_timeout_s = 600;
  int64_t release_timeout_s = 600;
  int64_t run_timeout_s = 3600;
  int64_t smoke_timeout_s = 120;     // beyond the health checks' own grace period
  int retain_releases = 10;          // ready releases per app whose slugs are kept
  // Several servers (design.md): the live servers still without artifact
  // `digest`; a release becomes ready only once none is left, or fails
  // after replica_timeout_s. Unset: one server, nothing to wait for.
  std::function<std::vector<std::string>(const std::string& digest)> missing_replicas;
  int64_t replica_timeout_s = 120;
};

struct RefUpdate {
  std::string before, after, ref;    // as git's post-receive hook gets them
};

struct ReceiveResult {
  int64_t release = 0;               // 0: nothing to build (see message)
  std::string message;               // e.g. "refs/heads/dev is not the deploy branch (main)"
};

class Pipeline {
 public:
  Pipeline(boost::asio::io_context& io, deploy::Cluster& cluster, GitRepos& git,
           artifact::ArtifactStore& artifacts, PipelineOptions opts);
  ~Pipeline();

  // Releases left building/testing by a previous server process fail (their
  // steps' results are gone with it). Call after Cluster::load().
  void recover();

  // A push (or a webhook's fetch) updated refs of the app's repository:
  // starts the pipeline for the deploy-branch update. Returns once the
  // release exists; the pipeline runs on in the background.
  net::awaitable<Result<ReceiveResult>> receive(const std::string& app_id, const std::vector<RefUpdate>& updates,
                                                const std::string& cause, const std::string& actor);

  // The Cluster's events (task ends and health, deployments).
  void on_event(const Json& e);

  // ---- the release log: records tagged stele.<app name>.pipeline in the
  // log store (pipeline lines and the steps' output)
  // True once the release's pipeline (and the deployment it started) ended,
  // or when no pipeline runs for it in this process.
  bool finished(const std::string& app_id, int64_t release) const;
  // Notified after every pipeline line is stored and at every pipeline end.
  net::AsyncSignal& changed();

  // ---- one-off runs (`stele run`)
  // Starts `cmd` with the release's slug and environment; returns the task id.
  Result<std::string> start_run(const std::string& app_id, std::optional<int64_t> release, const std::string& cmd,
                                const std::string& actor);
  // The final task_status event of a step task, once it ended.
  std::optional<Json> task_end(const std::string& task_id) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// GitHub's X-Hub-Signature-256 check: "sha256=" + hex HMAC-SHA256(secret, body).
bool valid_hub_signature(const std::string& secret, std::string_view body, const std::string& header);

}  // namespace stele::pipeline
