#include "pipeline/git_repos.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include "../common/run_awaitable.h"

namespace asio = boost::asio;
namespace fs = std::filesystem;
using stele::Result;
using stele::net::awaitable;
using stele::pipeline::GitRepos;
using stele::pipeline::HookEnv;

namespace {

using stele::test::run;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void spit(const fs::path& p, const std::string& data) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << data;
}

// Runs a shell command in the test (blocking is fine here); its stdout, trimmed.
std::string sh(const std::string& cmd) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  EXPECT_EQ(pclose(f), 0) << cmd;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

class GitReposTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("git_repos_test." + std::to_string(getpid()) + "." +
                                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
    repos = std::make_unique<GitRepos>((dir / "git").string(), HookEnv{"http://127.0.0.1:1", "tok", "/bin/false"});
  }
  void TearDown() override { fs::remove_all(dir); }

  // A work tree with stele.json, a binary file, an executable script in a
  // subdirectory; committed; returns the commit sha.
  std::string make_work_repo() {
    work = dir / "work";
    spit(work / "stele.json", "{\"build\": \"make\"}\n");
    spit(work / "data.bin", std::string("a\0b\n\xff", 5));
    spit(work / "bin" / "run.sh", "#!/bin/sh\necho hi\n");
    chmod((work / "bin" / "run.sh").c_str(), 0755);
    std::string git = "git -C " + work.string() + " -c user.name=t -c user.email=t@example.com ";
    sh("git init -q -b main " + work.string());
    sh(git + "add -A && " + git + "commit -q -m first");
    return sh("git -C " + work.string() + " rev-parse HEAD");
  }

  std::string push_work_repo(const std::string& app) {
    std::string sha = make_work_repo();
    EXPECT_TRUE(run(repos->ensure(app)));
    sh("git -C " + work.string() + " push -q " + repos->path(app) + " main 2>&1");
    return sha;
  }

  fs::path dir, work;
  std::unique_ptr<GitRepos> repos;
};

TEST_F(GitReposTest, PathIsTheAppNameUnderTheRoot) {
  EXPECT_EQ(repos->path("/shop/web"), (dir / "git" / "shop_web.git").string());
  auto env = repos->hook_environment("shop/web");
  EXPECT_EQ(env["STELE_HOOK_APP"], "/shop/web");
  EXPECT_EQ(env["STELE_HOOK_URL"], "http://127.0.0.1:1");
  EXPECT_EQ(env["STELE_HOOK_TOKEN"], "tok");
  EXPECT_EQ(env["STELE_BIN"], "/bin/false");
}

TEST_F(GitReposTest, EnsureCreatesABareRepositoryWithTheHook) {
  auto r = run(repos->ensure("/shop/web"));
  ASSERT_TRUE(r) << r.error().message;
  std::string repo = repos->path("/shop/web");
  EXPECT_EQ(sh("git --git-dir=" + repo + " rev-parse --is-bare-repository"), "true");
  EXPECT_EQ(sh("git --git-dir=" + repo + " config http.receivepack"), "true");
  EXPECT_EQ(sh("git --git-dir=" + repo + " symbolic-ref HEAD"), "refs/heads/main");
  auto hook = fs::path(repo) / "hooks" / "post-receive";
  EXPECT_TRUE((fs::status(hook).permissions() & fs::perms::owner_exec) != fs::perms::none);
  // Idempotent; a damaged hook is rewritten.
  spit(hook, "#!/bin/sh\nexit 1\n");
  ASSERT_TRUE(run(repos->ensure("/shop/web")));
  EXPECT_EQ(slurp(hook), stele::pipeline::post_receive_script("/shop/web"));
  for (auto& e : fs::directory_iterator(dir / "git"))
    EXPECT_EQ(e.path().filename().string().rfind(".init-", 0), std::string::npos) << "leftover " << e.path();
}

TEST_F(GitReposTest, HookRunsSteleWithTheAppAndTheRefsOnStdin) {
  ASSERT_TRUE(run(repos->ensure("/shop/web")));
  auto fake = dir / "fake-stele";
  spit(fake, "#!/bin/sh\necho \"args=$* app=$STELE_HOOK_APP url=$STELE_HOOK_URL\"; cat\n");
  chmod(fake.c_str(), 0755);
  std::string hook = repos->path("/shop/web") + "/hooks/post-receive";
  std::string out = sh("echo 'a b refs/heads/main' | env STELE_BIN=" + fake.string() +
                       " STELE_HOOK_URL=http://x STELE_HOOK_APP=/evil " + hook);
  EXPECT_EQ(out, "args=hook post-receive app=/shop/web url=http://x\na b refs/heads/main");
  // Without the server's variables it explains itself and succeeds.
  std::string alone = sh("env -u STELE_BIN -u STELE_HOOK_URL " + hook + " </dev/null");
  EXPECT_NE(alone.find("did not come through the Stele server"), std::string::npos) << alone;
}

TEST_F(GitReposTest, ResolveTreeAndFiles) {
  std::string sha = push_work_repo("/web");
  auto resolved = run(repos->resolve("/web", "main"));
  ASSERT_TRUE(resolved) << resolved.error().message;
  EXPECT_EQ(*resolved, sha);
  EXPECT_EQ(*run(repos->resolve("/web", sha.substr(0, 10))), sha);
  auto tree = run(repos->tree_of("/web", sha));
  ASSERT_TRUE(tree) << tree.error().message;
  EXPECT_EQ(*tree, sh("git -C " + work.string() + " rev-parse HEAD^{tree}"));

  auto missing = run(repos->resolve("/web", "nope"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, 404);
  auto option = run(repos->resolve("/web", "--all"));
  ASSERT_FALSE(option);
  EXPECT_EQ(option.error().code, 400);
  auto no_repo = run(repos->resolve("/other", "main"));
  ASSERT_FALSE(no_repo);
  EXPECT_EQ(no_repo.error().code, 404);
  EXPECT_NE(no_repo.error().message.find("/other"), std::string::npos);
}

TEST_F(GitReposTest, ReadFileTellsAbsentFromFailures) {
  std::string sha = push_work_repo("/web");
  auto spec = run(repos->read_file("/web", sha, "stele.json"));
  ASSERT_TRUE(spec) << spec.error().message;
  ASSERT_TRUE(spec->has_value());
  EXPECT_EQ(**spec, "{\"build\": \"make\"}\n");
  auto bin = run(repos->read_file("/web", "main", "./data.bin"));
  ASSERT_TRUE(bin && bin->has_value());
  EXPECT_EQ(**bin, std::string("a\0b\n\xff", 5));
  auto absent = run(repos->read_file("/web", sha, "Procfile"));
  ASSERT_TRUE(absent) << absent.error().message;
  EXPECT_FALSE(absent->has_value());
  auto dir_read = run(repos->read_file("/web", sha, "bin"));
  ASSERT_FALSE(dir_read);
  EXPECT_NE(dir_read.error().message.find("directory"), std::string::npos);
  auto bad_commit = run(repos->read_file("/web", std::string(40, 'a'), "stele.json"));
  ASSERT_FALSE(bad_commit);
  EXPECT_EQ(bad_commit.error().code, 404);
}

TEST_F(GitReposTest, ExportTreeWritesTheCommitsFiles) {
  std::string sha = push_work_repo("/web");
  auto dest = dir / "export" / "src";
  auto r = run(repos->export_tree("/web", sha, dest.string()));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(slurp(dest / "stele.json"), "{\"build\": \"make\"}\n");
  EXPECT_EQ(slurp(dest / "data.bin"), std::string("a\0b\n\xff", 5));
  EXPECT_TRUE((fs::status(dest / "bin" / "run.sh").permissions() & fs::perms::owner_exec) != fs::perms::none);
  EXPECT_FALSE(fs::exists(dest / ".git"));
  auto bad = run(repos->export_tree("/web", "nope", (dir / "x").string()));
  EXPECT_FALSE(bad);
}

TEST_F(GitReposTest, FetchFromAnotherRepository) {
  std::string sha = make_work_repo();
  auto r = run(repos->fetch("/hooked", "file://" + work.string(), "main"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, sha);
  auto file = run(repos->read_file("/hooked", sha, "stele.json"));
  ASSERT_TRUE(file && file->has_value());
  auto unknown = run(repos->fetch("/hooked", "file://" + work.string(), "refs/heads/nope"));
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("git fetch"), std::string::npos) << unknown.error().message;
  EXPECT_FALSE(run(repos->fetch("/hooked", "ssh://host/x", "main")));
  EXPECT_FALSE(run(repos->fetch("/hooked", "file://" + work.string(), "main:refs/heads/evil")));
}

}  // namespace
