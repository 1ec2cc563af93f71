// HTTP/1.1 client for http:// and https:// URLs. Each call opens its own
// connection; every operation has a deadline. https:// verifies the server's
// certificate against the client CA (net/tls.h: set_client_ca_file, else the
// system's trust store) and its name (DNS or IP subjectAltName of the URL's
// host); a certificate that does not verify fails the call with an error
// naming the server and OpenSSL's reason -- never an unverified connection.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/http.h"

namespace stele::net {

struct Url {
  std::string host;
  uint16_t port = 80;  // 443 for https:// without a port
  bool tls = false;    // https://
  std::string target = "/";
};
Result<Url> parse_url(const std::string& url);
// "http://a:7070,http://b:7070" -> its URLs (empty items dropped): the
// server lists of `stele agent --server` and the CLI's --api.
std::vector<std::string> split_url_list(std::string_view list);
// A listener's "host:port" as seen from elsewhere: a wildcard host
// ("0.0.0.0:24224", "[::]:24224") becomes the host of `url` (the server as
// one reaches it); anything else is returned as is.
std::string reachable_address(const std::string& host_port, const std::string& url);

struct ClientResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-cased
  std::string body;
  Result<Json> json() const;
};

// A follower server's redirect to its leader (307/308 with X-Stele-Leader,
// routes_leader.cpp): the leader's URL; nullopt for any other answer.
std::optional<std::string> leader_redirect(const ClientResponse& r);

awaitable<Result<ClientResponse>> http_request(std::string method, std::string url,
                                               std::string body = {}, Headers headers = {},
                                               std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Streams the response body: on_data gets each piece as it arrives and
// returns false to stop. Completes when the body ends, on_data says stop, or
// no byte arrived for `idle_timeout`. Returns the status code.
awaitable<Result<int>> http_stream(std::string method, std::string url, std::string body,
                                   Headers headers, std::function<bool(std::string_view)> on_data,
                                   std::chrono::milliseconds idle_timeout = std::chrono::seconds(60));

// An answer whose status and headers have arrived; its body is read piece
// by piece (a follower relaying the leader's answer, streams included).
class OpenResponse {
 public:
  virtual ~OpenResponse() = default;
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-cased
  // The next piece of the body as it arrives; "" once it ended. An error
  // when nothing arrived for `idle_timeout` or the connection broke.
  virtual awaitable<Result<std::string>> next(std::chrono::milliseconds idle_timeout) = 0;
};
// Sends the request and waits (up to `head_timeout`) for the answer's head.
awaitable<Result<std::shared_ptr<OpenResponse>>> http_open(std::string method, std::string url, std::string body,
                                                            Headers headers,
                                                            std::chrono::milliseconds head_timeout = std::chrono::seconds(60));

// Blocking wrappers for the CLI and tests (run their own io_context).
Result<ClientResponse> http_request_sync(const std::string& method, const std::string& url,
                                         const std::string& body = {}, const Headers& headers = {},
                                         std::chrono::milliseconds timeout = std::chrono::seconds(30));
Result<int> http_stream_sync(const std::string& method, const std::string& url, const std::string& body,
                             const Headers& headers, std::function<bool(std::string_view)> on_data,
                             std::chrono::milliseconds idle_timeout = std::chrono::hours(24));

}  // namespace stele::net
