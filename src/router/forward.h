// Byte moving between a client and an upstream: bodies by their framing
// (Content-Length, chunked passed through as is, until close) and the splice
// of an upgraded connection. Internal to the proxy; io thread only.
//
// Templates over the stream of each side: tcp::socket, or SslStream for a
// client of the TLS listener (upstreams are always plain); instantiated in
// forward.cpp for the combinations the proxy uses, so the plain path is the
// same code it was without TLS.
#pragma once
#include "router/http1.h"
#include "router/proxy_impl.h"

namespace stele::router {

// One side of an exchange: its stream, its unread bytes and its deadline.
template <class Stream>
struct Side {
  Stream& sock;
  ByteBuffer& buf;
  Deadline& deadline;
};

enum class Xfer : uint8_t {
  kDone,
  kReadClosed,    // the source closed or reset before the body ended
  kReadTimeout,   // the source made no progress within the idle timeout
  kWriteFailed,   // the destination went away (or timed out)
  kTooLarge,      // more payload than `limit`
  kBadFraming,    // malformed chunked framing
};

struct BodyPlan {
  http1::BodyKind kind = http1::BodyKind::kNone;
  uint64_t length = 0;                 // kLength
  uint64_t limit = 0;                  // payload cap, 0 = none
  std::chrono::milliseconds idle{60'000};
  size_t buffer_limit = 64 * 1024;     // read size while streaming
};

// Writes `prefix` (a head) together with the first body bytes, then moves
// the rest of the body from `from` to `to`. Bytes after the body stay in
// from.buf (the next pipelined message). `moved` counts body bytes written.
template <class From, class To>
awaitable<Xfer> forward_body(Side<From> from, Side<To> to, const BodyPlan& plan, std::string_view prefix,
                             uint64_t& moved);

// Writes all of `bytes` to `to` under its deadline; false on failure.
template <class Stream>
awaitable<bool> write_all(Side<Stream> to, std::string_view bytes, std::chrono::milliseconds timeout);

// Splices an upgraded connection: bytes already buffered on either side go
// first, then both directions run until either side closes or stays idle
// for `idle`; both sockets are closed at the end.
template <class Client>
awaitable<void> tunnel(asio::io_context& io, Side<Client> client, Side<tcp::socket> upstream,
                       std::chrono::milliseconds idle);

}  // namespace stele::router
