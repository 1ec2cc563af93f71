// msgpack -> JSON for queries (see msgpack.h for the mapping).
#include <cmath>
#include <ctime>

#include "logs/msgpack.h"

namespace stele::logs {

namespace {

using msgpack::Reader;
using msgpack::Type;

// Length of the valid UTF-8 sequence at s[i], or 0 if there is none.
size_t utf8_len(std::string_view s, size_t i) {
  auto c = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  auto cont = [&](size_t k) { return k < s.size() && (c(k) & 0xc0) == 0x80; };
  uint8_t b = c(i);
  if (b < 0x80) return 1;
  if (b >= 0xc2 && b <= 0xdf) return cont(i + 1) ? 2 : 0;
  if (b >= 0xe0 && b <= 0xef) {
    if (!cont(i + 1) || !cont(i + 2)) return 0;
    if (b == 0xe0 && c(i + 1) < 0xa0) return 0;  // overlong
    if (b == 0xed && c(i + 1) >= 0xa0) return 0;  // surrogate
    return 3;
  }
  if (b >= 0xf0 && b <= 0xf4) {
    if (!cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return 0;
    if (b == 0xf0 && c(i + 1) < 0x90) return 0;
    if (b == 0xf4 && c(i + 1) >= 0x90) return 0;
    return 4;
  }
  return 0;
}

// nlohmann's dump() throws on invalid UTF-8; replace it once here.
std::string valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_len(s, i);
    if (n == 0) {
      out += "\xef\xbf\xbd";
      ++i;
    } else {
      out.append(s, i, n);
      i += n;
    }
  }
  return out;
}

std::string hex(std::string_view s) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char ch : s) out += {digits[ch >> 4], digits[ch & 15]};
  return out;
}

std::string iso_time(std::string_view payload) {
  auto be32 = [&](size_t at) {
    uint32_t v = 0;
    for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(payload[at + i]);
    return v;
  };
  time_t sec = be32(0);
  uint32_t nsec = be32(4);
  std::tm tm{};
  gmtime_r(&sec, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09uZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, nsec);
  return buf;
}

bool convert(Reader& r, Json& out, int depth);

bool convert_container(Reader& r, Json& out, int depth, bool is_map) {
  if (depth >= kMaxJsonDepth) return r.fail("nested deeper than " + std::to_string(kMaxJsonDepth));
  uint32_t n = 0;
  if (!(is_map ? r.read_map(n) : r.read_array(n))) return false;
  out = is_map ? Json::object() : Json::array();
  for (uint32_t i = 0; i < n; ++i) {
    Json key, value;
    if (is_map && !convert(r, key, depth + 1)) return false;
    if (!convert(r, value, depth + 1)) return false;
    if (!is_map) out.push_back(std::move(value));
    else out[key.is_string() ? key.get<std::string>() : key.dump()] = std::move(value);
  }
  return true;
}

bool convert(Reader& r, Json& out, int depth) {
  switch (r.peek()) {
    case Type::kNil: out = nullptr; return r.skip();
    case Type::kBool: { bool b; if (!r.read_bool(b)) return false; out = b; return true; }
    case Type::kInt: {
      int64_t i;
      if (r.data()[r.pos()] == '\xcf') {
        uint64_t u;
        if (!r.read_uint(u)) return false;
        out = u;
        return true;
      }
      if (!r.read_int(i)) return false;
      out = i;
      return true;
    }
    case Type::kFloat: {
      double d;
      if (!r.read_double(d)) return false;
      out = std::isfinite(d) ? Json(d) : Json(nullptr);
      return true;
    }
    case Type::kStr: case Type::kBin: {
      std::string_view s;
      if (!r.read_str_or_bin(s)) return false;
      out = valid_utf8(s);
      return true;
    }
    case Type::kArray: return convert_container(r, out, depth, false);
    case Type::kMap: return convert_container(r, out, depth, true);
    case Type::kExt: {
      int8_t type;
      std::string_view payload;
      if (!r.read_ext(type, payload)) return false;
      if (type == 0 && payload.size() == 8) out = iso_time(payload);
      else out = {{"ext", type}, {"hex", hex(payload)}};
      return true;
    }
    default:
      return r.fail(r.at_end() ? "truncated" : "byte 0xc1 is not a msgpack type");
  }
}

}  // namespace

Result<Json> msgpack_to_json(std::string_view bytes) {
  Reader r(bytes, kMaxJsonDepth);
  Json out;
  if (!convert(r, out, 0) || !r.at_end()) {
    if (r.ok()) r.fail("trailing bytes after the object");
    return fail("invalid msgpack at byte " + std::to_string(r.error().offset) + ": " + r.error().what, 400);
  }
  return out;
}

}  // namespace stele::logs
