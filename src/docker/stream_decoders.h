// Decoders of the Engine API's streamed bodies. Pure: fed arbitrary byte
// chunks (split anywhere), they hold only what an unfinished frame or line
// needs, so they can be unit-tested and fuzzed without an engine.
// Not thread-safe; one decoder per stream.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/json.h"
#include "common/result.h"

namespace stele::docker {

// Stream ids of the multiplexed format (3 is the engine's own error text,
// sent e.g. when a log driver cannot be read).
enum class StreamKind : uint8_t { kStdin = 0, kStdout = 1, kStderr = 2, kSystemError = 3 };
const char* stream_name(StreamKind k);

// Docker's multiplexed stdout/stderr stream of a container without a TTY
// (logs, attach): frames of an 8-byte header {stream, 0, 0, 0, big-endian
// uint32 length} and then `length` payload bytes. A payload is delivered in
// pieces as soon as they arrive (never buffered whole), so a frame of any
// size costs no memory; the concatenation per stream is exact.
class FrameDecoder {
 public:
  using Sink = std::function<void(StreamKind, std::string_view)>;
  // Fails on a header whose stream byte is not 0-3 (not a multiplexed
  // stream, e.g. a TTY container); every later feed fails the same way.
  Result<void> feed(std::string_view chunk, const Sink& sink);
  // True when no frame is half-read (a clean end of stream).
  bool at_boundary() const { return header_len_ == 0 && remaining_ == 0; }

 private:
  std::array<unsigned char, 8> header_{};
  size_t header_len_ = 0;
  uint32_t remaining_ = 0;
  StreamKind kind_ = StreamKind::kStdout;
  std::optional<std::string> error_;
};

// Newline-separated JSON documents (events, build and load progress). Blank
// lines and a trailing '\r' are ignored. A line that is not JSON, or longer
// than max_line, is an error; every later feed fails the same way.
class JsonLinesDecoder {
 public:
  using Sink = std::function<void(Json)>;
  explicit JsonLinesDecoder(size_t max_line = 1 << 20) : max_line_(max_line) {}
  Result<void> feed(std::string_view chunk, const Sink& sink);
  // End of stream: decodes a last line that had no newline.
  Result<void> finish(const Sink& sink);

 private:
  Result<void> line(std::string_view text, const Sink& sink);
  size_t max_line_;
  std::string partial_;
  std::optional<std::string> error_;
};

// Folds /build's JSON messages: `stream` text becomes whole lines for the
// progress callback, `aux.ID` is the built image, `error`/`errorDetail` a
// failure.
class BuildProgress {
 public:
  using LineSink = std::function<void(std::string_view)>;
  explicit BuildProgress(LineSink on_line) : on_line_(std::move(on_line)) {}
  void on_message(const Json& m);
  // After the body ended: flushes a last partial line; the image id, or the
  // build's own error message.
  Result<std::string> finish();

 private:
  LineSink on_line_;
  std::string partial_;
  std::string image_id_;
  std::optional<std::string> error_;
};

}  // namespace stele::docker
