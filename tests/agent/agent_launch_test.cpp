// The Agent launching from artifacts and running one-off steps, end to end:
// a real Agent, real executors (this binary re-exec'd, see executor_test),
// the task user and the host's cgroups, against an in-test HTTP server that
// plays the server's agent protocol and artifact endpoints, with a real
// forward input and log store receiving the tasks' records.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "agent/agent.h"
#include "agent/slug_cache.h"
#include "artifact/sha256.h"
#include "artifact/slug.h"
#include "fixtures/executor_fixtures.h"
#include "logs/forward_server.h"
#include "logs/log_store.h"
#include "net/http_server.h"
#include "net/signal.h"
#include "net/sse.h"

namespace stele {
namespace {

namespace fs = std::filesystem;
using testing::file_text;
using testing::TempDir;
using net::HttpRequest;
using net::HttpResponse;

// The server side, as far as one agent needs it. Handlers run on the test's
// io thread (the test thread), so its state needs no locks.
class FakeServer {
 public:
  FakeServer(boost::asio::io_context& io, const std::string& logs_dir)
      : io_(io), signal_(io.get_executor()), logs_(logs_dir, logs::LogStoreOptions{}) {
    EXPECT_TRUE(logs_.open());
    start_forward("127.0.0.1:0");
    auto ok = [](HttpRequest&) -> net::awaitable<HttpResponse> { co_return HttpResponse::json(200, Json::object()); };
    router_.add("POST", "/api/v1/agent/register", [this](HttpRequest&) -> net::awaitable<HttpResponse> {
      co_return HttpResponse::json(200, {{"forward", forward_address}});
    });
    router_.add("POST", "/api/v1/agent/heartbeat", ok);
    router_.add("GET", "/api/v1/agent/commands", [this](HttpRequest&) -> net::awaitable<HttpResponse> {
      co_return command_stream();
    });
    router_.add("POST", "/api/v1/agent/status", [this](HttpRequest& r) -> net::awaitable<HttpResponse> {
      co_return on_status(r);
    });
    router_.add("GET", "/api/v1/artifacts/{sha256}", [this](HttpRequest& r) -> net::awaitable<HttpResponse> {
      co_return get_artifact(r);
    });
    router_.add("PUT", "/api/v1/artifacts/{sha256}", [this](HttpRequest& r) -> net::awaitable<HttpResponse> {
      uploaded[r.param("sha256")] = r.body;
      co_return HttpResponse::json(201, Json::object());
    });
    server_ = std::make_unique<net::HttpServer>(io_, router_);
    url = "http://" + server_->listen("127.0.0.1:0").value();
  }
  ~FakeServer() {
    server_->stop();
    if (forward_) forward_->stop();
  }

  // The forward input goes away and comes back after `ms` on the same
  // address (the agent's shipper must retry).
  void forward_outage(int ms) {
    forward_->stop();
    forward_.reset();
    auto t = std::make_shared<boost::asio::steady_timer>(io_, std::chrono::milliseconds(ms));
    t->async_wait([this, t](boost::system::error_code) { start_forward(forward_address); });
  }

  // The task's log lines in the store, joined with newlines.
  std::string stored_output(const std::string& task) const {
    logs::LogQuery q;
    q.task = task;
    q.after = 0;
    q.limit = 100000;
    auto rows = logs_.query(q);
    std::string out;
    if (rows)
      for (const auto& r : *rows) out += r.record.value("log", "") + "\n";
    return out;
  }

  void send(Json command) {
    commands_.push_back(std::move(command));
    signal_.notify();
  }
  // The terminal update of a task, if it arrived.
  std::optional<Json> terminal(const std::string& id) const {
    for (const auto& u : updates)
      if (u.value("taskId", "") == id && is_terminal_state(u.value("state", ""))) return u;
    return std::nullopt;
  }

  std::string url;
  std::vector<Json> updates;
  std::map<std::string, std::string> artifacts;       // served
  std::map<std::string, int> artifact_gets;
  std::map<std::string, std::string> uploaded;
  std::map<std::string, std::string> output_at_terminal;  // task -> its stored lines when its end arrived
  std::string forward_address;

 private:
  HttpResponse command_stream() {
    HttpResponse res;
    res.content_type = "text/event-stream";
    res.stream = [this](net::StreamWriter& w) -> net::awaitable<void> {
      size_t sent = 0;
      if (!co_await w.write(": commands\n\n")) co_return;
      while (!w.closed()) {
        for (; sent < commands_.size(); ++sent) {
          net::SseEvent ev{std::to_string(sent + 1), "command", commands_[sent].dump()};
          std::string frame = net::format_sse(ev);
          if (!co_await w.write(std::move(frame))) co_return;
        }
        co_await signal_.wait(std::chrono::milliseconds(200));
        if (!co_await w.write(":\n\n")) co_return;
      }
    };
    return res;
  }

  HttpResponse on_status(const HttpRequest& r) {
    auto body = parse_json(r.body);
    for (const auto& u : body->value("updates", Json::array())) {
      updates.push_back(u);
      if (is_terminal_state(u.value("state", "")))
        output_at_terminal[u.value("taskId", "")] = stored_output(u.value("taskId", ""));
    }
    return HttpResponse::json(200, Json::object());
  }

  HttpResponse get_artifact(const HttpRequest& r) {
    std::string digest = r.param("sha256");
    ++artifact_gets[digest];
    auto it = artifacts.find(digest);
    if (it == artifacts.end()) return HttpResponse::json(404, {{"message", "artifact " + digest + " not found"}});
    return HttpResponse::text(200, it->second, "application/octet-stream");
  }

  boost::asio::io_context& io_;
  net::Router router_;
  std::unique_ptr<net::HttpServer> server_;
  std::vector<Json> commands_;
  net::AsyncSignal signal_;
  logs::LogStore logs_;
  std::unique_ptr<logs::ForwardServer> forward_;

  void start_forward(const std::string& addr) {
    logs::ForwardServerOptions fo;
    fo.listen = addr;
    forward_ = std::make_unique<logs::ForwardServer>(io_, logs_, fo);
    auto b = forward_->start();
    ASSERT_TRUE(b) << b.error().message;
    forward_address = *b;
  }
};

class AgentLaunchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (task user, sandboxes)";
    server_ = std::make_unique<FakeServer>(io_, dir_.path() + "/server-logs");
    static int n = 0;
    opts_.id = "test-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
    opts_.server_url = server_->url;
    opts_.data_dir = dir_.path() + "/agent";
    opts_.hostname = "localhost";
    opts_.advertise_addr = "127.0.0.1";
    opts_.task_user = testing::task_user();
    opts_.recovery_timeout_seconds = 0;
    opts_.stele_binary = testing::self_exe();
    opts_.resources = {4, 4096, 10000};
    agent_ = std::make_unique<agent::Agent>(io_, opts_);
    agent_->start();
  }
  void TearDown() override {
    if (!agent_) return;
    agent_->stop();
    agent_.reset();
    testing::cleanup_agent_dir(opts_.data_dir, "stele/" + opts_.id);
  }

  bool run_until(const std::function<bool()>& pred, double seconds = 20) {
    auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (!pred() && std::chrono::steady_clock::now() < end) {
      io_.restart();
      io_.run_for(std::chrono::milliseconds(10));
    }
    return pred();
  }

  // A slug of `files` (path -> content; a leading '!' makes it executable),
  // served by the fake server. Returns its digest.
  std::string serve_slug(const std::map<std::string, std::string>& files) {
    std::string tree = dir_.path() + "/tree-" + std::to_string(++trees_);
    for (const auto& [path, content] : files) {
      fs::create_directories(fs::path(tree + "/" + path).parent_path());
      bool exec = !content.empty() && content[0] == '!';
      std::ofstream(tree + "/" + path) << (exec ? content.substr(1) : content);
      if (exec) fs::permissions(tree + "/" + path, fs::perms::owner_all, fs::perm_options::add);
    }
    fs::create_directories(dir_.path() + "/out");
    auto slug = artifact::make_slug(tree, dir_.path() + "/out");
    EXPECT_TRUE(slug) << slug.error().message;
    server_->artifacts[slug->digest] = file_text(slug->path);
    return slug->digest;
  }

  Json launch(const std::string& id, const std::string& cmd, const std::string& artifact, Json step = nullptr,
              double mem = 128) {
    Json c = {{"type", "launch"},
              {"task", {{"id", id}, {"release", 1}, {"seq", 0}, {"ports", Json::array()}}},
              {"spec", {{"id", "/test/app"}, {"cmd", cmd}, {"cpus", 0.5}, {"mem", mem}}},
              {"artifact", artifact}};
    if (!step.is_null()) c["step"] = step;
    server_->send(c);
    return c;
  }

  Json wait_terminal(const std::string& id, double seconds = 30) {
    run_until([&] { return server_->terminal(id).has_value(); }, seconds);
    auto t = server_->terminal(id);
    return t ? *t : Json::object();
  }
  std::string sandbox(const std::string& id) const { return opts_.data_dir + "/executors/" + id; }

  TempDir dir_;
  boost::asio::io_context io_;
  std::unique_ptr<FakeServer> server_;
  agent::AgentOptions opts_;
  std::unique_ptr<agent::Agent> agent_;
  int trees_ = 0;
};

TEST_F(AgentLaunchTest, ServiceTaskRunsFromAReadOnlyCachedSlug) {
  std::string d = serve_slug({{"hello.txt", "hi from the slug\n"}, {"bin/run", "!#!/bin/sh\necho ran\n"}});
  const char* cmd = "pwd; cat hello.txt; bin/run; touch new 2>/dev/null && echo writable || echo read-only";
  launch("svc-r1.0.1", cmd, d);
  Json t = wait_terminal("svc-r1.0.1");
  EXPECT_EQ(t.value("state", ""), "finished") << t.dump();
  std::string out = file_text(sandbox("svc-r1.0.1") + "/stdout");
  EXPECT_EQ(out, sandbox("svc-r1.0.1") + "/app\nhi from the slug\nran\nread-only\n");
  struct stat st;
  ASSERT_EQ(::stat((sandbox("svc-r1.0.1") + "/app").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_TRUE(fs::exists(opts_.data_dir + "/slugs/" + d + ".tar.zst"));

  launch("svc-r1.0.2", "cat hello.txt", d);
  EXPECT_EQ(wait_terminal("svc-r1.0.2").value("state", ""), "finished");
  EXPECT_EQ(file_text(sandbox("svc-r1.0.2") + "/stdout"), "hi from the slug\n");
  EXPECT_EQ(server_->artifact_gets[d], 1);  // the second launch used the cache
}

TEST_F(AgentLaunchTest, ConcurrentLaunchesShareOneDownload) {
  std::string d = serve_slug({{"a", "x"}});
  launch("par-r1.0.1", "cat a", d);
  launch("par-r1.0.2", "cat a", d);
  EXPECT_EQ(wait_terminal("par-r1.0.1").value("state", ""), "finished");
  EXPECT_EQ(wait_terminal("par-r1.0.2").value("state", ""), "finished");
  EXPECT_EQ(server_->artifact_gets[d], 1);
}

TEST_F(AgentLaunchTest, WrongBytesOrMissingArtifactFailTheTask) {
  std::string d = serve_slug({{"a", "x"}});
  std::string fake = artifact::sha256_hex("other bytes");
  server_->artifacts[fake] = server_->artifacts[d];  // served under a digest it does not have
  launch("bad-r1.0.1", "true", fake);
  Json t = wait_terminal("bad-r1.0.1");
  EXPECT_EQ(t.value("state", ""), "failed");
  EXPECT_EQ(t.value("reason", ""), "cannot fetch artifact " + fake + ": digest mismatch: got " + d);
  EXPECT_FALSE(fs::exists(opts_.data_dir + "/slugs/" + fake + ".tar.zst"));

  std::string missing = artifact::sha256_hex("nothing");
  launch("bad-r1.0.2", "true", missing);
  t = wait_terminal("bad-r1.0.2");
  EXPECT_EQ(t.value("state", ""), "failed");
  EXPECT_EQ(t.value("reason", ""), "cannot fetch artifact " + missing + ": HTTP 404: artifact " + missing + " not found");
}

TEST_F(AgentLaunchTest, BuildStepUploadsItsSlugAfterItsOutput) {
  std::string src = serve_slug({{"src.txt", "source\n"}});
  Json step = {{"kind", "build"}, {"cmd", "echo building; echo warning >&2; cat src.txt > built.txt; "
                                          "touch \"$STELE_CACHE_DIR/marker\" && echo cached; echo done"},
               {"timeoutSeconds", 60}, {"source", src}, {"cacheKey", "shop"}};
  server_->forward_outage(1500);  // the shipper retries until the input is back
  launch("shop-r1.build.1", "true", "", step);
  Json t = wait_terminal("shop-r1.build.1");
  ASSERT_EQ(t.value("state", ""), "finished") << t.dump();
  std::string expected = "building\nwarning\ncached\ndone\n";
  EXPECT_EQ(server_->output_at_terminal["shop-r1.build.1"], expected);
  std::string digest = t.value("artifact", "");
  ASSERT_EQ(server_->uploaded.count(digest), 1u) << t.dump();
  EXPECT_EQ(artifact::sha256_hex(server_->uploaded[digest]), digest);
  EXPECT_EQ(t.value("artifactSize", uint64_t(0)), server_->uploaded[digest].size());
  // The slug is the built tree.
  std::string slug = dir_.path() + "/built.tar.zst";
  std::ofstream(slug) << server_->uploaded[digest];
  ASSERT_TRUE(artifact::unpack_slug(slug, dir_.path() + "/built"));
  EXPECT_EQ(file_text(dir_.path() + "/built/built.txt"), "source\n");
  struct stat st;
  ASSERT_EQ(::stat((opts_.data_dir + "/build-cache/shop/marker").c_str(), &st), 0);
  EXPECT_NE(st.st_uid, 0u);  // written by the task user
}

TEST_F(AgentLaunchTest, RunStepOutputArrivesCompleteAndInOrderBeforeTheStatus) {
  std::string d = serve_slug({{"a", "x"}});
  Json step = {{"kind", "run"}, {"cmd", "for i in $(seq 1 2000); do echo line $i; done; sleep 0.3; "
                                        "echo tail >&2; touch mine && echo writable"},
               {"timeoutSeconds", 60}};
  launch("out-r1.run.1", "true", d, step);
  Json t = wait_terminal("out-r1.run.1");
  EXPECT_EQ(t.value("state", ""), "finished") << t.dump();
  std::string expected;
  for (int i = 1; i <= 2000; ++i) expected += "line " + std::to_string(i) + "\n";
  expected += "tail\nwritable\n";
  EXPECT_EQ(server_->output_at_terminal["out-r1.run.1"], expected);
}

TEST_F(AgentLaunchTest, StepTimeoutFailsTheTask) {
  Json step = {{"kind", "test"}, {"cmd", "echo started; exec sleep 60"}, {"timeoutSeconds", 1}};
  launch("slow-r1.test.1", "true", "", step);
  Json t = wait_terminal("slow-r1.test.1");
  EXPECT_EQ(t.value("state", ""), "failed");
  EXPECT_EQ(t.value("reason", ""), "timed out after 1 s");
  EXPECT_EQ(server_->output_at_terminal["slow-r1.test.1"], "started\n");
}

TEST_F(AgentLaunchTest, BuildOverItsMemoryLimitFails) {
  CgroupFs cgroups = CgroupFs::detect();
  if (cgroups.version() == CgroupVersion::none) GTEST_SKIP() << "no cgroup filesystem";
  if (std::system("python3 -c pass >/dev/null 2>&1") != 0) GTEST_SKIP() << "no python3";
  Json step = {{"kind", "build"}, {"cmd", "python3 -c 'x = bytearray(200 * 1024 * 1024)'"}, {"timeoutSeconds", 60}};
  launch("fat-r1.build.1", "true", "", step, 32);
  Json t = wait_terminal("fat-r1.build.1", 60);
  EXPECT_EQ(t.value("state", ""), "failed");
  EXPECT_EQ(t.value("reason", ""), "memory limit exceeded (32 MB)") << t.dump();
  EXPECT_FALSE(t.contains("artifact"));
}

TEST(SlugCacheEviction, KeepsTheMostRecentlyUsedAndPinned) {
  TempDir dir;
  std::vector<std::string> digests;
  for (int i = 0; i < 5; ++i) {
    digests.push_back(artifact::sha256_hex(std::to_string(i)));
    std::string p = dir.path() + "/" + digests.back() + ".tar.zst";
    std::ofstream(p) << i;
    struct timespec times[2] = {{1000 + i, 0}, {1000 + i, 0}};  // older first
    ::utimensat(AT_FDCWD, p.c_str(), times, 0);
  }
  auto removed = agent::evict_slugs(dir.path(), 2, {digests[0]});
  std::sort(removed.begin(), removed.end());
  std::vector<std::string> want = {digests[1], digests[2]};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(removed, want);
  EXPECT_TRUE(fs::exists(dir.path() + "/" + digests[0] + ".tar.zst"));  // pinned
  EXPECT_TRUE(fs::exists(dir.path() + "/" + digests[4] + ".tar.zst"));
}

}  // namespace
}  // namespace stele
