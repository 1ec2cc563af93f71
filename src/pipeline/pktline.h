// git pkt-line framing (gitprotocol-common, gitprotocol-pack): the reader for
// what `git push` sends to receive-pack, the writers for what we answer, and
// side-band-64k for streaming pipeline progress into the pusher's terminal.
//
// A pkt-line is 4 hex digits (git writes lowercase; either case is read) giving its total length
// (the 4 digits included) followed by the payload; "0000" is a flush-pkt,
// "0001" a delim-pkt and "0002" a response-end-pkt (protocol v2). A pkt-line
// is at most 65520 bytes, so a payload at most 65516.
//
// Everything here is a value type or a pure function; a PktLineReader is not
// safe for concurrent use (one per connection).
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace stele::pipeline {

inline constexpr size_t kPktMaxLength = 65520;                     // header included
inline constexpr size_t kPktMaxPayload = kPktMaxLength - 4;        // 65516
inline constexpr size_t kSideband64kMaxData = kPktMaxPayload - 1;  // 65515, after the channel byte
inline constexpr size_t kSidebandMaxData = 1000 - 4 - 1;           // plain "side-band": 995

struct Packet {
  enum class Kind { data, flush, delim, response_end };
  Kind kind = Kind::data;
  std::string payload;  // empty unless kind == data (a "0004" line is data with no payload)

  friend bool operator==(const Packet&, const Packet&) = default;
};

// Incremental pkt-line decoder: feed() bytes as they arrive, then call next()
// until it returns nullopt (more bytes needed). A malformed length is an
// error naming the offending bytes and their stream offset; after an error
// every next() returns the same error (close the connection).
// Bytes after the last packet taken stay in rest() — after the flush that
// ends a receive-pack command list, that is the start of the pack.
class PktLineReader {
 public:
  void feed(std::string_view bytes);
  Result<std::optional<Packet>> next();
  // Unconsumed bytes (fed but not yet returned as packets).
  std::string_view rest() const { return std::string_view(buf_).substr(pos_); }
  // Bytes consumed as packets since construction (stream offset of rest()).
  size_t consumed() const { return consumed_; }

 private:
  std::string buf_;
  size_t pos_ = 0;
  size_t consumed_ = 0;
  std::optional<Error> error_;
};

// One data pkt-line. Precondition: payload.size() <= kPktMaxPayload (aborts
// otherwise: callers with unbounded data use sideband()).
std::string pkt_line(std::string_view payload);
std::string pkt_flush();         // "0000"
std::string pkt_delim();         // "0001"
std::string pkt_response_end();  // "0002"

// Side-band framing: `data` split into pkt-lines of at most `max_data` bytes
// each, every payload prefixed with the channel byte (1 pack/data, 2 progress
// shown as "remote: ..." by git, 3 fatal error). Empty data → "".
// Precondition: channel in 1..3 and 0 < max_data <= kSideband64kMaxData.
std::string sideband(int channel, std::string_view data, size_t max_data = kSideband64kMaxData);

// One ref update of a push: old and new object ids (40 hex for SHA-1, 64 for
// SHA-256; all zeros = create / delete) and the full ref name.
struct RefCommand {
  std::string old_sha;
  std::string new_sha;
  std::string ref;

  bool is_create() const { return old_sha.find_first_not_of('0') == std::string::npos; }
  bool is_delete() const { return new_sha.find_first_not_of('0') == std::string::npos; }
  friend bool operator==(const RefCommand&, const RefCommand&) = default;
};

struct ReceiveRequest {
  std::vector<std::string> shallow;        // "shallow <id>" lines before the commands
  std::vector<RefCommand> commands;        // in request order; empty for a push of nothing
  std::vector<std::string> capabilities;   // from the first command, after NUL
  std::vector<std::string> push_options;   // present only with the push-options capability
  size_t pack_offset = 0;                  // where the pack (if any) starts in the body

  // True when `name` or `name=...` was requested.
  bool has_capability(std::string_view name) const;
  // Value of `name=value`, if requested ("agent", "object-format", ...).
  std::optional<std::string> capability_value(std::string_view name) const;
};

// Parses the start of a receive-pack request body (protocol v0/v1: the
// update-requests of gitprotocol-pack): optional shallow lines, the command
// list up to its flush-pkt, and, when the push-options capability was
// requested, the option lines up to their flush-pkt. pack_offset is the
// offset of the first byte after that.
// Errors: code 400 with a message naming the bad line for malformed input
// (bad ids, mixed id lengths, invalid ref names, a push-cert, which we do
// not advertise); code 0 when `body_prefix` ends before the command list
// (and push options) do — read more of the body and call again.
Result<ReceiveRequest> parse_receive_commands(std::string_view body_prefix);

}  // namespace stele::pipeline
