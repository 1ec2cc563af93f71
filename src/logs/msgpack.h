// A small msgpack reader, writer and framing scanner for the forward codec's
// hot path: records are never materialised, only walked to find where they
// end (LogEntry.record keeps the bytes as received). Pure, no I/O, no
// allocation on the read side. Not thread-safe per object; objects are cheap.
#pragma once
#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "common/json.h"
#include "common/result.h"

namespace stele::logs::msgpack {

enum class Type : uint8_t { kNil, kBool, kInt, kFloat, kStr, kBin, kArray, kMap, kExt, kInvalid };

// The type of the object whose first byte is `b` (0xc1 is kInvalid).
Type type_of(uint8_t b);
const char* type_name(Type t);

// Where and why bytes are not the msgpack that was expected. `offset` counts
// from the start of the range being read.
struct ParseError {
  size_t offset = 0;
  std::string what;
};

// Deepest nesting the scanner can track; callers pick a limit at most this.
inline constexpr int kMaxDepthCap = 128;

// Resumable walk over one msgpack object, for framing a TCP stream: scan()
// is called again with the same bytes plus more after kNeedMore and carries
// on where it stopped (each byte is examined once). Declared sizes are checked
// against max_bytes before waiting for them, so a hostile header is refused at
// once instead of buffering up to it.
struct ScanState {
  size_t pos = 0;  // bytes of the object walked so far
  int depth = 0;
  // Objects still to read per level; only [0, depth] is meaningful, the rest
  // is left uninitialised on purpose (one per record on the hot path).
  std::array<uint64_t, kMaxDepthCap + 1> left;
  ScanState() { left[0] = 1; }
  void reset() { pos = 0, depth = 0, left[0] = 1; }  // cheaper than a new one
};

enum class Scan { kDone, kNeedMore, kBad };

// On kDone, s.pos is the object's size. On kBad, err says why.
Scan scan(const char* data, size_t size, ScanState& s, int max_depth, size_t max_bytes,
          ParseError& err);

// Cursor over bytes that are all present: running out is a truncation error.
// The first failure is kept in error() and later reads keep failing.
class Reader {
 public:
  explicit Reader(std::string_view data, int max_depth = 32) : data_(data), max_depth_(max_depth) {}

  size_t pos() const { return pos_; }
  bool at_end() const { return pos_ >= data_.size(); }
  bool ok() const { return err_.what.empty(); }
  const ParseError& error() const { return err_; }
  std::string_view data() const { return data_; }
  Type peek() const { return at_end() ? Type::kInvalid : type_of(byte(pos_)); }

  bool read_array(uint32_t& n);
  bool read_map(uint32_t& n);
  bool read_str_or_bin(std::string_view& s);  // str or bin
  bool read_int(int64_t& v);                   // any int that fits int64
  bool read_uint(uint64_t& v);
  bool read_bool(bool& v);
  bool read_double(double& v);  // float32/float64
  // ext: type code and payload.
  bool read_ext(int8_t& type, std::string_view& payload);
  // Skips one whole object (depth-limited); `raw` gets its bytes.
  bool skip(std::string_view* raw = nullptr);

  // Records the first failure; always returns false.
  bool fail(std::string what);
  bool fail_at(size_t offset, std::string what);
  // Prefixes the kept error with "context: "; returns false.
  bool context(std::string_view ctx);

 private:
  uint8_t byte(size_t i) const { return static_cast<uint8_t>(data_[i]); }
  bool need(size_t n);
  uint64_t be(size_t at, int n) const;
  bool type_error(const char* expected);

  std::string_view data_;
  size_t pos_ = 0;
  int max_depth_;
  ParseError err_;
};

// Appends msgpack to a string; always the smallest header.
class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}
  void array(uint32_t n);
  void map(uint32_t n);
  void str(std::string_view s);
  void bin(std::string_view s);
  void uint(uint64_t v);
  void integer(int64_t v);
  void float64(double v);
  void boolean(bool v) { out_.push_back(v ? '\xc3' : '\xc2'); }
  void nil() { out_.push_back('\xc0'); }
  // Fluentd EventTime: ext 0, 8 bytes (uint32 seconds, uint32 nanoseconds).
  void event_time(int64_t time_ns);
  void raw(std::string_view bytes) { out_.append(bytes); }

 private:
  void header(uint8_t fix, uint32_t fix_max, uint8_t c8, uint8_t c16, uint8_t c32, uint32_t n);
  void be(uint64_t v, int n);
  std::string& out_;
};

}  // namespace stele::logs::msgpack

namespace stele::logs {

// One msgpack object -> JSON, for queries. Strings and bins become JSON
// strings (invalid UTF-8 replaced by U+FFFD, so dumping never throws);
// EventTime (ext 0) becomes an ISO-8601 UTC string with nanoseconds
// ("2024-05-01T12:00:00.000000001Z"); other ext types become
// {"ext": type, "hex": "..."}; map keys that are not strings become their
// JSON text; NaN/inf become null. Refuses nesting deeper than
// kMaxJsonDepth and trailing bytes.
Result<Json> msgpack_to_json(std::string_view bytes);

}  // namespace stele::logs
