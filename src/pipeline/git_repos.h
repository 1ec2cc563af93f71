// GitRepos: the server's bare repositories, one per app at
// <root>/<app name>.git (docs/pipeline.md), and the few git questions the
// pipeline asks of them. Every git command runs as a child process through
// net::Process (never blocking the io thread) with the server's environment
// minus its GIT_* variables.
//
// Not thread-safe: use from the io_context thread that runs the coroutines.
// Concurrent ensure() of one app is safe (the repository appears by rename).
#pragma once
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "net/http.h"
#include "net/process.h"

namespace stele::pipeline {

// What a push's post-receive hook needs to reach the server. Given to git
// through the environment of the CGI request (see hook_environment), so the
// token is never written to disk.
struct HookEnv {
  std::string server_url;    // "http://127.0.0.1:7070"
  std::string token;         // "" = send none
  std::string stele_binary;  // absolute path of `stele`
  std::string ca_file;       // STELE_CA for an https server_url ("" = not passed)
};

class GitRepos {
 public:
  GitRepos(std::string root_dir, HookEnv hook, std::chrono::milliseconds timeout = std::chrono::minutes(10));

  const std::string& root() const { return root_; }
  // <root>/<app name>.git ("/shop/web" -> <root>/shop_web.git).
  std::string path(std::string_view app_id) const;
  // STELE_BIN, STELE_HOOK_URL, STELE_HOOK_TOKEN, STELE_HOOK_APP for the hook
  // (and STELE_CA when the hook env has a CA file).
  net::Environment hook_environment(std::string_view app_id) const;
  // The server's environment without GIT_* (a server started from a git hook
  // must not point our commands at another repository).
  static net::Environment git_environment();

  // Creates the bare repository (`git init --bare -b main`,
  // http.receivepack true) when missing, and (re)writes its post-receive
  // hook, which runs `$STELE_BIN hook post-receive`.
  net::awaitable<Result<void>> ensure(std::string app_id);

  // The commit `rev` names (a sha, a branch, "refs/heads/main"...): its
  // full sha. Error code 404 when it names nothing.
  net::awaitable<Result<std::string>> resolve(std::string app_id, std::string rev);
  // The tree sha of commit `sha`.
  net::awaitable<Result<std::string>> tree_of(std::string app_id, std::string sha);
  // Contents of `path` in commit `sha`; nullopt when the commit has no such
  // file (not an error). Errors: unknown commit (404), `path` is a
  // directory or a submodule, git failures.
  net::awaitable<Result<std::optional<std::string>>> read_file(std::string app_id, std::string sha, std::string path);
  // Writes the files of commit `sha` (git archive, so export-ignore applies)
  // into `dest_dir`, created when missing.
  net::awaitable<Result<void>> export_tree(std::string app_id, std::string sha, std::string dest_dir);
  // Fetches `ref` ("main" = refs/heads/main, or a full ref) from `url`
  // (file://, http(s)://) into refs/stele/fetched/<ref without refs/> of the
  // app's repository (created when missing); answers the fetched commit's sha.
  net::awaitable<Result<std::string>> fetch(std::string app_id, std::string url, std::string ref);
  // Makes the app's repository a copy of the one at `url` (another server's
  // /git/<name>.git): every branch and tag, forced, pruned. `auth` is sent
  // as the Authorization header ("" = none). `fast_forward_only`: branches
  // and tags only move forward (a new leader catching up on a push it
  // missed, from a follower); nothing is pruned or rewound.
  net::awaitable<Result<void>> mirror(std::string app_id, std::string url, std::string auth,
                                      bool fast_forward_only = false);
  // Changes when a push changes the app's refs (mtimes of refs/heads and
  // packed-refs); "" when there is no repository.
  std::string refs_signature(std::string_view app_id) const;

 private:
  // `git --git-dir=<repo> args...`; exit != 0 is an error carrying stderr.
  net::awaitable<Result<std::string>> git(std::string_view app_id, std::vector<std::string> args,
                                          std::string input = {});
  net::awaitable<Result<net::ProcessResult>> run(std::vector<std::string> argv, std::string input,
                                                 std::string cwd = {});
  Result<void> write_hook(const std::string& repo, std::string_view app_id) const;

  std::string root_;
  HookEnv hook_;
  std::chrono::milliseconds timeout_;
};

// The post-receive hook script GitRepos writes (exposed for tests).
std::string post_receive_script(std::string_view app_id);

}  // namespace stele::pipeline
