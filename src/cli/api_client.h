// ApiClient: the `stele` client's view of the server's HTTP API
// (docs/api.md): where it is, how to authenticate, and how failures read.
// Blocking calls (each runs its own io_context); one thread at a time.
#pragma once
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/json.h"
#include "common/result.h"
#include "net/http.h"
#include "net/http_client.h"

namespace stele::cli {

inline constexpr const char* kDefaultApi = "http://127.0.0.1:7070";

// The client's global options as given on the command line ("" / false =
// not given). Shared by the root command and every verb.
struct GlobalFlags {
  std::string api, token, data_dir;
  std::string ca;  // --ca
  bool json = false;
};

// What the client uses after environment and defaults are applied.
struct ClientOptions {
  std::string api = kDefaultApi;  // no trailing '/'
  std::string token;              // "" = send no Authorization header
  std::string ca;                 // CA file for https:// APIs: --ca, else $STELE_CA; "" = system CAs
  bool json = false;              // print raw JSON answers
};

// name -> value of an environment variable (nullopt when unset or empty).
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
std::optional<std::string> process_env(const std::string& name);

// --api, else $STELE_API, else kDefaultApi ("http://" is added when the
// scheme is missing). --token, else $STELE_TOKEN, else the first existing
// token file of: <--data-dir>/token when --data-dir is given; otherwise
// $STELE_DATA_DIR/token, then ./stele-data/token (where `stele up` writes it).
// --ca, else $STELE_CA.
ClientOptions resolve_options(const GlobalFlags& flags, const EnvLookup& env);

// The server's error answer ({"message", "details": [{"path", "errors"}]})
// as an Error with code = status; a body that is not such JSON becomes
// "HTTP <status>: <first line of the body>".
Error error_from_response(int status, std::string_view body);

// A transport failure of a call to `api` as the user should read it:
// refused connections say the API is not running; other connect and
// resolve failures name the API URL and the cause.
Error connection_error(const std::string& api, const Error& transport);

// One line for stderr, without newline: "stele: <message>: <path>: <errors>; ...".
std::string format_error(const Error& e);

// "/shop/web" or "shop/web" -> "/api/v1/apps/shop/web".
std::string app_path(std::string_view app_id);

class ApiClient {
 public:
  explicit ApiClient(ClientOptions opts) : opts_(std::move(opts)) {}
  const ClientOptions& options() const { return opts_; }
  // `path` on the server in use: with several --api URLs (servers sharing
  // an etcd store), the leader, asked of them at the first call; a
  // follower's redirect (307, X-Stele-Leader) moves the client to the leader.
  std::string url(const std::string& path) const { return base() + path; }

  // Calls `path` (e.g. "/api/v1/apps"). Answers the parsed body of a 2xx
  // answer ({} when empty), else the error as the user should read it
  // (code = HTTP status, 0 for transport failures).
  Result<Json> get(const std::string& path) const;
  // `body` null = no body.
  Result<Json> send(const std::string& method, const std::string& path, const Json& body) const;

  // Streams a GET of `path`: on_data gets each piece of the body, returns
  // false to stop. Answers the HTTP status (the body of a non-2xx answer is
  // passed to on_data too) or the transport error as the user should read it.
  Result<int> stream(const std::string& path, const net::Headers& extra,
                     const std::function<bool(std::string_view)>& on_data,
                     std::chrono::milliseconds idle_timeout) const;

  // The same for any method: `body` is sent as JSON when non-empty; `accept`
  // is the Accept header (e.g. "application/x-ndjson", "text/plain").
  Result<int> stream_request(const std::string& method, const std::string& path, const std::string& body,
                             const std::string& accept, const net::Headers& extra,
                             const std::function<bool(std::string_view)>& on_data,
                             std::chrono::milliseconds idle_timeout) const;

  // GET of a text resource (e.g. a release log): the body of a 2xx answer,
  // else the error as the user should read it.
  Result<std::string> get_text(const std::string& path) const;

  // error_from_response plus a hint when authentication failed.
  Error http_error(int status, std::string_view body) const;

 private:
  net::Headers headers() const;
  const std::string& base() const;
  // A follower's 307/308 naming the leader: the client moves there (true).
  bool follow_leader(const net::ClientResponse& r) const;

  ClientOptions opts_;
  mutable std::string base_;  // "" until resolved
};

}  // namespace stele::cli
