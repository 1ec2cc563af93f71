// The files a task runs from: a slug unpacked into <sandbox>/app, and the
// per-app build caches under <agent data>/build-cache.
//
// Everything here blocks on the disk: call it through offload().
#pragma once
#include <cstdint>
#include <optional>
#include <set>
#include <string>

#include "agent/launch_spec.h"
#include "common/result.h"

namespace stele::agent {

// Unpacks `slug_path` ("" = start empty) into a fresh `dest` (mode 0755).
// With `owner`, the whole tree is chowned to it (a writable copy for steps);
// without, it stays root's with the slug's modes (0755/0644): readable and
// executable by the task user, not writable. Fails if `dest` exists.
Result<void> install_app_tree(const std::string& slug_path, const std::string& dest,
                              const std::optional<TaskCredentials>& owner);

// lchown of `root` and everything below it (symlinks are never followed).
Result<void> chown_tree(const std::string& root, uint32_t uid, uint32_t gid);

struct BuildCacheLimits {
  size_t max_caches = 8;
  uint64_t max_bytes = 1ull << 30;
};

// <dir>/<key>, created when missing, owned by `owner` (mode 0700) and marked
// used now. A cache left by another uid is wiped first. Caches beyond
// max_caches are removed, least recently used first, except `in_use` ones.
// A key that is not a plain file name fails.
Result<std::string> prepare_build_cache(const std::string& dir, const std::string& key,
                                        const TaskCredentials& owner, const std::set<std::string>& in_use,
                                        const BuildCacheLimits& limits);
// After a build: wipes <dir>/<key> when it holds more than max_bytes.
// Returns true when it was wiped.
bool trim_build_cache(const std::string& dir, const std::string& key, const BuildCacheLimits& limits);

// Bytes of regular files under `root` (symlinks not followed), counting
// stops once past `stop_after`.
uint64_t tree_bytes(const std::string& root, uint64_t stop_after);

}  // namespace stele::agent
