// ForwardServer: the Fluentd Forward protocol v1 input (`--forward-listen`,
// issue 4 point 3; design.md "Listeners").
//
// TCP: one coroutine per connection on the caller's io_context, each with its
// own ForwardDecoder. With a shared key, the server sends HELO on connect and
// accepts nothing but a PING until the PING proves the key (then PONG); a
// wrong key gets a PONG with auth_ok false and the connection is closed.
// Events requests are appended to the LogStore (entries without a time get
// the time of receipt) by ONE dedicated writer thread doing group commit:
// it takes every request waiting at that moment, from all connections, and
// stores them with LogStore::append_batch -- one write and one fdatasync per
// stream file for the lot -- so appends never block the io thread and the
// disk's sync latency is paid once per group, not per request. A request's
// {"ack": chunk} is written only after its group was stored, i.e. once its
// records are durable ("acked = durable"); each request keeps its own chunk
// dedup and its own result.
//
// A connection decodes ahead while its earlier requests are being stored
// (at most 8 requests / 16 MiB per connection and 256 MiB for the server in
// flight -- one request always -- then it stops reading: back-pressure):
// each request's records are copied out of the decoder's buffer,
// requests go to the writer in arrival order, so those of one connection are
// stored in order, and their acks go out in that order. A malformed request,
// a refused append, a failed handshake or an idle timeout closes only that
// connection, with a warning naming the peer and the reason; the requests
// before it are acked first, nothing is acked that was not stored. (Requests
// after a refused one that were already in flight may still be stored,
// unacked: their resend dedups by chunk id.)
//
// fluent_signal other than 0 (Fluent Bit metrics/traces, Stele agents' metric
// points): handed to `signal_sink` on the io thread and acked, in order, once
// it accepted them and their durability wait (on the worker pool) succeeded;
// without a sink the connection is closed unacked (never ack and drop).
//
// TLS (options.tls): see ForwardServerOptions::tls.
//
// UDP: a heartbeat socket on the same address and port answers every
// datagram with one 0x00 byte, as Fluentd's in_forward does.
//
// Thread-safety: start/stop/address on the io_context's thread (or before it
// runs), which must be run by one thread. The LogStore must outlive the
// server; the destructor lets the writer thread store what is already queued
// (nothing more is acked), so destroy the server before its io_context.
#pragma once
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include "common/result.h"
#include "logs/forward_codec.h"
#include "logs/log_store.h"

namespace stele::logs {

struct ForwardServerOptions {
  std::string listen = "127.0.0.1:24224";  // host:port; port 0 = ephemeral
  std::string shared_key;                   // empty: no handshake
  std::string self_hostname = "stele";      // sent in HELO/PONG
  // Set: TCP connections are TLS (fluentd's <transport tls>), handshaken
  // under write_timeout before the HELO; a failed handshake closes only that
  // connection. The UDP heartbeat stays plain, as in Fluentd.
  std::shared_ptr<boost::asio::ssl::context> tls;
  size_t max_request_bytes = 64u << 20;     // one request as received
  std::chrono::seconds idle_timeout{900};   // a connection silent this long is closed
  std::chrono::seconds write_timeout{30};   // for HELO/PONG/ack writes
  // fluent_signal != 0 requests, on the io thread (the message's memory is
  // valid only during the call). Returns what makes the request durable (it
  // runs on the worker pool; the ack waits for its success; empty = nothing
  // to wait for), or an error to refuse (the connection is closed, nothing
  // acked). Unset: such requests are refused.
  std::function<Result<std::function<Result<void>()>>(const ForwardMessage&)> signal_sink;
  // Events requests without "stele_replicated" (an external sender's, not an
  // agent's or a peer server's), on the store's writer thread once stored
  // and before their ack: the server relays them to its peers (design.md).
  std::function<void(std::span<const LogEntry>)> relay;
};

class ForwardServer {
 public:
  ForwardServer(boost::asio::io_context& io, LogStore& store, ForwardServerOptions options);
  ~ForwardServer();
  ForwardServer(const ForwardServer&) = delete;
  ForwardServer& operator=(const ForwardServer&) = delete;

  // Binds TCP and UDP on options.listen and starts serving. Returns the bound
  // "host:port" (with the chosen port when 0 was asked). The error names the
  // address and the cause.
  Result<std::string> start();
  std::string address() const;  // "" before start()
  // Stops accepting and closes every connection (appends already queued
  // still finish; their acks are not sent). Idempotent.
  void stop();

  struct Stats {
    uint64_t connections = 0, requests = 0, records = 0, duplicates = 0, acks = 0, closed_on_error = 0;
  };
  Stats stats() const;  // io thread

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace stele::logs
