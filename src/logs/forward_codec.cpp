#include "logs/forward_codec.h"

#include <cmath>
#include <cstring>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <zlib.h>

namespace stele::logs {

namespace {

using msgpack::Reader;
using msgpack::Type;

constexpr int64_t kNs = 1000000000;

uint32_t be32(std::string_view s, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(s[at + i]);
  return v;
}

bool seconds_to_ns(Reader& r, size_t at, double sec, int64_t& ns) {
  if (!std::isfinite(sec) || std::fabs(sec) > 9.2e9)
    return r.fail_at(at, "time " + std::to_string(sec) + " out of range");
  ns = std::llround(sec * 1e9);
  return true;
}

// Event time: integer or float seconds, EventTime (ext 0, 8 bytes), nil (0 =
// "now", the caller's), or with allow_pair Fluent Bit's [time, metadata].
bool read_time(Reader& r, int64_t& ns, bool allow_pair) {
  size_t at = r.pos();
  switch (r.peek()) {
    case Type::kExt: {
      int8_t type = 0;
      std::string_view p;
      if (!r.read_ext(type, p)) return false;
      if (type != 0 || p.size() != 8)
        return r.fail_at(at, "time: ext type " + std::to_string(type) + " of " +
                                 std::to_string(p.size()) + " bytes is not EventTime (ext 0, 8 bytes)");
      uint32_t nsec = be32(p, 4);
      if (nsec >= kNs) return r.fail_at(at, "time: EventTime nanoseconds " + std::to_string(nsec) + " >= 1e9");
      ns = int64_t(be32(p, 0)) * kNs + nsec;
      return true;
    }
    case Type::kInt: {
      int64_t sec = 0;
      if (!r.read_int(sec)) return r.context("time");
      if (sec > INT64_MAX / kNs || sec < INT64_MIN / kNs)
        return r.fail_at(at, "time " + std::to_string(sec) + " s out of range");
      ns = sec * kNs;
      return true;
    }
    case Type::kFloat: {
      double sec = 0;
      return r.read_double(sec) && seconds_to_ns(r, at, sec, ns);
    }
    case Type::kNil:
      ns = 0;
      return r.skip();
    case Type::kArray: {
      if (!allow_pair) break;
      uint32_t n = 0;
      r.read_array(n);
      if (n != 2) return r.fail_at(at, "time: [time, metadata] pair has " + std::to_string(n) + " elements");
      return read_time(r, ns, false) && r.skip();  // metadata is dropped
    }
    default:
      break;
  }
  if (r.at_end()) return r.fail("truncated: expected a time");
  return r.fail(std::string("time: expected integer, float or EventTime (ext 0), got ") +
                msgpack::type_name(r.peek()));
}

bool read_record(Reader& r, std::string_view& record) {
  if (r.peek() != Type::kMap) {
    if (r.at_end()) return r.fail("truncated: expected a record map");
    return r.fail(std::string("record: expected map, got ") + msgpack::type_name(r.peek()));
  }
  return r.skip(&record) || r.context("record");
}

// [time, record] or Fluent Bit's [[time, metadata], record].
bool read_entry(Reader& r, std::string_view tag, std::vector<LogEntry>& out) {
  size_t at = r.pos();
  uint32_t n = 0;
  if (!r.read_array(n)) return false;
  if (n != 2) return r.fail_at(at, "entry: expected [time, record], got an array of " + std::to_string(n));
  LogEntry& e = out.emplace_back();
  e.tag = tag;
  return read_time(r, e.time_ns, true) && read_record(r, e.record);
}

bool read_options(Reader& r, ForwardOptions& o) {
  if (r.peek() == Type::kNil) return r.skip();
  uint32_t n = 0;
  if (!r.read_map(n)) return r.context("options");
  for (uint32_t i = 0; i < n; ++i) {
    std::string_view key;
    if (!r.read_str_or_bin(key)) return r.context("option key");
    size_t at = r.pos();
    if (key == "chunk") {
      std::string_view v;
      if (!r.read_str_or_bin(v)) return r.context("option chunk");
      o.chunk = v;
    } else if (key == "size") {
      uint64_t v = 0;
      if (!r.read_uint(v)) return r.context("option size");
      o.size = v;
    } else if (key == "compressed") {
      std::string_view v;
      if (!r.read_str_or_bin(v)) return r.context("option compressed");
      if (v != "gzip" && v != "text")
        return r.fail_at(at, "option compressed: unsupported \"" + std::string(v.substr(0, 32)) + "\" (gzip or text)");
      o.compressed = v == "gzip";
    } else if (key == "fluent_signal") {
      int64_t v = 0;
      if (!r.read_int(v)) return r.context("option fluent_signal");
      o.fluent_signal = v;
    } else if (key == "stele_replicated") {
      if (!r.read_bool(o.replicated)) return r.context("option stele_replicated");
    } else if (!r.skip()) {
      return false;
    }
  }
  return true;
}

// Inflates one or more concatenated gzip members, refusing output beyond max.
bool gunzip(std::string_view in, std::string& out, size_t max, std::string& err) {
  if (in.empty()) return err = "gzip: compressed payload is empty", false;
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return err = "gzip: inflateInit failed", false;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  size_t produced = 0;
  if (out.size() < 4096) out.resize(std::min(max + 1, std::max<size_t>(4096, in.size() * 4)));
  bool ok = false;
  for (;;) {
    if (produced == out.size()) {
      if (out.size() > max) {
        err = "gzip: decompressed payload exceeds " + std::to_string(max) + " bytes";
        break;
      }
      out.resize(std::min(max + 1, out.size() * 2));
    }
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    zs.avail_out = static_cast<uInt>(std::min<size_t>(out.size() - produced, UINT32_MAX));
    uInt before = zs.avail_out;
    int rc = inflate(&zs, Z_NO_FLUSH);
    produced += before - zs.avail_out;
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) {
        ok = true;
        break;
      }
      inflateReset(&zs);  // next member
    } else if (rc == Z_BUF_ERROR || (rc == Z_OK && zs.avail_in == 0 && zs.avail_out > 0)) {
      if (zs.avail_in == 0) {
        err = "gzip: payload ends inside a gzip member";
        break;
      }
    } else if (rc != Z_OK) {
      err = std::string("gzip: ") + (zs.msg ? zs.msg : "inflate failed");
      break;
    }
  }
  if (ok && produced > max) {
    ok = false;
    err = "gzip: decompressed payload exceeds " + std::to_string(max) + " bytes";
  }
  inflateEnd(&zs);
  out.resize(ok ? produced : 0);
  return ok;
}

struct RequestParser {
  const ForwardLimits& limits;
  ForwardMessage& msg;
  std::string& inflated;
  Reader r;

  bool packed(std::string_view payload, size_t payload_at) {
    if (msg.options.compressed) {
      msg.mode = ForwardMode::kCompressedPackedForward;
      std::string err;
      if (!gunzip(payload, inflated, limits.max_decompressed_bytes, err)) return r.fail_at(payload_at, err);
      payload = inflated;
    }
    msg.payload = payload;
    if (!payload.empty() && msgpack::type_of(uint8_t(payload[0])) == Type::kMap &&
        msg.options.fluent_signal.value_or(0) != 0)
      return true;  // an opaque signal blob, see ForwardMessage::payload
    Reader pr(payload, limits.max_depth);
    msg.entries.reserve(std::min<size_t>(payload.size() / 16, 65536));
    for (size_t i = 0; !pr.at_end(); ++i) {
      if (read_entry(pr, msg.tag, msg.entries)) continue;
      pr.context("entry " + std::to_string(i));
      if (!msg.options.compressed) return r.fail_at(payload_at + pr.error().offset, pr.error().what);
      return r.fail_at(payload_at, "decompressed payload, offset " + std::to_string(pr.error().offset) +
                                       ": " + pr.error().what);
    }
    return true;
  }

  bool events(uint32_t n) {
    size_t at = r.pos();
    Type t = r.peek();
    if (t == Type::kStr || t == Type::kBin) {
      msg.mode = ForwardMode::kPackedForward;
      if (n != 2 && n != 3) return r.fail_at(0, "PackedForward must have 2 or 3 elements, got " + std::to_string(n));
      std::string_view payload;
      r.read_str_or_bin(payload);
      size_t payload_at = r.pos() - payload.size();
      if (n == 3 && !read_options(r, msg.options)) return false;
      return packed(payload, payload_at);
    }
    if (t == Type::kArray) {
      uint32_t m = 0;
      r.read_array(m);
      Type first = r.peek();
      if (m > 0 && first != Type::kArray) {  // Fluent Bit: [tag, [time, metadata], record]
        if (m != 2) return r.fail_at(at, "[time, metadata] pair has " + std::to_string(m) + " elements");
        msg.mode = ForwardMode::kMessage;
        return message(n, true);
      }
      msg.mode = ForwardMode::kForward;
      if (n != 2 && n != 3) return r.fail_at(0, "Forward must have 2 or 3 elements, got " + std::to_string(n));
      msg.entries.reserve(std::min<uint32_t>(m, 65536));
      for (uint32_t i = 0; i < m; ++i)
        if (!read_entry(r, msg.tag, msg.entries)) return r.context("entry " + std::to_string(i));
      return n == 2 || read_options(r, msg.options);
    }
    if (t == Type::kInt || t == Type::kExt || t == Type::kFloat || t == Type::kNil) {
      msg.mode = ForwardMode::kMessage;
      return message(n, false);
    }
    if (r.at_end()) return r.fail("truncated after the tag");
    return r.fail(std::string("second element must be a time (Message), an array (Forward) or str/bin "
                              "(PackedForward), got ") + msgpack::type_name(t));
  }

  // After the tag (and, for pair_open, after the [time, metadata] header).
  bool message(uint32_t n, bool pair_open) {
    if (n != 3 && n != 4) return r.fail_at(0, "Message must have 3 or 4 elements, got " + std::to_string(n));
    LogEntry& e = msg.entries.emplace_back();
    e.tag = msg.tag;
    if (!read_time(r, e.time_ns, false)) return false;
    if (pair_open && !r.skip()) return false;
    if (!read_record(r, e.record)) return false;
    return n == 3 || read_options(r, msg.options);
  }

  bool helo() {
    msg.kind = ForwardKind::kHelo;
    uint32_t n = 0;
    r.read_map(n);
    for (uint32_t i = 0; i < n; ++i) {
      std::string_view key;
      if (!r.read_str_or_bin(key)) return r.context("HELO option key");
      bool ok = key == "nonce"       ? r.read_str_or_bin(msg.helo.nonce)
                : key == "auth"      ? r.read_str_or_bin(msg.helo.auth_salt)
                : key == "keepalive" ? r.read_bool(msg.helo.keepalive)
                                     : r.skip();
      if (!ok) return r.context("HELO " + std::string(key));
    }
    return true;
  }

  bool ping() {
    msg.kind = ForwardKind::kPing;
    Ping& p = msg.ping;
    for (std::string_view* f : {&p.hostname, &p.shared_key_salt, &p.shared_key_digest, &p.username, &p.password_digest})
      if (!r.read_str_or_bin(*f)) return r.context("PING");
    return true;
  }

  bool pong() {
    msg.kind = ForwardKind::kPong;
    Pong& p = msg.pong;
    if (!r.read_bool(p.auth_ok)) return false;
    for (std::string_view* f : {&p.reason, &p.server_hostname, &p.shared_key_digest})
      if (!r.read_str_or_bin(*f)) return r.context("PONG");
    return true;
  }

  bool ack() {
    msg.kind = ForwardKind::kAck;
    uint32_t n = 0;
    r.read_map(n);
    bool found = false;
    for (uint32_t i = 0; i < n; ++i) {
      std::string_view key;
      if (!r.read_str_or_bin(key)) return r.context("ack key");
      if (key != "ack") {
        if (!r.skip()) return false;
      } else if (!r.read_str_or_bin(msg.ack)) {
        return r.context("ack");
      } else {
        found = true;
      }
    }
    return found || r.fail_at(0, "map without \"ack\"");
  }

  bool request() {
    if (r.peek() == Type::kMap) return ack();
    uint32_t n = 0;
    if (!r.read_array(n)) return r.context("request");
    if (n < 2) return r.fail_at(0, "request array has " + std::to_string(n) + " elements, needs at least 2");
    if (!r.read_str_or_bin(msg.tag)) return r.context("tag");
    if (msg.tag.empty()) return r.fail_at(1, "tag is empty");
    Type t = r.peek();
    if (msg.tag == "HELO" && n == 2 && t == Type::kMap) return helo();
    if (msg.tag == "PING" && n == 6 && (t == Type::kStr || t == Type::kBin)) return ping();
    if (msg.tag == "PONG" && n == 5 && t == Type::kBool) return pong();
    return events(n);
  }
};

// ---- JSON requests (Fluentd in_forward accepts them on the same port) ----

bool json_time(const Json& j, int64_t& ns) {
  if (j.is_null()) return ns = 0, true;
  if (j.is_number_integer()) {
    int64_t s = j.is_number_unsigned() && j.get<uint64_t>() > uint64_t(INT64_MAX) ? INT64_MAX : j.get<int64_t>();
    if (s > INT64_MAX / kNs || s < INT64_MIN / kNs) return false;
    return ns = s * kNs, true;
  }
  if (!j.is_number_float()) return false;
  double d = j.get<double>();
  if (!std::isfinite(d) || std::fabs(d) > 9.2e9) return false;
  return ns = std::llround(d * 1e9), true;
}

Result<void> json_entry(const Json& time, const Json& record, std::string& records,
                        std::vector<std::pair<size_t, size_t>>& spans, std::vector<LogEntry>& entries) {
  LogEntry& e = entries.emplace_back();
  if (!json_time(time, e.time_ns)) return fail("time must be a number of seconds or null", 400);
  if (!record.is_object()) return fail("record must be an object", 400);
  size_t start = records.size();
  Json::to_msgpack(record, records);
  spans.emplace_back(start, records.size() - start);
  return {};
}

Result<void> json_options(const Json& j, ForwardOptions& o) {
  if (j.is_null()) return {};
  if (!j.is_object()) return fail("options must be an object", 400);
  if (auto it = j.find("chunk"); it != j.end()) {
    if (!it->is_string()) return fail("option chunk must be a string", 400);
    o.chunk = it->get_ref<const std::string&>();
  }
  if (auto it = j.find("size"); it != j.end()) {
    if (!it->is_number_unsigned()) return fail("option size must be a non-negative integer", 400);
    o.size = it->get<uint64_t>();
  }
  if (auto it = j.find("fluent_signal"); it != j.end()) {
    if (!it->is_number_integer()) return fail("option fluent_signal must be an integer", 400);
    o.fluent_signal = it->get<int64_t>();
  }
  if (auto it = j.find("stele_replicated"); it != j.end()) {
    if (!it->is_boolean()) return fail("option stele_replicated must be a boolean", 400);
    o.replicated = it->get<bool>();
  }
  return {};
}

}  // namespace

const char* mode_name(ForwardMode m) {
  switch (m) {
    case ForwardMode::kMessage: return "Message";
    case ForwardMode::kForward: return "Forward";
    case ForwardMode::kPackedForward: return "PackedForward";
    default: return "CompressedPackedForward";
  }
}

// ---- ForwardDecoder ----

ForwardDecoder::ForwardDecoder(ForwardLimits limits) : limits_(limits) {
  limits_.max_depth = std::clamp(limits_.max_depth, 1, msgpack::kMaxDepthCap);
}

void ForwardDecoder::compact() {
  if (pos_ == 0) return;
  if (pos_ == len_) {
    base_ += pos_;
    pos_ = len_ = 0;
  } else if (pos_ >= len_ / 2) {  // amortised: each byte moves O(1) times
    std::memmove(buf_.data(), buf_.data() + pos_, len_ - pos_);
    base_ += pos_;
    len_ -= pos_;
    pos_ = 0;
  }
}

std::span<char> ForwardDecoder::prepare(size_t n) {
  compact();
  if (buf_.size() - len_ < n) buf_.resize(std::max(len_ + n, buf_.size() * 2));
  return {buf_.data() + len_, buf_.size() - len_};
}

void ForwardDecoder::commit(size_t n) { len_ = std::min(len_ + n, buf_.size()); }

void ForwardDecoder::feed(std::string_view bytes) {
  std::span<char> s = prepare(bytes.size());
  if (!bytes.empty()) std::memcpy(s.data(), bytes.data(), bytes.size());
  commit(bytes.size());
}

Result<const ForwardMessage*> ForwardDecoder::failed(std::string why) {
  error_ = Error{std::move(why), {}, 400};
  return tl::unexpected<Error>(*error_);
}

void ForwardDecoder::start_message(size_t size) {
  std::vector<LogEntry> entries = std::move(msg_.entries);  // keeps its capacity
  entries.clear();
  msg_ = ForwardMessage{};
  msg_.entries = std::move(entries);
  msg_.offset = consumed();
  msg_.size = size;
}

Result<const ForwardMessage*> ForwardDecoder::next() {
  if (error_) return tl::unexpected<Error>(*error_);
  if (pos_ == len_) return nullptr;
  if (mode_ == Mode::kUnknown) mode_ = (buf_[pos_] == '[' || buf_[pos_] == '{') ? Mode::kJson : Mode::kMsgpack;
  return mode_ == Mode::kJson ? next_json() : next_msgpack();
}

Result<const ForwardMessage*> ForwardDecoder::next_msgpack() {
  msgpack::ParseError e;
  auto st = msgpack::scan(buf_.data() + pos_, len_ - pos_, scan_, limits_.max_depth,
                          limits_.max_request_bytes, e);
  if (st == msgpack::Scan::kNeedMore) return nullptr;
  if (st == msgpack::Scan::kBad)
    return failed("forward: byte " + std::to_string(consumed() + e.offset) + ": " + e.what);
  size_t size = scan_.pos;
  scan_.reset();
  start_message(size);
  RequestParser p{limits_, msg_, inflated_, Reader(std::string_view(buf_.data() + pos_, size), limits_.max_depth)};
  pos_ += size;
  if (!p.request() || !p.r.at_end()) {
    if (p.r.ok()) p.r.fail("trailing bytes in the request");
    const auto& pe = p.r.error();
    return failed("forward: byte " + std::to_string(msg_.offset + pe.offset) + " (request at byte " +
                   std::to_string(msg_.offset) + "): " + pe.what);
  }
  return &msg_;
}

Result<const ForwardMessage*> ForwardDecoder::next_json() {
  JsonScan& s = jscan_;
  if (!s.started) {  // whitespace between JSON requests
    while (pos_ < len_ && (buf_[pos_] == ' ' || buf_[pos_] == '\t' || buf_[pos_] == '\r' || buf_[pos_] == '\n')) ++pos_;
    if (pos_ == len_) return nullptr;
    if (buf_[pos_] != '[')
      return failed("forward: byte " + std::to_string(consumed()) + ": a JSON request must be an array");
    s.started = true;
  }
  size_t end = 0;
  for (; pos_ + s.pos < len_; ++s.pos) {
    char c = buf_[pos_ + s.pos];
    if (s.in_string) {
      if (s.escape) s.escape = false;
      else if (c == '\\') s.escape = true;
      else if (c == '"') s.in_string = false;
    } else if (c == '"') {
      s.in_string = true;
    } else if (c == '[' || c == '{') {
      if (++s.depth > limits_.max_depth)
        return failed("forward: byte " + std::to_string(consumed() + s.pos) + ": JSON nested deeper than " +
                       std::to_string(limits_.max_depth));
    } else if ((c == ']' || c == '}') && --s.depth == 0) {
      end = ++s.pos;
      break;
    }
  }
  if (end == 0) {
    if (s.pos > limits_.max_request_bytes)
      return failed("forward: JSON request at byte " + std::to_string(consumed()) + " larger than " +
                     std::to_string(limits_.max_request_bytes) + " bytes");
    return nullptr;
  }
  s = JsonScan{};
  std::string_view text(buf_.data() + pos_, end);
  start_message(end);
  msg_.json = true;
  pos_ += end;
  auto where = [&](const std::string& why) {
    return failed("forward: JSON request at byte " + std::to_string(msg_.offset) + ": " + why);
  };
  auto doc = parse_json(text);
  if (!doc) return where(doc.error().message);
  const Json& j = *doc;
  if (j.size() < 2 || !j[0].is_string() || j[0].get_ref<const std::string&>().empty())
    return where("expected [tag, time, record] or [tag, [[time, record], ...]] with a non-empty tag");
  // The tag lives in json_records_ too, so every view shares one buffer.
  json_records_.assign(j[0].get_ref<const std::string&>());
  std::vector<std::pair<size_t, size_t>> spans;
  Result<void> ok;
  size_t opts = 0;
  if (j[1].is_array()) {
    msg_.mode = ForwardMode::kForward;
    for (const Json& e : j[1]) {
      if (!e.is_array() || e.size() != 2) return where("Forward entries must be [time, record]");
      if (!(ok = json_entry(e[0], e[1], json_records_, spans, msg_.entries))) break;
    }
    opts = 2;
  } else if (j.size() >= 3) {
    msg_.mode = ForwardMode::kMessage;
    ok = json_entry(j[1], j[2], json_records_, spans, msg_.entries);
    opts = 3;
  } else {
    return where("expected [tag, time, record] or [tag, [[time, record], ...]]");
  }
  if (ok && j.size() > opts + 1) return where("too many elements");
  if (ok && j.size() == opts + 1) ok = json_options(j[opts], msg_.options);
  if (!ok) return where(ok.error().message);
  if (msg_.options.chunk) {  // it pointed into the parsed document
    size_t at = json_records_.size();
    json_records_ += *msg_.options.chunk;
    spans.emplace_back(at, msg_.options.chunk->size());
  }
  std::string_view all = json_records_;
  msg_.tag = all.substr(0, j[0].get_ref<const std::string&>().size());
  for (size_t i = 0; i < msg_.entries.size(); ++i) {
    msg_.entries[i].tag = msg_.tag;
    msg_.entries[i].record = all.substr(spans[i].first, spans[i].second);
  }
  if (msg_.options.chunk) msg_.options.chunk = all.substr(spans.back().first, spans.back().second);
  return &msg_;
}

}  // namespace stele::logs
