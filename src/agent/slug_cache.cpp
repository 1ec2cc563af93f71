#include "agent/slug_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <utility>  // before Asio with g++ 12

#include <spdlog/spdlog.h>

#include "agent/executor_io.h"
#include "net/offload.h"
#include "artifact/sha256.h"
#include "net/http_client.h"
#include "net/signal.h"

namespace stele::agent {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr const char* kSuffix = ".tar.zst";
constexpr const char* kTempPrefix = ".fetch-";
constexpr int64_t kStaleTempSeconds = 3600;

// The body of a failed response, as the server's message when it is JSON.
std::string http_cause(int status, const std::string& body) {
  std::string text = body.substr(0, 300);
  if (auto j = parse_json(body); j && j->is_object() && (*j)["message"].is_string())
    text = (*j)["message"].get<std::string>();
  return "HTTP " + std::to_string(status) + (text.empty() ? "" : ": " + text);
}

// A temp file being filled with a download and hashed on the way.
class VerifiedFile {
 public:
  explicit VerifiedFile(const std::string& dir, const std::string& digest)
      : tmpl_(dir + "/" + kTempPrefix + digest + "-XXXXXX") {
    fd_.reset(::mkostemp(tmpl_.data(), O_CLOEXEC));
    if (!fd_) error_ = errno_message("create " + tmpl_, errno);
  }
  ~VerifiedFile() {
    if (!committed_) ::unlink(tmpl_.c_str());
  }
  bool write(std::string_view data) {
    if (prefix_.size() < 4096) prefix_.append(data.substr(0, 4096 - prefix_.size()));
    hash_.update(data);
    for (size_t off = 0; off < data.size();) {
      ssize_t n = ::write(fd_.get(), data.data() + off, data.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return error_ = errno_message("write " + tmpl_, errno), false;
      off += size_t(n);
    }
    return true;
  }
  // Verifies and renames into place.
  Result<void> commit(const std::string& digest, const std::string& final_path) {
    std::string got = hash_.final();
    if (got != digest) return fail("digest mismatch: got " + got);
    ::fchmod(fd_.get(), 0644);
    if (::fsync(fd_.get()) != 0) return fail(errno_message("fsync " + tmpl_, errno));
    if (::rename(tmpl_.c_str(), final_path.c_str()) != 0) return fail(errno_message("rename to " + final_path, errno));
    committed_ = true;
    return {};
  }
  const std::string& error() const { return error_; }
  const std::string& prefix() const { return prefix_; }

 private:
  std::string tmpl_, error_, prefix_;
  UniqueFd fd_;
  artifact::Sha256 hash_;
  bool committed_ = false;
};

void touch(const std::string& path) { ::utimensat(AT_FDCWD, path.c_str(), nullptr, 0); }

}  // namespace

Result<std::string> download_slug(const std::string& url, const net::Headers& headers, const std::string& dir,
                                  const std::string& digest) {
  std::string final_path = dir + "/" + digest + kSuffix;
  if (::access(final_path.c_str(), F_OK) == 0) {
    touch(final_path);
    return final_path;
  }
  VerifiedFile file(dir, digest);
  if (!file.error().empty()) return fail(file.error());
  // The status comes back with the body's end: an error body lands in the
  // temp file too (discarded), its start serves as the message.
  auto r = net::http_stream_sync("GET", url, "", headers, [&](std::string_view piece) { return file.write(piece); },
                                 30s);
  if (!r) return fail(r.error().message);
  if (!file.error().empty()) return fail(file.error());
  if (*r != 200) return fail(http_cause(*r, file.prefix()));
  if (auto c = file.commit(digest, final_path); !c) return fail(c.error());
  return final_path;
}

std::vector<std::string> evict_slugs(const std::string& dir, size_t keep, const std::set<std::string>& protect) {
  struct Item {
    std::string digest;
    int64_t mtime;
  };
  std::vector<Item> items;
  std::error_code ec;
  int64_t now = ::time(nullptr);
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    struct stat st;
    if (::lstat(e.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (name.rfind(kTempPrefix, 0) == 0 || name.rfind(".slug-", 0) == 0) {
      if (now - st.st_mtime > kStaleTempSeconds) ::unlink(e.path().c_str());
      continue;
    }
    if (name.size() <= strlen(kSuffix) || !name.ends_with(kSuffix)) continue;
    std::string digest = name.substr(0, name.size() - strlen(kSuffix));
    if (artifact::is_sha256_hex(digest)) items.push_back({digest, int64_t(st.st_mtime)});
  }
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.mtime > b.mtime; });
  std::vector<std::string> removed;
  for (size_t i = keep; i < items.size(); ++i) {
    if (protect.count(items[i].digest)) continue;
    if (::unlink((dir + "/" + items[i].digest + kSuffix).c_str()) == 0) removed.push_back(items[i].digest);
  }
  return removed;
}

struct SlugCache::Fetch {
  explicit Fetch(boost::asio::any_io_executor ex) : done_signal(std::move(ex)) {}
  bool done = false;
  Result<std::string> result = fail("in flight");
  net::AsyncSignal done_signal;
};

SlugCache::SlugCache(boost::asio::any_io_executor io, boost::asio::thread_pool& workers, SlugCacheOptions opts)
    : io_(std::move(io)), workers_(workers), opts_(std::move(opts)) {
  std::error_code ec;
  fs::create_directories(opts_.dir, ec);
  if (ec) spdlog::error("slug cache: cannot create {}: {}", opts_.dir, ec.message());
}

std::string SlugCache::path(const std::string& digest) const { return opts_.dir + "/" + digest + kSuffix; }

void SlugCache::pin(const std::string& digest, const std::string& task_id) {
  if (!digest.empty()) pins_[task_id] = digest;
}

void SlugCache::unpin(const std::string& task_id) { pins_.erase(task_id); }

std::set<std::string> SlugCache::protected_digests() const {
  std::set<std::string> out;
  for (const auto& [task, digest] : pins_) out.insert(digest);
  for (const auto& [digest, f] : fetches_) out.insert(digest);
  return out;
}

net::awaitable<Result<std::string>> SlugCache::acquire(const std::string& digest, const std::string& task_id) {
  if (!artifact::is_sha256_hex(digest)) co_return fail("not a sha256 digest");
  pin(digest, task_id);
  if (auto it = fetches_.find(digest); it != fetches_.end()) {
    auto shared = it->second;  // someone else downloads it: wait for theirs
    while (!shared->done) co_await shared->done_signal.wait(1s);
    co_return shared->result;
  }
  auto f = std::make_shared<Fetch>(io_);
  fetches_[digest] = f;
  auto job = [url = opts_.server_url() + "/api/v1/artifacts/" + digest, headers = opts_.headers, dir = opts_.dir,
              digest] { return download_slug(url, headers, dir, digest); };
  f->result = co_await net::offload(workers_, std::move(job));
  f->done = true;
  fetches_.erase(digest);
  f->done_signal.notify();
  if (f->result) co_await evict();
  co_return f->result;
}

net::awaitable<void> SlugCache::evict() {
  auto job = [dir = opts_.dir, keep = opts_.max_slugs, protect = protected_digests()] {
    return evict_slugs(dir, keep, protect);
  };
  auto removed = co_await net::offload(workers_, std::move(job));
  for (const auto& d : removed) spdlog::info("slug cache: evicted {}", d);
}

}  // namespace stele::agent
