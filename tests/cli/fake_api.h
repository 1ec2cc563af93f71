// An in-process fake of the Stele API for the verbs' tests, reached through
// the real HTTP client: canned answers keyed by "METHOD /path" (or
// "METHOD /path?query" for one query), every request recorded. Runs its
// io_context on its own thread; answers may be changed between verbs.
#pragma once
#include <algorithm>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <gtest/gtest.h>

#include "cli/cli.h"
#include "net/http_server.h"

namespace stele::cli::testing_fake {

using net::HttpRequest;
using net::HttpResponse;

inline net::awaitable<void> write_chunks(net::StreamWriter& w, std::vector<std::string> chunks) {
  for (auto& c : chunks) {
    std::string chunk = std::move(c);  // a named local: see client_flow_test.cpp
    co_await w.write(std::move(chunk));
  }
}

// A chunked answer sent as these pieces, in order.
inline HttpResponse chunked(int status, std::vector<std::string> chunks, std::string type) {
  HttpResponse r;
  r.status = status;
  r.content_type = std::move(type);
  r.stream = [chunks](net::StreamWriter& w) { return write_chunks(w, chunks); };
  return r;
}

inline HttpResponse json_answer(int status, const Json& j) { return HttpResponse::json(status, j); }

struct SeenRequest {
  std::string method, target, body;
  std::map<std::string, std::string> headers;  // lower-cased names
};

class FakeApiServer {
 public:
  FakeApiServer() {
    for (const char* m : {"GET", "POST", "PUT", "PATCH", "DELETE"})
      router_.add(m, "/{*rest}", [this](HttpRequest& req) -> net::awaitable<HttpResponse> { co_return answer(req); });
    server_ = std::make_unique<net::HttpServer>(io_, router_);
    auto bound = server_->listen("127.0.0.1:0");
    EXPECT_TRUE(bound) << bound.error().message;
    if (bound) url_ = "http://" + *bound;
    thread_ = std::thread([this] { io_.run(); });
  }
  ~FakeApiServer() {
    boost::asio::post(io_, [this] {
      server_->stop();
      io_.stop();
    });
    thread_.join();
  }

  const std::string& url() const { return url_; }

  // The answer to `key` ("GET /api/v1/apps/hello" or with "?query").
  void on(const std::string& key, HttpResponse r) { on_each(key, {std::move(r)}); }
  // One answer per request, in order; the last one repeats.
  void on_each(const std::string& key, std::vector<HttpResponse> rs) {
    std::lock_guard l(mu_);
    answers_[key] = std::move(rs);
  }
  std::vector<SeenRequest> requests() const {
    std::lock_guard l(mu_);
    return seen_;
  }
  // The requests whose method and target start with `prefix` ("POST /api/v1/apps").
  std::vector<SeenRequest> requests_to(const std::string& prefix) const {
    std::vector<SeenRequest> out;
    for (auto& r : requests())
      if ((r.method + " " + r.target).rfind(prefix, 0) == 0) out.push_back(r);
    return out;
  }

 private:
  HttpResponse answer(const HttpRequest& req) {
    std::lock_guard l(mu_);
    seen_.push_back({req.method, req.target, req.body, req.headers});
    for (const std::string& key : {req.method + " " + req.target, req.method + " " + req.path}) {
      auto it = answers_.find(key);
      if (it == answers_.end() || it->second.empty()) continue;
      HttpResponse r = it->second.front();
      if (it->second.size() > 1) it->second.erase(it->second.begin());
      return r;
    }
    return HttpResponse::error(Error{"no answer for " + req.method + " " + req.target + " in the fake", {}, 404}, 404);
  }

  boost::asio::io_context io_;
  net::Router router_;
  std::unique_ptr<net::HttpServer> server_;
  std::thread thread_;
  std::string url_;
  mutable std::mutex mu_;
  std::map<std::string, std::vector<HttpResponse>> answers_;
  std::vector<SeenRequest> seen_;
};

// `stele --api <url> <args>` as main() runs it, stdout and stderr captured.
struct CliRun {
  int rc = -1;
  std::string out, err;
};
inline CliRun run_stele(const std::string& url, std::vector<std::string> args) {
  CLI::App app{"stele", "stele"};
  add_client_commands(app);
  args.insert(args.begin(), {"--api", url});  // before the verb: `run ... -- CMD` takes the rest
  std::reverse(args.begin(), args.end());
  app.parse(args);
  CliRun r;
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  r.rc = run_client(app);
  r.out = ::testing::internal::GetCapturedStdout();
  r.err = ::testing::internal::GetCapturedStderr();
  return r;
}

}  // namespace stele::cli::testing_fake
