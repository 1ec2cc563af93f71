// API tokens with roles (docs/api.md "Tokens"): POST/GET /api/v1/tokens,
// DELETE /api/v1/tokens/{name}, and how a presented secret is recognised.
// A token's secret ("stl_" + 32 hex from RAND_bytes) is shown once at
// creation; the store keeps only its sha256.
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <strings.h>

#include <chrono>

#include "api/api_impl.h"
#include "artifact/sha256.h"
#include "common/clock.h"

namespace stele::api {

using net::HttpRequest;
using net::HttpResponse;

namespace {

constexpr const char* kCollection = "tokens";
constexpr int64_t kRefreshMs = 3000;  // another server may have revoked one

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Equal-length digests compared without an early exit.
bool same_digest(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Result<std::string> new_secret() {
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) return fail("the random generator failed", 500);
  static const char* hex = "0123456789abcdef";
  std::string out = "stl_";
  for (unsigned char b : raw) {
    out.push_back(hex[b >> 4]);
    out.push_back(hex[b & 15]);
  }
  return out;
}

// The token as listed: no hash, no secret.
Json public_view(const Json& doc) {
  return {{"name", doc.value("name", "")}, {"role", doc.value("role", "")}, {"created", doc.value("created", "")},
          {"createdBy", doc.value("createdBy", "")}};
}

Error bad_body(const std::string& path, const std::string& why) {
  return Error{"token is not valid", {{path, {why}}}, 422};
}

// {"name", "role"}: the validated pair, or a 422 naming every bad field.
Result<std::pair<std::string, Role>> parse_create(const Json& j) {
  if (!j.is_object()) return fail(bad_body("/", "expected an object {\"name\", \"role\"}"));
  Error err{"token is not valid", {}, 422};
  std::string name;
  std::optional<Role> role;
  if (!j.contains("name") || !j["name"].is_string()) {
    err.details.push_back({"/name", {"expected a string"}});
  } else {
    name = j["name"].get<std::string>();
    if (auto why = token_name_error(name); !why.empty()) err.details.push_back({"/name", {why}});
  }
  if (!j.contains("role") || !j["role"].is_string()) {
    err.details.push_back({"/role", {"expected one of admin, deployer, viewer"}});
  } else if (role = parse_role(j["role"].get<std::string>()); !role) {
    err.details.push_back({"/role", {"unknown role '" + j["role"].get<std::string>() + "': expected one of admin, deployer, viewer"}});
  }
  for (auto& [k, v] : j.items())
    if (k != "name" && k != "role") err.details.push_back({"/" + k, {"unknown field"}});
  if (!err.details.empty()) return fail(err);
  return std::make_pair(name, *role);
}

// Stores the writes and the event, then publishes the event.
Result<void> persist(ApiServer::Impl& s, std::vector<store::Write> writes, Json event) {
  event["time"] = iso8601(s.cluster.now_ms());
  std::vector<int64_t> ids;
  std::vector<Json> events{event};
  auto r = s.store.apply(writes, events, &ids);
  s.invalidate_tokens();
  if (!r) return fail(Error{r.error().message, {}, 503});
  if (!ids.empty()) event["id"] = ids[0];
  s.publish(event);
  return {};
}

HttpResponse create_token(ApiServer::Impl& s, const HttpRequest& req) {
  auto body = body_json(req);
  if (!body) return HttpResponse::error(body.error(), 400);
  auto parsed = parse_create(*body);
  if (!parsed) return HttpResponse::error(parsed.error());
  const auto& [name, role] = *parsed;
  if (name == "bootstrap")
    return HttpResponse::json(409, {{"message", "token 'bootstrap' exists: it is the server's own (<data-dir>/token or --token)"}});
  auto existing = s.store.get(kCollection, name);
  if (!existing) return HttpResponse::error(Error{existing.error().message, {}, 503});
  if (*existing) return HttpResponse::json(409, {{"message", "token '" + name + "' exists (delete it first to replace it)"}});
  auto secret = new_secret();
  if (!secret) return HttpResponse::error(secret.error());
  std::string actor = s.actor(req);
  Json doc = {{"name", name}, {"role", role_name(role)}, {"sha256", artifact::sha256_hex(*secret)},
              {"created", iso8601(s.cluster.now_ms())}, {"createdBy", actor}};
  Json event = {{"type", "token_created"}, {"token", name}, {"role", role_name(role)}, {"actor", actor}};
  if (auto r = persist(s, {store::Write{kCollection, name, doc.dump()}}, event); !r) return HttpResponse::error(r.error());
  Json answer = public_view(doc);
  answer["token"] = *secret;
  return HttpResponse::json(201, answer);
}

HttpResponse delete_token(ApiServer::Impl& s, const HttpRequest& req) {
  std::string name = req.param("name");
  auto existing = s.store.get(kCollection, name);
  if (!existing) return HttpResponse::error(Error{existing.error().message, {}, 503});
  if (!*existing) {
    std::string hint = name == "bootstrap" ? " (the bootstrap token is <data-dir>/token: replace that file and restart)" : "";
    return HttpResponse::json(404, {{"message", "token '" + name + "' does not exist" + hint}});
  }
  Json event = {{"type", "token_deleted"}, {"token", name}, {"actor", s.actor(req)}};
  if (auto r = persist(s, {store::Write{kCollection, name, std::nullopt}}, event); !r) return HttpResponse::error(r.error());
  return HttpResponse::json(200, {{"deleted", name}});
}

}  // namespace

std::optional<Role> parse_role(std::string_view name) {
  if (name == "viewer") return Role::viewer;
  if (name == "deployer") return Role::deployer;
  if (name == "admin") return Role::admin;
  return std::nullopt;
}

const char* role_name(Role r) {
  switch (r) {
    case Role::viewer: return "viewer";
    case Role::deployer: return "deployer";
    case Role::admin: return "admin";
  }
  return "viewer";
}

bool role_allows(Role have, Role need) { return static_cast<int>(have) >= static_cast<int>(need); }

Role required_role(const HttpRequest& req) {
  return req.method == "GET" || req.method == "HEAD" ? Role::viewer : Role::deployer;
}

std::string token_name_error(std::string_view name) {
  auto lower_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (name.empty()) return "must not be empty";
  if (name.size() > 63) return "at most 63 characters";
  if (!lower_digit(name[0])) return "must start with a lowercase letter or a digit ([a-z0-9][a-z0-9._-]{0,62})";
  for (char c : name)
    if (!lower_digit(c) && c != '.' && c != '_' && c != '-')
      return "only lowercase letters, digits, '.', '_' and '-' ([a-z0-9][a-z0-9._-]{0,62})";
  return "";
}

std::string bearer_secret(const HttpRequest& req) {
  std::string h = req.header("authorization");
  if (h.size() <= 7 || strncasecmp(h.c_str(), "Bearer ", 7) != 0) return "";
  size_t b = h.find_first_not_of(' ', 7), e = h.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : h.substr(b, e - b + 1);
}

const std::vector<ApiServer::Impl::StoredToken>& ApiServer::Impl::tokens() const {
  int64_t now = steady_ms();
  if (tokens_loaded_ms >= 0 && now - tokens_loaded_ms < kRefreshMs) return tokens_cache;
  auto docs = store.list(kCollection);
  if (!docs) return tokens_cache;  // keep the last view; the next call retries
  std::vector<StoredToken> fresh;
  for (const auto& [key, text] : *docs) {
    auto j = parse_json(text);
    if (!j || !j->is_object()) continue;
    auto role = parse_role(j->value("role", ""));
    std::string hash = j->value("sha256", "");
    if (!role || hash.size() != 64) continue;
    fresh.push_back({key, hash, *role, *j});
  }
  tokens_cache = std::move(fresh);
  tokens_loaded_ms = now;
  return tokens_cache;
}

std::optional<Principal> ApiServer::Impl::authenticate(const std::string& secret) const {
  std::string digest = artifact::sha256_hex(secret);
  std::optional<Principal> found;
  // Every candidate is compared, so the time taken does not say which matched.
  if (!opts.token.empty() && same_digest(digest, artifact::sha256_hex(opts.token))) found = Principal{"bootstrap", Role::admin};
  if (!opts.join_token.empty() && same_digest(digest, artifact::sha256_hex(opts.join_token)) && !found)
    found = Principal{"join-token", Role::viewer, true};
  for (const auto& t : tokens())
    if (same_digest(digest, t.sha256) && !found) found = Principal{t.name, t.role};
  return found;
}

void add_token_routes(net::Router& r, ApiServer::Impl& s) {
  r.add("POST", "/api/v1/tokens", [&s](HttpRequest& req) -> net::awaitable<HttpResponse> {
    if (auto denied = s.check_auth(req, Role::admin, true)) co_return *denied;
    co_return create_token(s, req);
  });
  r.add("GET", "/api/v1/tokens", [&s](HttpRequest& req) -> net::awaitable<HttpResponse> {
    if (auto denied = s.check_auth(req, Role::admin, true)) co_return *denied;
    Json list = Json::array();
    s.invalidate_tokens();  // a listing shows the store as it is
    for (const auto& t : s.tokens()) list.push_back(public_view(t.doc));
    co_return HttpResponse::json(200, {{"tokens", list}});
  });
  r.add("DELETE", "/api/v1/tokens/{name}", [&s](HttpRequest& req) -> net::awaitable<HttpResponse> {
    if (auto denied = s.check_auth(req, Role::admin, true)) co_return *denied;
    co_return delete_token(s, req);
  });
}

}  // namespace stele::api
