#include "net/http_client.h"

#include <utility>
#include <limits>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace stele::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using asio::use_awaitable;

Result<Url> parse_url(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) return fail("unsupported URL '" + url + "': only http:// is supported");
  std::string rest = url.substr(scheme.size());
  auto slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  Url u;
  u.target = slash == std::string::npos ? "/" : rest.substr(slash);
  if (!hostport.empty() && hostport[0] == '[') {
    auto close = hostport.find(']');
    if (close == std::string::npos) return fail("bad URL '" + url + "'");
    u.host = hostport.substr(1, close - 1);
    if (close + 1 < hostport.size() && hostport[close + 1] == ':')
      u.port = static_cast<uint16_t>(atoi(hostport.c_str() + close + 2));
  } else {
    auto colon = hostport.rfind(':');
    u.host = hostport.substr(0, colon);
    if (colon != std::string::npos) u.port = static_cast<uint16_t>(atoi(hostport.c_str() + colon + 1));
  }
  if (u.host.empty() || u.port == 0) return fail("bad URL '" + url + "': missing host or port");
  return u;
}

Result<Json> ClientResponse::json() const { return parse_json(body); }

namespace {

awaitable<Result<beast::tcp_stream>> connect(const Url& u, std::chrono::milliseconds timeout) {
  auto ex = co_await asio::this_coro::executor;
  tcp::resolver resolver(ex);
  boost::system::error_code ec;
  auto eps = co_await resolver.async_resolve(u.host, std::to_string(u.port), asio::redirect_error(use_awaitable, ec));
  if (ec) co_return fail("cannot resolve " + u.host + ": " + ec.message());
  beast::tcp_stream stream(ex);
  stream.expires_after(timeout);
  co_await stream.async_connect(eps, asio::redirect_error(use_awaitable, ec));
  if (ec) co_return fail("cannot connect to " + u.host + ":" + std::to_string(u.port) + ": " + ec.message());
  stream.socket().set_option(tcp::no_delay(true), ec);
  co_return std::move(stream);
}

bhttp::request<bhttp::string_body> make_request(const std::string& method, const Url& u,
                                                std::string body, const Headers& headers) {
  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), u.target, 11};
  req.set(bhttp::field::host, u.host + ":" + std::to_string(u.port));
  req.set(bhttp::field::user_agent, "stele");
  bool has_type = false;
  for (auto& [k, v] : headers) {
    req.set(k, v);
    if (beast::iequals(k, "content-type")) has_type = true;
  }
  if (!body.empty() && !has_type) req.set(bhttp::field::content_type, "application/json");
  req.body() = std::move(body);
  req.prepare_payload();
  return req;
}

}  // namespace

awaitable<Result<ClientResponse>> http_request(std::string method, std::string url, std::string body,
                                               Headers headers, std::chrono::milliseconds timeout) {
  auto u = parse_url(url);
  if (!u) co_return fail(u.error());
  auto stream = co_await connect(*u, timeout);
  if (!stream) co_return fail(stream.error());
  auto req = make_request(method, *u, std::move(body), headers);
  boost::system::error_code ec;
  stream->expires_after(timeout);
  co_await bhttp::async_write(*stream, req, asio::redirect_error(use_awaitable, ec));
  if (ec) co_return fail("sending to " + url + ": " + ec.message());
  beast::flat_buffer buf;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(1024ull * 1024 * 1024);
  co_await bhttp::async_read(*stream, buf, parser, asio::redirect_error(use_awaitable, ec));
  if (ec) co_return fail("reading from " + url + ": " + ec.message());
  auto& res = parser.get();
  ClientResponse out;
  out.status = res.result_int();
  for (const auto& f : res) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(tolower(c));
    out.headers[name] = std::string(f.value());
  }
  out.body = std::move(res.body());
  stream->socket().shutdown(tcp::socket::shutdown_both, ec);
  co_return out;
}

awaitable<Result<int>> http_stream(std::string method, std::string url, std::string body, Headers headers,
                                   std::function<bool(std::string_view)> on_data,
                                   std::chrono::milliseconds idle_timeout) {
  auto u = parse_url(url);
  if (!u) co_return fail(u.error());
  auto stream = co_await connect(*u, std::chrono::seconds(10));
  if (!stream) co_return fail(stream.error());
  auto req = make_request(method, *u, std::move(body), headers);
  boost::system::error_code ec;
  stream->expires_after(std::chrono::seconds(30));
  co_await bhttp::async_write(*stream, req, asio::redirect_error(use_awaitable, ec));
  if (ec) co_return fail("sending to " + url + ": " + ec.message());
  beast::flat_buffer buf;
  bhttp::response_parser<bhttp::buffer_body> p;
  p.body_limit(std::numeric_limits<std::uint64_t>::max());  // boost::none misbehaves on 1.74
  stream->expires_after(idle_timeout);
  co_await bhttp::async_read_header(*stream, buf, p, asio::redirect_error(use_awaitable, ec));
  if (ec) co_return fail("reading from " + url + ": " + ec.message());
  int status = p.get().result_int();
  char tmp[16384];
  while (!p.is_done()) {
    p.get().body().data = tmp;
    p.get().body().size = sizeof tmp;
    stream->expires_after(idle_timeout);
    // read_some: return with whatever arrived (SSE events are small).
    co_await bhttp::async_read_some(*stream, buf, p, asio::redirect_error(use_awaitable, ec));
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) {
      if (ec == bhttp::error::end_of_stream || ec == asio::error::eof) break;
      co_return fail("stream from " + url + " ended: " + ec.message());
    }
    size_t n = sizeof tmp - p.get().body().size;
    if (n && !on_data(std::string_view(tmp, n))) break;
  }
  stream->socket().shutdown(tcp::socket::shutdown_both, ec);
  co_return status;
}

template <class T>
static Result<T> run_sync(awaitable<Result<T>> aw) {
  asio::io_context io;
  std::optional<Result<T>> out;
  asio::co_spawn(io, std::move(aw), [&](std::exception_ptr e, Result<T> r) {
    if (e) out = fail("internal error in HTTP client");
    else out = std::move(r);
  });
  io.run();
  if (!out) return fail("HTTP client did not complete");
  return std::move(*out);
}

Result<ClientResponse> http_request_sync(const std::string& method, const std::string& url, const std::string& body,
                                         const Headers& headers, std::chrono::milliseconds timeout) {
  return run_sync(http_request(method, url, body, headers, timeout));
}

Result<int> http_stream_sync(const std::string& method, const std::string& url, const std::string& body,
                             const Headers& headers, std::function<bool(std::string_view)> on_data,
                             std::chrono::milliseconds idle_timeout) {
  return run_sync(http_stream(method, url, body, headers, std::move(on_data), idle_timeout));
}

}  // namespace stele::net
