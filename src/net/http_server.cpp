#include "net/http_server.h"

#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <spdlog/spdlog.h>

namespace stele::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using asio::use_awaitable;

bool is_loopback_host(const std::string& host) {
  boost::system::error_code ec;
  auto a = asio::ip::make_address(host, ec);
  if (ec) return host == "localhost";
  if (a.is_v4()) return a.to_v4().to_bytes()[0] == 127;
  if (a.to_v6().is_v4_mapped())
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).to_bytes()[0] == 127;
  return a.is_loopback();
}

Result<std::pair<std::string, uint16_t>> split_host_port(const std::string& s) {
  std::string host;
  std::string port;
  if (!s.empty() && s[0] == '[') {
    auto close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':')
      return fail("bad address '" + s + "': expected [v6]:port");
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string::npos) return fail("bad address '" + s + "': expected host:port");
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  char* end = nullptr;
  long p = strtol(port.c_str(), &end, 10);
  if (port.empty() || *end || p < 0 || p > 65535)
    return fail("bad port in address '" + s + "'");
  if (host.empty()) host = "0.0.0.0";
  if (host == "localhost") host = "127.0.0.1";
  return std::make_pair(host, static_cast<uint16_t>(p));
}

namespace {

template <class Stream>
class ChunkWriter final : public StreamWriter {
 public:
  explicit ChunkWriter(Stream& s) : stream_(s) {}
  awaitable<bool> write(std::string data) override {
    if (closed_) co_return false;
    if (data.empty()) co_return true;
    boost::system::error_code ec;
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(30));
    co_await asio::async_write(stream_, bhttp::make_chunk(asio::buffer(data)),
                               asio::redirect_error(use_awaitable, ec));
    if (ec) closed_ = true;
    co_return !closed_;
  }
  bool closed() const override { return closed_; }
  awaitable<void> finish() {
    if (closed_) co_return;
    boost::system::error_code ec;
    co_await asio::async_write(stream_, bhttp::make_chunk_last(), asio::redirect_error(use_awaitable, ec));
    if (ec) closed_ = true;
  }

 private:
  Stream& stream_;
  bool closed_ = false;
};

HttpRequest to_request(const bhttp::request<bhttp::string_body>& r, const tcp::endpoint& peer) {
  HttpRequest req;
  req.method = std::string(r.method_string());
  req.target = std::string(r.target());
  auto q = req.target.find('?');
  req.path = percent_decode(std::string_view(req.target).substr(0, q), false);
  if (q != std::string::npos) req.query = parse_query(std::string_view(req.target).substr(q + 1));
  for (const auto& f : r) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(tolower(c));
    req.headers[name] = std::string(f.value());
  }
  req.body = r.body();
  req.peer = peer.address().to_string();
  req.peer_is_loopback = is_loopback_host(req.peer);
  return req;
}

}  // namespace

struct HttpServer::Impl {
  asio::io_context& io;
  const Router& router;
  ServerOptions opts;
  std::vector<std::shared_ptr<tcp::acceptor>> acceptors;

  awaitable<void> accept_loop(std::shared_ptr<tcp::acceptor> acc) {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket sock = co_await acc->async_accept(asio::redirect_error(use_awaitable, ec));
      if (ec) {
        if (ec == asio::error::operation_aborted || !acc->is_open()) co_return;
        spdlog::warn("accept failed: {}", ec.message());
        continue;
      }
      asio::co_spawn(io, session(std::move(sock)), asio::detached);
    }
  }

  awaitable<HttpResponse> dispatch(HttpRequest& req) {
    if (router.gate())
      if (auto instead = router.gate()(req)) co_return co_await (*instead)(req);
    bool path_matched = false;
    const Handler* h = router.match(req, path_matched);
    if (!h) {
      if (path_matched) co_return HttpResponse::json(405, {{"message", "method " + req.method + " not allowed on " + req.path}});
      co_return HttpResponse::json(404, {{"message", "no such path: " + req.path}});
    }
    try {
      co_return co_await (*h)(req);
    } catch (const std::exception& e) {
      spdlog::error("handler {} {} threw: {}", req.method, req.path, e.what());
      co_return HttpResponse::json(500, {{"message", std::string("internal error: ") + e.what()}});
    }
  }

  template <class Stream>
  awaitable<bool> write_response(Stream& stream, HttpResponse& res, unsigned version, bool keep_alive, bool head) {
    boost::system::error_code ec;
    if (res.stream) {
      bhttp::response<bhttp::empty_body> hdr{static_cast<bhttp::status>(res.status), version};
      hdr.set(bhttp::field::content_type, res.content_type);
      hdr.set(bhttp::field::cache_control, "no-cache");
      for (auto& [k, v] : res.headers) hdr.set(k, v);
      hdr.chunked(true);
      hdr.keep_alive(false);
      bhttp::response_serializer<bhttp::empty_body> sr{hdr};
      beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(30));
      co_await bhttp::async_write_header(stream, sr, asio::redirect_error(use_awaitable, ec));
      if (ec) co_return false;
      ChunkWriter<Stream> w(stream);
      co_await res.stream(w);
      co_await w.finish();
      co_return false;  // streamed responses end the connection
    }
    bhttp::response<bhttp::string_body> out{static_cast<bhttp::status>(res.status), version};
    out.set(bhttp::field::server, "stele");
    out.set(bhttp::field::content_type, res.content_type);
    for (auto& [k, v] : res.headers) out.set(k, v);
    out.keep_alive(keep_alive);
    out.body() = std::move(res.body);
    out.prepare_payload();
    if (head) out.body().clear();
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(30));
    co_await bhttp::async_write(stream, out, asio::redirect_error(use_awaitable, ec));
    co_return !ec && keep_alive;
  }

  awaitable<void> session(tcp::socket sock) {
    boost::system::error_code ec;
    auto peer = sock.remote_endpoint(ec);
    if (!opts.tls) {
      beast::tcp_stream stream(std::move(sock));
      co_await serve(stream, peer);
      co_return;
    }
    // HTTPS only: a client that does not complete a TLS handshake (plain
    // HTTP included) gets no HTTP answer, only the closed connection.
    beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(sock)), *opts.tls);
    beast::get_lowest_layer(stream).expires_after(opts.handshake_timeout);
    co_await stream.async_handshake(asio::ssl::stream_base::server, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      spdlog::debug("TLS handshake from {} failed: {}", peer.address().to_string(), ec.message());
      beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_both, ec);
      co_return;
    }
    co_await serve(stream, peer);
  }

  template <class Stream>
  awaitable<void> serve(Stream& stream, const tcp::endpoint& peer) {
    boost::system::error_code ec;
    beast::flat_buffer buf;
    for (;;) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(opts.body_limit);
      parser.header_limit(64 * 1024);
      beast::get_lowest_layer(stream).expires_after(opts.idle_timeout);
      co_await bhttp::async_read(stream, buf, parser, asio::redirect_error(use_awaitable, ec));
      if (ec) {
        if (ec == bhttp::error::body_limit) {
          HttpResponse r = HttpResponse::json(413, {{"message", "request body larger than the limit"}});
          co_await write_response(stream, r, 11, false, false);
        } else if (ec != bhttp::error::end_of_stream && ec != beast::error::timeout &&
                   ec != asio::error::connection_reset && ec != asio::error::eof &&
                   ec != asio::ssl::error::stream_truncated) {
          HttpResponse r = HttpResponse::json(400, {{"message", "bad HTTP request: " + ec.message()}});
          co_await write_response(stream, r, 11, false, false);
        }
        break;
      }
      auto& msg = parser.get();
      HttpRequest req = to_request(msg, peer);
      HttpResponse res = co_await dispatch(req);
      bool again = co_await write_response(stream, res, msg.version(), msg.keep_alive(), req.method == "HEAD");
      if (!again) break;
    }
    beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_send, ec);
  }
};

HttpServer::HttpServer(asio::io_context& io, const Router& router, ServerOptions opts)
    : impl_(new Impl{io, router, opts, {}}) {}

HttpServer::~HttpServer() { stop(); }

Result<std::string> HttpServer::listen(const std::string& host_port) {
  auto hp = split_host_port(host_port);
  if (!hp) return fail(hp.error());
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(hp->first, ec);
  if (ec) return fail("bad listen address '" + host_port + "': " + ec.message());
  auto acc = std::make_shared<tcp::acceptor>(impl_->io);
  tcp::endpoint ep(addr, hp->second);
  acc->open(ep.protocol(), ec);
  if (!ec) acc->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc->bind(ep, ec);
  if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail("cannot listen on " + host_port + ": " + ec.message());
  auto bound = acc->local_endpoint(ec);
  impl_->acceptors.push_back(acc);
  asio::co_spawn(impl_->io, impl_->accept_loop(acc), asio::detached);
  std::string host = bound.address().to_string();
  if (bound.address().is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(bound.port());
}

void HttpServer::stop() {
  for (auto& a : impl_->acceptors) {
    boost::system::error_code ec;
    a->close(ec);
  }
  impl_->acceptors.clear();
}

}  // namespace stele::net
