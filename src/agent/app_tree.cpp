#include "agent/app_tree.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <vector>

#include <spdlog/spdlog.h>

#include "agent/executor_io.h"
#include "artifact/slug.h"

namespace stele::agent {

namespace fs = std::filesystem;

Result<void> chown_tree(const std::string& root, uint32_t uid, uint32_t gid) {
  if (::lchown(root.c_str(), uid, gid) != 0) return fail(errno_message("chown " + root, errno));
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec), end;
  for (; !ec && it != end; it.increment(ec))
    if (::lchown(it->path().c_str(), uid, gid) != 0) return fail(errno_message("chown " + it->path().string(), errno));
  if (ec) return fail("chown " + root + ": " + ec.message());
  return {};
}

Result<void> install_app_tree(const std::string& slug_path, const std::string& dest,
                              const std::optional<TaskCredentials>& owner) {
  if (::mkdir(dest.c_str(), 0755) != 0) return fail(errno_message("mkdir " + dest, errno));
  if (!slug_path.empty())
    if (auto r = artifact::unpack_slug(slug_path, dest); !r) return r;
  if (::chmod(dest.c_str(), 0755) != 0) return fail(errno_message("chmod " + dest, errno));
  if (owner) return chown_tree(dest, owner->uid, owner->gid);
  return {};
}

uint64_t tree_bytes(const std::string& root, uint64_t stop_after) {
  uint64_t total = 0;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
  for (; !ec && it != end && total <= stop_after; it.increment(ec)) {
    struct stat st;
    if (::lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode)) total += uint64_t(st.st_size);
  }
  return total;
}

namespace {

void remove_cache(const fs::path& p) {
  std::error_code ec;
  fs::remove_all(p, ec);  // removes symlinks, never follows them
  if (ec) spdlog::warn("build cache: cannot remove {}: {}", p.string(), ec.message());
}

// Caches beyond the limit, oldest use first; the current one and those of
// running builds stay.
void evict_caches(const std::string& dir, const std::string& current, const std::set<std::string>& in_use,
                  size_t max_caches) {
  std::vector<std::pair<int64_t, fs::path>> caches;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    struct stat st;
    if (::lstat(e.path().c_str(), &st) == 0 && S_ISDIR(st.st_mode)) caches.emplace_back(st.st_mtime, e.path());
  }
  std::sort(caches.begin(), caches.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  size_t kept = 0;
  for (const auto& [mtime, p] : caches) {
    std::string name = p.filename().string();
    if (name == current || in_use.count(name) || ++kept <= max_caches - 1) continue;
    remove_cache(p);
  }
}

}  // namespace

Result<std::string> prepare_build_cache(const std::string& dir, const std::string& key, const TaskCredentials& owner,
                                        const std::set<std::string>& in_use, const BuildCacheLimits& limits) {
  if (!is_safe_task_id(key) || key.front() == '.') return fail("invalid cache key '" + key + "'");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fail("cannot create " + dir + ": " + ec.message());
  ::chmod(dir.c_str(), 0755);
  std::string path = dir + "/" + key;
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0 && (!S_ISDIR(st.st_mode) || st.st_uid != owner.uid)) remove_cache(path);
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return fail(errno_message("mkdir " + path, errno));
  if (::lchown(path.c_str(), owner.uid, owner.gid) != 0) return fail(errno_message("chown " + path, errno));
  ::utimensat(AT_FDCWD, path.c_str(), nullptr, AT_SYMLINK_NOFOLLOW);  // marks it used: LRU order
  evict_caches(dir, key, in_use, std::max<size_t>(1, limits.max_caches));
  return path;
}

bool trim_build_cache(const std::string& dir, const std::string& key, const BuildCacheLimits& limits) {
  std::string path = dir + "/" + key;
  if (tree_bytes(path, limits.max_bytes) <= limits.max_bytes) return false;
  spdlog::info("build cache {} exceeds {} bytes: wiped", key, limits.max_bytes);
  remove_cache(path);
  return true;
}

}  // namespace stele::agent
