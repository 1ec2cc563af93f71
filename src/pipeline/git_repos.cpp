#include "pipeline/git_repos.h"

#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/names.h"

namespace stele::pipeline {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using net::awaitable;

namespace {

std::string shell_quote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

std::string trim(std::string s) {
  while (!s.empty() && isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

// A revision, path or ref we pass as one argument: never an option, never
// more than one line.
Result<void> check_arg(std::string_view what, std::string_view v) {
  if (v.empty()) return fail(std::string(what) + " is empty", 400);
  if (v[0] == '-') return fail(std::string(what) + " '" + std::string(v) + "' must not start with '-'", 400);
  for (char c : v)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      return fail(std::string(what) + " contains a control character", 400);
  return {};
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// "refs/heads/main" for "main"; full refs as given.
std::string full_ref(const std::string& ref) { return ref.rfind("refs/", 0) == 0 ? ref : "refs/heads/" + ref; }

}  // namespace

std::string post_receive_script(std::string_view app_id) {
  return "#!/bin/sh\n"
         "# Written by Stele: hands the pushed refs to the pipeline. The server passes\n"
         "# STELE_BIN, STELE_HOOK_URL and STELE_HOOK_TOKEN through git http-backend.\n"
         "STELE_HOOK_APP=" + shell_quote(app_id) + "\n"
         "export STELE_HOOK_APP\n"
         "if [ -z \"$STELE_BIN\" ] || [ -z \"$STELE_HOOK_URL\" ]; then\n"
         "  echo \"stele: this push did not come through the Stele server; no pipeline was started\"\n"
         "  exit 0\n"
         "fi\n"
         "exec \"$STELE_BIN\" hook post-receive\n";
}

GitRepos::GitRepos(std::string root_dir, HookEnv hook, std::chrono::milliseconds timeout)
    : root_(std::move(root_dir)), hook_(std::move(hook)), timeout_(timeout) {}

std::string GitRepos::path(std::string_view app_id) const { return root_ + "/" + app_name(app_id) + ".git"; }

net::Environment GitRepos::hook_environment(std::string_view app_id) const {
  net::Environment env = {{"STELE_BIN", hook_.stele_binary},
                          {"STELE_HOOK_URL", hook_.server_url},
                          {"STELE_HOOK_TOKEN", hook_.token},
                          {"STELE_HOOK_APP", canonical_app_id(app_id)}};
  if (!hook_.ca_file.empty()) env["STELE_CA"] = hook_.ca_file;
  return env;
}

net::Environment GitRepos::git_environment() {
  net::Environment env = net::current_environment();
  for (auto it = env.begin(); it != env.end();) {
    if (it->first.rfind("GIT_", 0) == 0) it = env.erase(it);
    else ++it;
  }
  env["GIT_TERMINAL_PROMPT"] = "0";  // a server never answers a prompt
  return env;
}

awaitable<Result<net::ProcessResult>> GitRepos::run(std::vector<std::string> argv, std::string input, std::string cwd) {
  net::ProcessSpec spec{std::move(argv), git_environment(), std::move(cwd)};
  co_return co_await net::run_process(std::move(spec), std::move(input), timeout_);
}

awaitable<Result<std::string>> GitRepos::git(std::string_view app_id, std::vector<std::string> args, std::string input) {
  std::string repo = path(app_id);
  std::error_code ec;
  if (!fs::exists(repo + "/HEAD", ec))
    co_return fail("app " + canonical_app_id(app_id) + " has no git repository yet (push to it first)", 404);
  std::string what = "git " + net::describe_command(args);
  args.insert(args.begin(), {"git", "--git-dir=" + repo});
  auto r = co_await run(std::move(args), std::move(input));
  if (!r) co_return fail(r.error());
  if (r->exit_code != 0) {
    std::string why = trim(r->err);
    co_return fail(what + " failed (exit " + std::to_string(r->exit_code) + ")" + (why.empty() ? "" : ": " + why));
  }
  co_return std::move(r->out);
}

Result<void> GitRepos::write_hook(const std::string& repo, std::string_view app_id) const {
  fs::path hook = fs::path(repo) / "hooks" / "post-receive";
  std::string script = post_receive_script(canonical_app_id(app_id));
  std::error_code ec;
  if (fs::exists(hook, ec) && read_all(hook) == script) return {};
  fs::create_directories(hook.parent_path(), ec);
  fs::path tmp = hook.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << script;
    if (!out.flush()) return fail("cannot write " + tmp.string());
  }
  if (chmod(tmp.c_str(), 0755) != 0 || rename(tmp.c_str(), hook.c_str()) != 0)
    return fail("cannot install the post-receive hook in " + repo + ": " + strerror(errno));
  return {};
}

awaitable<Result<void>> GitRepos::ensure(std::string app_id) {
  std::string repo = path(app_id);
  std::error_code ec;
  if (fs::exists(repo + "/HEAD", ec)) co_return write_hook(repo, app_id);
  fs::create_directories(root_, ec);
  if (ec) co_return fail("cannot create " + root_ + ": " + ec.message());
  // Built aside and renamed into place, so a concurrent ensure() or a push
  // never sees half a repository.
  static int counter = 0;
  std::string tmp = root_ + "/.init-" + app_name(app_id) + "-" + std::to_string(getpid()) + "-" + std::to_string(++counter);
  std::vector<std::vector<std::string>> steps = {
      {"git", "init", "--bare", "--quiet", "-b", "main", tmp},
      {"git", "--git-dir=" + tmp, "config", "http.receivepack", "true"},
  };
  for (auto& argv : steps) {
    auto r = co_await run(argv, "");
    if (!r || r->exit_code != 0) {
      fs::remove_all(tmp, ec);
      co_return fail("cannot create the repository of " + canonical_app_id(app_id) + ": " +
                     (r ? net::describe_command(argv) + ": " + trim(r->err) : r.error().message));
    }
  }
  if (auto w = write_hook(tmp, app_id); !w) {
    fs::remove_all(tmp, ec);
    co_return w;
  }
  fs::rename(tmp, repo, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    if (!fs::exists(repo + "/HEAD", ignored)) co_return fail("cannot create " + repo + ": " + ec.message());
  }
  co_return Result<void>{};
}

awaitable<Result<std::string>> GitRepos::resolve(std::string app_id, std::string rev) {
  if (auto ok = check_arg("revision", rev); !ok) co_return fail(ok.error());
  std::vector<std::string> args = {"rev-parse", "--verify", "--quiet", rev + "^{commit}"};
  auto r = co_await git(app_id, std::move(args));
  if (!r) {
    if (r.error().code != 0) co_return fail(r.error());  // no repository, timeout
    co_return fail("no commit '" + rev + "' in the repository of " + canonical_app_id(app_id), 404);
  }
  co_return trim(*r);
}

awaitable<Result<std::string>> GitRepos::tree_of(std::string app_id, std::string sha) {
  auto commit = co_await resolve(app_id, sha);
  if (!commit) co_return fail(commit.error());
  std::vector<std::string> args = {"rev-parse", "--verify", *commit + "^{tree}"};
  auto r = co_await git(app_id, std::move(args));
  if (!r) co_return fail(r.error());
  co_return trim(*r);
}

awaitable<Result<std::optional<std::string>>> GitRepos::read_file(std::string app_id, std::string sha, std::string file) {
  while (file.rfind("./", 0) == 0) file.erase(0, 2);
  if (auto ok = check_arg("path", file); !ok) co_return fail(ok.error());
  if (file[0] == '/') co_return fail("path '" + file + "' must be relative to the repository's top", 400);
  auto commit = co_await resolve(app_id, sha);
  if (!commit) co_return fail(commit.error());
  // --batch tells "missing" apart from failures, and is binary-safe.
  std::vector<std::string> args = {"cat-file", "--batch"};
  auto r = co_await git(app_id, std::move(args), *commit + ":" + file + "\n");
  if (!r) co_return fail(r.error());
  auto nl = r->find('\n');
  std::istringstream header(r->substr(0, nl));
  std::string oid, type;
  size_t size = 0;
  header >> oid >> type >> size;
  if (type == "missing" || type == "ambiguous") co_return std::optional<std::string>();
  if (type != "blob")
    co_return fail("'" + file + "' in " + commit->substr(0, 12) + " is a " + (type == "tree" ? "directory" : type) +
                   ", not a file", 422);
  if (nl == std::string::npos || r->size() < nl + 1 + size)
    co_return fail("git cat-file returned a short answer for " + file);
  co_return std::optional<std::string>(r->substr(nl + 1, size));
}

awaitable<Result<void>> GitRepos::export_tree(std::string app_id, std::string sha, std::string dest_dir) {
  auto commit = co_await resolve(app_id, sha);
  if (!commit) co_return fail(commit.error());
  std::error_code ec;
  fs::create_directories(dest_dir, ec);
  if (ec) co_return fail("cannot create " + dest_dir + ": " + ec.message());
  auto ex = co_await asio::this_coro::executor;
  net::ProcessSpec archive_spec{{"git", "--git-dir=" + path(app_id), "archive", "--format=tar", *commit},
                                git_environment(), ""};
  net::ProcessSpec tar_spec{{"tar", "-x", "-f", "-", "-C", dest_dir, "--no-same-owner"}, git_environment(), ""};
  auto archive = net::Process::spawn(ex, archive_spec);
  if (!archive) co_return fail(archive.error());
  auto tar = net::Process::spawn(ex, tar_spec);
  if (!tar) {
    (*archive)->kill();
    co_return fail(tar.error());
  }
  auto a = *archive, t = *tar;
  a->close_stdin();
  auto timer = std::make_shared<asio::steady_timer>(ex, timeout_);
  std::weak_ptr<net::Process> wa = a, wt = t;
  timer->async_wait([wa, wt](boost::system::error_code e) {
    if (e) return;
    if (auto p = wa.lock()) p->kill();
    if (auto p = wt.lock()) p->kill();
  });
  Result<void> copied;
  for (;;) {
    auto chunk = co_await a->read_stdout();
    if (!chunk) { copied = fail(chunk.error()); break; }
    if (chunk->empty()) break;
    if (auto w = co_await t->write_stdin(*chunk); !w) { copied = fail(w.error()); break; }
  }
  t->close_stdin();
  if (!copied) a->kill();
  int a_code = co_await a->wait();
  int t_code = co_await t->wait();
  timer->cancel();
  if (a_code != 0)
    co_return fail("git archive of " + commit->substr(0, 12) + " failed (exit " + std::to_string(a_code) + "): " +
                   trim(a->stderr_text()));
  if (t_code != 0)
    co_return fail("unpacking " + commit->substr(0, 12) + " into " + dest_dir + " failed (exit " +
                   std::to_string(t_code) + "): " + trim(t->stderr_text()));
  if (!copied) co_return fail(copied.error());
  co_return Result<void>{};
}

awaitable<Result<std::string>> GitRepos::fetch(std::string app_id, std::string url, std::string ref) {
  if (auto ok = check_arg("url", url); !ok) co_return fail(ok.error());
  if (auto ok = check_arg("ref", ref); !ok) co_return fail(ok.error());
  if (url.rfind("file://", 0) != 0 && url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
    co_return fail("url '" + url + "': only file://, http:// and https:// are fetched", 400);
  std::string remote_ref = full_ref(ref);
  if (remote_ref.find_first_of(" :~^?*[\\") != std::string::npos || remote_ref.find("..") != std::string::npos)
    co_return fail("ref '" + ref + "' is not a valid ref name", 400);
  if (auto ok = co_await ensure(app_id); !ok) co_return fail(ok.error());
  std::string local_ref = "refs/stele/fetched/" + remote_ref.substr(5);
  std::vector<std::string> args = {"fetch", "--quiet", "--no-tags", "--no-write-fetch-head", url,
                                   "+" + remote_ref + ":" + local_ref};
  auto r = co_await git(app_id, std::move(args));
  if (!r) co_return fail(r.error());
  co_return co_await resolve(app_id, local_ref);
}

awaitable<Result<void>> GitRepos::mirror(std::string app_id, std::string url, std::string auth, bool fast_forward_only) {
  if (auto ok = check_arg("url", url); !ok) co_return fail(ok.error());
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
    co_return fail("url '" + url + "': only http:// and https:// are mirrored", 400);
  if (auto ok = co_await ensure(app_id); !ok) co_return fail(ok.error());
  std::vector<std::string> args;
  if (!auth.empty()) args = {"-c", "http.extraHeader=Authorization: " + auth};
  if (!hook_.ca_file.empty()) args.insert(args.end(), {"-c", "http.sslCAInfo=" + hook_.ca_file});
  for (std::string a : {"fetch", "--quiet", "--no-write-fetch-head"}) args.push_back(a);
  if (!fast_forward_only) args.insert(args.end(), {"--prune", "--force"});
  args.push_back(url);
  args.push_back(fast_forward_only ? "refs/heads/*:refs/heads/*" : "+refs/heads/*:refs/heads/*");
  args.push_back(fast_forward_only ? "refs/tags/*:refs/tags/*" : "+refs/tags/*:refs/tags/*");
  auto r = co_await git(app_id, std::move(args));
  if (!r) co_return fail(r.error());
  co_return Result<void>{};
}

std::string GitRepos::refs_signature(std::string_view app_id) const {
  std::string repo = path(app_id), sig;
  for (const char* p : {"/refs/heads", "/packed-refs"}) {
    struct stat st {};
    if (::stat((repo + p).c_str(), &st) != 0) {
      sig += "-;";
      continue;
    }
    sig += std::to_string(int64_t(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec) + ";";
  }
  return sig == "-;-;" ? std::string() : sig;
}

}  // namespace stele::pipeline
