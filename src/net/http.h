// HTTP/1.1 types shared by the server and client. Beast stays inside
// http_server.cpp / http_client.cpp so only those two units pay its compile cost.
#pragma once
#include <utility>  // before asio, for g++ 12

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/result.h"

namespace stele::net {

template <class T>
using awaitable = boost::asio::awaitable<T>;

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;   // "GET", ...
  std::string target;   // raw target with query
  std::string path;     // percent-decoded path, no query
  std::map<std::string, std::string> query;   // decoded query parameters
  std::map<std::string, std::string> headers; // lower-cased names
  std::map<std::string, std::string> params;  // route parameters ({id}, {*rest})
  std::string body;
  std::string peer;     // remote address, e.g. "127.0.0.1"
  bool peer_is_loopback = true;

  std::string header(const std::string& lower_name) const;
  std::string param(const std::string& name) const;
  std::string query_param(const std::string& name, const std::string& def = "") const;
  bool query_flag(const std::string& name) const;  // "1", "true", or present-without-value
};

// Writes a streamed (chunked) response body. All calls on the server's thread.
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  // Sends one chunk now; false once the client has gone away.
  virtual awaitable<bool> write(std::string data) = 0;
  virtual bool closed() const = 0;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  Headers headers;
  // When set, the server sends headers with chunked encoding and then runs
  // this producer; `body` is ignored.
  std::function<awaitable<void>(StreamWriter&)> stream;

  static HttpResponse json(int status, const Json& j);
  static HttpResponse text(int status, std::string body, std::string type = "text/plain; charset=utf-8");
  static HttpResponse error(const Error& e, int default_status = 400);
};

using Handler = std::function<awaitable<HttpResponse>(HttpRequest&)>;

std::string percent_decode(std::string_view s, bool plus_is_space);
std::map<std::string, std::string> parse_query(std::string_view q);
// Every parameter in order, repeats kept (`target=a&target=b`).
std::vector<std::pair<std::string, std::string>> parse_query_pairs(std::string_view q);
std::string percent_encode(std::string_view s);

}  // namespace stele::net
