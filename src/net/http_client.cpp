#include "net/http_client.h"
#include "net/http_server.h"

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
#include <boost/beast/ssl/ssl_stream.hpp>

#include "net/tls.h"

namespace stele::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using asio::use_awaitable;

std::vector<std::string> split_url_list(std::string_view list) {
  std::vector<std::string> out;
  for (size_t at = 0; at <= list.size();) {
    size_t comma = std::min(list.find(',', at), list.size());
    std::string_view item = list.substr(at, comma - at);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) out.emplace_back(item);
    at = comma + 1;
  }
  return out;
}

std::string reachable_address(const std::string& host_port, const std::string& url) {
  auto hp = split_host_port(host_port);
  if (!hp) return host_port;
  const std::string& h = hp->first;
  if (h != "0.0.0.0" && h != "::" && h != "[::]" && !h.empty()) return host_port;
  auto u = parse_url(url);
  if (!u) return host_port;
  return (u->host.find(':') != std::string::npos ? "[" + u->host + "]" : u->host) + ":" + std::to_string(hp->second);
}

std::optional<std::string> leader_redirect(const ClientResponse& r) {
  if (r.status != 307 && r.status != 308) return std::nullopt;
  auto it = r.headers.find("x-stele-leader");
  if (it == r.headers.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

Result<Url> parse_url(const std::string& url) {
  Url u;
  std::string rest;
  if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else if (url.rfind("https://", 0) == 0) {
    rest = url.substr(8);
    u.tls = true;
    u.port = 443;
  } else {
    return fail("unsupported URL '" + url + "': only http:// and https:// are supported");
  }
  auto slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
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

using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// Connects and handshakes, verifying the server's certificate against the
// client CA (tls.h) and its name against u.host.
awaitable<Result<std::unique_ptr<TlsStream>>> connect_tls(const Url& u, std::chrono::milliseconds timeout) {
  auto ctx = client_context();
  if (!ctx) co_return fail(ctx.error());
  auto tcp_stream = co_await connect(u, timeout);
  if (!tcp_stream) co_return fail(tcp_stream.error());
  auto s = std::make_unique<TlsStream>(std::move(*tcp_stream), **ctx);
  if (auto r = set_peer_name(s->native_handle(), u.host); !r) co_return fail(r.error());
  boost::system::error_code ec;
  beast::get_lowest_layer(*s).expires_after(timeout);
  co_await s->async_handshake(asio::ssl::stream_base::client, asio::redirect_error(use_awaitable, ec));
  if (ec) co_return fail(handshake_failure(s->native_handle(), u.host + ":" + std::to_string(u.port), ec));
  co_return std::move(s);
}

template <class Stream>
void close_stream(Stream& s) {
  boost::system::error_code ec;
  beast::get_lowest_layer(s).socket().shutdown(tcp::socket::shutdown_both, ec);
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

namespace {

// A response's header fields, names lower-cased.
template <class Fields>
std::map<std::string, std::string> lower_headers(const Fields& fields) {
  std::map<std::string, std::string> out;
  for (const auto& f : fields) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(tolower(c));
    out[name] = std::string(f.value());
  }
  return out;
}

template <class Stream>
awaitable<Result<ClientResponse>> exchange(Stream& stream, bhttp::request<bhttp::string_body>& req,
                                           const std::string& url, std::chrono::milliseconds timeout) {
  boost::system::error_code ec;
  beast::get_lowest_layer(stream).expires_after(timeout);
  co_await bhttp::async_write(stream, req, asio::redirect_error(use_awaitable, ec));
  if (ec) co_return fail("sending to " + url + ": " + ec.message());
  beast::flat_buffer buf;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(1024ull * 1024 * 1024);
  co_await bhttp::async_read(stream, buf, parser, asio::redirect_error(use_awaitable, ec));
  if (ec) co_return fail("reading from " + url + ": " + ec.message());
  auto& res = parser.get();
  ClientResponse out;
  out.status = res.result_int();
  out.headers = lower_headers(res);
  out.body = std::move(res.body());
  close_stream(stream);
  co_return out;
}

template <class Stream>
struct OpenResponseOn final : OpenResponse {
  std::unique_ptr<Stream> stream;
  std::string url;
  beast::flat_buffer buf;
  bhttp::response_parser<bhttp::buffer_body> parser;
  bool ended = false;

  ~OpenResponseOn() override {
    if (stream) close_stream(*stream);
  }

  awaitable<Result<void>> open(bhttp::request<bhttp::string_body>& req, std::chrono::milliseconds head_timeout) {
    boost::system::error_code ec;
    beast::get_lowest_layer(*stream).expires_after(std::chrono::seconds(30));
    co_await bhttp::async_write(*stream, req, asio::redirect_error(use_awaitable, ec));
    if (ec) co_return fail("sending to " + url + ": " + ec.message());
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());  // boost::none misbehaves on 1.74
    beast::get_lowest_layer(*stream).expires_after(head_timeout);
    co_await bhttp::async_read_header(*stream, buf, parser, asio::redirect_error(use_awaitable, ec));
    if (ec) co_return fail("reading from " + url + ": " + ec.message());
    status = parser.get().result_int();
    headers = lower_headers(parser.get());
    co_return Result<void>{};
  }

  awaitable<Result<std::string>> next(std::chrono::milliseconds idle_timeout) override {
    char tmp[16384];
    while (!ended && !parser.is_done()) {
      parser.get().body().data = tmp;
      parser.get().body().size = sizeof tmp;
      boost::system::error_code ec;
      beast::get_lowest_layer(*stream).expires_after(idle_timeout);
      co_await bhttp::async_read_some(*stream, buf, parser, asio::redirect_error(use_awaitable, ec));
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec) {
        ended = true;
        if (ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == asio::ssl::error::stream_truncated)
          break;
        co_return fail("answer from " + url + " ended: " + ec.message());
      }
      size_t n = sizeof tmp - parser.get().body().size;
      if (n) co_return std::string(tmp, n);
    }
    co_return std::string();
  }
};

template <class Stream>
awaitable<Result<std::shared_ptr<OpenResponse>>> open_on(std::unique_ptr<Stream> stream,
                                                         bhttp::request<bhttp::string_body>& req, std::string url,
                                                         std::chrono::milliseconds head_timeout) {
  auto r = std::make_shared<OpenResponseOn<Stream>>();
  r->stream = std::move(stream);
  r->url = std::move(url);
  if (auto ok = co_await r->open(req, head_timeout); !ok) co_return fail(ok.error());
  co_return std::shared_ptr<OpenResponse>(r);
}

}  // namespace

awaitable<Result<std::shared_ptr<OpenResponse>>> http_open(std::string method, std::string url, std::string body,
                                                            Headers headers, std::chrono::milliseconds head_timeout) {
  auto u = parse_url(url);
  if (!u) co_return fail(u.error());
  auto req = make_request(method, *u, std::move(body), headers);
  if (u->tls) {
    auto tls = co_await connect_tls(*u, std::chrono::seconds(10));
    if (!tls) co_return fail(tls.error());
    co_return co_await open_on(std::move(*tls), req, url, head_timeout);
  }
  auto stream = co_await connect(*u, std::chrono::seconds(10));
  if (!stream) co_return fail(stream.error());
  co_return co_await open_on(std::make_unique<beast::tcp_stream>(std::move(*stream)), req, url, head_timeout);
}

awaitable<Result<ClientResponse>> http_request(std::string method, std::string url, std::string body,
                                               Headers headers, std::chrono::milliseconds timeout) {
  auto u = parse_url(url);
  if (!u) co_return fail(u.error());
  auto req = make_request(method, *u, std::move(body), headers);
  if (u->tls) {
    auto tls = co_await connect_tls(*u, timeout);
    if (!tls) co_return fail(tls.error());
    co_return co_await exchange(**tls, req, url, timeout);
  }
  auto stream = co_await connect(*u, timeout);
  if (!stream) co_return fail(stream.error());
  co_return co_await exchange(*stream, req, url, timeout);
}

awaitable<Result<int>> http_stream(std::string method, std::string url, std::string body, Headers headers,
                                   std::function<bool(std::string_view)> on_data,
                                   std::chrono::milliseconds idle_timeout) {
  auto r = co_await http_open(std::move(method), std::move(url), std::move(body), std::move(headers), idle_timeout);
  if (!r) co_return fail(r.error());
  std::shared_ptr<OpenResponse> open = *r;
  for (;;) {
    auto piece = co_await open->next(idle_timeout);
    if (!piece) co_return fail(piece.error());
    if (piece->empty() || !on_data(*piece)) break;
  }
  co_return open->status;
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
