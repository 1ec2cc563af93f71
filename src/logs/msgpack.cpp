#include "logs/msgpack.h"

#include <cmath>

namespace stele::logs::msgpack {

namespace {

uint64_t load_be(const char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// The shape of the object starting at p: a leaf of `size` bytes in all, or a
// container whose header is `size` bytes, followed by `children` objects.
struct Head {
  uint64_t size = 0;
  uint64_t children = 0;
  bool container = false;
};

// 1: parsed, 0: need more bytes to read the header, -1: 0xc1.
int head(const char* p, size_t avail, Head& h) {
  uint8_t b = static_cast<uint8_t>(p[0]);
  auto blob = [&](int lenbytes, uint64_t extra) {
    if (avail < size_t(1 + lenbytes)) return 0;
    h.size = 1 + lenbytes + extra + load_be(p + 1, lenbytes);
    return 1;
  };
  auto container = [&](int lenbytes, uint64_t per) {
    if (avail < size_t(1 + lenbytes)) return 0;
    h.container = true;
    h.size = 1 + lenbytes;
    h.children = per * load_be(p + 1, lenbytes);
    return 1;
  };
  if (b <= 0x7f || b >= 0xe0) return h.size = 1, 1;
  if (b <= 0x8f) return h.container = true, h.size = 1, h.children = 2u * (b & 0x0f), 1;
  if (b <= 0x9f) return h.container = true, h.size = 1, h.children = b & 0x0f, 1;
  if (b <= 0xbf) return h.size = 1u + (b & 0x1f), 1;
  switch (b) {
    case 0xc0: case 0xc2: case 0xc3: h.size = 1; return 1;
    case 0xc1: return -1;
    case 0xc4: return blob(1, 0);
    case 0xc5: return blob(2, 0);
    case 0xc6: return blob(4, 0);
    case 0xc7: return blob(1, 1);
    case 0xc8: return blob(2, 1);
    case 0xc9: return blob(4, 1);
    case 0xca: h.size = 5; return 1;
    case 0xcb: h.size = 9; return 1;
    case 0xcc: case 0xd0: h.size = 2; return 1;
    case 0xcd: case 0xd1: h.size = 3; return 1;
    case 0xce: case 0xd2: h.size = 5; return 1;
    case 0xcf: case 0xd3: h.size = 9; return 1;
    case 0xd4: h.size = 3; return 1;
    case 0xd5: h.size = 4; return 1;
    case 0xd6: h.size = 6; return 1;
    case 0xd7: h.size = 10; return 1;
    case 0xd8: h.size = 18; return 1;
    case 0xd9: return blob(1, 0);
    case 0xda: return blob(2, 0);
    case 0xdb: return blob(4, 0);
    case 0xdc: return container(2, 1);
    case 0xdd: return container(4, 1);
    case 0xde: return container(2, 2);
    default: return container(4, 2);  // 0xdf
  }
}

}  // namespace

Type type_of(uint8_t b) {
  if (b <= 0x7f || b >= 0xe0) return Type::kInt;
  if (b <= 0x8f) return Type::kMap;
  if (b <= 0x9f) return Type::kArray;
  if (b <= 0xbf) return Type::kStr;
  switch (b) {
    case 0xc0: return Type::kNil;
    case 0xc2: case 0xc3: return Type::kBool;
    case 0xc4: case 0xc5: case 0xc6: return Type::kBin;
    case 0xc7: case 0xc8: case 0xc9: return Type::kExt;
    case 0xca: case 0xcb: return Type::kFloat;
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: return Type::kExt;
    case 0xd9: case 0xda: case 0xdb: return Type::kStr;
    case 0xdc: case 0xdd: return Type::kArray;
    case 0xde: case 0xdf: return Type::kMap;
    case 0xc1: return Type::kInvalid;
    default: return Type::kInt;  // 0xcc-0xd3
  }
}

const char* type_name(Type t) {
  switch (t) {
    case Type::kNil: return "nil";
    case Type::kBool: return "bool";
    case Type::kInt: return "int";
    case Type::kFloat: return "float";
    case Type::kStr: return "str";
    case Type::kBin: return "bin";
    case Type::kArray: return "array";
    case Type::kMap: return "map";
    case Type::kExt: return "ext";
    default: return "invalid byte 0xc1";
  }
}

Scan scan(const char* data, size_t size, ScanState& s, int max_depth, size_t max_bytes,
          ParseError& err) {
  auto bad = [&](std::string what) {
    err = {s.pos, std::move(what)};
    return Scan::kBad;
  };
  for (;;) {
    if (s.left[s.depth] == 0) {
      if (s.depth == 0) return Scan::kDone;
      --s.depth;
      continue;
    }
    if (s.pos >= size) break;
    Head h;
    int r = head(data + s.pos, size - s.pos, h);
    if (r < 0) return bad("byte 0xc1 is not a msgpack type");
    if (r == 0) break;
    if (h.size > max_bytes - s.pos)
      return bad("declared length " + std::to_string(h.size) + " goes past the " +
                 std::to_string(max_bytes) + "-byte limit");
    if (h.container && h.children > 0) {
      // Each child takes at least one byte: refuse counts no input could fill.
      if (h.children > max_bytes - s.pos - h.size)
        return bad("declared " + std::to_string(h.children) + " elements, more than fit in " +
                   std::to_string(max_bytes) + " bytes");
      if (s.depth >= max_depth) return bad("nested deeper than " + std::to_string(max_depth));
    } else if (s.pos + h.size > size) {
      break;  // leaf not all here yet
    }
    --s.left[s.depth];
    s.pos += h.size;
    if (h.container && h.children > 0) s.left[++s.depth] = h.children;
  }
  if (size >= max_bytes) return bad("object larger than the " + std::to_string(max_bytes) + "-byte limit");
  return Scan::kNeedMore;
}

// ---- Reader ----

bool Reader::fail_at(size_t offset, std::string what) {
  if (err_.what.empty()) err_ = {offset, std::move(what)};
  pos_ = data_.size();  // later reads fail too
  return false;
}

bool Reader::fail(std::string what) { return fail_at(pos_, std::move(what)); }

bool Reader::context(std::string_view ctx) {
  if (!err_.what.empty()) err_.what = std::string(ctx) + ": " + err_.what;
  return false;
}

bool Reader::need(size_t n) {
  if (!ok()) return false;
  if (data_.size() - pos_ < n) return fail("truncated: needs " + std::to_string(n) + " more bytes");
  return true;
}

uint64_t Reader::be(size_t at, int n) const { return load_be(data_.data() + at, n); }

bool Reader::type_error(const char* expected) {
  if (!ok()) return false;
  if (at_end()) return fail(std::string("truncated: expected ") + expected);
  return fail(std::string("expected ") + expected + ", got " + type_name(peek()));
}

bool Reader::read_array(uint32_t& n) {
  if (!need(1)) return false;
  uint8_t b = byte(pos_);
  if (b >= 0x90 && b <= 0x9f) return n = b & 0x0f, ++pos_, true;
  int len = b == 0xdc ? 2 : b == 0xdd ? 4 : 0;
  if (!len) return type_error("array");
  if (!need(1 + len)) return false;
  n = static_cast<uint32_t>(be(pos_ + 1, len));
  pos_ += 1 + len;
  return true;
}

bool Reader::read_map(uint32_t& n) {
  if (!need(1)) return false;
  uint8_t b = byte(pos_);
  if (b >= 0x80 && b <= 0x8f) return n = b & 0x0f, ++pos_, true;
  int len = b == 0xde ? 2 : b == 0xdf ? 4 : 0;
  if (!len) return type_error("map");
  if (!need(1 + len)) return false;
  n = static_cast<uint32_t>(be(pos_ + 1, len));
  pos_ += 1 + len;
  return true;
}

bool Reader::read_str_or_bin(std::string_view& s) {
  if (!need(1)) return false;
  uint8_t b = byte(pos_);
  size_t hdr = 1, len = 0;
  if (b >= 0xa0 && b <= 0xbf) {
    len = b & 0x1f;
  } else {
    int lb = (b == 0xd9 || b == 0xc4) ? 1 : (b == 0xda || b == 0xc5) ? 2 : (b == 0xdb || b == 0xc6) ? 4 : 0;
    if (!lb) return type_error("str or bin");
    if (!need(1 + lb)) return false;
    len = be(pos_ + 1, lb);
    hdr += lb;
  }
  if (!need(hdr + len)) return false;
  s = data_.substr(pos_ + hdr, len);
  pos_ += hdr + len;
  return true;
}

bool Reader::read_int(int64_t& v) {
  if (!need(1)) return false;
  uint8_t b = byte(pos_);
  if (b <= 0x7f) return v = b, ++pos_, true;
  if (b >= 0xe0) return v = static_cast<int8_t>(b), ++pos_, true;
  if (b < 0xcc || b > 0xd3) return type_error("int");
  int n = 1 << ((b - 0xcc) & 3);
  if (!need(1 + n)) return false;
  uint64_t u = be(pos_ + 1, n);
  if (b <= 0xcf) {
    if (u > uint64_t(INT64_MAX)) return fail("integer " + std::to_string(u) + " out of range");
    v = static_cast<int64_t>(u);
  } else {  // sign-extend
    int shift = 64 - 8 * n;
    v = static_cast<int64_t>(u << shift) >> shift;
  }
  pos_ += 1 + n;
  return true;
}

bool Reader::read_uint(uint64_t& v) {
  size_t at = pos_;
  if (peek() == Type::kInt && byte(pos_) == 0xcf) {
    if (!need(9)) return false;
    v = be(pos_ + 1, 8);
    pos_ += 9;
    return true;
  }
  int64_t i = 0;
  if (!read_int(i)) return false;
  if (i < 0) return fail_at(at, "expected a non-negative integer, got " + std::to_string(i));
  v = static_cast<uint64_t>(i);
  return true;
}

bool Reader::read_bool(bool& v) {
  if (!need(1)) return false;
  uint8_t b = byte(pos_);
  if (b != 0xc2 && b != 0xc3) return type_error("bool");
  v = b == 0xc3;
  ++pos_;
  return true;
}

bool Reader::read_double(double& v) {
  if (!need(1)) return false;
  uint8_t b = byte(pos_);
  if (b == 0xca) {
    if (!need(5)) return false;
    uint32_t u = static_cast<uint32_t>(be(pos_ + 1, 4));
    float f;
    std::memcpy(&f, &u, 4);
    v = f;
    pos_ += 5;
    return true;
  }
  if (b != 0xcb) return type_error("float");
  if (!need(9)) return false;
  uint64_t u = be(pos_ + 1, 8);
  std::memcpy(&v, &u, 8);
  pos_ += 9;
  return true;
}

bool Reader::read_ext(int8_t& type, std::string_view& payload) {
  if (!need(1)) return false;
  uint8_t b = byte(pos_);
  size_t hdr, len;
  if (b >= 0xd4 && b <= 0xd8) {
    hdr = 2;
    len = size_t(1) << (b - 0xd4);
  } else if (b >= 0xc7 && b <= 0xc9) {
    int lb = 1 << (b - 0xc7);
    if (!need(1 + lb)) return false;
    len = be(pos_ + 1, lb);
    hdr = 2 + lb;
  } else {
    return type_error("ext");
  }
  if (!need(hdr + len)) return false;
  type = static_cast<int8_t>(data_[pos_ + hdr - 1]);
  payload = data_.substr(pos_ + hdr, len);
  pos_ += hdr + len;
  return true;
}

bool Reader::skip(std::string_view* raw) {
  if (!need(1)) return false;
  ScanState s;
  ParseError e;
  size_t start = pos_;
  Scan r = scan(data_.data() + start, data_.size() - start, s, max_depth_, data_.size() - start + 1, e);
  if (r == Scan::kBad) return fail_at(start + e.offset, e.what);
  if (r == Scan::kNeedMore) return fail_at(data_.size(), "truncated inside an object that starts at byte " + std::to_string(start));
  if (raw) *raw = data_.substr(start, s.pos);
  pos_ = start + s.pos;
  return true;
}

// ---- Writer ----

void Writer::be(uint64_t v, int n) {
  for (int i = n - 1; i >= 0; --i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void Writer::header(uint8_t fix, uint32_t fix_max, uint8_t c8, uint8_t c16, uint8_t c32, uint32_t n) {
  if (n <= fix_max) {
    out_.push_back(static_cast<char>(fix | n));
  } else if (c8 && n <= 0xff) {
    out_.push_back(static_cast<char>(c8));
    be(n, 1);
  } else if (n <= 0xffff) {
    out_.push_back(static_cast<char>(c16));
    be(n, 2);
  } else {
    out_.push_back(static_cast<char>(c32));
    be(n, 4);
  }
}

void Writer::array(uint32_t n) { header(0x90, 15, 0, 0xdc, 0xdd, n); }
void Writer::map(uint32_t n) { header(0x80, 15, 0, 0xde, 0xdf, n); }

void Writer::str(std::string_view s) {
  header(0xa0, 31, 0xd9, 0xda, 0xdb, static_cast<uint32_t>(s.size()));
  out_.append(s);
}

void Writer::bin(std::string_view s) {
  // bin has no fix form: fix_max 0 would collide with 0x00, so go via bin8.
  if (s.size() <= 0xff) {
    out_.push_back('\xc4');
    be(s.size(), 1);
  } else if (s.size() <= 0xffff) {
    out_.push_back('\xc5');
    be(s.size(), 2);
  } else {
    out_.push_back('\xc6');
    be(s.size(), 4);
  }
  out_.append(s);
}

void Writer::uint(uint64_t v) {
  if (v <= 0x7f) {
    out_.push_back(static_cast<char>(v));
  } else if (v <= 0xff) {
    out_.push_back('\xcc');
    be(v, 1);
  } else if (v <= 0xffff) {
    out_.push_back('\xcd');
    be(v, 2);
  } else if (v <= 0xffffffff) {
    out_.push_back('\xce');
    be(v, 4);
  } else {
    out_.push_back('\xcf');
    be(v, 8);
  }
}

void Writer::integer(int64_t v) {
  if (v >= 0) return uint(static_cast<uint64_t>(v));
  out_.push_back('\xd3');
  be(static_cast<uint64_t>(v), 8);
}

void Writer::float64(double v) {
  uint64_t u;
  std::memcpy(&u, &v, 8);
  out_.push_back('\xcb');
  be(u, 8);
}

void Writer::event_time(int64_t time_ns) {
  // Floor division so times before 1970 keep nanoseconds in [0, 1e9).
  int64_t sec = time_ns / 1000000000, nsec = time_ns % 1000000000;
  if (nsec < 0) sec -= 1, nsec += 1000000000;
  out_.push_back('\xd7');
  out_.push_back('\x00');
  be(static_cast<uint32_t>(sec), 4);
  be(static_cast<uint32_t>(nsec), 4);
}

}  // namespace stele::logs::msgpack
