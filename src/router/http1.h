// HTTP/1.x message heads and body framing for the router's data path
// (picohttpparser-like): heads are parsed in place, names and values are
// string_views into the caller's buffer, nothing is allocated. Bodies are
// never de-chunked: ChunkedDecoder only finds where a chunked body ends so
// the bytes can be forwarded as they came.
//
// Strict where leniency would let the router and a backend disagree about
// where a message ends (request smuggling): no obs-fold, no whitespace before
// ':', no bare CR, Transfer-Encoding with Content-Length refused, conflicting
// Content-Lengths refused. Lines may end in CRLF or LF.
//
// Pure functions and a small state machine; no I/O, no dependencies beyond
// the standard library (the libFuzzer build compiles this file alone).
// Thread-compatible.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace stele::router::http1 {

inline constexpr size_t kMaxHeaders = 100;

struct Header {
  std::string_view name;
  std::string_view value;  // optional whitespace around it trimmed
};

enum class ParseStatus : uint8_t { kNeedMore, kDone, kError };

// Why a message was refused, and the status to answer a client with:
// 400 bad syntax, 431 head larger than the limit or too many headers,
// 505 an HTTP version other than 1.0/1.1. `reason` is a static string.
struct ParseError {
  int status = 400;
  const char* reason = "";
};

struct RequestHead {
  std::string_view method;
  std::string_view target;
  int minor_version = 1;  // HTTP/1.<minor>: 0 or 1
  Header headers[kMaxHeaders];
  size_t num_headers = 0;
  size_t head_len = 0;    // bytes of the head including the blank line
};

struct ResponseHead {
  int minor_version = 1;
  int status = 0;         // 100..999
  std::string_view reason;
  Header headers[kMaxHeaders];
  size_t num_headers = 0;
  size_t head_len = 0;
};

// Parses the head at the start of `buf`. kNeedMore while no blank line has
// arrived and buf is within `max_head` bytes (a longer unterminated head is
// kError 431). `scanned` carries, between calls on a growing buffer, how many
// bytes are known to hold no blank line, so a head trickled in byte by byte
// costs linear time; start it at 0 for each new message. On kDone, `out`
// views `buf` and out.head_len says where the body starts.
ParseStatus parse_request(std::string_view buf, size_t max_head, size_t& scanned, RequestHead& out,
                          ParseError& err);
ParseStatus parse_response(std::string_view buf, size_t max_head, size_t& scanned, ResponseHead& out,
                           ParseError& err);

enum class BodyKind : uint8_t {
  kNone,        // no body (also Content-Length: 0)
  kLength,      // Content-Length bytes
  kChunked,     // chunked transfer coding, ends with the last chunk and trailers
  kUntilClose,  // responses only: everything until the server closes
};

// What a head says about the message around it.
struct MessageInfo {
  BodyKind body = BodyKind::kNone;
  uint64_t length = 0;          // kLength only
  bool keep_alive = true;       // after this exchange (HTTP/1.1 default, 1.0 needs keep-alive)
  bool upgrade = false;         // Connection: upgrade plus an Upgrade header
  bool expect_continue = false;
  std::string_view host;        // Host header value, empty when absent
  std::string_view upgrade_protocol;
};

// Request framing per RFC 9112 section 6: chunked only as the final coding
// (else 400, as a length cannot be known), Transfer-Encoding in HTTP/1.0
// refused, more than one Host refused.
bool request_info(const RequestHead& h, MessageInfo& out, ParseError& err);
// Response framing: no body for 1xx/204/304 or an answer to HEAD; chunked;
// Content-Length; else until close. `err` only for malformed lengths.
bool response_info(const ResponseHead& h, bool request_was_head, MessageInfo& out, ParseError& err);

// ASCII case-insensitive equality.
bool iequals(std::string_view a, std::string_view b);
// Whether the comma-separated list holds `token` (case-insensitive).
bool has_token(std::string_view list, std::string_view token);
// Hop-by-hop fields (RFC 9110 7.6.1) that a proxy must not forward:
// Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade, and every
// field named by a Connection header among `headers`. Transfer-Encoding is
// not in the list: the router forwards chunked bodies as they are.
bool is_hop_by_hop(std::string_view name, const Header* headers, size_t num_headers);
// GET, HEAD, OPTIONS, PUT, DELETE, TRACE (RFC 9110 9.2.2).
bool is_idempotent(std::string_view method);

// Finds the end of a chunked body in a byte stream without changing it.
// feed() consumes bytes up to the end of the body and returns how many it
// took; bytes after the end belong to the next message. Chunk extensions
// and trailers are passed over, bounded in size.
class ChunkedDecoder {
 public:
  enum class Status : uint8_t { kMore, kDone, kError };

  size_t feed(std::string_view data, Status& status);
  bool done() const { return state_ == State::kDone; }
  uint64_t payload_bytes() const { return payload_; }  // chunk data seen so far
  const char* error() const { return error_; }          // static text after kError

  static constexpr size_t kMaxExtension = 4096;
  static constexpr size_t kMaxTrailers = 16 * 1024;

 private:
  enum class State : uint8_t {
    kSize, kExtension, kSizeLf, kData, kDataCr, kDataLf,
    kTrailerStart, kTrailerLine, kTrailerLf, kFinalLf, kDone, kError,
  };
  size_t fail(const char* why, size_t consumed, Status& status);

  State state_ = State::kSize;
  uint64_t remaining_ = 0;  // chunk size while reading digits, then data left
  size_t digits_ = 0;
  size_t side_bytes_ = 0;   // extension or trailer bytes so far
  uint64_t payload_ = 0;
  const char* error_ = "";
};

}  // namespace stele::router::http1
