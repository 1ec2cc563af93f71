// SlugCache: the agent's copy of the artifacts (slugs, build sources) its
// tasks run from, as <dir>/<digest>.tar.zst.
//
// A missing artifact is fetched with GET <server>/api/v1/artifacts/<digest>
// into a temp file in <dir>, hashed while written, fsynced and renamed into
// place only when its sha256 equals the digest: a reader never sees a partial
// or wrong file. Concurrent acquire() calls for one digest share a download.
//
// Bounded: after each fetch, slugs beyond `max_slugs` are removed, least
// recently used first (use = file mtime, touched on every acquire, so the
// order survives restarts) -- never one pinned by a live task or in flight.
//
// Threading: all methods on the io thread that owns the cache; downloads,
// hashing and eviction run on the worker pool.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <utility>  // before Asio with g++ 12
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/thread_pool.hpp>

#include "common/result.h"
#include "net/http.h"

namespace stele::agent {

struct SlugCacheOptions {
  std::string dir;         // <agent data>/slugs
  std::function<std::string()> server_url;  // the server in use: "http://host:port"
  net::Headers headers;    // the agent's token
  size_t max_slugs = 20;
};

class SlugCache {
 public:
  SlugCache(boost::asio::any_io_executor io, boost::asio::thread_pool& workers, SlugCacheOptions opts);

  // The local path of artifact `digest`, fetched first when missing, and
  // pinned for `task_id` (even on failure; unpin() releases it). Errors
  // give the cause: "not a sha256 digest", "HTTP 404: ...", "digest
  // mismatch: got <x>", connection and disk errors.
  net::awaitable<Result<std::string>> acquire(const std::string& digest, const std::string& task_id);
  // Keeps `digest` from eviction while `task_id` lives (re-pinning after an
  // agent restart).
  void pin(const std::string& digest, const std::string& task_id);
  void unpin(const std::string& task_id);
  // Removes least recently used slugs beyond max_slugs (not pinned ones).
  net::awaitable<void> evict();

  const std::string& dir() const { return opts_.dir; }
  std::string path(const std::string& digest) const;

 private:
  struct Fetch;
  std::set<std::string> protected_digests() const;

  boost::asio::any_io_executor io_;
  boost::asio::thread_pool& workers_;
  SlugCacheOptions opts_;
  std::map<std::string, std::string> pins_;                // task id -> digest
  std::map<std::string, std::shared_ptr<Fetch>> fetches_;  // digest -> download in flight
};

// Blocking pieces, exposed for tests.
// Downloads `url` into <dir>/<digest>.tar.zst, verified (see above).
Result<std::string> download_slug(const std::string& url, const net::Headers& headers,
                                  const std::string& dir, const std::string& digest);
// Removes <dir>/<digest>.tar.zst files beyond `keep`, oldest mtime first,
// skipping `protect`; also stale temp files. Returns the digests removed.
std::vector<std::string> evict_slugs(const std::string& dir, size_t keep, const std::set<std::string>& protect);

}  // namespace stele::agent
