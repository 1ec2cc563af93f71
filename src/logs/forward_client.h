// ForwardClient: the sending side of the Fluentd Forward protocol v1, used by
// the agent's shipper (issue 4 point 2) and by `--forward-to` (point 6).
//
// One TCP connection to `address`, opened lazily by send(). With a shared key
// it expects the server's HELO, answers PING (SHA-512 digest, forward_codec.h)
// and checks the PONG (auth_ok and the server's digest). send() writes one
// already-encoded request (encode_packed_forward with a chunk id) and waits
// for its {"ack": chunk}; only then does it return success -- so the caller
// may forget the records (the server stored them durably). One request is in
// flight at a time.
//
// With `tls`, the connection is TLS (fluentd's <transport tls>) and the
// server's certificate is verified with the client CA (net/tls.h) against
// the address's host (DNS or IP subjectAltName); one that does not verify
// fails the send with OpenSSL's reason.
//
// Any failure (connect, handshake, write, a wrong or missing ack within
// ack_timeout, the peer closing) closes the connection and returns an error
// naming the address and the cause; the next send() reconnects. The caller
// retries with the SAME chunk id and bytes: a server that stored the first
// attempt skips the resent chunk (LogStore dedup), so delivery is
// at-least-once on the wire and exactly-once in the store.
//
// Thread-safety: all calls on the executor's thread (asio coroutines).
#pragma once
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include <utility>  // before Asio with g++ 12
#include <boost/asio/any_io_executor.hpp>

#include "common/result.h"
#include "net/http.h"  // net::awaitable

namespace stele::logs {

struct ForwardClientOptions {
  std::string address;                    // "host:port"
  std::string shared_key;                 // empty: no handshake (a HELO is then an error)
  std::string self_hostname = "stele";    // sent in PING
  bool tls = false;                       // TLS, verified with net::client_context()
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds ack_timeout{30000};  // covers the server's durable append
};

class ForwardClient {
 public:
  ForwardClient(boost::asio::any_io_executor io, ForwardClientOptions options);
  ~ForwardClient();
  ForwardClient(const ForwardClient&) = delete;
  ForwardClient& operator=(const ForwardClient&) = delete;

  // Writes `request` (one complete forward request whose option map carries
  // "chunk": chunk_id) and waits for the matching ack.
  net::awaitable<Result<void>> send(std::string_view request, std::string_view chunk_id);

  // Closes the connection (an outstanding send() fails). Idempotent.
  void close();
  bool connected() const;
  const ForwardClientOptions& options() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace stele::logs
