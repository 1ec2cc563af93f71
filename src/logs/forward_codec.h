// Fluentd Forward protocol v1, both directions, pure (no I/O, no clock).
//
// ForwardDecoder frames and decodes one connection's byte stream (TCP reads
// split anywhere): Message, Forward, PackedForward and CompressedPackedForward
// requests (gzip, several members), integer/float seconds and EventTime (ext 0
// as fixext8 or ext8/16/32 of length 8), options chunk/size/compressed/
// fluent_signal, the handshake messages (HELO, PING, PONG), ack answers, and
// Fluentd's JSON requests (a connection whose first byte is '[' or '{').
// Fluent Bit's `[[time, metadata], record]` entries are accepted; the
// metadata is dropped. Any non-minimal msgpack header is accepted.
//
// A record is never re-encoded: LogEntry.record views its msgpack map bytes
// in the decoder's receive buffer (or its gzip output buffer, or, for JSON
// requests, a msgpack encoding of the JSON object).
//
// Time: time_ns == 0 means the sender gave no time (nil or 0); as Fluentd
// does, the caller substitutes the time of receipt.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "logs/msgpack.h"
#include "logs/record.h"

namespace stele::logs {

enum class ForwardKind : uint8_t {
  kEvents,  // Message / Forward / PackedForward / CompressedPackedForward (client -> server)
  kPing,    // handshake, client -> server
  kHelo,    // handshake, server -> client
  kPong,    // handshake, server -> client
  kAck,     // {"ack": chunk}, server -> client
};

enum class ForwardMode : uint8_t { kMessage, kForward, kPackedForward, kCompressedPackedForward };

const char* mode_name(ForwardMode m);

struct ForwardOptions {
  std::optional<std::string_view> chunk;  // present: the sender wants {"ack": chunk}
  std::optional<uint64_t> size;           // sender's event count (informative, not checked)
  bool compressed = false;                // "compressed": "gzip"
  // Fluent Bit's signal type: 0 logs, 1 metrics, 2 traces. Stele's agents
  // send metric points as records with 1 (design.md, Storage).
  std::optional<int64_t> fluent_signal;
  // "stele_replicated": true -- the sender delivers this request to every
  // Stele server itself (an agent's shipper, a server relaying to its peers),
  // so the receiver does not relay it again (design.md, Storage and HA).
  bool replicated = false;
};

struct Helo {
  std::string_view nonce;
  std::string_view auth_salt;  // empty: no user authentication
  bool keepalive = true;
};

struct Ping {
  std::string_view hostname, shared_key_salt, shared_key_digest, username, password_digest;
};

struct Pong {
  bool auth_ok = false;
  std::string_view reason, server_hostname, shared_key_digest;
};

// One decoded request. Every view (tag, entries, options.chunk, handshake
// fields) points into the decoder and is valid until its next feed(),
// prepare() or next() call.
struct ForwardMessage {
  ForwardKind kind = ForwardKind::kEvents;
  ForwardMode mode = ForwardMode::kMessage;  // kEvents only
  bool json = false;                         // arrived as JSON (answer acks in JSON)
  std::string_view tag;
  std::vector<LogEntry> entries;
  ForwardOptions options;
  // PackedForward: the packed entries (decompressed). With fluent_signal
  // other than 0 the payload may be an opaque signal blob (Fluent Bit's
  // cmetrics/ctraces maps) rather than entries: then entries is empty and the
  // caller decides what to do with `payload`.
  std::string_view payload;
  Helo helo;
  Ping ping;
  Pong pong;
  std::string_view ack;  // kAck
  uint64_t offset = 0;   // stream offset of the request's first byte
  size_t size = 0;       // request size in bytes as received
};

struct ForwardLimits {
  size_t max_request_bytes = 64u << 20;       // one request as received
  size_t max_decompressed_bytes = 64u << 20;  // one CompressedPackedForward payload, inflated
  int max_depth = 32;                         // msgpack/JSON nesting inside a request
};

// Streaming decoder for one connection. Not thread-safe; owned by the
// connection's strand. After an error the stream cannot be resynchronised:
// next() keeps returning that error and the caller closes the connection.
class ForwardDecoder {
 public:
  explicit ForwardDecoder(ForwardLimits limits = {});

  // Appends received bytes.
  void feed(std::string_view bytes);
  // Zero-copy receive: a writable span of at least n bytes at the end of the
  // buffer; then commit() the number of bytes actually read into it.
  std::span<char> prepare(size_t n);
  void commit(size_t n);

  // The next complete request; nullptr if more bytes are needed. The error
  // names the stream byte offset and what is wrong.
  Result<const ForwardMessage*> next();

  bool json() const { return mode_ == Mode::kJson; }
  uint64_t consumed() const { return base_ + pos_; }  // stream bytes decoded so far
  size_t buffered() const { return len_ - pos_; }     // bytes waiting for the rest of a request

 private:
  enum class Mode { kUnknown, kMsgpack, kJson };

  void compact();
  Result<const ForwardMessage*> next_msgpack();
  Result<const ForwardMessage*> next_json();
  Result<const ForwardMessage*> failed(std::string why);
  void start_message(size_t size);

  ForwardLimits limits_;
  std::string buf_;
  size_t len_ = 0;   // bytes of buf_ holding data
  size_t pos_ = 0;   // start of the request being framed
  uint64_t base_ = 0;  // stream offset of buf_[0]
  Mode mode_ = Mode::kUnknown;
  msgpack::ScanState scan_;
  struct JsonScan {
    size_t pos = 0;
    int depth = 0;
    bool in_string = false, escape = false, started = false;
  } jscan_;
  std::string inflated_;      // gzip output of the current request
  std::string json_records_;  // msgpack records of the current JSON request
  ForwardMessage msg_;
  std::optional<Error> error_;
};

// ---- encoding (agent shipping, --forward-to, server answers) ----

// [tag, bin(entries as [EventTime, record]), {"chunk", "size"[, "compressed": "gzip"]}].
// Every entry's record must be one msgpack map (it is copied as is). An empty
// chunk_id omits "chunk" (no ack wanted). compress: gzip (one member, fastest level).
std::string encode_packed_forward(std::string_view tag, std::span<const LogEntry> entries,
                                  std::string_view chunk_id, bool compress,
                                  std::optional<int64_t> fluent_signal = std::nullopt, bool replicated = false);

std::string encode_ack(std::string_view chunk);       // msgpack {"ack": chunk}
std::string encode_ack_json(std::string_view chunk);  // for JSON connections

// ---- shared-key handshake (SHA-512 digests in lowercase hex) ----

std::string sha512_hex(std::string_view data);
// sha512_hex(salt + hostname + nonce + shared_key): the PING digest (client
// hostname, its salt) and the PONG digest (server hostname, the PING's salt).
std::string shared_key_digest(std::string_view salt, std::string_view hostname,
                              std::string_view nonce, std::string_view shared_key);
// sha512_hex(auth_salt + username + password)
std::string password_digest(std::string_view auth_salt, std::string_view username,
                            std::string_view password);

// ["HELO", {"nonce": nonce, "auth": auth_salt, "keepalive": keepalive}]
std::string encode_helo(std::string_view nonce, std::string_view auth_salt, bool keepalive);
// ["PING", hostname, salt, shared_key_digest, username, password_digest]
// (username/password empty: both fields are "").
std::string encode_ping(std::string_view hostname, std::string_view salt, const Helo& helo,
                        std::string_view shared_key, std::string_view username = {},
                        std::string_view password = {});
// ["PONG", auth_ok, reason, server_hostname, digest of the PING's salt]
std::string encode_pong(bool auth_ok, std::string_view reason, std::string_view server_hostname,
                        const Ping& ping, std::string_view nonce, std::string_view shared_key);

// Server side: the PING proves the shared key for `nonce` (our HELO's). When
// auth_salt is non-empty, `password` is the stored password of ping.username
// (nullopt: unknown user). Error messages are safe to send back as the PONG reason.
Result<void> verify_ping(const Ping& ping, std::string_view nonce, std::string_view shared_key,
                         std::string_view auth_salt = {},
                         std::optional<std::string_view> password = std::nullopt);
// Client side: the server accepted us and knows the shared key.
Result<void> verify_pong(const Pong& pong, std::string_view salt, std::string_view nonce,
                         std::string_view shared_key);

}  // namespace stele::logs
