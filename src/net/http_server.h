// HttpServer: HTTP/1.1 keep-alive server on a single io_context thread, one
// coroutine per connection. Handlers run on that thread, so state owned by
// the same thread needs no locks.
#pragma once
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include "net/router.h"

namespace stele::net {

struct ServerOptions {
  size_t body_limit = 64 * 1024 * 1024;
  std::chrono::seconds idle_timeout{120};
  // Set: every connection is HTTPS (net/tls.h make_server_context); a client
  // that does not complete the handshake within handshake_timeout is closed
  // without an HTTP answer.
  std::shared_ptr<boost::asio::ssl::context> tls;
  std::chrono::seconds handshake_timeout{10};
};

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, const Router& router, ServerOptions opts = {});
  ~HttpServer();
  // Binds "host:port" (port 0 = ephemeral) and starts accepting. Returns the
  // bound "host:port".
  Result<std::string> listen(const std::string& host_port);
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "127.0.0.1:7070" -> host, port. "[::1]:80" supported. Error names the input.
Result<std::pair<std::string, uint16_t>> split_host_port(const std::string& s);
bool is_loopback_host(const std::string& host);

}  // namespace stele::net
