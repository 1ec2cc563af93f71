#include "api/routes_git.h"

#include <spdlog/spdlog.h>
#include <strings.h>

#include <boost/asio/this_coro.hpp>

#include "net/process.h"
#include "pipeline/git_repos.h"

namespace stele::api {

namespace asio = boost::asio;
using net::HttpRequest;
using net::HttpResponse;

namespace {

constexpr size_t kMaxCgiHead = 64 * 1024;

bool smart_http_call(const std::string& method, const std::string& rest) {
  if (method == "GET" || method == "HEAD") return rest == "info/refs";
  return method == "POST" && (rest == "git-upload-pack" || rest == "git-receive-pack");
}

std::string base64_decode(std::string_view in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = val(c);
    if (v < 0) continue;  // padding, whitespace
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

struct Credentials {
  std::string user, password;
};

Credentials basic_credentials(const HttpRequest& req) {
  std::string h = req.header("authorization");
  if (h.size() < 6 || strncasecmp(h.c_str(), "Basic ", 6) != 0) return {};
  std::string decoded = base64_decode(std::string_view(h).substr(6));
  auto colon = decoded.find(':');
  if (colon == std::string::npos) return {decoded, ""};
  return {decoded.substr(0, colon), decoded.substr(colon + 1)};
}

HttpResponse git_unauthorized(const std::string& why) {
  auto r = HttpResponse::text(401, "stele: " + why + ": pushing and fetching need a token as the password (any user "
                                   "name), e.g. http://git:<token>@host:port/git/NAME.git\n");
  r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"stele\"");
  return r;
}

// nullopt when the request may go on. A presented token (Basic password or
// Bearer) is always checked: a push (receive-pack) needs the deployer role,
// a fetch the viewer role. Without one: loopback peers go on unless the
// server requires tokens (--require-token).
std::optional<HttpResponse> check_git_auth(const ApiServer::Impl& s, const HttpRequest& req, const Credentials& c) {
  std::string secret = c.password.empty() ? bearer_secret(req) : c.password;
  if (secret.empty()) {
    bool open = !s.opts.require_token && (req.peer_is_loopback || s.opts.token.empty());
    if (open) return std::nullopt;
    return git_unauthorized("a token is required");
  }
  auto who = s.authenticate(secret);
  if (!who || who->join) return git_unauthorized("unknown or revoked token");
  bool push = req.param("rest") == "git-receive-pack" || req.query_param("service") == "git-receive-pack";
  Role need = push ? Role::deployer : Role::viewer;
  if (!role_allows(who->role, need))
    return HttpResponse::text(403, std::string("stele: ") + (push ? "pushing" : "fetching") + " needs the " + role_name(need) +
                                       " role; token '" + who->name + "' has the " + role_name(who->role) + " role\n");
  return std::nullopt;
}

// "token:<name>" for a push with a valid token, else "api:<peer> (<ua>)".
std::string git_actor(const ApiServer::Impl& s, const HttpRequest& req, const Credentials& c) {
  std::string secret = c.password.empty() ? bearer_secret(req) : c.password;
  if (!secret.empty())
    if (auto who = s.authenticate(secret); who && !who->join) return "token:" + who->name;
  return s.actor(req);
}

const deploy::App* app_by_name(const deploy::Cluster& c, std::string_view name) {
  for (const auto* a : c.apps())
    if (app_name(a->id) == name) return a;
  return nullptr;
}

net::Environment cgi_environment(const ApiServer::Impl& s, const HttpRequest& req, const std::string& app_id,
                                 const std::string& name, const std::string& rest, const Credentials& c) {
  net::Environment env = pipeline::GitRepos::git_environment();
  for (auto& [k, v] : s.git->hook_environment(app_id)) env[k] = v;
  auto q = req.target.find('?');
  env["GATEWAY_INTERFACE"] = "CGI/1.1";
  env["SERVER_PROTOCOL"] = "HTTP/1.1";
  env["SERVER_SOFTWARE"] = "stele";
  env["GIT_PROJECT_ROOT"] = s.git->root();
  env["GIT_HTTP_EXPORT_ALL"] = "1";
  env["PATH_INFO"] = "/" + name + ".git/" + rest;
  env["REQUEST_METHOD"] = req.method;
  env["QUERY_STRING"] = q == std::string::npos ? "" : req.target.substr(q + 1);
  env["REMOTE_ADDR"] = req.peer;
  if (!c.user.empty()) env["REMOTE_USER"] = c.user;
  env["STELE_HOOK_ACTOR"] = git_actor(s, req, c);  // the pusher, for the release's events
  if (req.method == "POST") env["CONTENT_LENGTH"] = std::to_string(req.body.size());
  if (auto t = req.header("content-type"); !t.empty()) env["CONTENT_TYPE"] = t;
  if (auto e = req.header("content-encoding"); !e.empty()) env["HTTP_CONTENT_ENCODING"] = e;
  if (auto p = req.header("git-protocol"); !p.empty()) env["HTTP_GIT_PROTOCOL"] = p;  // protocol v2
  return env;
}

struct CgiHead {
  int status = 200;
  std::string content_type = "text/plain";
  net::Headers headers;
  size_t body_start = 0;
};

// The CGI header block at the start of `buf`: nullopt while incomplete.
std::optional<Result<CgiHead>> parse_cgi_head(const std::string& buf) {
  size_t end = buf.find("\n\n"), skip = 2;
  if (size_t crlf = buf.find("\r\n\r\n"); crlf != std::string::npos && crlf < end) end = crlf, skip = 4;
  if (end == std::string::npos) {
    if (buf.size() > kMaxCgiHead) return Result<CgiHead>(fail("git http-backend sent no end of headers"));
    return std::nullopt;
  }
  CgiHead h;
  h.body_start = end + skip;
  size_t i = 0;
  while (i < end) {
    size_t nl = buf.find('\n', i);
    if (nl == std::string::npos || nl > end) nl = end;
    std::string line = buf.substr(i, nl - i);
    i = nl + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon), value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    std::string lower = name;
    for (auto& ch : lower) ch = static_cast<char>(tolower(static_cast<unsigned char>(ch)));
    if (lower == "status") h.status = atoi(value.c_str());
    else if (lower == "content-type") h.content_type = value;
    else if (lower != "content-length" && lower != "transfer-encoding" && lower != "connection")
      h.headers.emplace_back(name, value);  // the body is always sent chunked
  }
  if (h.status < 100 || h.status > 599) return Result<CgiHead>(fail("git http-backend sent a bad Status line"));
  return Result<CgiHead>(std::move(h));
}

// Sends the rest of the CGI's output as it arrives. A client that went away
// does not stop the child: refs may be half-updated and the hook's pipeline
// must still be started, so its output is drained until it exits.
net::awaitable<void> pump_body(std::shared_ptr<net::Process> p, std::string first, net::StreamWriter& w,
                               std::string what) {
  bool client = co_await w.write(std::move(first));
  for (;;) {
    auto chunk = co_await p->read_stdout();
    if (!chunk || chunk->empty()) break;
    if (client) client = co_await w.write(std::move(*chunk));
  }
  int code = co_await p->wait();
  if (code != 0) spdlog::warn("{}: git http-backend exited with {}: {}", what, code, p->stderr_text());
}

net::awaitable<HttpResponse> serve_git(ApiServer::Impl& s, HttpRequest& req) {
  Credentials cred = basic_credentials(req);
  if (auto denied = check_git_auth(s, req, cred)) co_return *denied;
  std::string name = req.param("repo");
  if (name.size() > 4 && name.compare(name.size() - 4, 4, ".git") == 0) name.resize(name.size() - 4);
  std::string rest = req.param("rest");
  if (!smart_http_call(req.method, rest))
    co_return HttpResponse::text(404, "stele: only git's smart HTTP protocol is served under /git/\n");
  const deploy::App* app = app_by_name(s.cluster, name);
  // A follower (no cluster loaded) serves fetches from its mirror of the
  // leader's repository (routes_leader.cpp sends pushes to the leader); the
  // repository's path depends only on the name.
  bool mirror = !app && s.opts.leadership && !s.opts.leadership().self && !s.git->refs_signature("/" + name).empty();
  if (!app && !mirror)
    co_return HttpResponse::text(404, "stele: no app named '" + name + "' (create it first: stele create " + name +
                                          "; the app /shop/web is /git/shop_web.git)\n");
  std::string app_id = app ? app->id : "/" + name;  // `app` may not survive the awaits below
  auto ready = co_await s.git->ensure(app_id);
  if (!ready) co_return HttpResponse::error(ready.error(), 500);
  net::ProcessSpec spec{{"git", "http-backend"}, cgi_environment(s, req, app_id, name, rest, cred), ""};
  auto ex = co_await asio::this_coro::executor;
  auto spawned = net::Process::spawn(ex, spec);
  if (!spawned) co_return HttpResponse::error(spawned.error(), 500);
  std::shared_ptr<net::Process> p = *spawned;
  p->feed_stdin(std::move(req.body));
  std::string what = req.method + " /git/" + name + ".git/" + rest;
  std::string buf;
  for (;;) {
    auto head = parse_cgi_head(buf);
    if (head && !*head) {
      p->kill();
      co_return HttpResponse::error(head->error(), 502);
    }
    if (head) {
      HttpResponse r;
      r.status = (*head)->status;
      r.content_type = (*head)->content_type;
      r.headers = std::move((*head)->headers);
      std::string first = buf.substr((*head)->body_start);
      r.stream = [p, first, what](net::StreamWriter& w) { return pump_body(p, first, w, what); };
      co_return r;
    }
    auto chunk = co_await p->read_stdout();
    if (!chunk || chunk->empty()) {
      int code = co_await p->wait();
      spdlog::warn("{}: git http-backend exited with {} before answering: {}", what, code, p->stderr_text());
      co_return HttpResponse::text(502, "stele: git http-backend failed (exit " + std::to_string(code) + "): " +
                                            p->stderr_text() + "\n");
    }
    buf += *chunk;
  }
}

}  // namespace

void add_git_routes(net::Router& r, ApiServer::Impl& s) {
  auto handler = [&s](HttpRequest& req) { return serve_git(s, req); };
  r.add("GET", "/git/{repo}/{*rest}", handler);
  r.add("POST", "/git/{repo}/{*rest}", handler);
}

}  // namespace stele::api
