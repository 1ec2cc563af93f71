#include "docker/unix_http.h"

#include <utility>  // before asio, for g++ 12

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <limits>
#include <optional>

namespace stele::docker {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using local = asio::local::stream_protocol;
using boost::system::error_code;

namespace {

constexpr size_t kMaxBody = 256u << 20;
constexpr size_t kMaxErrorBody = 64u << 10;

// One connection on a private io_context; every operation shares the
// exchange's deadline.
class Conn {
 public:
  explicit Conn(Deadline deadline) : deadline_(deadline) {}

  // Runs one async operation started by initiate(handler) to completion or
  // the deadline; on the deadline the socket is closed (aborting it).
  template <class Initiate>
  error_code run(Initiate&& initiate) {
    std::optional<error_code> done;
    initiate([&done](error_code ec, auto&&...) { done = ec; });
    io.restart();
    while (!done && io.run_one_until(deadline_) > 0) {
    }
    if (done) return *done;
    error_code ignored;
    sock.close(ignored);
    io.restart();
    io.run();
    return asio::error::timed_out;
  }

  asio::io_context io;
  local::socket sock{io};
  beast::flat_buffer buf;

 private:
  Deadline deadline_;
};

Result<void> check(error_code ec, const std::string& doing) {
  if (!ec) return {};
  if (ec == asio::error::timed_out) return fail(doing + ": timed out");
  return fail(doing + ": " + ec.message());
}

template <class Body>
void prepare(bhttp::request<Body>& req, const HttpCall& call, bool has_body) {
  req.method(bhttp::string_to_verb(call.method));
  req.target(call.target);
  req.version(11);
  req.set(bhttp::field::host, "docker");
  req.set(bhttp::field::user_agent, "stele");
  if (has_body) req.set(bhttp::field::content_type, call.content_type.empty() ? "application/json" : call.content_type);
  req.prepare_payload();
}

template <class Body>
Result<void> write(Conn& c, bhttp::request<Body>& req) {
  return check(c.run([&](auto h) { bhttp::async_write(c.sock, req, std::move(h)); }), "sending request");
}

Result<void> open_and_send(Conn& c, const std::string& socket_path, const HttpCall& call) {
  auto ec = c.run([&](auto h) { c.sock.async_connect(local::endpoint(socket_path), std::move(h)); });
  if (auto r = check(ec, "cannot connect to " + socket_path); !r) return r;
  if (call.body_file.empty()) {
    bhttp::request<bhttp::string_body> req;
    req.body() = call.body;
    prepare(req, call, !call.body.empty());
    return write(c, req);
  }
  bhttp::request<bhttp::file_body> req;
  beast::error_code fec;
  req.body().open(call.body_file.c_str(), beast::file_mode::scan, fec);
  if (fec) return fail("cannot read " + call.body_file + ": " + fec.message());
  prepare(req, call, true);
  return write(c, req);
}

template <class Message>
void fill_head(HttpReply& out, const Message& m) {
  out.status = m.result_int();
  auto it = m.find(bhttp::field::content_type);
  if (it != m.end()) out.content_type = std::string(it->value());
}

}  // namespace

Result<HttpReply> UnixHttp::exchange(const HttpCall& call, Deadline deadline) const {
  Conn c(deadline);
  if (auto r = open_and_send(c, path_, call); !r) return fail(r.error());
  bhttp::response_parser<bhttp::string_body> p;
  p.body_limit(kMaxBody);
  auto ec = c.run([&](auto h) { bhttp::async_read(c.sock, c.buf, p, std::move(h)); });
  if (auto r = check(ec, "reading answer"); !r) return fail(r.error());
  HttpReply out;
  fill_head(out, p.get());
  out.body = std::move(p.get().body());
  return out;
}

Result<HttpReply> UnixHttp::stream(const HttpCall& call, Deadline deadline,
                                   const std::function<bool(std::string_view)>& on_data) const {
  Conn c(deadline);
  if (auto r = open_and_send(c, path_, call); !r) return fail(r.error());
  bhttp::response_parser<bhttp::buffer_body> p;
  p.body_limit(std::numeric_limits<std::uint64_t>::max());  // boost::none misbehaves on 1.74
  auto ec = c.run([&](auto h) { bhttp::async_read_header(c.sock, c.buf, p, std::move(h)); });
  if (auto r = check(ec, "reading answer"); !r) return fail(r.error());
  HttpReply out;
  fill_head(out, p.get());
  bool ok = out.status / 100 == 2;
  char tmp[16384];
  while (!p.is_done()) {
    p.get().body().data = tmp;
    p.get().body().size = sizeof tmp;
    ec = c.run([&](auto h) { bhttp::async_read_some(c.sock, c.buf, p, std::move(h)); });
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec == bhttp::error::end_of_stream || ec == asio::error::eof) break;
    if (auto r = check(ec, "reading stream"); !r) return fail(r.error());
    std::string_view piece(tmp, sizeof tmp - p.get().body().size);
    if (piece.empty()) continue;
    if (!ok) {
      out.body.append(piece.substr(0, kMaxErrorBody - std::min(kMaxErrorBody, out.body.size())));
    } else if (!on_data(piece)) {
      break;
    }
  }
  return out;
}

}  // namespace stele::docker
