// Body streaming and upgraded-connection splicing (forward.h).
#include "router/forward.h"

#include <array>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace stele::router {

using asio::use_awaitable;
using http1::BodyKind;

namespace {

// How many buffered bytes of `from` belong to the body; sets `done` when the
// body ends within them.
size_t body_bytes_in_buffer(const ByteBuffer& buf, const BodyPlan& plan, uint64_t& remaining,
                            http1::ChunkedDecoder& dec, bool& done, Xfer& error) {
  switch (plan.kind) {
    case BodyKind::kNone:
      done = true;
      return 0;
    case BodyKind::kLength: {
      size_t take = buf.size() < remaining ? buf.size() : static_cast<size_t>(remaining);
      remaining -= take;
      done = remaining == 0;
      return take;
    }
    case BodyKind::kChunked: {
      http1::ChunkedDecoder::Status st;
      size_t take = dec.feed(buf.data(), st);
      if (st == http1::ChunkedDecoder::Status::kError) error = Xfer::kBadFraming;
      if (plan.limit && dec.payload_bytes() > plan.limit) error = Xfer::kTooLarge;
      done = st == http1::ChunkedDecoder::Status::kDone;
      return take;
    }
    case BodyKind::kUntilClose:
      return buf.size();
  }
  return 0;
}

}  // namespace

template <class Stream>
awaitable<bool> write_all(Side<Stream> to, std::string_view bytes, std::chrono::milliseconds timeout) {
  boost::system::error_code ec;
  to.deadline.expires_after(timeout);
  auto buffer = asio::buffer(bytes.data(), bytes.size());
  co_await asio::async_write(to.sock, buffer, asio::redirect_error(use_awaitable, ec));
  co_return !ec;
}

template <class From, class To>
awaitable<Xfer> forward_body(Side<From> from, Side<To> to, const BodyPlan& plan, std::string_view prefix,
                             uint64_t& moved) {
  uint64_t remaining = plan.length;
  http1::ChunkedDecoder dec;
  bool done = false;
  boost::system::error_code ec;
  for (;;) {
    Xfer error = Xfer::kDone;
    size_t take = done ? 0 : body_bytes_in_buffer(from.buf, plan, remaining, dec, done, error);
    if (error != Xfer::kDone) co_return error;
    if (take > 0 || !prefix.empty()) {
      std::array<asio::const_buffer, 2> bufs{asio::buffer(prefix.data(), prefix.size()),
                                             asio::buffer(from.buf.data().data(), take)};
      to.deadline.expires_after(plan.idle);
      co_await asio::async_write(to.sock, bufs, asio::redirect_error(use_awaitable, ec));
      if (ec) co_return Xfer::kWriteFailed;
      from.buf.consume(take);
      moved += take;
      prefix = {};
    }
    if (done) co_return Xfer::kDone;
    from.deadline.expires_after(plan.idle);
    auto space = from.buf.prepare(plan.buffer_limit);
    size_t n = co_await from.sock.async_read_some(space, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (plan.kind == BodyKind::kUntilClose && ec == asio::error::eof) co_return Xfer::kDone;
      co_return from.deadline.fired ? Xfer::kReadTimeout : Xfer::kReadClosed;
    }
    from.buf.commit(n);
  }
}

namespace {

// One direction of a tunnel: buffered bytes first, then read/write until
// the source ends.
template <class From, class To>
awaitable<void> pump(Side<From> from, Side<To> to, std::chrono::milliseconds idle) {
  uint64_t moved = 0;
  BodyPlan plan;
  plan.kind = BodyKind::kUntilClose;
  plan.idle = idle;
  co_await forward_body(from, to, plan, {}, moved);
}

}  // namespace

template <class Client>
awaitable<void> tunnel(asio::io_context& io, Side<Client> client, Side<tcp::socket> upstream,
                       std::chrono::milliseconds idle) {
  // The upstream->client direction runs on its own coroutine; this one waits
  // for it before returning, since it borrows the sockets. Whichever
  // direction ends first closes both: WebSocket and most upgraded protocols
  // have no use for a half-open connection.
  asio::steady_timer finished(io, SteadyClock::time_point::max());
  bool other_done = false;
  auto close_both = [&] {
    boost::system::error_code ignored;
    tcp_of(client.sock).close(ignored);
    upstream.sock.close(ignored);
  };
  auto on_done = [&](std::exception_ptr) {
    other_done = true;
    close_both();
    finished.cancel();
  };
  asio::co_spawn(io, pump(upstream, client, idle), on_done);
  co_await pump(client, upstream, idle);
  close_both();
  boost::system::error_code ec;
  if (!other_done) co_await finished.async_wait(asio::redirect_error(use_awaitable, ec));
}

// The combinations the proxy uses: a client stream of either kind, an
// upstream always plain.
template awaitable<bool> write_all(Side<tcp::socket>, std::string_view, std::chrono::milliseconds);
template awaitable<bool> write_all(Side<SslStream>, std::string_view, std::chrono::milliseconds);
template awaitable<Xfer> forward_body(Side<tcp::socket>, Side<tcp::socket>, const BodyPlan&, std::string_view,
                                      uint64_t&);
template awaitable<Xfer> forward_body(Side<SslStream>, Side<tcp::socket>, const BodyPlan&, std::string_view,
                                      uint64_t&);
template awaitable<Xfer> forward_body(Side<tcp::socket>, Side<SslStream>, const BodyPlan&, std::string_view,
                                      uint64_t&);
template awaitable<void> tunnel(asio::io_context&, Side<tcp::socket>, Side<tcp::socket>, std::chrono::milliseconds);
template awaitable<void> tunnel(asio::io_context&, Side<SslStream>, Side<tcp::socket>, std::chrono::milliseconds);

}  // namespace stele::router
