#include "metrics/graphite_line.h"

#include <charconv>
#include <cmath>
#include <limits>

namespace stele::metrics {

namespace {

// Byte classes. kSpace is what Python's str.split() splits on among ASCII
// (str.isspace(): \t \n \v \f \r \x1c-\x1f and space).
enum : uint8_t { kOk = 0, kSpace = 1, kControl = 2, kDot = 3, kSemicolon = 4, kHigh = 5 };

constexpr std::array<uint8_t, 256> make_classes() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = kControl;
  for (int c : {0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f}) t[c] = kSpace;
  t[0x7f] = kControl;
  t['.'] = kDot;
  t[';'] = kSemicolon;
  for (int c = 0x80; c < 0x100; ++c) t[c] = kHigh;
  return t;
}
constexpr std::array<uint8_t, 256> kClass = make_classes();

inline uint8_t cls(char c) { return kClass[static_cast<unsigned char>(c)]; }

// Python's str.isspace() beyond ASCII.
bool unicode_space(uint32_t cp) {
  return cp == 0x85 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 ||
         cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

// Decodes one UTF-8 sequence at s[i] (strict: no overlongs, surrogates or
// code points past U+10FFFF). Returns its length, 0 when invalid.
size_t utf8_at(std::string_view s, size_t i, uint32_t& cp) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  size_t n;
  uint32_t min;
  if (c >= 0xc2 && c <= 0xdf) n = 2, cp = c & 0x1f, min = 0x80;
  else if (c >= 0xe0 && c <= 0xef) n = 3, cp = c & 0x0f, min = 0x800;
  else if (c >= 0xf0 && c <= 0xf4) n = 4, cp = c & 0x07, min = 0x10000;
  else return 0;
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (b(i + k) & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

enum class NameProblem : uint8_t { kNone, kEmptyNode, kControl, kSemicolon, kBadUtf8, kUnicodeSpace, kSpace };

// Checks a metric path; on a problem, `pos` is the byte offset it is at.
NameProblem check_name(std::string_view name, size_t& pos) {
  bool node_empty = true;  // so a leading '.' is an empty node
  for (size_t i = 0; i < name.size(); ++i) {
    pos = i;
    switch (cls(name[i])) {
      case kOk: node_empty = false; break;
      case kDot:
        if (node_empty) return NameProblem::kEmptyNode;
        node_empty = true;
        break;
      case kSpace: return NameProblem::kSpace;
      case kControl: return NameProblem::kControl;
      case kSemicolon: return NameProblem::kSemicolon;
      default: {
        uint32_t cp = 0;
        size_t n = utf8_at(name, i, cp);
        if (n == 0) return NameProblem::kBadUtf8;
        if (cp < 0xa0 && cp != 0x85) return NameProblem::kControl;  // C1 controls
        if (unicode_space(cp)) return NameProblem::kUnicodeSpace;
        i += n - 1;
        node_empty = false;
      }
    }
  }
  pos = name.size();
  return node_empty ? NameProblem::kEmptyNode : NameProblem::kNone;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool iequals(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

// What Python's float() gives for a literal from_chars finds out of range:
// +inf when the magnitude is huge, 0 when it is tiny (s is unsigned).
double out_of_range(std::string_view s) {
  size_t i = 0;
  int64_t int_digits = 0, lead_zeros = 0;
  bool nonzero = false;
  for (; i < s.size() && is_digit(s[i]); ++i)
    if (nonzero || s[i] != '0') nonzero = true, ++int_digits;
  if (i < s.size() && s[i] == '.')
    for (++i; i < s.size() && is_digit(s[i]); ++i) {
      if (nonzero) continue;
      if (s[i] == '0') ++lead_zeros;
      else nonzero = true;
    }
  if (!nonzero) return 0.0;
  int64_t e = int_digits > 0 ? int_digits - 1 : -(lead_zeros + 1);
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    bool neg = false;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    int64_t x = 0;
    for (; i < s.size() && is_digit(s[i]); ++i) x = std::min<int64_t>(x * 10 + (s[i] - '0'), int64_t(1) << 40);
    e += neg ? -x : x;
  }
  return e > 0 ? std::numeric_limits<double>::infinity() : 0.0;
}

// PEP 515: '_' only between two digits. Returns s without them, or nullopt.
std::optional<std::string> strip_underscores(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '_') {
      out.push_back(s[i]);
      continue;
    }
    if (i == 0 || i + 1 == s.size() || !is_digit(s[i - 1]) || !is_digit(s[i + 1])) return std::nullopt;
  }
  return out;
}

bool parse_unsigned_decimal(std::string_view s, double& out) {
  if (s.empty() || !(is_digit(s[0]) || s[0] == '.')) return false;  // from_chars would take a sign
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, out, std::chars_format::general);
  if (ptr != end) return false;
  if (ec == std::errc::result_out_of_range) out = out_of_range(s);
  else if (ec != std::errc()) return false;
  return true;
}

// Fast path for the common "1700000000": plain digits that fit an int64.
bool parse_plain_int(std::string_view s, int64_t& out) {
  if (s.empty() || s.size() > 18) return false;
  int64_t v = 0;
  for (char c : s) {
    if (!is_digit(c)) return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

enum class TimeProblem : uint8_t { kNone, kSyntax, kNotFinite, kRange };

TimeProblem parse_time(std::string_view field, int64_t now, int64_t& out) {
  if (parse_plain_int(field, out)) return TimeProblem::kNone;
  double t;
  if (!parse_carbon_float(field, t)) return TimeProblem::kSyntax;
  if (!std::isfinite(t)) return TimeProblem::kNotFinite;
  t = std::trunc(t);  // whisper stores int(timestamp)
  if (t == -1) {
    out = now;
    return TimeProblem::kNone;
  }
  if (!(t >= -9223372036854775808.0 && t < 9223372036854775808.0)) return TimeProblem::kRange;
  out = static_cast<int64_t>(t);
  return TimeProblem::kNone;
}

struct Fields {
  std::string_view f[3];
  size_t count = 0;  // all fields, even past the third
};

Fields split_fields(std::string_view line) {
  Fields out;
  const char* p = line.data();
  const char* end = p + line.size();
  while (true) {
    while (p < end && cls(*p) == kSpace) ++p;
    if (p == end) return out;
    const char* start = p;
    while (p < end && cls(*p) != kSpace) ++p;
    if (out.count < 3) out.f[out.count] = std::string_view(start, size_t(p - start));
    ++out.count;
  }
}

std::string quoted(std::string_view s, size_t max = 200) {
  static const char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') out += '\\', out += char(c);
    else if (c >= 0x20 && c < 0x7f) out += char(c);
    else out += "\\x", out += kHex[c >> 4], out += kHex[c & 15];
  }
  out += '"';
  if (s.size() > max) out += "...";
  return out;
}

std::string name_problem_text(NameProblem p, std::string_view name, size_t pos) {
  std::string at = " at byte " + std::to_string(pos);
  switch (p) {
    case NameProblem::kNone: return {};
    case NameProblem::kEmptyNode:
      if (name.empty()) return "metric path is empty";
      return "metric path " + quoted(name) + " has an empty node" + at + " (nodes are separated by single dots)";
    case NameProblem::kSpace:
    case NameProblem::kControl:
      return "metric path " + quoted(name) + " contains a control character" + at;
    case NameProblem::kSemicolon:
      return "metric path " + quoted(name) + " contains ';'" + at + ": tagged series (name;tag=value) are not supported";
    case NameProblem::kBadUtf8: return "metric path " + quoted(name) + " is not valid UTF-8" + at;
    case NameProblem::kUnicodeSpace: return "metric path " + quoted(name) + " contains Unicode whitespace" + at;
  }
  return {};
}

// What is wrong with a line scan_line() gave status `s` (without the line itself).
std::string problem_text(LineStatus s, std::string_view line, size_t max_line) {
  Fields f = split_fields(line);
  switch (s) {
    case LineStatus::kPoint: return "ok";
    case LineStatus::kBlank: return "empty line";
    case LineStatus::kNaN: return "value " + quoted(f.f[1]) + " is NaN (NaN values are dropped)";
    case LineStatus::kFieldCount:
      return "expected 3 fields (path value timestamp), got " + std::to_string(f.count);
    case LineStatus::kBadValue: return "value " + quoted(f.f[1]) + " is not a number";
    case LineStatus::kBadTimestamp: {
      int64_t t;
      TimeProblem p = parse_time(f.f[2], 0, t);
      if (p == TimeProblem::kNotFinite) return "timestamp " + quoted(f.f[2]) + " is not finite";
      if (p == TimeProblem::kRange) return "timestamp " + quoted(f.f[2]) + " is out of range";
      return "timestamp " + quoted(f.f[2]) + " is not a number (seconds since the epoch, or -1 for now)";
    }
    case LineStatus::kBadName: {
      size_t pos = 0;
      NameProblem p = check_name(f.f[0], pos);
      return name_problem_text(p, f.f[0], pos);
    }
    case LineStatus::kTooLong:
      return "longer than " + std::to_string(max_line) + " bytes (skipped up to the next newline)";
  }
  return {};
}

}  // namespace

const char* line_status_name(LineStatus s) {
  switch (s) {
    case LineStatus::kPoint: return "point";
    case LineStatus::kBlank: return "blank";
    case LineStatus::kNaN: return "nan";
    case LineStatus::kFieldCount: return "field_count";
    case LineStatus::kBadValue: return "bad_value";
    case LineStatus::kBadTimestamp: return "bad_timestamp";
    case LineStatus::kBadName: return "bad_name";
    case LineStatus::kTooLong: return "too_long";
  }
  return "unknown";
}

bool parse_carbon_float(std::string_view s, double& out) {
  bool neg = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) neg = s[0] == '-', s.remove_prefix(1);
  if (s.empty()) return false;
  double v;
  if (!is_digit(s[0]) && s[0] != '.') {
    if (iequals(s, "nan")) v = std::numeric_limits<double>::quiet_NaN();
    else if (iequals(s, "inf") || iequals(s, "infinity")) v = std::numeric_limits<double>::infinity();
    else return false;
  } else if (s.find('_') != std::string_view::npos) {
    auto plain = strip_underscores(s);
    if (!plain || !parse_unsigned_decimal(*plain, v)) return false;
  } else if (!parse_unsigned_decimal(s, v)) {
    return false;
  }
  out = neg ? -v : v;
  return true;
}

std::optional<std::string> metric_name_error(std::string_view name) {
  size_t pos = 0;
  NameProblem p = check_name(name, pos);
  if (p == NameProblem::kNone) return std::nullopt;
  return name_problem_text(p, name, pos);
}

LineStatus scan_line(std::string_view line, int64_t now, Point& out) {
  Fields f = split_fields(line);
  if (f.count == 0) return LineStatus::kBlank;
  if (f.count != 3) return LineStatus::kFieldCount;
  // carbon: float(timestamp), float(value) inside the try; then the NaN
  // filter; then int(timestamp), which raises for NaN / inf.
  double value;
  if (!parse_carbon_float(f.f[1], value)) return LineStatus::kBadValue;
  int64_t t = 0;
  TimeProblem tp = parse_time(f.f[2], now, t);
  if (tp == TimeProblem::kSyntax) return LineStatus::kBadTimestamp;
  size_t pos;
  if (check_name(f.f[0], pos) != NameProblem::kNone) return LineStatus::kBadName;
  if (std::isnan(value)) return LineStatus::kNaN;
  if (tp != TimeProblem::kNone) return LineStatus::kBadTimestamp;
  out = Point{f.f[0], value, t};
  return LineStatus::kPoint;
}

Result<Point> parse_line(std::string_view line, int64_t now) {
  Point p;
  LineStatus s = scan_line(line, now, p);
  if (s == LineStatus::kPoint) return p;
  std::string msg = problem_text(s, line, 0);
  if (s != LineStatus::kBlank) msg += ": " + quoted(line);
  return fail(std::move(msg), 400);
}

std::string BadLine::message() const {
  return "line " + std::to_string(line_no) + ": " + problem_text(reason, text, max_line) + ": " + quoted(text);
}

RateLimitedLog::Decision RateLimitedLog::admit(int64_t now_ms) {
  if (!started_ || now_ms < window_start_ || now_ms - window_start_ >= interval_ms_) {
    started_ = true;
    window_start_ = now_ms;
    in_window_ = 0;
  }
  if (in_window_ < burst_) {
    ++in_window_;
    Decision d{true, suppressed_};
    suppressed_ = 0;
    return d;
  }
  ++suppressed_;
  return {};
}

uint64_t RateLimitedLog::take_suppressed() {
  uint64_t n = suppressed_;
  suppressed_ = 0;
  return n;
}

}  // namespace stele::metrics
