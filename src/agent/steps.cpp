#include "agent/steps.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <thread>
#include <utility>  // before Asio with g++ 12

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <spdlog/spdlog.h>

#include "agent/executor_protocol.h"
#include "artifact/sha256.h"
#include "artifact/slug.h"
#include "net/http_client.h"
#include "net/signal.h"

namespace stele::agent {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// ---- the launch command's "step"

Result<std::optional<StepSpec>> parse_step(const Json& cmd) {
  if (!cmd.contains("step") || cmd["step"].is_null()) return std::optional<StepSpec>();
  const Json& j = cmd["step"];
  Error err{"invalid step", {}, 422};
  auto bad = [&](std::string path, std::string why) { err.details.push_back({"/step/" + path, {why}}); };
  if (!j.is_object()) return fail(Error{"invalid step", {{"/step", {"must be an object"}}}, 422});
  StepSpec s;
  auto text = [&](const char* key, std::string& out) {
    if (!j.contains(key) || j[key].is_null()) return;
    if (j[key].is_string()) out = j[key].get<std::string>();
    else bad(key, "must be a string");
  };
  text("kind", s.kind);
  text("cmd", s.cmd);
  text("source", s.source);
  text("cacheKey", s.cache_key);
  text("dockerfile", s.dockerfile);
  text("tag", s.tag);
  if (j.contains("timeoutSeconds") && !j["timeoutSeconds"].is_null()) {
    if (j["timeoutSeconds"].is_number() && j["timeoutSeconds"].get<double>() >= 0)
      s.timeout_seconds = j["timeoutSeconds"].get<double>();
    else bad("timeoutSeconds", "must be a non-negative number");
  }
  static const std::set<std::string> kinds = {"build", "test", "release", "run"};
  if (!kinds.count(s.kind)) bad("kind", "must be one of build, test, release, run");
  if (s.cmd.empty()) bad("cmd", "is required");
  if (!s.dockerfile.empty() && s.kind != "build") bad("dockerfile", "only a build has a Dockerfile");
  if (!s.dockerfile.empty() && s.tag.empty()) bad("tag", "a Dockerfile build needs the tag of its image");
  if (!err.details.empty()) return fail(std::move(err));
  return std::optional<StepSpec>(std::move(s));
}

std::string step_shell_command(const std::string& cmd) { return "exec 2>&1\n" + cmd; }

// ---- the built slug

namespace {
Result<std::string> read_whole(const std::string& path) {
  auto data = read_file(path);
  if (!data) return fail(errno_message("read " + path, errno));
  return std::move(*data);
}

Result<void> put_slug(const std::string& url, const std::string& body, net::Headers headers) {
  headers.emplace_back("Content-Type", "application/octet-stream");
  std::string last;
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (attempt) std::this_thread::sleep_for(std::chrono::milliseconds(500 << attempt));
    auto r = net::http_request_sync("PUT", url, body, headers, std::chrono::seconds(300));
    if (r && r->status / 100 == 2) return {};
    last = r ? "HTTP " + std::to_string(r->status) + ": " + r->body.substr(0, 200) : r.error().message;
    if (r && r->status / 100 == 4) break;  // refused: retrying will not help
  }
  return fail(last);
}
}  // namespace

namespace {
Result<UploadedSlug> upload_as(const std::string& path, const std::string& digest, const std::string& server_url,
                               const net::Headers& headers) {
  auto body = read_whole(path);
  if (!body) return fail(body.error());
  if (auto r = put_slug(server_url + "/api/v1/artifacts/" + digest, *body, headers); !r) return fail(r.error());
  return UploadedSlug{digest, body->size()};
}
}  // namespace

Result<UploadedSlug> pack_and_upload(const std::string& app_dir, const std::string& out_dir,
                                     const std::string& server_url, const net::Headers& headers) {
  auto slug = artifact::make_slug(app_dir, out_dir);
  if (!slug) return fail(slug.error().message);
  return upload_as(slug->path, slug->digest, server_url, headers);
}

Result<UploadedSlug> upload_file(const std::string& path, const std::string& server_url, const net::Headers& headers) {
  auto digest = artifact::sha256_file(path);
  if (!digest) return fail(digest.error());
  return upload_as(path, *digest, server_url, headers);
}

}  // namespace stele::agent
