// The verbs against an in-process fake of the API (docs/api.md shapes),
// through the real HTTP client: deploy --wait across a dropped event stream,
// failures, and a table.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "cli/cli.h"
#include "net/http_server.h"
#include "net/sse.h"

namespace stele::cli {
namespace {

namespace fs = std::filesystem;
using net::HttpRequest;
using net::HttpResponse;

net::awaitable<void> write_events(net::StreamWriter& w, std::vector<Json> events) {
  for (const auto& e : events) {
    // Named locals: g++ 12 mis-destroys brace-initialised temporaries inside co_await expressions.
    net::SseEvent ev{std::to_string(e.value("id", 0)), "", e.dump()};
    std::string chunk = net::format_sse(ev);
    co_await w.write(std::move(chunk));
  }
}

HttpResponse sse(std::vector<Json> events) {
  HttpResponse r;
  r.content_type = "text/event-stream";
  r.stream = [events](net::StreamWriter& w) { return write_events(w, events); };
  return r;
}

net::awaitable<void> write_text(net::StreamWriter& w, std::string text) { co_await w.write(std::move(text)); }

// An error answer sent chunked. (A Content-Length answer to a streaming GET
// fails in net::http_stream on Boost 1.74: body_limit(none) rejects any
// known length.)
HttpResponse error_stream(int status, const std::string& message) {
  HttpResponse r;
  r.status = status;
  std::string body = error_json(Error{message, {}, status}).dump();
  r.stream = [body](net::StreamWriter& w) { return write_text(w, body); };
  return r;
}

Json deployment_event(int64_t id, const std::string& type, const std::string& step = "", const std::string& reason = "") {
  return {{"id", id},
          {"type", type},
          {"time", "2026-01-02T03:04:05.000Z"},
          {"app", "/shop/web"},
          {"deployment",
           {{"id", "d1"}, {"kind", "deploy"}, {"fromRelease", 0}, {"toRelease", 1}, {"toInstances", 2},
            {"step", step}, {"reason", reason}, {"status", "running"}}}};
}

Json task_event(int64_t id, const std::string& task) {
  return {{"id", id},    {"type", "task_status"}, {"app", "/shop/web"}, {"task", task},
          {"state", "running"}, {"host", "host1"}, {"ports", {31000}}};
}

// The fake API: records what the client asked, answers from `stream_parts`
// (one list of events per stream connection, then the stream ends).
class FakeApi : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("stele-cli-flow-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    std::ofstream(dir_ / "web.json") << R"({"id": "/shop/web", "cmd": "sleep 1000", "instances": 2})";
    add_routes();
    server_ = std::make_unique<net::HttpServer>(io_, router_);
    auto bound = server_->listen("127.0.0.1:0");
    ASSERT_TRUE(bound) << bound.error().message;
    url_ = "http://" + *bound;
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    boost::asio::post(io_, [this] { server_->stop(); io_.stop(); });
    thread_.join();
    fs::remove_all(dir_);
  }

  void add_routes() {
    router_.add("GET", "/api/v1/events", [](HttpRequest&) -> net::awaitable<HttpResponse> {
      co_return HttpResponse::json(200, {{"events", {{{"id", 10}, {"type", "app_created"}}}}});
    });
    router_.add("GET", "/api/v1/apps", [](HttpRequest&) -> net::awaitable<HttpResponse> {
      co_return HttpResponse::json(200, {{"apps", {{{"id", "/shop/web"}, {"release", 1}, {"instances", 2},
                                                     {"tasksRunning", 2}, {"tasksHealthy", 2}}}}});
    });
    router_.add("GET", "/api/v1/apps/{*rest}", [](HttpRequest&) -> net::awaitable<HttpResponse> {
      co_return HttpResponse::error(Error{"App '/shop/web' does not exist", {}, 404}, 404);
    });
    router_.add("POST", "/api/v1/apps", [this](HttpRequest& req) -> net::awaitable<HttpResponse> {
      { std::lock_guard l(mu_); posted_ = req.body; }
      co_return HttpResponse::json(201, {{"deploymentId", "d1"}, {"release", 1}});
    });
    router_.add("GET", "/api/v1/events/stream", [this](HttpRequest& req) -> net::awaitable<HttpResponse> {
      std::lock_guard l(mu_);
      stream_queries_.push_back(req.query_param("app") + " since=" + req.query_param("since"));
      if (stream_parts_.empty() && end_with_error_) co_return error_stream(410, "stream closed by the test");
      std::vector<Json> part;
      if (!stream_parts_.empty()) {
        part = stream_parts_.front();
        stream_parts_.erase(stream_parts_.begin());
      }
      co_return sse(part);
    });
  }

  // Runs `stele <args> --api <fake>`, capturing stdout and stderr.
  int run(std::vector<std::string> args) {
    CLI::App app{"stele", "stele"};
    add_client_commands(app);
    args.push_back("--api");
    args.push_back(url_);
    std::reverse(args.begin(), args.end());
    app.parse(args);
    testing::internal::CaptureStdout();
    testing::internal::CaptureStderr();
    int rc = run_client(app);
    out_ = testing::internal::GetCapturedStdout();
    err_ = testing::internal::GetCapturedStderr();
    return rc;
  }

  boost::asio::io_context io_;
  net::Router router_;
  std::unique_ptr<net::HttpServer> server_;
  std::thread thread_;
  std::string url_, out_, err_;
  fs::path dir_;
  std::mutex mu_;
  std::string posted_;
  std::vector<std::string> stream_queries_;
  std::vector<std::vector<Json>> stream_parts_;
  bool end_with_error_ = false;
};

TEST_F(FakeApi, DeployWaitFollowsTheDeploymentAcrossADroppedStream) {
  stream_parts_ = {
      {task_event(9, "stale-r0.0.1"), deployment_event(11, "deployment_started"), task_event(12, "shop_web-r1.0.1")},
      {deployment_event(13, "deployment_step", "1/2 new healthy, 0 old"), deployment_event(14, "deployment_succeeded")},
  };
  int rc = run({"deploy", "-f", (dir_ / "web.json").string(), "--wait"});
  EXPECT_EQ(rc, 0) << err_;
  EXPECT_EQ(out_,
            "Created /shop/web release 1 (deployment d1)\n"
            "  task shop_web-r1.0.1 running on host1 ports 31000\n"
            "  deployment step: 1/2 new healthy, 0 old\n"
            "Deployment d1 succeeded: /shop/web runs release 1 with 2 instances\n");
  EXPECT_EQ(err_, "");
  std::lock_guard l(mu_);
  EXPECT_EQ(Json::parse(posted_)["id"], "/shop/web");
  ASSERT_EQ(stream_queries_.size(), 2u);
  EXPECT_EQ(stream_queries_[0], "/shop/web since=10");  // the head before the change
  EXPECT_EQ(stream_queries_[1], "/shop/web since=12");  // resumed after the last event seen
}

TEST_F(FakeApi, DeployWaitFailureExitsNonZeroWithTheReason) {
  stream_parts_ = {{deployment_event(11, "deployment_started"),
                    deployment_event(12, "deployment_failed", "", "new instances not healthy within 600 s")}};
  int rc = run({"deploy", "-f", (dir_ / "web.json").string(), "--wait"});
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(err_, "stele: deployment d1 failed: new instances not healthy within 600 s\n");
}

TEST_F(FakeApi, ServerErrorsAreOneLine) {
  int rc = run({"app", "shop/web"});
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(err_, "stele: App '/shop/web' does not exist\n");
  EXPECT_EQ(out_, "");
}

TEST_F(FakeApi, AppsTableAndJson) {
  EXPECT_EQ(run({"apps"}), 0);
  EXPECT_EQ(out_,
            "ID          RELEASE   RUNNING   HEALTHY   STATUS   AGE\n"
            "/shop/web   1         2/2       2         ok       -\n");
  EXPECT_EQ(run({"apps", "--json"}), 0);
  EXPECT_EQ(Json::parse(out_)["apps"][0]["id"], "/shop/web");
}

TEST_F(FakeApi, EventsVerbPrintsOneLinePerEventAndResumes) {
  stream_parts_ = {{task_event(5, "shop_web-r1.0.1"), deployment_event(6, "deployment_step", "1/2 new healthy, 0 old")}};
  end_with_error_ = true;  // the reconnect is refused, which ends the verb
  int rc = run({"events", "--app", "shop/web"});
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(out_,
            "-  task_status           /shop/web  task shop_web-r1.0.1 running on host1 ports 31000\n"
            "2026-01-02T03:04:05.000Z  deployment_step       /shop/web  deployment d1: 1/2 new healthy, 0 old\n");
  EXPECT_EQ(err_, "stele: stream closed by the test\n");
  std::lock_guard l(mu_);
  EXPECT_EQ(stream_queries_, (std::vector<std::string>{"/shop/web since=", "/shop/web since=6"}));
}

}  // namespace
}  // namespace stele::cli
